//! What the hub knows about its agents that is not in redb: MQTT sessions,
//! heartbeats, observed generations and what each agent last reported
//! running. Shared (in memory) between the MQTT ingest, the dispatcher and the
//! controllers; lost on a hub restart by design (agents re-hello and re-report
//! within a heartbeat).
//!
//! Outgoing MQTT messages go through [`Fleet::outbox`]: whoever owns the MQTT
//! client drains it, so the dispatcher and the ingest never touch the client.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use bramble_api::protocol::Generation;
use bramble_api::protocol::status::{PodUsage, Rejection, Usage};
use tokio::sync::{mpsc, watch};

use crate::controllers::{PodMetrics, PodRef};

/// One MQTT publication for the client task.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// Live facts about one node's agent.
#[derive(Debug, Clone, Default)]
pub struct NodeLive {
    /// The session of the accepted `hello` (empty before one).
    pub session: String,
    /// The retained online flag (false after the last will).
    pub online: bool,
    /// The newest connection of the session an `online` told of: a last
    /// will of an earlier one is ignored.
    pub connection: u64,
    /// The agent joined over a join-token login and reconnects with its key
    /// (a clean MQTT session: requests published meanwhile would be lost).
    pub switching_login: bool,
    /// The last `rpcRequest.seq` sent to (or reported accepted by) the
    /// current session; the next request gets a higher one.
    pub rpc_seq: u64,
    /// When the last `status` of the current session arrived.
    pub last_heartbeat: Option<SystemTime>,
    /// The newest `seq` seen in the current session (duplicates are dropped).
    pub last_seq: u64,
    /// The desired generation the agent reports applying.
    pub observed: Option<Generation>,
    /// The last refusal of a desired set the agent reported.
    pub rejected: Option<Rejection>,
    /// Pods the agent last reported (any phase).
    pub running: Vec<PodRef>,
    /// Volumes the agent last reported deleted (`status.reclaimed`).
    pub reclaimed: std::collections::BTreeSet<String>,
    /// Bytes each of its volumes holds (`status.volumeUsage`).
    pub volume_usage: BTreeMap<String, u64>,
    /// Usage per pod (`namespace/name`) from the last status that had it.
    pub pod_usage: BTreeMap<String, PodUsage>,
    /// Whole-node usage from the last status that had it.
    pub node_usage: Option<Usage>,
    /// CPU rate and memory per pod (`namespace/name`), from the last two
    /// usage samples (see [`NodeLive::sample_usage`]).
    pub pod_metrics: BTreeMap<String, PodMetrics>,
    /// The node's CPU rate and memory, from its last two usage samples.
    pub node_metrics: Option<PodMetrics>,
    /// The previous sample per pod: (agent uptime ms, cumulative CPU ns).
    cpu_samples: BTreeMap<String, (u64, u64)>,
    /// The node's previous sample.
    node_sample: Option<(u64, u64)>,
    /// Hash of each pod's last reported status (`namespace/name/uid`), so
    /// an unchanged report costs no store read.
    pub status_hashes: std::collections::HashMap<String, u64>,
}

/// The facts whose change must wake the control loop.
type Signature = (
    String,
    bool,
    bool,
    Option<Generation>,
    Option<Rejection>,
    Vec<PodRef>,
    std::collections::BTreeSet<String>,
);

impl NodeLive {
    fn signature(&self) -> Signature {
        (
            self.session.clone(),
            self.online,
            self.switching_login,
            self.observed,
            self.rejected.clone(),
            self.running.clone(),
            self.reclaimed.clone(),
        )
    }

    /// Records one usage sample of pod `key` taken at the agent's
    /// `uptime_millis`; with an earlier sample of the same session it
    /// yields a CPU rate (millicores) for the autoscaler.
    pub fn sample_usage(&mut self, key: &str, uptime_millis: u64, usage: &PodUsage) {
        // A status repeating the last sample adds nothing.
        if self
            .cpu_samples
            .get(key)
            .is_some_and(|(t, _)| *t == uptime_millis)
        {
            return;
        }
        let prev = self
            .cpu_samples
            .insert(key.to_string(), (uptime_millis, usage.cpu_nanos));
        let entry = self.pod_metrics.entry(key.to_string()).or_default();
        entry.memory_bytes = usage.memory_bytes;
        if let Some(r) = rate(prev, uptime_millis, usage.cpu_nanos) {
            entry.cpu_millis = r;
        }
    }

    /// Records one whole-node usage sample (see [`NodeLive::sample_usage`]).
    pub fn sample_node_usage(&mut self, uptime_millis: u64, usage: &Usage) {
        if self.node_sample.is_some_and(|(t, _)| t == uptime_millis) {
            return;
        }
        let prev = self.node_sample.replace((uptime_millis, usage.cpu_nanos));
        let m = self.node_metrics.get_or_insert_with(PodMetrics::default);
        m.memory_bytes = usage.memory_bytes;
        if let Some(rate) = rate(prev, uptime_millis, usage.cpu_nanos) {
            m.cpu_millis = rate;
        }
    }

    /// Forgets usage of pods no longer reported and samples of an old session.
    pub fn retain_usage(&mut self, keep: &std::collections::BTreeSet<String>) {
        self.pod_metrics.retain(|k, _| keep.contains(k));
        self.cpu_samples.retain(|k, _| keep.contains(k));
    }
}

