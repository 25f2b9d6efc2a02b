//! Who the hub believes, and how it proves itself: its own keys
//! ([`hub_key`]), the keys of the nodes it registered ([`nodes`]) and the
//! join tokens that admit new ones ([`tokens`]).
//!
//! - A node joins by saying `hello` signed with a key pair it made itself,
//!   with a proof of knowing a join token ([`Identity::check_hello`]); the
//!   hub registers the key (or holds it pending approval with
//!   `--approve-nodes`) and from then on believes only frames signed by it.
//!   No secret travels on a topic.
//! - The embedded broker asks [`Identity::check_connect`] at CONNECT and,
//!   as defence in depth, [`Identity::may_publish`] /
//!   [`Identity::may_subscribe`] per packet: a node only its own topics; a
//!   join-token login (client id `_join.<node>`, never a node's) only its
//!   `hello`. Logins are derived, never issued (`bramble_trust::login`).
//! - The registry lets a node pull with [`Identity::registry_login`].
//! - Deleting a node revokes its key at once ([`Identity::revoke`]): its
//!   frames, logins and pulls are refused, and its broker session dropped.

pub mod error;
pub mod hub_key;
pub mod nodes;
pub mod tokens;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bramble_api::protocol::hello::JOIN_PROOF_LABEL;
use bramble_api::protocol::topics::{self, check_node};
use bramble_api::protocol::{Hello, HelloAuth, KeysText, RefusalCode, Signer, keys_text};
use bramble_trust::login::{self, Service};
use bramble_trust::token::verify_proof;
use bramble_trust::{JoinToken, PublicKeys, SecretKeys};

pub use error::IdentityError;
use nodes::{NodeKeys, NodeRecord};
use tokens::{TokenRefusal, Tokens};

use crate::token::constant_time_eq as ct_eq;

/// MQTT client id and username of the hub's own client (reserved: no node
/// may be named so).
pub const HUB_USERNAME: &str = "bramble-hub";

/// The answer to a hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloVerdict {
    Accepted,
    /// Registered, waiting for `bramble nodes approve`.
    Pending,
    /// Refused with a code and what the operator should do.
    Refused(RefusalCode, String),
}

/// Why a CONNECT was refused (for the log; never contains a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Called with a node's name when it is revoked (the broker drops it).
pub type RevokeHook = Box<dyn Fn(&str) + Send + Sync>;

