//! Who may talk MQTT to the hub: the hub's own client (a random secret per hub
//! start), and nodes, which prove themselves with the cluster's join token
//! (`DATA_DIR/node-token`) on their first hello and with credentials the hub
//! issued on that join afterwards. Issued passwords live in redb
//! (`kv_node_credentials`, key: node name). Secrets are compared in constant
//! time and never logged.
//!
//! At the `hello` level, credentials are valid only while the `Node` object
//! exists (deleting the node revokes them), and a token join for a name that
//! is registered with credentials is refused (`nameTaken`) unless it repeats
//! the hello that got them issued (same session: the ack was lost).
//!
//! rumqttd checks only CONNECT, not topics: on the embedded broker any
//! authenticated node can publish on any node's topics (the hub checks the
//! hello's name against the topic, nothing more). Use mosquitto with
//! `topics::mosquitto_acl_patterns` where that matters.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bramble_api::protocol::topics::check_node;
use bramble_api::protocol::{HelloAuth, NodeCredentials, RefusalCode};
use bramble_api::resource::by_plural;
use serde::{Deserialize, Serialize};

use crate::store::{KvWrite, Store};
use crate::token;

/// File name of the join token inside the data directory.
pub const NODE_TOKEN_FILE: &str = "node-token";
/// The redb table of issued node passwords.
pub const CREDENTIALS_TABLE: &str = "kv_node_credentials";
/// MQTT client id and username of the hub's own client (reserved: no node
/// may be named so).
pub const HUB_USERNAME: &str = "bramble-hub";

/// What to tell an agent whose token is wrong.
pub const INVALID_TOKEN_REASON: &str = "the join token is wrong: check --token against \
     DATA_DIR/node-token on the hub";
/// What to tell an agent whose credentials are not (or no longer) valid.
pub const INVALID_CREDENTIALS_REASON: &str = "the node's credentials are not valid on this hub \
     (the node was deleted or the hub's data was reset): rejoin with --token, the contents of \
     DATA_DIR/node-token on the hub";
/// What to tell an agent joining with a name another board holds.
pub const NAME_TAKEN_REASON: &str = "a node with this name is already registered with \
     credentials: give this board another name, or delete the Node (bramble delete node NAME) \
     to let it rejoin with the token";

/// A stored credential record.
#[derive(Serialize, Deserialize)]
struct StoredCredentials {
    password: String,
    /// The agent session of the hello they were issued to.
    #[serde(default)]
    session: String,
}

/// The answer to a hello's `auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloVerdict {
    /// Accepted; credentials issued on a token join.
    Accepted(Option<NodeCredentials>),
    /// Refused with a code and what the operator should do.
    Refused(RefusalCode, &'static str),
}

/// Why a CONNECT was refused (for the log; never contains a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// The hub's secrets and the node credential table. Cheap to clone.
#[derive(Clone)]
pub struct NodeAuth {
    join_token: Arc<str>,
    hub_password: Arc<str>,
    store: Store,
}

impl std::fmt::Debug for NodeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeAuth").finish_non_exhaustive()
    }
}

impl NodeAuth {
    /// Loads (or creates, mode 0600) `DATA_DIR/node-token` and generates this
    /// start's hub secret.
    pub fn open(data_dir: &Path, store: Store) -> anyhow::Result<NodeAuth> {
        let path = data_dir.join(NODE_TOKEN_FILE);
        let join_token = token::load_or_create(&path)
            .with_context(|| format!("loading the node join token {}", path.display()))?;
        Ok(NodeAuth::new(store, join_token, token::random_hex(32)?))
    }

    /// From known secrets (tests).
    pub fn new(store: Store, join_token: String, hub_password: String) -> NodeAuth {
        NodeAuth {
            join_token: join_token.into(),
            hub_password: hub_password.into(),
            store,
        }
    }

    /// The cluster's join token.
    pub fn join_token(&self) -> &str {
        &self.join_token
    }

    /// The password of the hub's own MQTT client on the embedded broker.
    pub fn hub_password(&self) -> &str {
        &self.hub_password
    }

    /// Whether `token` is the join token.
    pub fn is_join_token(&self, token: &str) -> bool {
        ct_eq(token.as_bytes(), self.join_token.as_bytes())
    }

    fn stored(&self, node: &str) -> anyhow::Result<Option<StoredCredentials>> {
        let Some(raw) = self
            .store
            .kv_get(CREDENTIALS_TABLE, node)
            .with_context(|| format!("reading the credentials of node {node}"))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .with_context(|| format!("decoding the stored credentials of node {node}"))
    }

