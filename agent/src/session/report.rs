//! What the node loop knows and the session reports: observed generation,
//! the last refusal, every pod's status and usage. The node loop updates a
//! shared [`NodeReport`]; the session turns it into a complete `status`
//! ([`NodeReport::status`]) on every heartbeat and change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bramble_api::protocol::status::Rejection;
use bramble_api::protocol::{Generation, PodReport, Status, Usage};

/// The node's reportable state. Pods are keyed by their node-local id
/// (`namespace_name`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeReport {
    pub observed_generation: Option<Generation>,
    pub desired_rejected: Option<Rejection>,
    pub pods: BTreeMap<String, PodReport>,
    pub node_usage: Option<Usage>,
    /// When the usage was sampled.
    pub usage_at: Option<std::time::Instant>,
    /// Volumes of the applied set's `reclaim` whose directories are gone.
    pub reclaimed: Vec<String>,
    /// Bytes each volume holds, last measured.
    pub volume_usage: BTreeMap<String, u64>,
    /// Build jobs, by uid and platform.
    pub builds: BTreeMap<(String, String), bramble_api::protocol::BuildReport>,
}

impl NodeReport {
    /// The complete status for `session`, number `seq`, at `uptime_millis`.
    pub fn status(&self, session: &str, seq: u64, uptime_millis: u64) -> Status {
        Status {
            session: session.to_string(),
            seq,
            uptime_millis,
            observed_generation: self.observed_generation,
            desired_rejected: self.desired_rejected.clone(),
            pods: self.pods.values().cloned().collect(),
            node_usage: self.node_usage,
            usage_sampled_millis: self
                .usage_at
                .map(|t| uptime_millis.saturating_sub(t.elapsed().as_millis() as u64)),
            rpc_seq: None,
            reclaimed: self.reclaimed.clone(),
            volume_usage: self.volume_usage.clone(),
            builds: self.builds.values().cloned().collect(),
        }
    }
}

/// The report shared between the node loop (writer) and the session
/// (reader), with a change counter.
#[derive(Debug, Default)]
pub struct SharedReport {
    state: Mutex<(NodeReport, u64)>,
}

impl SharedReport {
    pub fn new() -> Arc<SharedReport> {
        Arc::new(SharedReport::default())
    }

    /// Changes the report; returns whether it changed (then the change
    /// counter grew).
    pub fn update(&self, f: impl FnOnce(&mut NodeReport)) -> bool {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let before = g.0.clone();
        f(&mut g.0);
        let changed = g.0 != before;
        if changed {
            g.1 += 1;
        }
        changed
    }

    /// The report and its change counter.
    pub fn snapshot(&self) -> (NodeReport, u64) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Whole-node usage from `/proc`: cumulative CPU time of all CPUs
/// (`/proc/stat`, user to steal, without idle and iowait) and memory in use
/// (`MemTotal - MemAvailable`).
pub fn node_usage() -> Option<Usage> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_node_usage(&stat, &meminfo, clock_ticks())
}

/// `USER_HZ`, the unit of `/proc/stat`: 100 on every Linux architecture
/// Bramble runs on.
fn clock_ticks() -> u64 {
    100
}

/// See [`node_usage`]; pure.
pub fn parse_node_usage(stat: &str, meminfo: &str, ticks_per_sec: u64) -> Option<Usage> {
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = f
        .iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i, 3 | 4) && *i < 8)
        .map(|(_, v)| v)
        .sum();
    let kb = |key: &str| -> Option<u64> {
        let l = meminfo.lines().find(|l| l.starts_with(key))?;
        l.split_whitespace().nth(1)?.parse().ok()
    };
    let used = kb("MemTotal:")?.saturating_sub(kb("MemAvailable:")?);
    Some(Usage {
        cpu_nanos: busy.saturating_mul(1_000_000_000 / ticks_per_sec.max(1)),
        memory_bytes: used * 1024,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::objects::pod_status::PodStatus;
    use bramble_api::protocol::{decode, encode};

    #[test]
    fn status_is_complete_and_valid() {
        let mut r = NodeReport {
            observed_generation: Some(Generation(3)),
            ..NodeReport::default()
        };
        for name in ["b", "a"] {
            r.pods.insert(
                format!("default_{name}"),
                PodReport {
                    namespace: "default".into(),
                    name: name.into(),
                    uid: format!("u-{name}"),
                    status: PodStatus {
                        phase: Some("Running".into()),
                        ..PodStatus::default()
                    },
                    usage: None,
                    pulls: Vec::new(),
                },
            );
        }
        let s = r.status("s1", 7, 1234);
        assert_eq!((s.seq, s.uptime_millis), (7, 1234));
        assert_eq!(s.observed_generation, Some(Generation(3)));
        assert_eq!(s.pods.len(), 2);
        assert_eq!(s.pods[0].name, "a");
        let back: Status = decode("pi-1", &encode(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn shared_report_counts_changes_only() {
        let shared = SharedReport::new();
        shared.update(|r| r.observed_generation = Some(Generation(1)));
        shared.update(|r| r.observed_generation = Some(Generation(1)));
        assert_eq!(shared.snapshot().1, 1);
    }

    #[test]
    fn node_usage_from_proc() {
        let stat = "cpu  100 0 50 1000 20 5 5 0 0 0\ncpu0 1 2 3\n";
        let meminfo = "MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 600 kB\n";
        let u = parse_node_usage(stat, meminfo, 100).unwrap();
        assert_eq!(u.cpu_nanos, 160 * 10_000_000);
        assert_eq!(u.memory_bytes, 400 * 1024);
        assert!(node_usage().is_some());
    }
}
