//! Requests to agents over MQTT (`nodes/{node}/rpc/req`) and their chunked
//! answers (`rpc/resp/{id}`): logs, exec, prepull. Agents dial out, so this
//! works for nodes behind NAT. Each call gets a random id and a channel; the
//! MQTT ingest hands every `rpcResponse` to [`Rpc::deliver`], which drops
//! duplicates (QoS 1 redelivery) and chunks of calls no one waits for.
//! Dropping an [`RpcStream`] before its end sends a `cancel`; an exec's
//! stdin goes out as `stdin` requests ([`RpcStream::send_stdin`]).
//!
//! Requests are signed by the hub and sealed to the node's key (an exec's
//! argv, a log query are nobody else's business), and carry the agent's
//! session and a number that grows per request, so the agent runs each
//! once and never a recorded one again. Responses come sealed to the hub.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bramble_api::protocol::rpc::CancelCall;
use bramble_api::protocol::rpc_stdin::StdinCall;
use bramble_api::protocol::{
    ProtocolError, RpcCall, RpcChunk, RpcId, RpcRequest, RpcResponse, Topic, TopicError, TopicKind,
    encode_frame,
};
use tokio::sync::mpsc;

use crate::fleet::{Fleet, Outgoing};
use crate::identity::Identity;

/// Why a request could not be sent to a node.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error(transparent)]
    Random(#[from] crate::token::NoRandomness),
    /// A fresh call id the protocol refuses (a bug: ids are random hex).
    #[error("a new RPC id is invalid: {0}")]
    Id(String),
    #[error("node {node} has not said hello since the hub started")]
    NoSession { node: String },
    #[error("node {node:?}: {source}")]
    Topic { node: String, source: TopicError },
    #[error("node {node} has no registered key (deleted, or pending approval)")]
    NoKey { node: String },
    #[error("sealing a request to node {node}: {source}")]
    Seal { node: String, source: ProtocolError },
}

/// A fresh random call id.
fn new_id() -> Result<RpcId, RpcError> {
    RpcId::new(&crate::token::random_hex(12)?).map_err(RpcError::Id)
}

/// Chunks buffered per call before the agent's answers wait for the reader.
const CHUNK_BUFFER: usize = 256;

struct Pending {
    tx: mpsc::Sender<RpcChunk>,
    next_seq: u64,
}

/// Calls in flight. See the module docs.
pub struct Rpc {
    pending: Mutex<HashMap<String, Pending>>,
    identity: Arc<Identity>,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.pending.lock().map(|p| p.len()).unwrap_or(0);
        f.debug_struct("Rpc").field("pending", &n).finish()
    }
}

/// How long a call waits for an agent that is switching from its join login
/// to its key login (a reconnect: well under a second).
const LOGIN_SWITCH_WAIT: Duration = Duration::from_secs(5);

/// Waits until `node`'s agent is no longer switching logins (or
/// [`LOGIN_SWITCH_WAIT`] passed): its clean session would drop a request
/// published while it reconnects.
async fn wait_for_login(fleet: &Fleet, node: &str) {
    let mut changes = fleet.changes();
    let deadline = tokio::time::Instant::now() + LOGIN_SWITCH_WAIT;
    while fleet.get(node).is_some_and(|l| l.switching_login) {
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            tracing::debug!(node, "the agent is still switching logins; sending anyway");
            return;
        }
    }
}

/// The answer to one call, chunk by chunk.
pub struct RpcStream {
    id: RpcId,
    node: String,
    rx: mpsc::Receiver<RpcChunk>,
    rpc: Arc<Rpc>,
    fleet: Arc<Fleet>,
    ended: bool,
}

/// The next request number of `node`'s current session, and the session;
/// `None` before the node said hello.
fn next_seq(fleet: &Fleet, node: &str) -> Option<(String, u64)> {
    fleet.update(node, |l| {
        if l.session.is_empty() {
            return None;
        }
        l.rpc_seq += 1;
        Some((l.session.clone(), l.rpc_seq))
    })
}

/// A request `call` for `node` with a fresh id and the session's next
/// number, signed and sealed to the node's key.
fn request(
    identity: &Identity,
    fleet: &Fleet,
    node: &str,
    call: RpcCall,
) -> Result<Outgoing, RpcError> {
    let id = new_id()?;
    let (session, seq) = next_seq(fleet, node).ok_or_else(|| RpcError::NoSession {
        node: node.to_string(),
    })?;
    let req = RpcRequest {
        id,
        session,
        seq,
        call,
    };
    let (topic, payload) = seal(identity, node, &req)?;
    Ok(Outgoing {
        topic: topic.to_string(),
        payload,
        retain: false,
    })
}

