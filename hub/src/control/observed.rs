//! What the control loop saw in its last round, to record the events no
//! single write shows: a Deployment's replica count moving
//! (`ScalingReplicaSet`, as the deployment controller records it on its
//! ReplicaSet's scale), and a bound pod disappearing (the kubelet's
//! `Killing` of each container). Pure: a snapshot in, occurrences out.

use std::collections::HashMap;
use std::time::SystemTime;

use bramble_api::objects::{Deployment, Pod};

use super::snapshot::Snapshot;
use crate::controllers::naming::template_hash;
use crate::controllers::pods::is_finished;
use crate::events::kubelet::killing;
use crate::events::{EventType, Involved, Occurrence, Source};

/// A bound pod as last seen.
#[derive(Debug, Clone)]
struct Bound {
    involved: Involved,
    node: String,
    containers: Vec<String>,
}

/// The loop's memory between rounds.
#[derive(Debug, Default)]
pub struct Observed {
    /// Deployment uid → `spec.replicas`.
    replicas: HashMap<String, i32>,
    /// Pod uid → the pod, for pods bound to a node and not finished.
    bound: HashMap<String, Bound>,
    /// Whether a first round was seen (what existed at start is not news).
    primed: bool,
}

impl Observed {
    /// The events of what changed since the last call.
    pub fn observe(&mut self, snap: &Snapshot, now: SystemTime) -> Vec<Occurrence> {
        let mut out = Vec::new();
        let mut replicas = HashMap::with_capacity(snap.deployments.len());
        for d in &snap.deployments {
            let Some(uid) = d.metadata.uid.clone() else {
                continue;
            };
            let want = d.spec.replicas.unwrap_or(1);
            let before = match self.replicas.get(&uid) {
                Some(r) => Some(*r),
                None if self.primed => Some(0),
                None => None,
            };
            if let Some(before) = before.filter(|b| *b != want) {
                out.push(scaled(d, before, want, now));
            }
            replicas.insert(uid, want);
        }
        self.replicas = replicas;

        let mut bound = HashMap::with_capacity(snap.pods.len());
        for p in &snap.pods {
            if let Some(b) = bound_pod(p) {
                bound.insert(p.metadata.uid.clone().unwrap_or_default(), b);
            }
        }
        for (uid, gone) in &self.bound {
            if bound.contains_key(uid) {
                continue;
            }
            for e in killing(&gone.containers) {
                let container = e.container.as_deref().unwrap_or("");
                out.push(Occurrence {
                    involved: gone.involved.clone().container(container),
                    type_: e.type_,
                    reason: e.reason,
                    message: e.message,
                    source: Source {
                        component: "kubelet",
                        host: Some(gone.node.clone()),
                    },
                    at: now,
                });
            }
        }
        self.bound = bound;
        self.primed = true;
        out
    }
}

fn bound_pod(p: &Pod) -> Option<Bound> {
    let node = p.node_name().filter(|n| !n.is_empty())?;
    if is_finished(p) || p.metadata.uid.is_none() {
        return None;
    }
    Some(Bound {
        involved: Involved::pod(p),
        node: node.to_string(),
        containers: p.spec.containers.iter().map(|c| c.name.clone()).collect(),
    })
}

/// `Scaled up replica set web-5d8f7c9b4 from 1 to 3`: Bramble keeps no
/// ReplicaSets, so the name is the Deployment's and its template's hash.
fn scaled(d: &Deployment, from: i32, to: i32, now: SystemTime) -> Occurrence {
    let direction = if to > from { "up" } else { "down" };
    Occurrence {
        involved: Involved::typed("apps/v1", "Deployment", &d.metadata),
        type_: EventType::Normal,
        reason: "ScalingReplicaSet",
        message: format!(
            "Scaled {direction} replica set {}-{} from {from} to {to}",
            d.metadata.name,
            template_hash(&d.spec.template)
        ),
        source: Source::hub("deployment-controller"),
        at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i32) -> Deployment {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "d1"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
        }))
        .unwrap()
    }

    fn pod(node: Option<&str>) -> Pod {
        let mut v = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "uid": "p1"},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        if let Some(n) = node {
            v["spec"]["nodeName"] = n.into();
        }
        serde_json::from_value(v).unwrap()
    }

    fn snapshot(deployments: Vec<Deployment>, pods: Vec<Pod>) -> Snapshot {
        Snapshot {
            deployments,
            pods,
            ..Snapshot::default()
        }
    }

    #[test]
    fn scaling_is_recorded_when_the_count_moves_and_for_new_deployments() {
        let mut o = Observed::default();
        let now = SystemTime::UNIX_EPOCH;
        assert!(
            o.observe(&snapshot(vec![deployment(2)], vec![]), now)
                .is_empty(),
            "seen at start"
        );
        let e = o.observe(&snapshot(vec![deployment(5)], vec![]), now);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].reason, "ScalingReplicaSet");
        assert!(
            e[0].message.starts_with("Scaled up replica set web-"),
            "{}",
            e[0].message
        );
        assert!(e[0].message.ends_with(" from 2 to 5"));
        assert!(
            o.observe(&snapshot(vec![deployment(5)], vec![]), now)
                .is_empty()
        );
        let e = o.observe(&snapshot(vec![deployment(1)], vec![]), now);
        assert!(e[0].message.contains("Scaled down") && e[0].message.ends_with("from 5 to 1"));
        let mut fresh = Observed::default();
        fresh.observe(&snapshot(vec![], vec![]), now);
        let e = fresh.observe(&snapshot(vec![deployment(3)], vec![]), now);
        assert!(e[0].message.ends_with("from 0 to 3"), "a new deployment");
    }

    #[test]
    fn a_bound_pod_that_goes_is_killed_and_a_pending_one_is_not() {
        let mut o = Observed::default();
        let now = SystemTime::UNIX_EPOCH;
        o.observe(&snapshot(vec![], vec![pod(None)]), now);
        assert!(
            o.observe(&snapshot(vec![], vec![]), now).is_empty(),
            "never bound"
        );
        o.observe(&snapshot(vec![], vec![pod(Some("pi-1"))]), now);
        let e = o.observe(&snapshot(vec![], vec![]), now);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].reason, "Killing");
        assert_eq!(e[0].message, "Stopping container web");
        assert_eq!(e[0].source.host.as_deref(), Some("pi-1"));
        assert_eq!(
            e[0].involved.field_path.as_deref(),
            Some("spec.containers{web}")
        );
    }
}
