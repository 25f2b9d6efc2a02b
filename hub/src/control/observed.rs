//! What the control loop saw in its last round, to record the events no
//! single write shows: a bound pod disappearing (the kubelet's `Killing` of
//! each container). Pure: a snapshot in, occurrences out. (A Deployment's
//! `ScalingReplicaSet` is recorded by the applier as it scales a
//! ReplicaSet.)

use std::collections::HashMap;
use std::time::SystemTime;

use bramble_api::objects::Pod;

use super::snapshot::Snapshot;
use crate::controllers::pods::is_finished;
use crate::events::kubelet::killing;
use crate::events::{Involved, Occurrence, Source};

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
    /// Pod uid → the pod, for pods bound to a node and not finished.
    bound: HashMap<String, Bound>,
}

impl Observed {
    /// The events of what changed since the last call.
    pub fn observe(&mut self, snap: &Snapshot, now: SystemTime) -> Vec<Occurrence> {
        let mut out = Vec::new();
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(node: Option<&str>) -> Pod {
        let mut v = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "uid": "p1"},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        if let Some(n) = node {
            v["spec"]["nodeName"] = n.into();
        }
        serde_json::from_value(v).unwrap()
    }

    fn snapshot(pods: Vec<Pod>) -> Snapshot {
        Snapshot {
            pods,
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_bound_pod_that_goes_is_killed_and_a_pending_one_is_not() {
        let mut o = Observed::default();
        let now = SystemTime::UNIX_EPOCH;
        o.observe(&snapshot(vec![pod(None)]), now);
        assert!(o.observe(&snapshot(vec![]), now).is_empty(), "never bound");
        o.observe(&snapshot(vec![pod(Some("pi-1"))]), now);
        let e = o.observe(&snapshot(vec![]), now);
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