/// `req` for `node`, signed and sealed to the node's key.
fn seal(identity: &Identity, node: &str, req: &RpcRequest) -> Result<(Topic, Vec<u8>), RpcError> {
    let topic = Topic::new(node, TopicKind::RpcRequest).map_err(|source| RpcError::Topic {
        node: node.to_string(),
        source,
    })?;
    let key = identity.node_key(node).ok_or_else(|| RpcError::NoKey {
        node: node.to_string(),
    })?;
    let payload = encode_frame(identity.hub_keys(), &topic, req, Some(&key)).map_err(|source| {
        RpcError::Seal {
            node: node.to_string(),
            source,
        }
    })?;
    Ok((topic, payload))
}

impl Rpc {
    /// No calls yet; requests are signed and sealed with `identity`.
    pub fn new(identity: Arc<Identity>) -> Rpc {
        Rpc {
            pending: Mutex::new(HashMap::new()),
            identity,
        }
    }

    /// Sends `call` to `node`'s agent.
    pub async fn call(
        self: &Arc<Self>,
        fleet: &Arc<Fleet>,
        node: &str,
        call: RpcCall,
    ) -> Result<RpcStream, RpcError> {
        let id = new_id()?;
        wait_for_login(fleet, node).await;
        let (session, seq) = next_seq(fleet, node).ok_or_else(|| RpcError::NoSession {
            node: node.to_string(),
        })?;
        let req = RpcRequest {
            id: id.clone(),
            session,
            seq,
            call,
        };
        let (topic, payload) = seal(&self.identity, node, &req)?;
        let (tx, rx) = mpsc::channel(CHUNK_BUFFER);
        self.pending
            .lock()
            .unwrap()
            .insert(id.as_str().to_string(), Pending { tx, next_seq: 0 });
        fleet
            .publish(Outgoing {
                topic: topic.to_string(),
                payload,
                retain: false,
            })
            .await;
        Ok(RpcStream {
            id,
            node: node.to_string(),
            rx,
            rpc: self.clone(),
            fleet: fleet.clone(),
            ended: false,
        })
    }

    /// Routes one response chunk to its caller (in `seq` order; duplicates
    /// and unknown ids are dropped).
    pub fn deliver(&self, resp: RpcResponse) {
        let mut pending = self.pending.lock().unwrap();
        let Some(p) = pending.get_mut(resp.id.as_str()) else {
            tracing::debug!(id = %resp.id, "response chunk for no pending call; dropped");
            return;
        };
        if resp.seq != p.next_seq {
            tracing::debug!(id = %resp.id, seq = resp.seq, want = p.next_seq, "out-of-order or duplicate chunk dropped");
            return;
        }
        p.next_seq += 1;
        let end = matches!(resp.chunk, RpcChunk::End { .. });
        if p.tx.try_send(resp.chunk).is_err() {
            tracing::warn!(id = %resp.id, "caller is not reading; call dropped");
            pending.remove(resp.id.as_str());
            return;
        }
        if end {
            pending.remove(resp.id.as_str());
        }
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.lock().unwrap().len()
    }
}

impl RpcStream {
    /// The next chunk; `None` when the call ended (after its `End`) or
    /// was dropped.
    pub async fn next(&mut self) -> Option<RpcChunk> {
        let chunk = self.rx.recv().await;
        if matches!(chunk, None | Some(RpcChunk::End { .. })) {
            self.ended = true;
        }
        chunk
    }

    /// The node asked.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The call's id (what its `stdin` calls name).
    pub fn id(&self) -> &RpcId {
        &self.id
    }

    /// Sends `call`, bytes of this exec's stdin, as a request of its own
    /// (signed, sealed, numbered like every request).
    pub async fn send_stdin(&self, call: StdinCall) -> Result<(), RpcError> {
        let out = request(
            &self.rpc.identity,
            &self.fleet,
            &self.node,
            RpcCall::Stdin(call),
        )?;
        self.fleet.publish(out).await;
        Ok(())
    }
}

