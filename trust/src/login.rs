//! The passwords a board logs in with, to the MQTT broker and to the hub's
//! registry. None is issued by the hub or sent on a topic: a joined board's
//! password is its Ed25519 signature over the service and its name (the
//! hub checks it against the key it registered, so deleting the node voids
//! it at once); before it joined, its proof of knowing a join token.
//!
//! Such a password is as static as any: over plain MQTT or HTTP a sniffer
//! could replay it. What it opens is defence in depth only (every message is
//! signed and sealed, see [`crate::frame`]); TLS keeps it from sniffers.

use crate::keys::{PublicKeys, SecretKeys};
use crate::text::{b64, unb64};
use crate::token::{JoinToken, verify_proof};

const DOMAIN: &[u8] = b"bramble/v2 login\0";
const KEY_PREFIX: &str = "key.";
const TOKEN_PREFIX: &str = "join.";

/// Where a password is used: one service's password is worthless on the
/// other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Mqtt,
    Registry,
}

impl Service {
    fn label(self) -> &'static str {
        match self {
            Service::Mqtt => "mqtt",
            Service::Registry => "registry",
        }
    }
}

fn signed(service: Service, node: &str) -> Vec<u8> {
    [DOMAIN, service.label().as_bytes(), b"\0", node.as_bytes()].concat()
}

/// A joined board's password for `service`.
pub fn key_password(keys: &SecretKeys, service: Service, node: &str) -> String {
    format!("{KEY_PREFIX}{}", b64(&keys.sign(&signed(service, node))))
}

/// A joining board's password for `service`: its proof of knowing `token`.
pub fn token_password(token: &JoinToken, service: Service, node: &str) -> String {
    let proof = token.proof(service.label(), &[node.as_bytes()]);
    format!("{TOKEN_PREFIX}{}.{proof}", token.id())
}

/// What a password claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password<'a> {
    /// A joined board's signature: check with [`Password::verify_key`].
    Key(&'a str),
    /// A joining board's token proof, for the token `id`: check with
    /// [`Password::verify_token`].
    Token { id: &'a str, proof: &'a str },
    /// Anything else.
    Other,
}

impl<'a> Password<'a> {
    /// Reads a password's form (nothing is verified yet).
    pub fn parse(password: &'a str) -> Password<'a> {
        if let Some(sig) = password.strip_prefix(KEY_PREFIX) {
            return Password::Key(sig);
        }
        if let Some((id, proof)) = password
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|r| r.split_once('.'))
        {
            return Password::Token { id, proof };
        }
        Password::Other
    }

    /// Whether this is `node`'s signature for `service` by `key`.
    pub fn verify_key(&self, key: &PublicKeys, service: Service, node: &str) -> bool {
        let Password::Key(sig) = self else {
            return false;
        };
        unb64::<64>(sig).is_ok_and(|sig| key.verify(&signed(service, node), &sig))
    }

    /// Whether this proves knowing the token whose secret is `secret`.
    pub fn verify_token(&self, secret: &str, service: Service, node: &str) -> bool {
        let Password::Token { proof, .. } = self else {
            return false;
        };
        verify_proof(secret, service.label(), &[node.as_bytes()], proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_passwords_verify_for_their_node_and_service_only() {
        let k = SecretKeys::generate().unwrap();
        let pw = key_password(&k, Service::Mqtt, "pi-1");
        let p = Password::parse(&pw);
        assert!(matches!(p, Password::Key(_)));
        assert!(p.verify_key(k.public(), Service::Mqtt, "pi-1"));
        assert!(!p.verify_key(k.public(), Service::Registry, "pi-1"));
        assert!(!p.verify_key(k.public(), Service::Mqtt, "pi-2"));
        let other = SecretKeys::generate().unwrap();
        assert!(!p.verify_key(other.public(), Service::Mqtt, "pi-1"));
        assert!(!p.verify_token("x", Service::Mqtt, "pi-1"));
    }

    #[test]
    fn token_passwords_name_the_token_and_prove_it() {
        let hub = SecretKeys::generate().unwrap();
        let t = JoinToken::generate(hub.public().fingerprint()).unwrap();
        let pw = token_password(&t, Service::Mqtt, "pi-1");
        assert!(!pw.contains(t.secret()));
        let p = Password::parse(&pw);
        assert!(matches!(p, Password::Token { id, .. } if id == t.id()));
        assert!(p.verify_token(t.secret(), Service::Mqtt, "pi-1"));
        assert!(!p.verify_token(t.secret(), Service::Mqtt, "pi-2"));
        assert!(!p.verify_token(t.secret(), Service::Registry, "pi-1"));
        assert_eq!(Password::parse("hunter2"), Password::Other);
        assert!(!Password::parse("hunter2").verify_key(hub.public(), Service::Mqtt, "pi-1"));
    }
}
