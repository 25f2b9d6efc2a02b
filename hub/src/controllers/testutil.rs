//! Fixtures for the controller tests: objects from JSON, a clock, and a tiny
//! in-memory applier that executes actions the way the hub's applier would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bramble_api::admit::Object;
use bramble_api::objects::common::Condition;
use bramble_api::objects::pod_status::PodStatus;
use bramble_api::objects::{DaemonSet, Deployment, Node, Pod, ReplicaSet};
use serde_json::{Value, json};

use super::action::{Action, Garbage};
use super::deployment::{DeploymentInput, plan_deployment};
use super::replicasets::REVISION_ANNOTATION;
use super::revision::Revision;
use super::time;

/// `secs` after a fixed epoch.
pub fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// A defaulted Deployment `web` (uid `web-uid`, generation 1) running `image`,
/// with `spec` merged over the base spec.
pub fn deployment(replicas: i32, image: &str, spec: Value) -> Deployment {
    let mut v = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "web-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}}
        }
    });
    merge(&mut v["spec"], spec);
    let mut d: Deployment = serde_json::from_value(v).unwrap();
    d.apply_defaults();
    d
}

/// A defaulted DaemonSet `logs` (uid `logs-uid`) running `image`, with
/// `spec` merged over the base spec.
pub fn daemonset(image: &str, spec: Value) -> DaemonSet {
    let mut v = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "logs", "namespace": "default", "uid": "logs-uid", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "logs"}},
            "template": {"metadata": {"labels": {"app": "logs"}},
                "spec": {"containers": [{"name": "logs", "image": image}]}}
        }
    });
    merge(&mut v["spec"], spec);
    let mut d: DaemonSet = serde_json::from_value(v).unwrap();
    d.apply_defaults();
    d
}

/// A Ready arm64 node with `labels`.
pub fn node(name: &str, labels: Value) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {
            "allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"architecture": "arm64", "operatingSystem": "linux"}
        }
    }))
    .unwrap()
}

pub fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// Marks `pod` Running and Ready since `at`.
pub fn make_ready(pod: &mut Pod, at: SystemTime) {
    pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(time::format(at)),
            ..Condition::default()
        }],
        ..PodStatus::default()
    });
}

/// The store as far as the controllers care, changed only through actions.
#[derive(Debug, Default)]
pub struct World {
    pub deployment: Deployment,
    pub daemonset: DaemonSet,
    pub pods: Vec<Pod>,
    pub replica_sets: Vec<ReplicaSet>,
    /// Revision records of an older hub.
    pub revisions: Vec<Revision>,
    pub nodes: Vec<Node>,
    /// Every action applied, in order.
    pub log: Vec<Action>,
}

impl World {
    /// The Deployment controller's plan for the world's Deployment.
    pub fn plan_deployment(&self, now: SystemTime) -> Vec<Action> {
        plan_deployment(DeploymentInput {
            deployment: &self.deployment,
            pods: &self.pods,
            replica_sets: &self.replica_sets,
            revisions: &self.revisions,
            refused: None,
            now,
        })
    }

    /// The world's ReplicaSet named `name`.
    pub fn replica_set(&self, name: &str) -> &ReplicaSet {
        self.replica_sets
            .iter()
            .find(|r| r.name() == name)
            .unwrap_or_else(|| panic!("no replica set {name}"))
    }

