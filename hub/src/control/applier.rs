//! The one applier: executes the controllers' [`Action`]s as store writes,
//! in order. It decides nothing; a write that finds its object gone (deleted
//! meanwhile) is skipped — the next plan sees the new state. Writes the
//! controller manager reports are recorded as its events: `SuccessfulCreate`
//! and `SuccessfulDelete` on a pod's owner (its ReplicaSet, DaemonSet or
//! StatefulSet),
//! `ScalingReplicaSet` on a Deployment when one of its ReplicaSets is
//! scaled, `NodeReady` / `NodeNotReady`, a Job's and a CronJob's own
//! ([`Note`]s: `Completed`, `BackoffLimitExceeded`, `SawCompletedJob`...),
//! and `SuccessfulCreate` / `SuccessfulDelete` of a CronJob's Jobs.
//! Garbage collection records none. A failed action is told as a `Warning`
//! (`FailedCreate`, `FailedDelete`, `FailedUpdate`) and backs off alone.

use std::collections::BTreeSet;
use std::time::Instant;

use bramble_api::AdmitError;
use bramble_api::ObjectKey;
use bramble_api::objects::common::Condition;
use serde::Serialize;
use serde_json::Value;

use bramble_api::objects::Endpoints;

use super::backoff::Backoff;
use super::snapshot::{
    REVISIONS_TABLE, autoscalers, claims, cronjobs, daemonsets, deployments, endpoints, jobs,
    nodes, pods, replicasets, services, statefulsets, volumes,
};
use crate::claims::BIND_COMPLETED;
use crate::controllers::{Action, Garbage, Note, ObjectRef, PodRef};
use crate::events::{EventType, Involved, Recorder, Source};
use crate::store::{KvWrite, Store, StoreError, object as obj};

/// Fields of a created object the store owns.
const STORE_OWNED: [&str; 4] = ["uid", "resourceVersion", "generation", "creationTimestamp"];

/// Why one action could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The write failed; `NotFound` and `Conflict` mean the object is gone
    /// or changed since the plan read it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A controller planned an object that admission refuses (a bug).
    #[error("controller made an invalid {what}: {source}")]
    Invalid {
        what: &'static str,
        source: AdmitError,
    },
    /// A planned object or status did not serialize (a bug).
    #[error("encoding what the controller planned: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Why a batch stopped: the store is closing.
#[derive(Debug, thiserror::Error)]
#[error("applying {action}: {source}")]
pub struct ActionFailed {
    /// What the action was (`create pod default/web-1`).
    pub action: String,
    pub source: ApplyError,
}

/// Applies `actions` in order; returns how many wrote something. An action
/// that fails is logged, told as a `Warning` event on its object
/// ([`super::failed_action`]) and not tried again before its back-off
/// ([`Backoff`], by the action's description) while the others go on, so
/// one object the store refuses never holds up the rest. Only a closing
/// store stops the batch. Actions no longer planned lose their back-off.
pub async fn apply(
    store: &Store,
    actions: Vec<Action>,
    events: &Recorder,
    backoff: &mut Backoff,
    now: Instant,
) -> Result<usize, ActionFailed> {
    let planned: BTreeSet<String> = actions.iter().map(describe).collect();
    backoff.retain(&planned);
    let mut wrote = 0;
    for action in actions {
        let what = describe(&action);
        if backoff.waits(&what, now) {
            continue;
        }
        let about = (
            super::failed_action::involved(&action),
            super::failed_action::reason(&action),
        );
        match apply_one(store, action, events).await {
            Ok(true) => {
                wrote += 1;
                backoff.succeeded(&what);
            }
            Ok(false) => backoff.succeeded(&what),
            Err(e) if is_gone(&e) => tracing::debug!(%what, "object gone; action skipped"),
            Err(ApplyError::Store(StoreError::Closed)) => {
                return Err(ActionFailed {
                    action: what,
                    source: ApplyError::Store(StoreError::Closed),
                });
            }
            Err(e) => {
                let delay = backoff.failed(&what, now);
                tracing::warn!(action = %what, error = %e, retry_in = ?delay, "action failed; the others go on");
                if let (Some(on), reason) = about {
                    events.record(
                        on.clone(),
                        EventType::Warning,
                        reason,
                        format!("{what}: {e}"),
                        controller_of(&on),
                    );
                }
            }
        }
    }
    Ok(wrote)
}

