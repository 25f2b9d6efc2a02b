//! What a plan asks the applier to do. Each variant is one store write; the
//! applier executes them in order and never decides anything itself.

use bramble_api::objects::common::Condition;
use bramble_api::objects::common::ObjectReference;
use bramble_api::objects::cronjob::CronJobStatus;
use bramble_api::objects::daemonset::DaemonSetStatus;
use bramble_api::objects::deployment::DeploymentStatus;
use bramble_api::objects::hpa::HpaStatus;
use bramble_api::objects::job::JobStatus;
use bramble_api::objects::persistent_volume::PersistentVolumeStatus;
use bramble_api::objects::persistent_volume_claim::PersistentVolumeClaimStatus;
use bramble_api::objects::replicaset::ReplicaSetStatus;
use bramble_api::objects::service::ServiceStatus;
use bramble_api::objects::statefulset::StatefulSetStatus;
use bramble_api::objects::{
    Endpoints, Job, PersistentVolume, PersistentVolumeClaim, Pod, PodTemplateSpec, ReplicaSet,
};

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

/// An object whose every owner is gone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Garbage {
    Pod(PodRef),
    ReplicaSet(ObjectRef),
    Job(ObjectRef),
}

/// An event a controller reports with a write (on the object written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Note {
    pub fn normal(reason: &'static str, message: String) -> Note {
        Note {
            warning: false,
            reason,
            message,
        }
    }

    pub fn warning(reason: &'static str, message: String) -> Note {
        Note {
            warning: true,
            reason,
            message,
        }
    }
}

/// A namespaced object other than a pod, by name, with its uid when known
/// (a delete is preconditioned on it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
}

impl ObjectRef {
    /// The reference of an object with `meta`.
    pub fn of(meta: &bramble_api::meta::ObjectMeta) -> ObjectRef {
        ObjectRef {
            namespace: meta.namespace_or_default().to_string(),
            name: meta.name.clone(),
            uid: meta.uid.clone(),
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
    /// Create this ReplicaSet of a Deployment (its pods come in a later
    /// round, once it has a uid to be their owner).
    CreateReplicaSet(Box<ReplicaSet>),
    /// Replace a ReplicaSet's metadata and spec with these (scaled,
    /// renumbered, annotations copied); preconditioned on the
    /// `resourceVersion` it carries.
    UpdateReplicaSet(Box<ReplicaSet>),
    /// Replace a ReplicaSet's `status`.
    UpdateReplicaSetStatus {
        namespace: String,
        name: String,
        status: Box<ReplicaSetStatus>,
    },
    /// Delete an old ReplicaSet beyond `revisionHistoryLimit` (it has no pods).
    DeleteReplicaSet(ObjectRef),
    /// Drop a revision record of an older hub (its ReplicaSet exists now,
    /// or its Deployment is gone).
    DeleteRevision { owner_uid: String, hash: String },
    /// Delete an object whose owners are all gone (garbage collection).
    CollectGarbage(Garbage),
    /// Replace a DaemonSet's `status`.
    UpdateDaemonSetStatus {
        namespace: String,
        name: String,
        status: Box<DaemonSetStatus>,
    },
    /// Replace a StatefulSet's `status`.
    UpdateStatefulSetStatus {
        namespace: String,
        name: String,
        status: Box<StatefulSetStatus>,
    },
    /// Create this claim of a StatefulSet's pod (from a
    /// `volumeClaimTemplates` entry; kept when the pod or the set goes).
    /// One that exists already is left as it is.
    CreateClaim(Box<PersistentVolumeClaim>),
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
    /// Replace a Job's `status`, recording `note` on the Job.
    UpdateJobStatus {
        namespace: String,
        name: String,
        status: Box<JobStatus>,
        note: Option<Note>,
    },
    /// Delete a Job (its pods follow by garbage collection): past its
    /// `ttlSecondsAfterFinished`, beyond a CronJob's history, or replaced.
    DeleteJob {
        job: ObjectRef,
        reason: &'static str,
    },
    /// Create this Job of a CronJob (name, annotations and owner set; the
    /// applier gives it its uid and selector).
    CreateJob(Box<Job>),
    /// Replace a CronJob's `status`, recording `notes` on the CronJob.
    UpdateCronJobStatus {
        namespace: String,
        name: String,
        status: Box<CronJobStatus>,
        notes: Vec<Note>,
    },
    /// Replace a Service's `status` (its load balancer), recording `notes`
    /// on the Service.
    UpdateServiceStatus {
        namespace: String,
        name: String,
        status: Box<ServiceStatus>,
        notes: Vec<Note>,
    },
    /// The node runs pods the store no longer has there (replaced while it
    /// was away): its desired set, republished with a new generation, must
    /// drop them.
    FencePods { node: String, pods: Vec<PodRef> },
    /// Create this PersistentVolume (a provisioned one, reserved for its
    /// claim by `claimRef`).
    CreateVolume(Box<PersistentVolume>),
    /// Reserve a volume for a claim (`spec.claimRef`), if still free.
    BindVolume {
        name: String,
        claim: Box<ObjectReference>,
    },
    /// Bind a claim to its volume (`spec.volumeName`), if still unbound.
    BindClaim { claim: ObjectRef, volume: String },
    /// Replace a claim's `status`.
    UpdateClaimStatus {
        namespace: String,
        name: String,
        status: Box<PersistentVolumeClaimStatus>,
    },
    /// Replace a volume's `status`.
    UpdateVolumeStatus {
        name: String,
        status: Box<PersistentVolumeStatus>,
    },
    /// Delete a reclaimed volume (its node deleted the directory).
    DeleteVolume { name: String, uid: Option<String> },
    /// Mark a Deployment's ReplicaSet as having once completed its rollout
    /// (`bramble.dev/fully-available`).
    MarkFullyAvailable { namespace: String, name: String },
    /// Put an earlier revision's template back into a failed Deployment
    /// (`bramble.dev/rollback-on-failure`), recording `why`.
    RollBack {
        namespace: String,
        name: String,
        uid: Option<String>,
        template: Box<PodTemplateSpec>,
        why: String,
        to_revision: i64,
    },
}
