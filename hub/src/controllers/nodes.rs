//! Node lifecycle: Ready/NotReady from the agent's heartbeats and MQTT
//! online flag, eviction of a lost node's pods, and fencing when it returns.
//!
//! - A node whose agent is offline (last will) or has not sent a heartbeat for
//!   `heartbeat_grace` gets `Ready=Unknown` (`NodeStatusUnknown`), at once. A
//!   live agent turns it back to `Ready=True` — only from that reason, so a
//!   `Ready=False` the agent reports itself is left alone.
//! - A node not Ready for `eviction_timeout` (default 60 s, counted from the
//!   `Ready` condition's `lastTransitionTime`) has its pods marked `Failed`
//!   with reason `NodeLost`; their controllers then create replacements, which
//!   the scheduler places on Ready nodes. A pod tolerating the
//!   `node.kubernetes.io/unreachable` (agent gone) or `not-ready` (agent says
//!   not ready) `NoExecute` taint is kept, forever without
//!   `tolerationSeconds` (DaemonSet pods), else for that long.
//! - Fencing by generation: the store is the truth about what a node runs.
//!   When a live agent reports pods the store no longer has on it (evicted,
//!   deleted, rebound), [`Action::FencePods`] names them; the dispatcher
//!   republishes the node's desired set, which excludes them, with a new
//!   generation, and the agent stops them on applying it. A replaced pod
//!   therefore never runs twice once the node is back.

use std::time::{Duration, SystemTime};

use bramble_api::objects::common::{Condition, find_condition};
use bramble_api::objects::node::Taint;
use bramble_api::objects::{Node, Pod};

use super::action::{Action, PodRef};
use super::pods::{is_active, is_finished};
use super::time;

/// `Ready` reason the lifecycle sets on a node it lost contact with.
pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
/// `Ready` reason the lifecycle sets when contact is back.
pub const REASON_READY: &str = "AgentReady";
/// Reason of an evicted pod.
pub const REASON_NODE_LOST: &str = "NodeLost";
/// Taint key meaning "the agent is not reachable".
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Timings of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLifecycleConfig {
    /// A node without a heartbeat for this long is NotReady.
    pub heartbeat_grace: Duration,
    /// A node NotReady for this long loses its pods.
    pub eviction_timeout: Duration,
}

impl Default for NodeLifecycleConfig {
    /// 4 s of missed heartbeats (agents beat every second), 60 s to eviction.
    fn default() -> Self {
        NodeLifecycleConfig {
            heartbeat_grace: Duration::from_secs(4),
            eviction_timeout: Duration::from_secs(60),
        }
    }
}

/// What the hub knows about one node's agent, besides the `Node` object.
#[derive(Debug, Clone, Copy)]
pub struct NodeHealth<'a> {
    pub node: &'a Node,
    /// When the last heartbeat (or status report) arrived.
    pub last_heartbeat: Option<SystemTime>,
    /// The MQTT online flag (false after the last will).
    pub online: bool,
    /// Pods the agent last reported running.
    pub running: &'a [PodRef],
}

impl NodeHealth<'_> {
    fn alive(&self, cfg: &NodeLifecycleConfig, now: SystemTime) -> bool {
        self.online
            && self
                .last_heartbeat
                .is_some_and(|h| h + cfg.heartbeat_grace > now)
    }
}

/// Plans the lifecycle of every node against all pods.
pub fn plan_nodes(
    cfg: &NodeLifecycleConfig,
    nodes: &[NodeHealth<'_>],
    pods: &[Pod],
    now: SystemTime,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for h in nodes {
        let name = h.node.name();
        let ready = h
            .node
            .status
            .as_ref()
            .and_then(|s| find_condition(&s.conditions, "Ready"));
        let alive = h.alive(cfg, now);
        if alive {
            if ready.is_none_or(|c| c.reason.as_deref() == Some(REASON_UNKNOWN)) {
                let c = condition(
                    "True",
                    REASON_READY,
                    "bramble-agent is posting ready status.",
                    h,
                    now,
                );
                actions.push(Action::SetNodeReady {
                    node: name.into(),
                    condition: c,
                });
            }
            let drop = fence(name, h.running, pods);
            if !drop.is_empty() {
                actions.push(Action::FencePods {
                    node: name.into(),
                    pods: drop,
                });
            }
        } else if ready.is_none_or(|c| c.status != "Unknown") {
            let why = if h.online {
                "Agent stopped posting node status."
            } else {
                "Agent went offline (MQTT last will)."
            };
            let c = condition("Unknown", REASON_UNKNOWN, why, h, now);
            actions.push(Action::SetNodeReady {
                node: name.into(),
                condition: c,
            });
            // Evictions count from this transition: none yet.
            continue;
        }
        let Some(c) = ready.filter(|c| !c.is_true()) else {
            continue;
        };
        let since = time::parse(c.last_transition_time.as_deref()).or(h.last_heartbeat);
        let taint = Taint {
            key: if alive {
                crate::scheduler::TAINT_NOT_READY
            } else {
                TAINT_UNREACHABLE
            }
            .into(),
            effect: "NoExecute".into(),
            ..Taint::default()
        };
        for p in pods
            .iter()
            .filter(|p| p.node_name() == Some(name) && is_active(p))
        {
            let Some(after) = eviction_delay(p, &taint, cfg) else {
                continue;
            };
            if time::elapsed(since, after, now) {
                actions.push(Action::EvictPod {
                    pod: PodRef::of(p),
                    node: name.into(),
                    reason: REASON_NODE_LOST,
                    message: format!(
                        "Node {name} which was running pod {} is unresponsive",
                        p.name()
                    ),
                });
            }
        }
    }
    actions
}

/// How long after the node went NotReady `pod` is evicted; `None`: never.
fn eviction_delay(pod: &Pod, taint: &Taint, cfg: &NodeLifecycleConfig) -> Option<Duration> {
    match pod.spec.tolerations.iter().find(|t| t.tolerates(taint)) {
        None => Some(cfg.eviction_timeout),
        Some(t) => t
            .toleration_seconds
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0))),
    }
}

fn condition(
    status: &str,
    reason: &str,
    message: &str,
    h: &NodeHealth<'_>,
    now: SystemTime,
) -> Condition {
    Condition {
        type_: "Ready".into(),
        status: status.into(),
        last_heartbeat_time: h.last_heartbeat.map(time::format),
        last_transition_time: Some(time::format(now)),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..Condition::default()
    }
}

/// The pods `node` reports running that it must stop: those the store does
/// not hold as unfinished pods bound to `node` with the same uid.
pub fn fence(node: &str, running: &[PodRef], pods: &[Pod]) -> Vec<PodRef> {
    let mut drop: Vec<PodRef> = running
        .iter()
        .filter(|r| {
            !pods.iter().any(|p| {
                p.namespace() == r.namespace
                    && p.name() == r.name
                    && p.node_name() == Some(node)
                    && !is_finished(p)
                    && (r.uid.is_none() || p.metadata.uid == r.uid)
            })
        })
        .cloned()
        .collect();
    drop.sort();
    drop
}