/// The action's object was deleted or changed since the plan read it.
fn is_gone(e: &ApplyError) -> bool {
    matches!(
        e,
        ApplyError::Store(StoreError::NotFound { .. } | StoreError::Conflict { .. })
    )
}

fn describe(a: &Action) -> String {
    match a {
        Action::CreatePod(p) => format!("create pod {}/{}", p.namespace(), p.name()),
        Action::DeletePod { pod, reason } => {
            format!("delete pod {}/{} ({reason})", pod.namespace, pod.name)
        }
        Action::UpdateDeploymentStatus {
            namespace, name, ..
        } => {
            format!("status of deployment {namespace}/{name}")
        }
        Action::SetDeploymentRevision {
            namespace, name, ..
        } => {
            format!("revision of deployment {namespace}/{name}")
        }
        Action::CreateReplicaSet(r) => {
            format!("create replica set {}/{}", r.namespace(), r.name())
        }
        Action::UpdateReplicaSet(r) => format!("replica set {}/{}", r.namespace(), r.name()),
        Action::UpdateReplicaSetStatus {
            namespace, name, ..
        } => format!("status of replica set {namespace}/{name}"),
        Action::DeleteReplicaSet(r) => {
            format!("delete replica set {}/{}", r.namespace, r.name)
        }
        Action::DeleteRevision { owner_uid, hash } => {
            format!("drop revision record {owner_uid}/{hash}")
        }
        Action::CollectGarbage(Garbage::Pod(p)) => {
            format!("collect pod {}/{}", p.namespace, p.name)
        }
        Action::CollectGarbage(Garbage::ReplicaSet(r)) => {
            format!("collect replica set {}/{}", r.namespace, r.name)
        }
        Action::CollectGarbage(Garbage::Job(j)) => {
            format!("collect job {}/{}", j.namespace, j.name)
        }
        Action::UpdateJobStatus {
            namespace, name, ..
        } => format!("status of job {namespace}/{name}"),
        Action::DeleteJob { job, reason } => {
            format!("delete job {}/{} ({reason})", job.namespace, job.name)
        }
        Action::CreateJob(j) => format!("create job {}/{}", j.namespace(), j.name()),
        Action::UpdateCronJobStatus {
            namespace, name, ..
        } => format!("status of cronjob {namespace}/{name}"),
        Action::UpdateServiceStatus {
            namespace, name, ..
        } => format!("status of service {namespace}/{name}"),
        Action::UpdateDaemonSetStatus {
            namespace, name, ..
        } => {
            format!("status of daemonset {namespace}/{name}")
        }
        Action::UpdateStatefulSetStatus {
            namespace, name, ..
        } => format!("status of statefulset {namespace}/{name}"),
        Action::CreateClaim(c) => format!("create claim {}/{}", c.namespace(), c.name()),
        Action::SetNodeReady { node, .. } => format!("Ready of node {node}"),
        Action::EvictPod { pod, node, .. } => {
            format!("evict pod {}/{} from {node}", pod.namespace, pod.name)
        }
        Action::PutEndpoints(e) => format!("endpoints {}/{}", e.namespace(), e.name()),
        Action::DeleteEndpoints { namespace, name } => {
            format!("delete endpoints {namespace}/{name}")
        }
        Action::FencePods { node, pods } => format!("fence {} pods on {node}", pods.len()),
        Action::CreateVolume(pv) => format!("create persistent volume {}", pv.name()),
        Action::BindVolume { name, claim } => format!(
            "reserve persistent volume {name} for claim {}/{}",
            claim.namespace.as_deref().unwrap_or(""),
            claim.name.as_deref().unwrap_or("")
        ),
        Action::BindClaim { claim, volume } => format!(
            "bind claim {}/{} to volume {volume}",
            claim.namespace, claim.name
        ),
        Action::UpdateClaimStatus {
            namespace, name, ..
        } => format!("status of claim {namespace}/{name}"),
        Action::UpdateVolumeStatus { name, .. } => format!("status of persistent volume {name}"),
        Action::DeleteVolume { name, .. } => format!("delete persistent volume {name}"),
        Action::MarkFullyAvailable { namespace, name } => {
            format!("mark replica set {namespace}/{name} fully available")
        }
        Action::RollBack {
            namespace, name, ..
        } => format!("roll back deployment {namespace}/{name}"),
        Action::ScaleDeployment {
            namespace,
            name,
            replicas,
        } => format!("scale deployment {namespace}/{name} to {replicas}"),
        Action::UpdateHpaStatus {
            namespace, name, ..
        } => {
            format!("status of autoscaler {namespace}/{name}")
        }
    }
}