/// Millicores between a previous `(uptime ms, cpu ns)` sample and now;
/// `None` without one, or when the counter went back (a new container).
fn rate(prev: Option<(u64, u64)>, uptime_millis: u64, cpu_nanos: u64) -> Option<u64> {
    let (t0, c0) = prev?;
    // ns of CPU per ms of wall time / 1000 = millicores.
    (uptime_millis > t0 && cpu_nanos >= c0).then(|| (cpu_nanos - c0) / (uptime_millis - t0) / 1000)
}

/// The hub's live view of its agents. See the module docs.
#[derive(Debug)]
pub struct Fleet {
    nodes: Mutex<BTreeMap<String, NodeLive>>,
    /// Bumped on every change of a node's live facts.
    changed: watch::Sender<u64>,
    /// Bumped each time the hub's MQTT client (re)connects: retained
    /// messages must be published again (a restarted broker lost them).
    connected: watch::Sender<u64>,
    outbox: mpsc::Sender<Outgoing>,
}

impl Fleet {
    /// A fleet and the receiving end of its outbox (for the MQTT client task).
    pub fn new() -> (Fleet, mpsc::Receiver<Outgoing>) {
        let (outbox, rx) = mpsc::channel(4096);
        let fleet = Fleet {
            nodes: Mutex::new(BTreeMap::new()),
            changed: watch::channel(0).0,
            connected: watch::channel(0).0,
            outbox,
        };
        (fleet, rx)
    }

    /// A copy of one node's facts.
    pub fn get(&self, node: &str) -> Option<NodeLive> {
        self.nodes.lock().unwrap().get(node).cloned()
    }

    /// A copy of every node's facts.
    pub fn snapshot(&self) -> BTreeMap<String, NodeLive> {
        self.nodes.lock().unwrap().clone()
    }

    /// Changes one node's facts (creating them). Watchers are woken only
    /// when something the controllers act on changed (session, online,
    /// observed generation, refusal, reported pods): a plain heartbeat
    /// wakes no one (the control loop's tick sees heartbeats age), so a
    /// thousand agents beating every second do not drive a thousand
    /// control rounds a second.
    pub fn update<R>(&self, node: &str, f: impl FnOnce(&mut NodeLive) -> R) -> R {
        let (r, changed) = {
            let mut nodes = self.nodes.lock().unwrap();
            let live = nodes.entry(node.to_string()).or_default();
            let before = live.signature();
            let r = f(live);
            (r, live.signature() != before)
        };
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
        r
    }

    /// Forgets a node (deleted from the store).
    pub fn remove(&self, node: &str) {
        self.nodes.lock().unwrap().remove(node);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Wakes on every change of live facts.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Called by the MQTT client task after each (re)connect.
    pub fn mark_connected(&self) {
        self.connected.send_modify(|n| *n += 1);
    }

    /// Wakes after each (re)connect of the hub's MQTT client.
    pub fn connections(&self) -> watch::Receiver<u64> {
        self.connected.subscribe()
    }

    /// Queues a publication without waiting (from `Drop` and other sync
    /// code); dropped with a warning when the outbox is full.
    pub fn try_publish(&self, msg: Outgoing) {
        if self.outbox.try_send(msg).is_err() {
            tracing::warn!("MQTT outbox full or closed; publication dropped");
        }
    }

    /// Queues a publication; waits when the client is far behind.
    pub async fn publish(&self, msg: Outgoing) {
        if self.outbox.send(msg).await.is_err() {
            tracing::warn!("MQTT client task gone; publication dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_alone_wake_no_one() {
        let (fleet, _outbox) = Fleet::new();
        let mut changes = fleet.changes();
        fleet.update("n1", |l| l.online = true);
        assert!(changes.has_changed().unwrap());
        changes.borrow_and_update();
        fleet.update("n1", |l| l.last_heartbeat = Some(SystemTime::now()));
        assert!(!changes.has_changed().unwrap());
        fleet.update("n1", |l| l.observed = Some(Generation(3)));
        assert!(changes.has_changed().unwrap());
    }

    #[test]
    fn cpu_rates_come_from_two_samples() {
        let mut live = NodeLive::default();
        let u = |cpu_nanos, memory_bytes| PodUsage {
            cpu_nanos,
            memory_bytes,
            containers: vec![],
        };
        live.sample_usage("default/a", 1_000, &u(0, 10));
        assert_eq!(live.pod_metrics["default/a"].cpu_millis, 0);
        assert_eq!(live.pod_metrics["default/a"].memory_bytes, 10);
        // 0.5 s of CPU in 2 s: 250 millicores.
        live.sample_usage("default/a", 3_000, &u(500_000_000, 20));
        assert_eq!(live.pod_metrics["default/a"].cpu_millis, 250);
        // The same sample repeated by a later status changes nothing.
        live.sample_usage("default/a", 3_000, &u(900_000_000, 20));
        assert_eq!(live.pod_metrics["default/a"].cpu_millis, 250);
        // A restarted counter (new container) gives no rate, keeps the old.
        live.sample_usage("default/a", 4_000, &u(1_000, 20));
        assert_eq!(live.pod_metrics["default/a"].cpu_millis, 250);
        live.retain_usage(&Default::default());
        assert!(live.pod_metrics.is_empty());
    }
}