    fn node_exists(&self, node: &str) -> anyhow::Result<bool> {
        let nodes = by_plural("", "v1", "nodes").expect("nodes are registered");
        Ok(self.store.get(nodes, None, node)?.is_some())
    }

    /// Whether `password` is the one issued to `node` (the `Node` object
    /// need not exist: this is the CONNECT-level check).
    pub fn check_credentials(&self, node: &str, password: &str) -> anyhow::Result<bool> {
        Ok(self
            .stored(node)?
            .is_some_and(|s| ct_eq(password.as_bytes(), s.password.as_bytes())))
    }

    /// Checks a hello's `auth` for `node`, issuing credentials on a valid
    /// token join (see the module docs for the rules).
    pub async fn check_hello(
        &self,
        node: &str,
        session: &str,
        auth: &HelloAuth,
    ) -> anyhow::Result<HelloVerdict> {
        match auth {
            HelloAuth::JoinToken(t) if !self.is_join_token(t) => Ok(HelloVerdict::Refused(
                RefusalCode::InvalidToken,
                INVALID_TOKEN_REASON,
            )),
            HelloAuth::JoinToken(_) => match self.stored(node)? {
                Some(s) if ct_eq(s.session.as_bytes(), session.as_bytes()) => {
                    Ok(HelloVerdict::Accepted(Some(NodeCredentials {
                        username: node.to_string(),
                        password: s.password,
                    })))
                }
                Some(_) if self.node_exists(node)? => Ok(HelloVerdict::Refused(
                    RefusalCode::NameTaken,
                    NAME_TAKEN_REASON,
                )),
                _ => Ok(HelloVerdict::Accepted(Some(
                    self.issue(node, session).await?,
                ))),
            },
            HelloAuth::Credentials(c)
                if self.check_credentials(node, &c.password)? && self.node_exists(node)? =>
            {
                Ok(HelloVerdict::Accepted(None))
            }
            HelloAuth::Credentials(_) => Ok(HelloVerdict::Refused(
                RefusalCode::InvalidCredentials,
                INVALID_CREDENTIALS_REASON,
            )),
        }
    }

    /// Issues (replacing any previous) a random password for `node` and
    /// stores it durably before returning it.
    async fn issue(&self, node: &str, session: &str) -> anyhow::Result<NodeCredentials> {
        let password = token::random_hex(32)?;
        let value = serde_json::to_vec(&StoredCredentials {
            password: password.clone(),
            session: session.to_string(),
        })?;
        self.store
            .kv_write(vec![KvWrite {
                table: CREDENTIALS_TABLE,
                key: node.to_string(),
                value: Some(value),
            }])
            .await
            .with_context(|| format!("storing the credentials of node {node}"))?;
        Ok(NodeCredentials {
            username: node.to_string(),
            password,
        })
    }

    /// Forgets a node's credentials (node deleted).
    pub async fn revoke(&self, node: &str) -> anyhow::Result<()> {
        self.store
            .kv_write(vec![KvWrite {
                table: CREDENTIALS_TABLE,
                key: node.to_string(),
                value: None,
            }])
            .await
            .with_context(|| format!("removing the credentials of node {node}"))
    }

