//! The Deployment controller: from a Deployment, its pods and its revision
//! records to the pods to create and delete, the revision bookkeeping and the
//! new status.
//!
//! Pods belong to a Deployment through their controller `ownerReference`
//! (uid), never through the selector alone, so overlapping selectors cannot
//! steal pods. A pod is "new" when its `pod-template-hash` label equals the
//! hash of the current template. A paused Deployment only gets its status.
//! Pods that Pod Security now refuses are not created (see
//! [`DeploymentInput::refused`]).

use std::collections::BTreeSet;
use std::time::SystemTime;

use bramble_api::objects::{Deployment, Pod};

use super::action::{Action, PodRef};
use super::deployment_status;
use super::naming::{POD_TEMPLATE_HASH, pod_names, template_hash};
use super::pods::{from_template, is_active, is_controlled_by, is_finished};
use super::revision::{REVISION_ANNOTATION, Revision, plan_revisions};
use super::rollout::{self, Observed};
use super::time;
use crate::admission::pod_security::forbidden_message;

/// What the Deployment controller reads for one Deployment.
#[derive(Debug, Clone, Copy)]
pub struct DeploymentInput<'a> {
    pub deployment: &'a Deployment,
    /// Pods of the namespace (others are ignored).
    pub pods: &'a [Pod],
    /// Revision records (others' are ignored).
    pub revisions: &'a [Revision],
    /// Why Pod Security refuses the template's pods now (`violates
    /// PodSecurity ...`, the namespace's level was raised after the
    /// Deployment was admitted): none are created, and a `ReplicaFailure`
    /// condition says why, as Kubernetes' ReplicaSet controller reports it.
    pub refused: Option<&'a str>,
    pub now: SystemTime,
}

/// Plans one Deployment. Applying the actions and planning again converges.
pub fn plan_deployment(input: DeploymentInput<'_>) -> Vec<Action> {
    let d = input.deployment;
    if d.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let hash = template_hash(&d.spec.template);
    let owned: Vec<&Pod> = input
        .pods
        .iter()
        .filter(|p| is_controlled_by(p, "Deployment", &d.metadata))
        .collect();
    let hash_of = |p: &Pod| p.metadata.labels.get(POD_TEMPLATE_HASH).cloned();
    let (new, old): (Vec<&Pod>, Vec<&Pod>) = owned
        .iter()
        .copied()
        .filter(|p| is_active(p))
        .partition(|p| hash_of(p).as_deref() == Some(hash.as_str()));
    let observed = Observed {
        new,
        old,
        old_terminating: owned
            .iter()
            .filter(|p| !is_active(p) && !is_finished(p))
            .filter(|p| hash_of(p).as_deref() != Some(hash.as_str()))
            .count(),
        min_ready_seconds: d.spec.min_ready_seconds.unwrap_or(0),
        now: input.now,
    };

    let mut actions = Vec::new();
    let live: BTreeSet<&str> = owned
        .iter()
        .filter(|p| !is_finished(p))
        .filter_map(|p| p.metadata.labels.get(POD_TEMPLATE_HASH).map(String::as_str))
        .collect();
    let revs = plan_revisions(d, &hash, input.revisions, &live);
    if let Some(r) = revs.save {
        actions.push(Action::SaveRevision(Box::new(r)));
    }
    let annotated = d
        .metadata
        .annotations
        .get(REVISION_ANNOTATION)
        .and_then(|v| v.parse::<i64>().ok());
    if annotated != Some(revs.current) {
        actions.push(Action::SetDeploymentRevision {
            namespace: d.namespace().to_string(),
            name: d.name().to_string(),
            revision: revs.current,
        });
    }

    let replicas = d.replicas();
    let fp = rollout::fenceposts(d);
    let step = if d.spec.paused {
        rollout::Step::default()
    } else if d.is_recreate() {
        rollout::recreate(replicas, &observed)
    } else {
        rollout::rolling(replicas, fp, &observed)
    };
    let prefix = format!("{}-{hash}", d.name());
    // Pods Pod Security refuses are not created; the failure is named as
    // Kubernetes names a pod created with `generateName`.
    let failed_create = input
        .refused
        .filter(|_| step.create > 0)
        .map(|why| forbidden_message("pods", &format!("{prefix}-"), why));
    let create = if failed_create.is_some() {
        0
    } else {
        step.create
    };
    let acted = create > 0 || !step.delete.is_empty();

    let taken: BTreeSet<&str> = input.pods.iter().map(Pod::name).collect();
    let seed = format!(
        "{}/{}",
        d.metadata.uid.as_deref().unwrap_or(d.name()),
        time::format(input.now)
    );
    for name in pod_names(&prefix, create, &seed, &taken) {
        let pod = from_template(
            &d.spec.template,
            name,
            "Deployment",
            &d.metadata,
            &[(POD_TEMPLATE_HASH, &hash)],
        );
        actions.push(Action::CreatePod(Box::new(pod)));
    }
    for (p, reason) in &step.delete {
        actions.push(Action::DeletePod {
            pod: PodRef::of(p),
            reason,
        });
    }
    for h in revs.prune {
        actions.push(Action::DeleteRevision {
            owner_uid: d.metadata.uid.clone().unwrap_or_default(),
            hash: h,
        });
    }

    let max_unavailable = if d.is_recreate() {
        0
    } else {
        fp.max_unavailable
    };
    let status = deployment_status::compute(d, &observed, max_unavailable, acted, failed_create);
    if d.status.as_ref() != Some(&status) {
        actions.push(Action::UpdateDeploymentStatus {
            namespace: d.namespace().to_string(),
            name: d.name().to_string(),
            status: Box::new(status),
        });
    }
    actions
}