/// The controller that records events about `owner`.
fn controller_of(owner: &Involved) -> Source {
    Source::hub(match owner.kind.as_str() {
        "DaemonSet" => "daemonset-controller",
        "StatefulSet" => "statefulset-controller",
        "ReplicaSet" => "replicaset-controller",
        "Job" => "job-controller",
        "CronJob" => "cronjob-controller",
        "Service" => "service-lb-controller",
        _ => "deployment-controller",
    })
}

/// Records `reason` ("Created pod: NAME"; for a StatefulSet, its
/// controller's "create Pod NAME in StatefulSet SET successful") on the
/// owner of `pod`, if it has one.
fn record_on_owner(events: &Recorder, pod: &Value, reason: &'static str, verb: &str) {
    if let Some(owner) = Involved::owner_of(pod) {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        let source = controller_of(&owner);
        let message = match owner.kind.as_str() {
            "StatefulSet" => format!(
                "{} Pod {name} in StatefulSet {} successful",
                if verb == "Created" {
                    "create"
                } else {
                    "delete"
                },
                owner.name
            ),
            _ => format!("{verb} pod: {name}"),
        };
        events.record(owner, EventType::Normal, reason, message, source);
    }
}

async fn apply_one(store: &Store, action: Action, events: &Recorder) -> Result<bool, ApplyError> {
    match action {
        Action::CreatePod(pod) => {
            let mut object = admitted(serde_json::to_value(&*pod)?, "pod")?;
            crate::admission::pod_status::start(&mut object);
            let created = store.create(pods(), object).await?;
            tracing::info!(pod = %pod.metadata.key(), node = created["spec"]["nodeName"].as_str().unwrap_or(""), "pod created");
            record_on_owner(events, &created, "SuccessfulCreate", "Created");
            Ok(true)
        }
        Action::DeletePod { pod, reason } => {
            let Some(current) = store.get(pods(), Some(&pod.namespace), &pod.name)? else {
                return Ok(false);
            };
            if !uid_matches(&current, &pod) {
                return Ok(false);
            }
            store
                .delete(pods(), Some(&pod.namespace), &pod.name, None)
                .await?;
            tracing::info!(pod = %ObjectKey::new(&pod.namespace, &pod.name), reason, "pod deleted");
            record_on_owner(events, &current, "SuccessfulDelete", "Deleted");
            Ok(true)
        }
        Action::UpdateDeploymentStatus {
            namespace,
            name,
            status,
        } => set_status(store, deployments(), Some(&namespace), &name, &*status).await,
        Action::SetDeploymentRevision {
            namespace,
            name,
            revision,
        } => {
            let Some(mut d) = store.get(deployments(), Some(&namespace), &name)? else {
                return Ok(false);
            };
            let key = crate::controllers::replicasets::REVISION_ANNOTATION;
            let want = Value::String(revision.to_string());
            if d["metadata"]["annotations"][key] == want {
                return Ok(false);
            }
            if !d["metadata"]["annotations"].is_object() {
                d["metadata"]["annotations"] = Value::Object(Default::default());
            }
            d["metadata"]["annotations"][key] = want;
            Ok(store.update(deployments(), d).await?.1)
        }
        Action::CreateReplicaSet(rs) => {
            let object = admitted(serde_json::to_value(&*rs)?, "replica set")?;
            store.create(replicasets(), object).await?;
            tracing::info!(replicaset = %rs.metadata.key(), replicas = rs.replicas(), "replica set created");
            Ok(true)
        }
        Action::UpdateReplicaSet(rs) => {
            let Some(current) = store.get(replicasets(), Some(rs.namespace()), rs.name())? else {
                return Ok(false);
            };
            // `admit` keeps `resourceVersion`: the update is preconditioned
            // on the version the plan read.
            let object = bramble_api::admit(serde_json::to_value(&*rs)?)
                .map_err(|source| ApplyError::Invalid {
                    what: "replica set",
                    source,
                })?
                .object;
            let (stored, changed) = store.update(replicasets(), object).await?;
            let from = current["spec"]["replicas"].as_i64().unwrap_or(1);
            let to = stored["spec"]["replicas"].as_i64().unwrap_or(1);
            if changed && from != to {
                record_scaling(events, &stored, from, to);
            }
            Ok(changed)
        }
        Action::UpdateReplicaSetStatus {
            namespace,
            name,
            status,
        } => set_status(store, replicasets(), Some(&namespace), &name, &*status).await,
        Action::DeleteReplicaSet(r) => {
            delete_object(store, replicasets(), &r, "old replica set deleted").await
        }
        Action::CollectGarbage(Garbage::ReplicaSet(r)) => {
            delete_object(store, replicasets(), &r, "garbage collected").await
        }
        Action::CollectGarbage(Garbage::Job(j)) => {
            delete_object(store, jobs(), &j, "garbage collected").await
        }
        Action::UpdateJobStatus {
            namespace,
            name,
            status,
            note,
        } => {
            let notes: Vec<Note> = note.into_iter().collect();
            set_status_noting(store, jobs(), &namespace, &name, &*status, notes, events).await
        }
        Action::UpdateCronJobStatus {
            namespace,
            name,
            status,
            notes,
        } => {
            set_status_noting(
                store,
                cronjobs(),
                &namespace,
                &name,
                &*status,
                notes,
                events,
            )
            .await
        }
        Action::UpdateServiceStatus {
            namespace,
            name,
            status,
            notes,
        } => {
            set_status_noting(
                store,
                services(),
                &namespace,
                &name,
                &*status,
                notes,
                events,
            )
            .await
        }
        Action::CreateJob(job) => {
            let mut object = admitted(serde_json::to_value(&*job)?, "job")?;
            crate::admission::job_identity::give_identity(&mut object)?;
            let created = store.create(jobs(), object).await?;
            tracing::info!(job = %job.metadata.key(), "job created");
            record_job_on_owner(events, &created, "SuccessfulCreate", "Created");
            Ok(true)
        }
        Action::DeleteJob { job, reason } => {
            let Some(current) = store.get(jobs(), Some(&job.namespace), &job.name)? else {
                return Ok(false);
            };
            let deleted = delete_object(store, jobs(), &job, reason).await?;
            if deleted {
                record_job_on_owner(events, &current, "SuccessfulDelete", "Deleted");
            }
            Ok(deleted)
        }
        Action::CollectGarbage(Garbage::Pod(p)) => {
            let r = ObjectRef {
                namespace: p.namespace,
                name: p.name,
                uid: p.uid,
            };
            delete_object(store, pods(), &r, "garbage collected").await
        }
        Action::DeleteRevision { owner_uid, hash } => {
            store
                .kv_write(vec![KvWrite {
                    table: REVISIONS_TABLE,
                    key: format!("{owner_uid}/{hash}"),
                    value: None,
                }])
                .await?;
            Ok(true)
        }
        Action::UpdateDaemonSetStatus {
            namespace,
            name,
            status,
        } => set_status(store, daemonsets(), Some(&namespace), &name, &*status).await,
        Action::UpdateStatefulSetStatus {
            namespace,
            name,
            status,
        } => set_status(store, statefulsets(), Some(&namespace), &name, &*status).await,
        Action::CreateClaim(claim) => {
            let object = admitted(serde_json::to_value(&*claim)?, "claim")?;
            match store.create(claims(), object).await {
                Ok(_) => {
                    tracing::info!(claim = %claim.metadata.key(), "claim created");
                    Ok(true)
                }
                Err(StoreError::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Action::SetNodeReady { node, condition } => {
            set_ready(store, &node, condition, events).await
        }
        Action::EvictPod {
            pod,
            node,
            reason,
            message,
        } => {
            let Some(mut current) = store.get(pods(), Some(&pod.namespace), &pod.name)? else {
                return Ok(false);
            };
            if !uid_matches(&current, &pod) {
                return Ok(false);
            }
            if !current["status"].is_object() {
                current["status"] = Value::Object(Default::default());
            }
            current["status"]["phase"] = "Failed".into();
            current["status"]["reason"] = reason.into();
            current["status"]["message"] = message.clone().into();
            tracing::warn!(pod = %ObjectKey::new(&pod.namespace, &pod.name), %node, reason, %message, "pod evicted");
            Ok(store.update_status(pods(), current).await?.1)
        }
        Action::ScaleDeployment {
            namespace,
            name,
            replicas,
        } => {
            let Some(mut d) = store.get(deployments(), Some(&namespace), &name)? else {
                return Ok(false);
            };
            if d["spec"]["replicas"].as_i64() == Some(i64::from(replicas)) {
                return Ok(false);
            }
            tracing::info!(deployment = %format!("{namespace}/{name}"), from = %d["spec"]["replicas"], to = replicas, "autoscaling");
            d["spec"]["replicas"] = replicas.into();
            Ok(store.update(deployments(), d).await?.1)
        }
        Action::UpdateHpaStatus {
            namespace,
            name,
            status,
        } => set_status(store, autoscalers(), Some(&namespace), &name, &*status).await,
        Action::PutEndpoints(e) => put_endpoints(store, &e).await,
        Action::DeleteEndpoints { namespace, name } => {
            if store.get(endpoints(), Some(&namespace), &name)?.is_none() {
                return Ok(false);
            }
            store
                .delete(endpoints(), Some(&namespace), &name, None)
                .await?;
            Ok(true)
        }
        Action::FencePods { node, pods } => {
            // The dispatcher's desired set already leaves these out; the
            // agent stops them when it applies it.
            tracing::info!(%node, pods = ?pods.iter().map(|p| ObjectKey::new(&p.namespace, &p.name).to_string()).collect::<Vec<_>>(), "fencing pods the store no longer has on this node");
            Ok(false)
        }
        Action::CreateVolume(pv) => {
            let object = admitted(serde_json::to_value(&*pv)?, "persistent volume")?;
            store.create(volumes(), object).await?;
            tracing::info!(
                volume = pv.name(),
                node = pv.pinned_node().unwrap_or(""),
                "persistent volume provisioned"
            );
            if let Some((ns, name, _)) = pv.claim()
                && let Some(claim) = store.get(claims(), Some(ns), name)?
            {
                events.record(
                    Involved::of(&claim),
                    EventType::Normal,
                    "ProvisioningSucceeded",
                    format!("Successfully provisioned volume {}", pv.name()),
                    Source::hub(bramble_api::objects::storage_class::LOCAL_PATH_PROVISIONER),
                );
            }
            Ok(true)
        }
        Action::BindVolume { name, claim } => {
            let Some(mut pv) = store.get(volumes(), None, &name)? else {
                return Ok(false);
            };
            if !pv["spec"]["claimRef"].is_null() {
                return Ok(false);
            }
            pv["spec"]["claimRef"] = serde_json::to_value(&*claim)?;
            Ok(store.update(volumes(), pv).await?.1)
        }
        Action::BindClaim { claim, volume } => {
            let Some(mut c) = store.get(claims(), Some(&claim.namespace), &claim.name)? else {
                return Ok(false);
            };
            let uid = c["metadata"]["uid"].as_str();
            if claim.uid.as_deref().is_some_and(|u| Some(u) != uid)
                || c["spec"]["volumeName"]
                    .as_str()
                    .is_some_and(|v| !v.is_empty())
            {
                return Ok(false);
            }
            c["spec"]["volumeName"] = volume.clone().into();
            if !c["metadata"]["annotations"].is_object() {
                c["metadata"]["annotations"] = Value::Object(Default::default());
            }
            c["metadata"]["annotations"][BIND_COMPLETED] = "yes".into();
            c["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = "yes".into();
            tracing::info!(claim = %ObjectKey::new(&claim.namespace, &claim.name), %volume, "claim bound");
            Ok(store.update(claims(), c).await?.1)
        }
        Action::UpdateClaimStatus {
            namespace,
            name,
            status,
        } => set_status(store, claims(), Some(&namespace), &name, &*status).await,
        Action::UpdateVolumeStatus { name, status } => {
            set_status(store, volumes(), None, &name, &*status).await
        }
        Action::MarkFullyAvailable { namespace, name } => {
            let Some(mut rs) = store.get(replicasets(), Some(&namespace), &name)? else {
                return Ok(false);
            };
            let key = crate::controllers::rollback::FULLY_AVAILABLE;
            if !rs["metadata"]["annotations"][key].is_null() {
                return Ok(false);
            }
            if !rs["metadata"]["annotations"].is_object() {
                rs["metadata"]["annotations"] = Value::Object(Default::default());
            }
            rs["metadata"]["annotations"][key] =
                humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                    .to_string()
                    .into();
            Ok(store.update(replicasets(), rs).await?.1)
        }
        Action::RollBack {
            namespace,
            name,
            uid,
            template,
            why,
            to_revision,
        } => {
            let Some(mut d) = store.get(deployments(), Some(&namespace), &name)? else {
                return Ok(false);
            };
            if uid.is_some() && d["metadata"]["uid"].as_str() != uid.as_deref() {
                return Ok(false);
            }
            d["spec"]["template"] = serde_json::to_value(&*template)?;
            if !d["metadata"]["annotations"].is_object() {
                d["metadata"]["annotations"] = Value::Object(Default::default());
            }
            let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            d["metadata"]["annotations"][crate::controllers::rollback::ROLLED_BACK] =
                format!("{stamp}: {why}").into();
            d["metadata"]["annotations"]
                [crate::controllers::replicasets::CHANGE_CAUSE_ANNOTATION] =
                format!("automatic rollback: {why}").into();
            let object = bramble_api::admit(d)
                .map_err(|source| ApplyError::Invalid {
                    what: "deployment",
                    source,
                })?
                .object;
            let (stored, changed) = store.update(deployments(), object).await?;
            if changed {
                tracing::warn!(deployment = %ObjectKey::new(&namespace, &name), %why, "rolled back");
                events.record(
                    Involved::of(&stored),
                    EventType::Warning,
                    "DeploymentRollback",
                    format!("Rolled back deployment {name:?} to revision {to_revision}: {why}"),
                    Source::hub("deployment-controller"),
                );
            }
            Ok(changed)
        }
        Action::DeleteVolume { name, uid } => {
            let Some(current) = store.get(volumes(), None, &name)? else {
                return Ok(false);
            };
            if uid.is_some() && current["metadata"]["uid"].as_str() != uid.as_deref() {
                return Ok(false);
            }
            store.delete(volumes(), None, &name, None).await?;
            tracing::info!(volume = %name, "reclaimed persistent volume deleted");
            Ok(true)
        }
    }
}

/// A new object a controller made, admitted, without what the store owns
/// and without status.
fn admitted(value: Value, what: &'static str) -> Result<Value, ApplyError> {
    let admitted =
        bramble_api::admit(value).map_err(|source| ApplyError::Invalid { what, source })?;
    let mut object = admitted.object;
    for f in STORE_OWNED {
        obj::remove_meta(&mut object, f);
    }
    if let Some(m) = object.as_object_mut() {
        m.remove("status");
    }
    Ok(object)
}

/// `Scaled up replica set web-5d8f7c9b4x to 3 from 1` (Kubernetes' wording) on the Deployment
/// controlling the replica set, as Kubernetes' deployment controller says it.
fn record_scaling(events: &Recorder, rs: &Value, from: i64, to: i64) {
    let Some(owner) = Involved::owner_of(rs) else {
        return;
    };
    let direction = if to > from { "up" } else { "down" };
    let name = rs["metadata"]["name"].as_str().unwrap_or("");
    events.record(
        owner,
        EventType::Normal,
        "ScalingReplicaSet",
        format!("Scaled {direction} replica set {name} to {to} from {from}"),
        Source::hub("deployment-controller"),
    );
}

/// Deletes the object `r` names, if it is still the one with its uid.
async fn delete_object(
    store: &Store,
    resource: &'static bramble_api::ResourceInfo,
    r: &ObjectRef,
    why: &'static str,
) -> Result<bool, ApplyError> {
    let Some(current) = store.get(resource, Some(&r.namespace), &r.name)? else {
        return Ok(false);
    };
    let uid = current["metadata"]["uid"].as_str();
    if r.uid.as_deref().is_some_and(|u| Some(u) != uid) {
        return Ok(false);
    }
    store
        .delete(resource, Some(&r.namespace), &r.name, None)
        .await?;
    tracing::info!(kind = resource.kind, object = %ObjectKey::new(&r.namespace, &r.name), why, "deleted");
    Ok(true)
}

/// `Created job hello-29000000` on the CronJob of a Job, as Kubernetes'
/// cronjob-controller says it.
fn record_job_on_owner(events: &Recorder, job: &Value, reason: &'static str, verb: &str) {
    if let Some(owner) = Involved::owner_of(job).filter(|o| o.kind == "CronJob") {
        let name = job["metadata"]["name"].as_str().unwrap_or("");
        events.record(
            owner,
            EventType::Normal,
            reason,
            format!("{verb} job {name}"),
            Source::hub("cronjob-controller"),
        );
    }
}

/// [`set_status`], then records `notes` on the object if it changed.
async fn set_status_noting<S: Serialize>(
    store: &Store,
    resource: &'static bramble_api::ResourceInfo,
    namespace: &str,
    name: &str,
    status: &S,
    notes: Vec<Note>,
    events: &Recorder,
) -> Result<bool, ApplyError> {
    let Some(mut current) = store.get(resource, Some(namespace), name)? else {
        return Ok(false);
    };
    let status = serde_json::to_value(status)?;
    if current["status"] == status {
        return Ok(false);
    }
    current["status"] = status;
    let (stored, changed) = store.update_status(resource, current).await?;
    if changed {
        let source = controller_of(&Involved::of(&stored));
        for n in notes {
            let kind = if n.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            events.record(
                Involved::of(&stored),
                kind,
                n.reason,
                n.message,
                source.clone(),
            );
        }
    }
    Ok(changed)
}

async fn put_endpoints(store: &Store, e: &Endpoints) -> Result<bool, ApplyError> {
    let want = serde_json::to_value(e)?;
    match store.get(endpoints(), Some(e.namespace()), e.name())? {
        None => {
            store.create(endpoints(), want).await?;
            Ok(true)
        }
        Some(mut current) => {
            current["subsets"] = want.get("subsets").cloned().unwrap_or(Value::Null);
            if let Some(m) = current.as_object_mut()
                && m.get("subsets").is_some_and(Value::is_null)
            {
                m.remove("subsets");
            }
            current["metadata"]["labels"] = want["metadata"]["labels"].clone();
            Ok(store.update(endpoints(), current).await?.1)
        }
    }
}

fn uid_matches(current: &Value, pod: &PodRef) -> bool {
    pod.uid
        .as_deref()
        .is_none_or(|u| current["metadata"]["uid"].as_str() == Some(u))
}

async fn set_status<S: Serialize>(
    store: &Store,
    resource: &'static bramble_api::ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    status: &S,
) -> Result<bool, ApplyError> {
    let Some(mut current) = store.get(resource, namespace, name)? else {
        return Ok(false);
    };
    let status = serde_json::to_value(status)?;
    if current["status"] == status {
        return Ok(false);
    }
    current["status"] = status;
    Ok(store.update_status(resource, current).await?.1)
}

async fn set_ready(
    store: &Store,
    node: &str,
    condition: Condition,
    events: &Recorder,
) -> Result<bool, ApplyError> {
    let Some(mut current) = store.get(nodes(), None, node)? else {
        return Ok(false);
    };
    let was_ready = current["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"] == "True");
    let ready = condition.status == "True";
    if !current["status"].is_object() {
        current["status"] = Value::Object(Default::default());
    }
    let mut conditions: Vec<Value> = current["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions.retain(|c| c["type"] != "Ready");
    conditions.push(serde_json::to_value(&condition)?);
    current["status"]["conditions"] = Value::Array(conditions);
    tracing::info!(%node, status = %condition.status, reason = condition.reason.as_deref().unwrap_or(""), "node Ready changed");
    let (stored, changed) = store.update_status(nodes(), current).await?;
    if changed && was_ready != Some(ready) {
        let status = if ready { "NodeReady" } else { "NodeNotReady" };
        events.record(
            Involved::of(&stored),
            // Kubernetes' node controller records both as Normal.
            EventType::Normal,
            status,
            format!("Node {node} status is now: {status}"),
            Source::hub("node-controller"),
        );
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_deleted_or_changed_object_is_gone() {
        let name = || "web-1".to_string();
        assert!(is_gone(&ApplyError::Store(StoreError::NotFound {
            resource: pods(),
            name: name(),
        })));
        assert!(is_gone(&ApplyError::Store(StoreError::Conflict {
            resource: pods(),
            name: name(),
            given: 1,
            current: 2,
        })));
        assert!(!is_gone(&ApplyError::Store(StoreError::Closed)));
        assert!(!is_gone(&ApplyError::Store(StoreError::AlreadyExists {
            resource: pods(),
            name: name(),
        })));
    }
}
