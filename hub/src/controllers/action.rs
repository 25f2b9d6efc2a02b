//! What a plan asks the applier to do. Each variant is one store write; the
//! applier executes them in order and never decides anything itself.

use bramble_api::objects::common::Condition;
use bramble_api::objects::daemonset::DaemonSetStatus;
use bramble_api::objects::deployment::DeploymentStatus;
use bramble_api::objects::hpa::HpaStatus;
use bramble_api::objects::{Endpoints, Pod};

use super::revision::Revision;

/// A pod by namespace and name, with its uid when known (deletes and
/// evictions should be preconditioned on it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
}

impl PodRef {
    /// The reference of `pod`.
    pub fn of(pod: &Pod) -> PodRef {
        PodRef {
            namespace: pod.namespace().to_string(),
            name: pod.name().to_string(),
            uid: pod.metadata.uid.clone(),
        }
    }
}

/// One change for the applier.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create this pod (name, labels, owner reference and, for DaemonSets,
    /// `spec.nodeName` already set).
    CreatePod(Box<Pod>),
    /// Delete a pod (graceful: the agent stops it, then the object goes).
    DeletePod { pod: PodRef, reason: &'static str },
    /// Replace a Deployment's `status`.
    UpdateDeploymentStatus {
        namespace: String,
        name: String,
        status: Box<DeploymentStatus>,
    },
    /// Set the Deployment's `deployment.kubernetes.io/revision` annotation.
    SetDeploymentRevision {
        namespace: String,
        name: String,
        revision: i64,
    },
    /// Insert or replace the revision record with this owner and hash.
    SaveRevision(Box<Revision>),
    /// Drop a revision record that fell out of `revisionHistoryLimit`.
    DeleteRevision { owner_uid: String, hash: String },
    /// Replace a DaemonSet's `status`.
    UpdateDaemonSetStatus {
        namespace: String,
        name: String,
        status: Box<DaemonSetStatus>,
    },
    /// Replace the node's `Ready` condition.
    SetNodeReady { node: String, condition: Condition },
    /// Mark a pod of a lost node `Failed` with `reason`/`message`, so that its
    /// controller replaces it elsewhere; the node gets it fenced on return.
    EvictPod {
        pod: PodRef,
        node: String,
        reason: &'static str,
        message: String,
    },
    /// Set a Deployment's `spec.replicas` (the autoscaler).
    ScaleDeployment {
        namespace: String,
        name: String,
        replicas: i32,
    },
    /// Create or replace the Endpoints of a Service (subsets and labels).
    PutEndpoints(Box<Endpoints>),
    /// Delete Endpoints the hub made for a Service that is gone.
    DeleteEndpoints { namespace: String, name: String },
    /// Replace a HorizontalPodAutoscaler's `status`.
    UpdateHpaStatus {
        namespace: String,
        name: String,
        status: Box<HpaStatus>,
    },
    /// The node runs pods the store no longer has there (replaced while it
    /// was away): its desired set, republished with a new generation, must
    /// drop them.
    FencePods { node: String, pods: Vec<PodRef> },
}