    /// Applies `actions` at `now`: creates get a uid and creation time,
    /// deletes remove the pod at once (termination is not simulated).
    pub fn apply(&mut self, actions: Vec<Action>, now: SystemTime) {
        for a in actions {
            match &a {
                Action::CreatePod(p) => {
                    let mut p = (**p).clone();
                    p.metadata.uid = Some(format!("uid-{}", p.metadata.name));
                    p.metadata.creation_timestamp = Some(time::format(now));
                    self.pods.push(p);
                }
                Action::DeletePod { pod, .. } => self.pods.retain(|p| p.name() != pod.name),
                Action::UpdateDeploymentStatus { status, .. } => {
                    self.deployment.status = Some((**status).clone());
                }
                Action::SetDeploymentRevision { revision, .. } => {
                    self.deployment
                        .metadata
                        .annotations
                        .insert(REVISION_ANNOTATION.into(), revision.to_string());
                }
                Action::CreateReplicaSet(r) => {
                    let mut r = (**r).clone();
                    assert!(
                        !self.replica_sets.iter().any(|x| x.name() == r.name()),
                        "{} exists",
                        r.name()
                    );
                    r.metadata.uid = Some(format!("uid-{}", r.metadata.name));
                    r.metadata.creation_timestamp = Some(time::format(now));
                    r.metadata.generation = Some(1);
                    self.replica_sets.push(r);
                }
                Action::UpdateReplicaSet(r) => {
                    let stored = self
                        .replica_sets
                        .iter_mut()
                        .find(|x| x.name() == r.name())
                        .expect("updated replica set exists");
                    let generation =
                        stored.metadata.generation.unwrap_or(1) + i64::from(stored.spec != r.spec);
                    stored.metadata = r.metadata.clone();
                    stored.metadata.generation = Some(generation);
                    stored.spec = r.spec.clone();
                }
                Action::UpdateReplicaSetStatus { name, status, .. } => {
                    if let Some(r) = self.replica_sets.iter_mut().find(|x| x.name() == name) {
                        r.status = Some((**status).clone());
                    }
                }
                Action::DeleteReplicaSet(r) | Action::CollectGarbage(Garbage::ReplicaSet(r)) => {
                    self.replica_sets.retain(|x| x.name() != r.name);
                }
                Action::CollectGarbage(Garbage::Pod(pod)) => {
                    self.pods.retain(|p| p.name() != pod.name);
                }
                Action::DeleteRevision { hash, .. } => self.revisions.retain(|x| x.hash != *hash),
                Action::EvictPod { pod, reason, .. } => {
                    if let Some(p) = self.pods.iter_mut().find(|p| p.name() == pod.name) {
                        let s = p.status.get_or_insert_with(Default::default);
                        s.phase = Some("Failed".into());
                        s.reason = Some((*reason).into());
                    }
                }
                Action::SetNodeReady { node, condition } => {
                    if let Some(n) = self.nodes.iter_mut().find(|n| n.name() == node) {
                        let s = n.status.get_or_insert_with(Default::default);
                        s.conditions.retain(|c| c.type_ != "Ready");
                        s.conditions.push(condition.clone());
                    }
                }
                Action::UpdateDaemonSetStatus { status, .. } => {
                    self.daemonset.status = Some((**status).clone());
                }
                Action::ScaleDeployment { replicas, .. } => {
                    self.deployment.spec.replicas = Some(*replicas);
                }
                Action::FencePods { .. }
                | Action::UpdateJobStatus { .. }
                | Action::DeleteJob { .. }
                | Action::CreateJob(_)
                | Action::UpdateCronJobStatus { .. }
                | Action::UpdateServiceStatus { .. }
                | Action::CollectGarbage(Garbage::Job(_))
                | Action::UpdateStatefulSetStatus { .. }
                | Action::CreateClaim(_)
                | Action::UpdateHpaStatus { .. }
                | Action::PutEndpoints(_)
                | Action::DeleteEndpoints { .. }
                | Action::CreateVolume(_)
                | Action::BindVolume { .. }
                | Action::BindClaim { .. }
                | Action::UpdateClaimStatus { .. }
                | Action::UpdateVolumeStatus { .. }
                | Action::DeleteVolume { .. } => {}
                Action::MarkFullyAvailable { name, .. } => {
                    if let Some(r) = self.replica_sets.iter_mut().find(|x| x.name() == name) {
                        r.metadata
                            .annotations
                            .insert(super::rollback::FULLY_AVAILABLE.into(), "true".into());
                    }
                }
                Action::RollBack { template, why, .. } => {
                    self.deployment.spec.template = (**template).clone();
                    self.deployment.metadata.generation =
                        Some(self.deployment.metadata.generation.unwrap_or(1) + 1);
                    self.deployment
                        .metadata
                        .annotations
                        .insert(super::rollback::ROLLED_BACK.into(), why.clone());
                }
            }
            self.log.push(a);
        }
    }

    /// Marks every pod that is not ready Ready since `at`.
    pub fn ready_all(&mut self, at: SystemTime) {
        for p in &mut self.pods {
            if !super::pods::is_ready(p) {
                make_ready(p, at);
            }
        }
    }

    /// Images of the pods, sorted.
    pub fn images(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .pods
            .iter()
            .map(|p| p.spec.containers[0].image.clone())
            .collect();
        v.sort();
        v
    }
}