    /// The embedded broker's CONNECT check: the hub's own client, or a node
    /// whose client id equals its username (a valid node name) and whose
    /// password is the join token or its issued password.
    pub fn check_connect(&self, client_id: &str, user: &str, pass: &str) -> Result<(), Refusal> {
        if client_id == HUB_USERNAME || user == HUB_USERNAME {
            return if client_id == HUB_USERNAME
                && user == HUB_USERNAME
                && ct_eq(pass.as_bytes(), self.hub_password.as_bytes())
            {
                Ok(())
            } else {
                Err(Refusal(format!(
                    "{HUB_USERNAME:?} is the hub's own client and the password is wrong"
                )))
            };
        }
        if client_id != user {
            return Err(Refusal(format!(
                "client id {client_id:?} must equal the username {user:?} (the node name)"
            )));
        }
        check_node(user).map_err(|why| Refusal(format!("username is not a node name: {why}")))?;
        if self.is_join_token(pass) {
            return Ok(());
        }
        match self.check_credentials(user, pass) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Refusal(
                "the password is neither the join token (DATA_DIR/node-token on the hub) nor \
                 the node's issued credentials"
                    .into(),
            )),
            Err(e) => Err(Refusal(format!("cannot check credentials: {e:#}"))),
        }
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[tokio::test]
    async fn connect_rules_and_issued_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let auth = NodeAuth::new(store.clone(), "join".into(), "hubpw".into());
        assert!(
            auth.check_connect("bramble-hub", "bramble-hub", "hubpw")
                .is_ok()
        );
        assert!(
            auth.check_connect("bramble-hub", "bramble-hub", "join")
                .is_err()
        );
        assert!(auth.check_connect("pi-1", "bramble-hub", "hubpw").is_err());
        assert!(auth.check_connect("pi-1", "pi-1", "join").is_ok());
        assert!(auth.check_connect("pi-1", "pi-2", "join").is_err());
        assert!(auth.check_connect("Pi_1", "Pi_1", "join").is_err());
        assert!(auth.check_connect("pi-1", "pi-1", "nope").is_err());

        let creds = auth.issue("pi-1", "s1").await.unwrap();
        assert_eq!(creds.username, "pi-1");
        assert!(auth.check_credentials("pi-1", &creds.password).unwrap());
        assert!(!auth.check_credentials("pi-2", &creds.password).unwrap());
        assert!(auth.check_connect("pi-1", "pi-1", &creds.password).is_ok());
        auth.revoke("pi-1").await.unwrap();
        assert!(!auth.check_credentials("pi-1", &creds.password).unwrap());
        store.shutdown().await;
    }

    #[tokio::test]
    async fn hello_rules() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let auth = NodeAuth::new(store.clone(), "join".into(), "hubpw".into());
        let token = |t: &str| HelloAuth::JoinToken(t.into());
        let creds = |p: &str| {
            HelloAuth::Credentials(NodeCredentials {
                username: "pi-1".into(),
                password: p.into(),
            })
        };
        let refused = |v| match v {
            HelloVerdict::Refused(code, _) => code,
            HelloVerdict::Accepted(_) => panic!("accepted"),
        };
        let issued = |v| match v {
            HelloVerdict::Accepted(Some(c)) => c,
            other => panic!("{other:?}"),
        };
        let v = auth.check_hello("pi-1", "s1", &token("bad")).await.unwrap();
        assert_eq!(refused(v), RefusalCode::InvalidToken);
        let c1 = issued(
            auth.check_hello("pi-1", "s1", &token("join"))
                .await
                .unwrap(),
        );
        // Without a Node object the credentials are not (yet) valid and the
        // name is free; a repeated hello of the same session gets the same.
        let v = auth
            .check_hello("pi-1", "s2", &creds(&c1.password))
            .await
            .unwrap();
        assert_eq!(refused(v), RefusalCode::InvalidCredentials);
        let again = issued(
            auth.check_hello("pi-1", "s1", &token("join"))
                .await
                .unwrap(),
        );
        assert_eq!(again, c1);

        let nodes = by_plural("", "v1", "nodes").unwrap();
        let node = serde_json::json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "pi-1"}});
        store
            .create(nodes, bramble_api::admit(node).unwrap().object)
            .await
            .unwrap();
        let v = auth
            .check_hello("pi-1", "s2", &creds(&c1.password))
            .await
            .unwrap();
        assert_eq!(v, HelloVerdict::Accepted(None));
        let v = auth
            .check_hello("pi-1", "s2", &creds("wrong"))
            .await
            .unwrap();
        assert_eq!(refused(v), RefusalCode::InvalidCredentials);
        let v = auth
            .check_hello("pi-1", "s3", &token("join"))
            .await
            .unwrap();
        assert_eq!(refused(v), RefusalCode::NameTaken);
        let again = issued(
            auth.check_hello("pi-1", "s1", &token("join"))
                .await
                .unwrap(),
        );
        assert_eq!(again, c1, "the issuing session may repeat its hello");

        // Deleting the node frees the name and voids the credentials.
        store.delete(nodes, None, "pi-1", None).await.unwrap();
        let v = auth
            .check_hello("pi-1", "s4", &creds(&c1.password))
            .await
            .unwrap();
        assert_eq!(refused(v), RefusalCode::InvalidCredentials);
        let c2 = issued(
            auth.check_hello("pi-1", "s4", &token("join"))
                .await
                .unwrap(),
        );
        assert_ne!(c2.password, c1.password);
        store.shutdown().await;
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
