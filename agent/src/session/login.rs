//! How the agent logs in to the broker, per connection: before it joined,
//! with its proof of knowing the join token (it may then only say hello);
//! afterwards with its key (`bramble_trust::login`). A key login also
//! registers a last will: `online: false` of this session and connection,
//! signed now, published by the broker when the connection drops.

use bramble_api::protocol::topics::{Topic, TopicKind};
use bramble_api::protocol::{Online, encode_frame};
use bramble_trust::login::{Service, key_password, token_password};
use bramble_trust::{JoinToken, SecretKeys};

/// Which credentials a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// The join token's proof: only `hello` is allowed.
    Token,
    /// The board's key.
    Key,
}

/// What a connection attempt logs in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// The last will's topic and signed payload.
    pub will: Option<(String, Vec<u8>)>,
}

/// The secrets the logins are made from. See the module docs.
#[derive(Clone)]
pub struct Logins {
    pub node: String,
    pub session: String,
    pub keys: SecretKeys,
    pub token: Option<JoinToken>,
}

impl std::fmt::Debug for Logins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logins")
            .field("node", &self.node)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Logins {
    /// The credentials of connection number `connection` with `login`
    /// (`None`: a token login without a token).
    pub fn credentials(&self, login: Login, connection: u64) -> Option<Credentials> {
        let (password, will) = match login {
            Login::Token => (
                token_password(self.token.as_ref()?, Service::Mqtt, &self.node),
                None,
            ),
            Login::Key => {
                let topic = Topic::new(&self.node, TopicKind::Online).ok()?;
                let will = encode_frame(
                    &self.keys,
                    &topic,
                    &Online::last_will(&self.session, connection),
                    None,
                )
                .ok()?;
                (
                    key_password(&self.keys, Service::Mqtt, &self.node),
                    Some((topic.to_string(), will)),
                )
            }
        };
        Some(Credentials {
            username: self.node.clone(),
            password,
            will,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::decode_frame;
    use bramble_trust::login::Password;

    #[test]
    fn key_logins_carry_a_signed_will_of_their_connection() {
        let hub = SecretKeys::generate().unwrap();
        let token = JoinToken::generate(hub.public().fingerprint()).unwrap();
        let l = Logins {
            node: "pi-1".into(),
            session: "s1".into(),
            keys: SecretKeys::generate().unwrap(),
            token: Some(token.clone()),
        };
        let c = l.credentials(Login::Key, 3).unwrap();
        assert_eq!(c.username, "pi-1");
        assert!(Password::parse(&c.password).verify_key(l.keys.public(), Service::Mqtt, "pi-1"));
        let (topic, payload) = c.will.unwrap();
        let o: Online = decode_frame("pi-1", &topic, &payload, l.keys.public(), None).unwrap();
        assert_eq!(o, Online::last_will("s1", 3));
        let t = l.credentials(Login::Token, 1).unwrap();
        assert!(t.will.is_none(), "a token login may publish hello only");
        assert!(Password::parse(&t.password).verify_token(token.secret(), Service::Mqtt, "pi-1"));
        assert!(!t.password.contains(token.secret()));
        let none = Logins { token: None, ..l };
        assert_eq!(none.credentials(Login::Token, 1), None);
    }
}
