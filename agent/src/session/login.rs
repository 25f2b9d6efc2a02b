//! How the agent logs in to the broker, per connection
//! (`bramble_trust::login`): before it joined, with its join token's login
//! (client id `_join.<node>`: it may then only say hello and hear the
//! answer); afterwards with its key login (client id = username = node
//! name, the password derived from its key and the hub's pinned one). A key
//! login also registers a last will: `online: false` of this session and
//! connection, signed now, published by the broker when the connection
//! drops.

use bramble_api::protocol::topics::{Topic, TopicKind};
use bramble_api::protocol::{Online, encode_frame};
use bramble_trust::login::{Service, join_login, key_password};
use bramble_trust::{JoinToken, PublicKeys, SecretKeys};

/// Which credentials a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// The join token's: only `hello` is allowed.
    Token,
    /// The board's key.
    Key,
}

/// What a connection attempt logs in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
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
    /// (`hub`: the pinned hub's keys, which a key login needs); `None`
    /// when what the login needs is missing.
    pub fn credentials(
        &self,
        login: Login,
        hub: Option<&PublicKeys>,
        connection: u64,
    ) -> Option<Credentials> {
        match login {
            Login::Token => {
                let l = join_login(self.token.as_ref()?, &self.node);
                Some(Credentials {
                    client_id: l.client_id,
                    username: l.username,
                    password: l.password,
                    will: None,
                })
            }
            Login::Key => {
                let password = key_password(&self.keys, hub?, Service::Mqtt, &self.node)?;
                let topic = Topic::new(&self.node, TopicKind::Online).ok()?;
                let will = encode_frame(
                    &self.keys,
                    &topic,
                    &Online::last_will(&self.session, connection),
                    None,
                )
                .ok()?;
                Some(Credentials {
                    client_id: self.node.clone(),
                    username: self.node.clone(),
                    password,
                    will: Some((topic.to_string(), will)),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::decode_frame;
    use bramble_trust::login::{verify_join_password, verify_key_password};

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
        assert_eq!(
            l.credentials(Login::Key, None, 1),
            None,
            "needs the hub's key"
        );
        let c = l.credentials(Login::Key, Some(hub.public()), 3).unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.username.as_str()),
            ("pi-1", "pi-1")
        );
        assert!(verify_key_password(
            &hub,
            l.keys.public(),
            Service::Mqtt,
            "pi-1",
            &c.password
        ));
        let (topic, payload) = c.will.unwrap();
        let o: Online = decode_frame("pi-1", &topic, &payload, l.keys.public(), None).unwrap();
        assert_eq!(o, Online::last_will("s1", 3));
        let t = l.credentials(Login::Token, None, 1).unwrap();
        assert!(t.will.is_none(), "a token login may publish hello only");
        assert_eq!(t.client_id, "_join.pi-1");
        assert!(verify_join_password(token.secret(), &t.password));
        assert!(!t.password.contains(token.secret()));
        let none = Logins { token: None, ..l };
        assert_eq!(none.credentials(Login::Token, None, 1), None);
    }
}
