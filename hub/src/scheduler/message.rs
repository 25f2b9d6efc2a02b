//! Why a pod fits nowhere, in kube-scheduler's words:
//! `0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient memory.`
//!
//! Each node contributes the reasons of the first filter it failed; the
//! histogram entries `"<count> <reason>"` are sorted as plain strings, as
//! kube-scheduler's `FitError.Error` sorts them (so the order follows the
//! count's digits, then the reason). The reason strings are kube-scheduler's
//! plugin messages, plus `node(s) were not ready` (its former `NodeNotReady`
//! predicate) and Bramble's platform reason.

use std::collections::BTreeMap;
use std::fmt;

use super::filters::Failure;

/// Reason of a node whose `Ready` condition is not `True`.
pub const REASON_NOT_READY: &str = "node(s) were not ready";
/// Reason of a cordoned node.
pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// Reason of a node not matching `nodeSelector` or required node affinity.
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// Reason of a node where a requested host port is taken.
pub const REASON_HOST_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// Reason of a node with all pod slots taken.
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";
/// Reason of a node with too little free cpu.
pub const REASON_INSUFFICIENT_CPU: &str = "Insufficient cpu";
/// Reason of a node with too little free memory.
pub const REASON_INSUFFICIENT_MEMORY: &str = "Insufficient memory";
/// Message when the cluster has no nodes at all.
pub const NO_NODES: &str = "no nodes available to schedule pods";

/// Reason of a node with an untolerated taint.
pub fn reason_taint(key: &str, value: &str) -> String {
    format!("node(s) had untolerated taint {{{key}: {value}}}")
}

/// Reason of a node whose platform none of an image's builds runs on;
/// `platforms` is what the images have in common (`linux/arm64 only`).
pub fn reason_platform(platforms: &str) -> String {
    format!("node(s) didn't match the platforms of the pod's images ({platforms})")
}

/// The pod fits on no node; `Display` is the message for the pod's
/// `PodScheduled` condition and event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    /// Nodes considered.
    pub nodes: usize,
    /// `(reason, nodes)` in message order.
    pub reasons: Vec<(String, usize)>,
    /// Why no node was looked at (kube-scheduler's PreFilter failures:
    /// `persistentvolumeclaim "data" not found`).
    pub blocked: Option<String>,
    /// Sentences after the counts (a volume's node is gone).
    pub notes: Vec<String>,
}

impl fmt::Display for Unschedulable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nodes == 0 {
            f.write_str(NO_NODES)?;
        } else {
            write!(f, "0/{} nodes are available:", self.nodes)?;
            if let Some(why) = &self.blocked {
                write!(f, " {why}.")?;
            }
            for (i, (reason, n)) in self.reasons.iter().enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                write!(f, "{sep}{n} {reason}")?;
            }
            if !self.reasons.is_empty() {
                f.write_str(".")?;
            }
        }
        for note in &self.notes {
            write!(f, " {note}.")?;
        }
        Ok(())
    }
}

impl std::error::Error for Unschedulable {}

/// Counts the failures of one decision (no allocation per failing node).
#[derive(Debug, Default)]
pub(crate) struct Diagnosis<'n> {
    not_ready: usize,
    unschedulable: usize,
    affinity: usize,
    platform: usize,
    ports: usize,
    pods: usize,
    cpu: usize,
    memory: usize,
    volumes: usize,
    taints: BTreeMap<(&'n str, &'n str), usize>,
}

impl<'n> Diagnosis<'n> {
    pub fn record(&mut self, failure: Failure<'n>) {
        match failure {
            Failure::NotReady => self.not_ready += 1,
            Failure::Unschedulable => self.unschedulable += 1,
            Failure::Taint(t) => {
                *self
                    .taints
                    .entry((t.key.as_str(), t.value.as_deref().unwrap_or("")))
                    .or_insert(0) += 1;
            }
            Failure::NodeAffinity => self.affinity += 1,
            Failure::VolumeAffinity => self.volumes += 1,
            Failure::Platform => self.platform += 1,
            Failure::HostPorts => self.ports += 1,
            Failure::Resources(s) => {
                self.pods += usize::from(s.pods);
                self.cpu += usize::from(s.cpu);
                self.memory += usize::from(s.memory);
            }
        }
    }

    /// The result for `nodes` nodes; `platforms` describes the pod's images
    /// (only used when some node failed on platform).
    pub fn finish(self, nodes: usize, platforms: impl FnOnce() -> String) -> Unschedulable {
        let mut reasons: Vec<(String, usize)> = [
            (REASON_NOT_READY, self.not_ready),
            (REASON_UNSCHEDULABLE, self.unschedulable),
            (REASON_NODE_AFFINITY, self.affinity),
            (super::volumes::REASON_VOLUME_NODE_AFFINITY, self.volumes),
            (REASON_HOST_PORTS, self.ports),
            (REASON_TOO_MANY_PODS, self.pods),
            (REASON_INSUFFICIENT_CPU, self.cpu),
            (REASON_INSUFFICIENT_MEMORY, self.memory),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.to_string(), n))
        .collect();
        if self.platform > 0 {
            reasons.push((reason_platform(&platforms()), self.platform));
        }
        reasons.extend(
            self.taints
                .into_iter()
                .map(|((k, v), n)| (reason_taint(k, v), n)),
        );
        reasons.sort_by_cached_key(|(r, n)| format!("{n} {r}"));
        Unschedulable {
            nodes,
            reasons,
            blocked: None,
            notes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::filters::Shortage;
    use bramble_api::objects::node::Taint;

    #[test]
    fn message_counts_and_sorts_like_kube_scheduler() {
        let taint = Taint {
            key: "dedicated".into(),
            value: Some("sensors".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        };
        let cp = Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            value: None,
            effect: "NoSchedule".into(),
            time_added: None,
        };
        let mut d = Diagnosis::default();
        for f in [
            Failure::Resources(Shortage {
                memory: true,
                ..Shortage::default()
            }),
            Failure::Resources(Shortage {
                cpu: true,
                memory: true,
                pods: false,
            }),
            Failure::NodeAffinity,
            Failure::Taint(&taint),
            Failure::Taint(&cp),
            Failure::Platform,
            Failure::NotReady,
            Failure::Unschedulable,
            Failure::HostPorts,
        ] {
            d.record(f);
        }
        let u = d.finish(12, || "linux/arm64 only".into());
        assert_eq!(
            u.to_string(),
            "0/12 nodes are available: \
             1 Insufficient cpu, \
             1 node(s) didn't have free ports for the requested pod ports, \
             1 node(s) didn't match Pod's node affinity/selector, \
             1 node(s) didn't match the platforms of the pod's images (linux/arm64 only), \
             1 node(s) had untolerated taint {dedicated: sensors}, \
             1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
             1 node(s) were not ready, \
             1 node(s) were unschedulable, \
             2 Insufficient memory."
        );
    }

    #[test]
    fn counts_sort_as_strings_and_empty_cluster_has_its_own_message() {
        let mut d = Diagnosis::default();
        for _ in 0..10 {
            d.record(Failure::NodeAffinity);
        }
        for _ in 0..2 {
            d.record(Failure::NotReady);
        }
        // "10 ..." sorts before "2 ..." as strings, as in kube-scheduler.
        assert_eq!(
            d.finish(12, String::new).to_string(),
            "0/12 nodes are available: 10 node(s) didn't match Pod's node affinity/selector, 2 node(s) were not ready."
        );
        assert_eq!(
            Diagnosis::default().finish(0, String::new).to_string(),
            "no nodes available to schedule pods"
        );
    }
}
