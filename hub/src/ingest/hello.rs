//! Handling `hello`: check it with the [`crate::identity::Identity`] (the
//! registered key, or a first join's token proof; replays refused), register
//! the `Node`, reset the node's live facts for a new session and answer with
//! a signed `helloAck` carrying the hub's public keys.

use std::time::SystemTime;

use bramble_api::AdmitError;
use bramble_api::protocol::hello::{Accepted, Pending, Refused};
use bramble_api::protocol::{Hello, HelloAck, HelloAuth, RefusalCode, Signer};
use bramble_api::resource::{ResourceInfo, by_plural};

use super::Ingest;
use super::node_object::{node_object, node_status};
use crate::identity::{HelloVerdict, IdentityError};
use crate::network::pod_cidr::PodCidrExhausted;
use crate::store::StoreError;

/// How often agents should send `status`.
pub const HEARTBEAT_MILLIS: u64 = 1000;

/// Why a hello got no answer (the agent repeats it), or, for
/// [`HelloError::PodCidr`], a refusal.
#[derive(Debug, thiserror::Error)]
enum HelloError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    PodCidr(#[from] PodCidrExhausted),
    #[error("admitting the Node object of {node}: {source}")]
    Admit { node: String, source: AdmitError },
    #[error("creating the Node object: {0}")]
    Create(#[source] StoreError),
    #[error("updating the Node object: {0}")]
    Update(#[source] StoreError),
    #[error("updating the Node status: {0}")]
    UpdateStatus(#[source] StoreError),
    #[error("the Node object of {node} changed concurrently too often")]
    Contended { node: String },
}

fn nodes() -> &'static ResourceInfo {
    by_plural("", "v1", "nodes").expect("nodes are registered")
}

impl Ingest {
    /// Answers one validated `hello` (its `nodeName` is the topic's node).
    pub(super) async fn on_hello(&self, hello: Hello, signer: Signer) {
        let node = hello.node_name.clone();
        let ack = match self.accept(&hello, &signer).await {
            Ok(ack) => ack,
            Err(e) => {
                // No answer: the agent repeats its hello and may hit a working store.
                tracing::error!(node, error = %e, "registering node failed");
                return;
            }
        };
        match &ack {
            HelloAck::Accepted(_) => tracing::info!(
                node,
                session = hello.session,
                incarnation = hello.incarnation,
                token_join = matches!(signer, Signer::Claimed(_)),
                arch = hello.platform.architecture,
                agent_version = hello.agent_version,
                "node registered"
            ),
            HelloAck::Pending(_) => tracing::warn!(
                node,
                session = hello.session,
                "node waits for approval: bramble nodes approve {node}"
            ),
            HelloAck::Refused(r) => tracing::warn!(
                node,
                session = hello.session,
                code = ?r.code,
                reason = r.reason,
                "hello refused"
            ),
        }
        self.send(&node, &ack).await;
    }

    async fn accept(&self, hello: &Hello, signer: &Signer) -> Result<HelloAck, HelloError> {
        let node = hello.node_name.as_str();
        let hub = self.identity.hub_keys_text();
        let refuse = |code, reason: String| {
            Ok(HelloAck::Refused(Refused {
                session: hello.session.clone(),
                hub: hub.clone(),
                code,
                reason,
            }))
        };
        match self.identity.check_hello(hello, signer).await? {
            HelloVerdict::Accepted => {}
            HelloVerdict::Pending => {
                return Ok(HelloAck::Pending(Pending {
                    session: hello.session.clone(),
                    hub,
                    reason: format!(
                        "the hub runs with --approve-nodes: approve this board (key {}) with \
                         `bramble nodes approve {node}`",
                        match signer {
                            Signer::Claimed(k) => k.fingerprint().to_string(),
                            Signer::Registered => "registered".into(),
                        }
                    ),
                }));
            }
            HelloVerdict::Refused(code, reason) => return refuse(code, reason),
        }
        let pod_cidr = match self.register(hello).await {
            Ok(c) => c,
            // Not fatal for the agent: it retries with back-off and joins
            // once the operator frees or widens the range.
            Err(HelloError::PodCidr(full)) => {
                return refuse(RefusalCode::InvalidHello, full.to_string());
            }
            Err(e) => return Err(e),
        };
        // A board that said hello over a join-token login reconnects with
        // its key next (a clean session: requests sent meanwhile are lost).
        let switching_login = matches!(hello.auth, HelloAuth::JoinToken(_));
        self.fleet.update(node, |live| {
            live.switching_login = switching_login;
            if live.session != hello.session {
                live.session = hello.session.clone();
                live.last_seq = 0;
                live.connection = 0;
                live.rpc_seq = 0;
                live.observed = None;
                live.rejected = None;
                live.running.clear();
                live.pod_usage.clear();
                live.node_usage = None;
            }
            live.online = true;
            live.last_heartbeat = Some(SystemTime::now());
        });
        Ok(HelloAck::Accepted(Accepted {
            session: hello.session.clone(),
            hub,
            pod_cidr,
            heartbeat_millis: Some(HEARTBEAT_MILLIS),
        }))
    }

    /// Creates or updates the `Node` object and its status (retrying on
    /// concurrent updates); returns the node's pod CIDR.
    async fn register(&self, hello: &Hello) -> Result<Option<String>, HelloError> {
        let node = hello.node_name.as_str();
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        for _ in 0..8 {
            let existing = self.store.get(nodes(), None, node)?;
            let mut object = node_object(existing.as_ref(), hello);
            let pod_cidr = match object["spec"]["podCIDR"].as_str() {
                Some(c) if !c.is_empty() => c.to_string(),
                _ => {
                    let c = self.allocate_pod_cidr(node)?;
                    object["spec"]["podCIDR"] = c.clone().into();
                    object["spec"]["podCIDRs"] = serde_json::json!([c]);
                    c
                }
            };
            let status = node_status(
                existing.as_ref().and_then(|n| n.get("status")),
                hello,
                Some(&pod_cidr),
                &now,
            );
            let admitted = bramble_api::admit(object)
                .map_err(|source| HelloError::Admit {
                    node: node.to_string(),
                    source,
                })?
                .object;
            let written = match existing {
                None => {
                    let mut obj = admitted;
                    obj["status"] = status.clone();
                    match self.store.create(nodes(), obj).await {
                        Ok(_) => return Ok(Some(pod_cidr)),
                        Err(StoreError::AlreadyExists { .. }) => continue,
                        Err(e) => return Err(HelloError::Create(e)),
                    }
                }
                Some(_) => self.store.update(nodes(), admitted).await,
            };
            let mut current = match written {
                Ok((obj, _)) => obj,
                Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(HelloError::Update(e)),
            };
            if current.get("status") == Some(&status) {
                return Ok(Some(pod_cidr));
            }
            current["status"] = status;
            match self.store.update_status(nodes(), current).await {
                Ok(_) => return Ok(Some(pod_cidr)),
                Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(HelloError::UpdateStatus(e)),
            }
        }
        Err(HelloError::Contended {
            node: node.to_string(),
        })
    }

    /// A pod CIDR no other node holds (hellos are handled one at a time, so
    /// two nodes never get the same).
    fn allocate_pod_cidr(&self, node: &str) -> Result<String, HelloError> {
        let all = self
            .store
            .list(nodes(), None, &bramble_api::Selector::default())?;
        let used = all
            .items
            .iter()
            .filter(|n| n["metadata"]["name"] != node)
            .flat_map(|n| {
                let one = n["spec"]["podCIDR"].as_str().into_iter();
                let many = n["spec"]["podCIDRs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str());
                one.chain(many)
                    .filter_map(|c| c.parse().ok())
                    .collect::<Vec<_>>()
            });
        let cidr = crate::network::pod_cidr::allocate(&self.network, used)?;
        tracing::info!(node, pod_cidr = %cidr, "pod CIDR allocated");
        Ok(cidr.to_string())
    }
}
