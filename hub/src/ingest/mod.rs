//! The hub's side of the protocol for messages from agents: every publication
//! on a hub subscription goes through [`Ingest::handle`], which verifies and
//! decodes it (`decode_from_agent`: signed by the node's registered key, or a
//! first hello by the key it carries), refuses anything else with a warning,
//! and applies it to the store and the [`Fleet`]. Messages are handled one at
//! a time, in arrival order, so a node's `status` sequence stays ordered.

mod hello;
pub mod node_object;
mod pod_ips;
mod quiet;
mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bramble_api::protocol::hello::Refused;
use bramble_api::protocol::{
    AgentMessage, HelloAck, Message, Online, ProtocolError, RefusalCode, RpcResponse, Topic,
    TopicKind, decode_from_agent, encode_frame,
};
use tokio::sync::broadcast;

use crate::events::Recorder;
use crate::fleet::{Fleet, Outgoing};
use crate::identity::Identity;
use crate::network::NetworkSettings;
use crate::store::Store;

pub use hello::HEARTBEAT_MILLIS;

/// Capacity of the RPC response broadcast (slow receivers lose chunks and
/// see `RecvError::Lagged`).
const RPC_CAPACITY: usize = 1024;

/// One RPC response chunk and the node that sent it.
#[derive(Debug, Clone)]
pub struct RpcEvent {
    pub node: String,
    pub response: RpcResponse,
}

/// Applies agent messages. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    store: Store,
    fleet: Arc<Fleet>,
    identity: Arc<Identity>,
    network: Arc<NetworkSettings>,
    rpc: broadcast::Sender<RpcEvent>,
    quiet: Arc<quiet::Quiet>,
    events: Recorder,
    /// Where build reports go (hubs that run builds).
    builds: Option<Arc<crate::build::Builds>>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

impl Ingest {
    /// An ingest writing to `store` and `fleet`.
    pub fn new(
        store: Store,
        fleet: Arc<Fleet>,
        identity: Arc<Identity>,
        network: Arc<NetworkSettings>,
    ) -> Ingest {
        Ingest {
            store,
            fleet,
            identity,
            network,
            rpc: broadcast::channel(RPC_CAPACITY).0,
            quiet: Arc::default(),
            events: Recorder::disabled(),
            builds: None,
        }
    }

    /// Hands the nodes' build reports to the build controller.
    pub fn with_builds(mut self, builds: Arc<crate::build::Builds>) -> Ingest {
        self.builds = Some(builds);
        self
    }

    /// Records the kubelet's pod events derived from reported statuses.
    pub fn with_events(mut self, events: Recorder) -> Ingest {
        self.events = events;
        self
    }

    /// RPC response chunks (`rpc/resp/{id}`) from every node, for whoever
    /// waits on a request (logs, exec).
    pub fn rpc_responses(&self) -> broadcast::Receiver<RpcEvent> {
        self.rpc.subscribe()
    }

    /// Handles one publication. Never fails: anything invalid is logged
    /// with the topic and the reason and changes nothing.
    pub async fn handle(&self, topic: &str, payload: &[u8]) {
        let id = &self.identity;
        let got = match decode_from_agent(topic, payload, id.hub_keys(), |n| id.node_key(n)) {
            Ok(m) => m,
            Err(e) => {
                // One warning a minute per node and kind of refusal: a
                // revoked board or a forger publishing every second must
                // not fill the log.
                let node = Topic::parse(topic)
                    .map(|t| t.node().to_string())
                    .unwrap_or_default();
                let key = format!("{node} {:?}", std::mem::discriminant(&e));
                match self.quiet.warn(&key, std::time::Instant::now()) {
                    Some(quieted) => {
                        tracing::warn!(topic, size = payload.len(), reason = %e, quieted, "MQTT message refused")
                    }
                    None => {
                        tracing::debug!(topic, size = payload.len(), reason = %e, "MQTT message refused")
                    }
                }
                self.refuse_invalid_hello(topic, payload, &e).await;
                return;
            }
        };
        let node = got.topic.node().to_string();
        match got.message {
            AgentMessage::Hello(h) => self.on_hello(*h, got.signer).await,
            AgentMessage::Status(s) => self.on_status(&node, s).await,
            AgentMessage::Online(o) => self.on_online(&node, o),
            AgentMessage::RpcResponse(response) => {
                // Nobody listening is fine: the request was cancelled or timed out.
                let _ = self.rpc.send(RpcEvent { node, response });
            }
        }
    }