impl Drop for RpcStream {
    fn drop(&mut self) {
        self.rpc.pending.lock().unwrap().remove(self.id.as_str());
        if self.ended {
            return;
        }
        let cancel = RpcCall::Cancel(CancelCall {
            id: self.id.clone(),
        });
        match request(&self.rpc.identity, &self.fleet, &self.node, cancel) {
            Ok(out) => self.fleet.try_publish(out),
            Err(e) => tracing::debug!(node = %self.node, error = %e, "cancel not sent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::rpc::{LogsCall, PodRef};

    fn logs() -> RpcCall {
        RpcCall::Logs(LogsCall {
            pod: PodRef {
                namespace: "default".into(),
                name: "p".into(),
                uid: None,
            },
            ..Default::default()
        })
    }

    /// A store, the identity with `nodes` registered under one key, and
    /// the calls.
    struct Fixture {
        _dir: tempfile::TempDir,
        store: crate::store::Store,
        identity: Arc<Identity>,
        node: bramble_trust::SecretKeys,
        rpc: Arc<Rpc>,
    }

    async fn fixture(nodes: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("db"), Default::default()).unwrap();
        let identity = Identity::open(dir.path(), store.clone(), false)
            .await
            .unwrap();
        let node = bramble_trust::SecretKeys::generate().unwrap();
        for n in nodes {
            crate::testing::register_node(&identity, n, node.public(), "s1").await;
        }
        let rpc = Arc::new(Rpc::new(identity.clone()));
        Fixture {
            _dir: dir,
            store,
            identity,
            node,
            rpc,
        }
    }

    #[tokio::test]
    async fn a_call_waits_while_the_agent_switches_to_its_key_login() {
        let fx = fixture(&["pi-1", "pi-2"]).await;
        let (fleet, mut outbox) = Fleet::new();
        let fleet = Arc::new(fleet);
        let rpc = fx.rpc.clone();
        for n in ["pi-1", "pi-2"] {
            fleet.update(n, |l| l.session = "s1".into());
        }
        fleet.update("pi-1", |l| l.switching_login = true);
        let (f, r) = (fleet.clone(), rpc.clone());
        let call = tokio::spawn(async move { r.call(&f, "pi-1", logs()).await.map(|_| ()) });
        // Nothing is published while the agent reconnects...
        let early = tokio::time::timeout(Duration::from_millis(200), outbox.recv()).await;
        assert!(early.is_err(), "published during the switch");
        // ...and the request goes out once its new session said hello.
        fleet.update("pi-1", |l| l.switching_login = false);
        let out = outbox.recv().await.expect("published after the switch");
        assert_eq!(out.topic, "bramble/v2/nodes/pi-1/rpc/req");
        call.await.unwrap().unwrap();
        // A node that is not switching is called at once.
        rpc.call(&fleet, "pi-2", logs()).await.unwrap();
        assert!(outbox.try_recv().is_ok());
        fx.store.shutdown().await;
    }

    #[tokio::test]
    async fn requests_are_sealed_to_the_node_and_numbered_per_session() {
        let f = fixture(&["pi-1"]).await;
        let (identity, node, rpc) = (f.identity.clone(), &f.node, f.rpc.clone());
        let (fleet, mut outbox) = Fleet::new();
        let fleet = Arc::new(fleet);
        // No session yet (the node never said hello): refused.
        let e = rpc.call(&fleet, "pi-1", logs()).await.err().unwrap();
        assert!(matches!(e, RpcError::NoSession { .. }), "{e}");
        // The status reported seq 41 accepted: the hub continues above it.
        fleet.update("pi-1", |l| {
            l.session = "s1".into();
            l.rpc_seq = 41;
        });
        let _a = rpc.call(&fleet, "pi-1", logs()).await.unwrap();
        let _b = rpc.call(&fleet, "pi-1", logs()).await.unwrap();
        let mut seqs = vec![];
        for _ in 0..2 {
            let out = outbox.try_recv().unwrap();
            assert!(
                !out.payload.windows(8).any(|w| w == b"\"kind\":\"l"),
                "request in clear"
            );
            let got = bramble_api::protocol::decode_from_hub(
                "pi-1",
                &out.topic,
                &out.payload,
                bramble_api::protocol::HubKey::Pinned(identity.hub_keys().public()),
                node,
            )
            .unwrap();
            let bramble_api::protocol::HubMessage::RpcRequest(req) = got.message else {
                panic!("not a request")
            };
            assert_eq!(req.session, "s1");
            seqs.push(req.seq);
        }
        assert_eq!(seqs, [42, 43]);
        // A node without a registered key gets nothing.
        fleet.update("pi-9", |l| l.session = "s9".into());
        let e = rpc.call(&fleet, "pi-9", logs()).await.err().unwrap();
        assert!(
            matches!(&e, RpcError::NoKey { node } if node == "pi-9"),
            "{e}"
        );
        assert!(e.to_string().contains("no registered key"), "{e}");
        f.store.shutdown().await;
    }
}
