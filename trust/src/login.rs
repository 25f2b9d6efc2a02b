//! The logins of a board, to the MQTT broker and to the hub's registry.
//! None is issued by the hub or sent on a topic:
//!
//! - A **joined** board logs in as client id = username = its name, with
//!   `key.` and HKDF-SHA256 of the X25519 secret it shares with the hub
//!   (its private encryption key and the hub's public one; the hub computes
//!   the same from its private key and the board's registered public one),
//!   bound to the service and the name. Deleting the node voids it at once.
//!   Because the hub can compute it, it can also provision an external
//!   broker with it (mosquitto's dynamic security).
//! - A **joining** board logs in as client id `_join.<name>` (never a
//!   node's client id: `_` is not allowed in node names, so a join can never
//!   take over a joined node's session), username `_join.<token id>`, and an
//!   HMAC of the token's secret as password. Such a login may only say hello.
//!
//! Such a password is as static as any: over plain MQTT or HTTP a sniffer
//! could replay it. What it opens is defence in depth only (every message is
//! signed and sealed, see [`crate::frame`]); TLS keeps it from sniffers.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::keys::{PublicKeys, SecretKeys};
use crate::text::b64;
use crate::token::{JoinToken, verify_proof};

const DOMAIN: &[u8] = b"bramble/v2 login\0";
const KEY_PREFIX: &str = "key.";
/// Client ids and usernames of join-token logins start with this.
pub const JOIN_PREFIX: &str = "_join.";
const JOIN_LABEL: &str = "mqtt-join";

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

/// The password node `node` logs in to `service` with: `own` and `peer` are
/// the board's keys and the hub's (on the board), or the hub's and the
/// board's (on the hub); both give the same. `None` when the peer's key is
/// unusable (low order).
pub fn key_password(
    own: &SecretKeys,
    peer: &PublicKeys,
    service: Service,
    node: &str,
) -> Option<String> {
    let shared = own.shared_with(peer)?;
    let info = [DOMAIN, service.label().as_bytes(), b"\0", node.as_bytes()].concat();
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(None, &shared)
        .expand(&info, &mut okm)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    Some(format!("{KEY_PREFIX}{}", b64(&okm)))
}

/// Whether `password` is node `node`'s for `service`, computed on the hub
/// (`own` the hub's keys, `peer` the node's registered ones); constant time.
pub fn verify_key_password(
    own: &SecretKeys,
    peer: &PublicKeys,
    service: Service,
    node: &str,
    password: &str,
) -> bool {
    key_password(own, peer, service, node)
        .is_some_and(|want| constant_time_eq(want.as_bytes(), password.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A joining board's MQTT login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinLogin {
    pub client_id: String,
    pub username: String,
    pub password: String,
}

/// The MQTT login of board `node` joining with `token`.
pub fn join_login(token: &JoinToken, node: &str) -> JoinLogin {
    JoinLogin {
        client_id: format!("{JOIN_PREFIX}{node}"),
        username: format!("{JOIN_PREFIX}{}", token.id()),
        password: join_password(token),
    }
}

/// The MQTT password of join-token logins with `token` (the hub provisions
/// an external broker with it).
pub fn join_password(token: &JoinToken) -> String {
    token.proof(JOIN_LABEL, &[])
}

/// Whether `password` is the join password of the token whose secret is
/// `secret`.
pub fn verify_join_password(secret: &str, password: &str) -> bool {
    verify_proof(secret, JOIN_LABEL, &[], password)
}

/// The node a join-token client id names (`_join.<node>`).
pub fn joining_node(client_id: &str) -> Option<&str> {
    client_id.strip_prefix(JOIN_PREFIX)
}

/// The token id a join-token username names (`_join.<id>`).
pub fn join_token_id(username: &str) -> Option<&str> {
    username.strip_prefix(JOIN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_compute_the_same_key_password_and_nobody_else_does() {
        let (hub, node, other) = (
            SecretKeys::generate().unwrap(),
            SecretKeys::generate().unwrap(),
            SecretKeys::generate().unwrap(),
        );
        let on_board = key_password(&node, hub.public(), Service::Mqtt, "pi-1").unwrap();
        assert!(on_board.starts_with("key."));
        assert!(verify_key_password(
            &hub,
            node.public(),
            Service::Mqtt,
            "pi-1",
            &on_board
        ));
        assert!(!verify_key_password(
            &hub,
            node.public(),
            Service::Registry,
            "pi-1",
            &on_board
        ));
        assert!(!verify_key_password(
            &hub,
            node.public(),
            Service::Mqtt,
            "pi-2",
            &on_board
        ));
        assert!(!verify_key_password(
            &hub,
            other.public(),
            Service::Mqtt,
            "pi-1",
            &on_board
        ));
        let forged = key_password(&other, hub.public(), Service::Mqtt, "pi-1").unwrap();
        assert!(!verify_key_password(
            &hub,
            node.public(),
            Service::Mqtt,
            "pi-1",
            &forged
        ));
        assert!(!verify_key_password(
            &hub,
            node.public(),
            Service::Mqtt,
            "pi-1",
            "key.x"
        ));
    }

    #[test]
    fn join_logins_never_use_a_node_name_and_prove_the_token() {
        let hub = SecretKeys::generate().unwrap();
        let t = JoinToken::generate(hub.public().fingerprint()).unwrap();
        let l = join_login(&t, "pi-1");
        assert_eq!(joining_node(&l.client_id), Some("pi-1"));
        assert_eq!(join_token_id(&l.username), Some(t.id()));
        assert!(crate::token::JoinToken::parse("x").is_err());
        assert!(!l.password.contains(t.secret()));
        assert!(verify_join_password(t.secret(), &l.password));
        let other = JoinToken::generate(hub.public().fingerprint()).unwrap();
        assert!(!verify_join_password(other.secret(), &l.password));
        assert_eq!(joining_node("pi-1"), None);
    }
}
