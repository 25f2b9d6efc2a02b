//! The hub's side of the protocol for messages from agents: every publication
//! on a hub subscription goes through [`Ingest::handle`], which decodes it
//! (`decode_from_agent`), refuses garbage with a warning, and applies it to
//! the store and the [`Fleet`]. Messages are handled one at a time, in
//! arrival order, so a node's `status` sequence stays ordered.

mod hello;
pub mod node_object;
mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bramble_api::protocol::hello::Refused;
use bramble_api::protocol::{
    AgentMessage, HelloAck, Message, Online, ProtocolError, RefusalCode, RpcResponse, Topic,
    TopicKind, decode_from_agent, encode,
};
use tokio::sync::broadcast;

use crate::fleet::{Fleet, Outgoing};
use crate::network::NetworkSettings;
use crate::node_auth::NodeAuth;
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
    auth: NodeAuth,
    network: Arc<NetworkSettings>,
    rpc: broadcast::Sender<RpcEvent>,
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
        auth: NodeAuth,
        network: Arc<NetworkSettings>,
    ) -> Ingest {
        Ingest {
            store,
            fleet,
            auth,
            network,
            rpc: broadcast::channel(RPC_CAPACITY).0,
        }
    }

    /// RPC response chunks (`rpc/resp/{id}`) from every node, for whoever
    /// waits on a request (logs, exec).
    pub fn rpc_responses(&self) -> broadcast::Receiver<RpcEvent> {
        self.rpc.subscribe()
    }

    /// Handles one publication. Never fails: anything invalid is logged
    /// with the topic and the reason and changes nothing.
    pub async fn handle(&self, topic: &str, payload: &[u8]) {
        let (t, msg) = match decode_from_agent(topic, payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(topic, size = payload.len(), reason = %e, "MQTT message refused");
                self.refuse_invalid_hello(topic, payload, &e).await;
                return;
            }
        };
        let node = t.node().to_string();
        match msg {
            AgentMessage::Hello(h) => self.on_hello(*h).await,
            AgentMessage::Status(s) => self.on_status(&node, s).await,
            AgentMessage::Online(o) => self.on_online(&node, o),
            AgentMessage::RpcResponse(response) => {
                // Nobody listening is fine: the request was cancelled or timed out.
                let _ = self.rpc.send(RpcEvent { node, response });
            }
        }
    }

    /// Answers a hello that is JSON of the right version and node but fails
    /// validation (`invalidHello`, with the reason), so the agent can tell
    /// its operator instead of repeating it forever. Anything less (not
    /// JSON, another node's name, no session) gets no answer.
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
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
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
            code: RefusalCode::InvalidHello,
            reason: e.to_string(),
        });
        self.send(node, &ack).await;
    }

    fn on_online(&self, node: &str, online: Online) {
        self.fleet.update(node, |live| {
            if online.online {
                live.online = true;
            } else if online.session.is_empty()
                || live.session.is_empty()
                || online.session == live.session
            {
                live.online = false;
            } else {
                tracing::debug!(
                    node,
                    session = online.session,
                    current = live.session,
                    "ignoring the last will of an older session"
                );
            }
        });
    }

    /// Queues a `helloAck` for `node`.
    async fn send(&self, node: &str, ack: &HelloAck) {
        let topic = match Topic::new(node, TopicKind::HelloAck) {
            Ok(t) => t.to_string(),
            Err(e) => {
                tracing::warn!(node, reason = %e, "cannot answer hello");
                return;
            }
        };
        let payload = match encode(ack) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(node, reason = %e, "cannot encode {}", HelloAck::TYPE);
                return;
            }
        };
        self.fleet
            .publish(Outgoing {
                topic,
                payload,
                retain: false,
            })
            .await;
    }
}