    /// Answers a hello that is a frame of the right version and node but
    /// fails validation (`invalidHello`, with the reason), so the agent can
    /// tell its operator instead of repeating it forever. Anything less (not
    /// a frame, another node's name, no session) gets no answer. The answer
    /// is signed by the hub and says nothing secret.
    async fn refuse_invalid_hello(&self, topic: &str, payload: &[u8], e: &ProtocolError) {
        if !matches!(
            e,
            ProtocolError::Invalid { .. } | ProtocolError::Body { .. }
        ) {
            return;
        }
        let Ok(t) = Topic::parse(topic) else { return };
        if t.kind() != &TopicKind::Hello {
            return;
        }
        let Some(body) = bramble_trust::Frame::parse(payload)
            .ok()
            .and_then(|f| f.unverified_body())
        else {
            return;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return;
        };
        let body = &v["body"];
        let (Some(node), Some(session)) = (body["nodeName"].as_str(), body["session"].as_str())
        else {
            return;
        };
        if node != t.node() || session.is_empty() {
            return;
        }
        let ack = HelloAck::Refused(Refused {
            session: session.to_string(),
            hub: self.identity.hub_keys_text(),
            code: RefusalCode::InvalidHello,
            reason: e.to_string(),
        });
        self.send(node, &ack).await;
    }

    /// Applies a signed `online` of the node's current session: `true`
    /// opens connection N; a `false` (a last will) counts only for the
    /// newest connection, so a recorded will of an earlier connection,
    /// replayed later, changes nothing.
    fn on_online(&self, node: &str, online: Online) {
        let stored = self.identity.node_session(node);
        self.fleet.update(node, |live| {
            adopt_stored_session(node, live, stored);
            if live.session.is_empty() || online.session != live.session {
                tracing::debug!(
                    node,
                    session = online.session,
                    current = live.session,
                    "ignoring online of another session"
                );
                return;
            }
            if online.connection < live.connection {
                tracing::debug!(
                    node,
                    connection = online.connection,
                    current = live.connection,
                    "ignoring online of an earlier connection"
                );
                return;
            }
            live.connection = online.connection;
            live.online = online.online;
        });
    }

    /// The node's current session as the hub registered it.
    pub(crate) fn stored_session(&self, node: &str) -> Option<String> {
        self.identity.node_session(node)
    }

    /// Queues a `helloAck` for `node`.
    async fn send(&self, node: &str, ack: &HelloAck) {
        let topic = match Topic::new(node, TopicKind::HelloAck) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(node, reason = %e, "cannot answer hello");
                return;
            }
        };
        let payload = match encode_frame(self.identity.hub_keys(), &topic, ack, None) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(node, reason = %e, "cannot encode {}", HelloAck::TYPE);
                return;
            }
        };
        self.fleet
            .publish(Outgoing {
                topic: topic.to_string(),
                payload,
                retain: false,
            })
            .await;
    }
}

/// A hub that restarted knows no live sessions: it takes the session the
/// node's last accepted hello registered (durably), never one a message
/// merely claims, so a replayed message of an older session is not
/// believed.
pub(super) fn adopt_stored_session(
    node: &str,
    live: &mut crate::fleet::NodeLive,
    stored: Option<String>,
) {
    if live.session.is_empty()
        && let Some(s) = stored
    {
        tracing::info!(node, session = %s, "resuming the registered session of the node");
        live.session = s;
    }
}