/// See the module docs. Shared as `Arc<Identity>`.
pub struct Identity {
    keys: SecretKeys,
    hub_password: String,
    nodes: NodeKeys,
    tokens: Tokens,
    approve_nodes: bool,
    on_revoke: Mutex<Vec<RevokeHook>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("hub", &self.keys.public().fingerprint().to_string())
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Identity {
    /// Loads (or creates) the hub's keys, the node keys and the tokens.
    /// `approve_nodes`: new nodes wait for `bramble nodes approve`.
    pub async fn open(
        data_dir: &Path,
        store: crate::store::Store,
        approve_nodes: bool,
    ) -> Result<Arc<Identity>, IdentityError> {
        let keys = hub_key::load_or_create(data_dir)?;
        let tokens = Tokens::open(store.clone(), data_dir, keys.public().fingerprint()).await?;
        let nodes = NodeKeys::load(store)?;
        let hub_password = bramble_trust::text::b64(&bramble_trust::text::random::<32>()?);
        Ok(Arc::new(Identity {
            keys,
            hub_password,
            nodes,
            tokens,
            approve_nodes,
            on_revoke: Mutex::new(Vec::new()),
        }))
    }

    /// The hub's private keys (signing what it publishes, opening what is
    /// sealed to it).
    pub fn hub_keys(&self) -> &SecretKeys {
        &self.keys
    }

    /// The hub's public keys as `helloAck` carries them.
    pub fn hub_keys_text(&self) -> KeysText {
        keys_text(self.keys.public())
    }

    /// The password of the hub's own MQTT client on the embedded broker
    /// (random per start).
    pub fn hub_password(&self) -> &str {
        &self.hub_password
    }

    /// The cluster's join token (`DATA_DIR/node-token`).
    pub fn join_token(&self) -> Option<JoinToken> {
        self.tokens.cluster_token()
    }

    /// The join tokens.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The node key registry.
    pub fn nodes(&self) -> &NodeKeys {
        &self.nodes
    }

    /// The key of an approved node.
    pub fn node_key(&self, node: &str) -> Option<PublicKeys> {
        self.nodes.key(node)
    }

    /// The session the node's last accepted hello opened (survives hub
    /// restarts: a status of any other session is not believed).
    pub fn node_session(&self, node: &str) -> Option<String> {
        self.nodes
            .get(node)
            .filter(|(r, _)| r.approved)
            .map(|(r, _)| r.session)
    }

    /// Registers `hook` to run when a node is revoked.
    pub fn on_revoke(&self, hook: RevokeHook) {
        self.on_revoke
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    /// Revokes `node`'s key (its Node was deleted): refused at once
    /// everywhere, its broker session dropped. Whether it was known.
    pub async fn revoke(&self, node: &str) -> Result<bool, IdentityError> {
        let known = self.nodes.remove(node).await?;
        if known {
            for hook in self
                .on_revoke
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
            {
                hook(node);
            }
            tracing::info!(node, "node key revoked");
        }
        Ok(known)
    }

    /// Approves a pending node; `Ok(false)` if there is no such node.
    pub async fn approve(&self, node: &str) -> Result<bool, IdentityError> {
        let Some((mut record, _)) = self.nodes.get(node) else {
            return Ok(false);
        };
        if !record.approved {
            record.approved = true;
            self.nodes.put(node, record).await?;
            tracing::info!(node, "node approved");
        }
        Ok(true)
    }

    /// Checks a hello whose frame `signer` signed, registering a new node
    /// (or its new incarnation) durably before answering.
    pub async fn check_hello(
        &self,
        hello: &Hello,
        signer: &Signer,
    ) -> Result<HelloVerdict, IdentityError> {
        let node = hello.node_name.as_str();
        let refuse = |code, reason: String| Ok(HelloVerdict::Refused(code, reason));
        if node == HUB_USERNAME {
            return refuse(
                RefusalCode::InvalidHello,
                format!("the node name {HUB_USERNAME} is reserved for the hub: rename the node"),
            );
        }
        let existing = self.nodes.get(node);
        match signer {
            Signer::Registered => {
                let Some((record, keys)) = existing else {
                    return refuse(RefusalCode::UnknownNode, unknown_node_reason());
                };
                if bramble_api::protocol::public_keys(&hello.keys)
                    .ok()
                    .as_ref()
                    != Some(&keys)
                {
                    return refuse(
                        RefusalCode::InvalidHello,
                        "the hello names other keys than the registered key that signed it".into(),
                    );
                }
                self.next_incarnation(node, record, hello).await
            }
            Signer::Claimed(keys) => {
                if let Some((record, registered)) = &existing
                    && *registered != **keys
                {
                    let why = if record.approved {
                        "registered"
                    } else {
                        "waiting for approval"
                    };
                    return refuse(
                        RefusalCode::NameTaken,
                        format!(
                            "another board's key is {why} as node {node}: give this board \
                             another name, or delete that node on the hub (bramble delete \
                             node {node}) to let this one join"
                        ),
                    );
                }
                if let Some((record, _)) = existing {
                    // The key the hub registered (the frame is signed by it):
                    // a pending node asking again, whose token may be used up
                    // by its own join by now.
                    return self.next_incarnation(node, record, hello).await;
                }
                let HelloAuth::JoinToken(proof) = &hello.auth else {
                    return refuse(RefusalCode::UnknownNode, unknown_node_reason());
                };
                let secret = match self.tokens.admitting(&proof.id) {
                    Ok(s) => s,
                    Err(e) => return refuse(RefusalCode::InvalidToken, e.to_string()),
                };
                let fields = hello.proof_fields();
                let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
                if !verify_proof(&secret, JOIN_PROOF_LABEL, &fields, &proof.proof) {
                    return refuse(
                        RefusalCode::InvalidToken,
                        TokenRefusal::BadProof(proof.id.clone()).to_string(),
                    );
                }
                self.tokens.consume(&proof.id).await?;
                let record = NodeRecord {
                    signing: hello.keys.signing.clone(),
                    encryption: hello.keys.encryption.clone(),
                    incarnation: hello.incarnation,
                    session: hello.session.clone(),
                    approved: !self.approve_nodes,
                    token_id: proof.id.clone(),
                    joined: now_rfc3339(),
                    architecture: hello.platform.architecture.clone(),
                    internal_ip: hello.internal_ip.clone(),
                };
                let approved = record.approved;
                self.nodes.put(node, record).await?;
                tracing::info!(node, fingerprint = %keys.fingerprint(), token = %proof.id, approved, "node key registered");
                Ok(if approved {
                    HelloVerdict::Accepted
                } else {
                    HelloVerdict::Pending
                })
            }
        }
    }

    /// Accepts a hello of a known key if its incarnation is not a replay,
    /// storing a new incarnation and session.
    async fn next_incarnation(
        &self,
        node: &str,
        mut record: NodeRecord,
        hello: &Hello,
    ) -> Result<HelloVerdict, IdentityError> {
        let same = hello.incarnation == record.incarnation && hello.session == record.session;
        if !same && hello.incarnation <= record.incarnation {
            return Ok(HelloVerdict::Refused(
                RefusalCode::Replay,
                format!(
                    "this hello's incarnation {} is not above the {} the hub registered: a \
                     replayed hello, or another board runs with this board's key (a copied SD \
                     card or data directory)",
                    hello.incarnation, record.incarnation
                ),
            ));
        }
        if !same {
            record.incarnation = hello.incarnation;
            record.session = hello.session.clone();
            record.internal_ip = hello.internal_ip.clone();
            self.nodes.put(node, record.clone()).await?;
        }
        Ok(if record.approved {
            HelloVerdict::Accepted
        } else {
            HelloVerdict::Pending
        })
    }

    /// The embedded broker's CONNECT check: the hub's own client; a node
    /// logging in with its key login (client id = username = node name); or
    /// a joining board with a join token's login (client id `_join.<node>`,
    /// which no node can have, so a join never takes over a node's session).
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
        if let Some(node) = login::joining_node(client_id) {
            check_node(node).map_err(|why| {
                Refusal(format!("the joining client id names no valid node: {why}"))
            })?;
            let id = login::join_token_id(user).ok_or_else(|| {
                Refusal(format!(
                    "a joining client's username must be {}<token id>",
                    login::JOIN_PREFIX
                ))
            })?;
            let secret = self
                .tokens
                .admitting(id)
                .map_err(|e| Refusal(e.to_string()))?;
            return if login::verify_join_password(&secret, pass) {
                Ok(())
            } else {
                Err(Refusal(TokenRefusal::BadProof(id.to_string()).to_string()))
            };
        }
        if client_id != user {
            return Err(Refusal(format!(
                "client id {client_id:?} must equal the username {user:?} (the node name)"
            )));
        }
        check_node(user).map_err(|why| Refusal(format!("username is not a node name: {why}")))?;
        match self.nodes.key(user) {
            Some(k) if login::verify_key_password(&self.keys, &k, Service::Mqtt, user, pass) => {
                Ok(())
            }
            Some(_) => Err(Refusal("not the node's key login".into())),
            None => Err(Refusal(
                "no registered node of this name (deleted?): the board must rejoin with a join \
                 token"
                    .into(),
            )),
        }
    }

    /// Whether the embedded broker lets `client_id` publish on `topic`.
    pub fn may_publish(&self, client_id: &str, topic: &str) -> bool {
        if client_id == HUB_USERNAME {
            return true;
        }
        if let Some(node) = login::joining_node(client_id) {
            return topics::Topic::parse(topic)
                .is_ok_and(|t| t.node() == node && t.kind() == &topics::TopicKind::Hello);
        }
        self.nodes.key(client_id).is_some() && topics::node_may_publish(client_id, topic)
    }

    /// Whether the embedded broker lets `client_id` subscribe to `filter`.
    pub fn may_subscribe(&self, client_id: &str, filter: &str) -> bool {
        if client_id == HUB_USERNAME {
            return true;
        }
        if let Some(node) = login::joining_node(client_id) {
            return topics::Topic::new(node, topics::TopicKind::HelloAck)
                .is_ok_and(|t| t.to_string() == filter);
        }
        self.nodes.key(client_id).is_some() && topics::node_may_subscribe(client_id, filter)
    }

    /// Whether `user`/`pass` is a registered node's registry login (reads
    /// only).
    pub fn registry_login(&self, user: &str, pass: &str) -> bool {
        self.nodes.key(user).is_some_and(|k| {
            login::verify_key_password(&self.keys, &k, Service::Registry, user, pass)
        })
    }
}

/// The embedded broker's topic ACL is the identity's: see
/// [`Identity::may_publish`] and [`Identity::may_subscribe`] (a node's client
/// id is its username: [`Identity::check_connect`] makes sure).
impl crate::broker::TopicAcl for Identity {
    fn may_publish(&self, client_id: &str, _username: Option<&str>, topic: &str) -> bool {
        Identity::may_publish(self, client_id, topic)
    }

    fn may_subscribe(&self, client_id: &str, _username: Option<&str>, filter: &str) -> bool {
        Identity::may_subscribe(self, client_id, filter)
    }
}

fn unknown_node_reason() -> String {
    "the hub has no registered key for this node (it was deleted, or the hub's data was \
     reset): rejoin with a join token (DATA_DIR/node-token on the hub)"
        .into()
}

#[cfg(test)]
mod tests;
