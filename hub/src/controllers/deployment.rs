//! The Deployment controller: from a Deployment, its ReplicaSets and their
//! pods (and an older hub's revision records) to the ReplicaSets and pods
//! to create, scale, renumber and delete, and the new status.
//!
//! As in Kubernetes, a Deployment controls one ReplicaSet per pod template
//! it has run ([`replicasets`]); the current one is the one whose template
//! equals the Deployment's, and each ReplicaSet controls its pods. Unlike
//! Kubernetes, one plan does the work of both controllers: it steps the
//! rollout over pods ([`rollout`]) and sets each ReplicaSet's
//! `spec.replicas` to the pods it holds after the step
//! ([`replicaset_plan`]), so a ReplicaSet is written only when its pods,
//! revision or annotations change. A new ReplicaSet is created alone; its
//! pods come in the next round, once the store has given it the uid they
//! name as their owner. A paused Deployment gets no new ReplicaSet and no
//! pod changes. Pods that Pod Security now refuses are not created (see
//! [`DeploymentInput::refused`]).

use std::collections::BTreeSet;
use std::time::SystemTime;

use bramble_api::objects::{Deployment, Pod, ReplicaSet};

use super::action::{Action, PodRef};
use super::deployment_status;
use super::naming::pod_names;
use super::pods::{from_template, is_active, is_finished};
use super::replicaset_plan::{Sets, create_first, prunable};
use super::replicasets::{self, REVISION_ANNOTATION, equal_ignoring_hash};
use super::revision::{Revision, records};
use super::rollout::{self, Observed};
use crate::admission::pod_security::forbidden_message;

/// What the Deployment controller reads for one Deployment.
#[derive(Debug, Clone, Copy)]
pub struct DeploymentInput<'a> {
    pub deployment: &'a Deployment,
    /// Pods of the namespace (others are ignored).
    pub pods: &'a [Pod],
    /// ReplicaSets of the namespace (those it does not control are left
    /// alone, but their names count as taken).
    pub replica_sets: &'a [ReplicaSet],
    /// Revision records of older hubs (others' are ignored).
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
    let owned = replicasets::owned(d, input.replica_sets);
    let legacy = records(input.revisions, d.metadata.uid.as_deref().unwrap_or(""));
    if let Some(first) = create_first(&input, &owned, &legacy) {
        return first;
    }
    let current = owned
        .iter()
        .position(|rs| equal_ignoring_hash(&rs.spec.template, &d.spec.template));
    let held = replicasets::held(d, &owned, input.pods);
    let others = || {
        held.by_rs
            .iter()
            .enumerate()
            .filter(move |(i, _)| Some(*i) != current)
            .flat_map(|(_, pods)| pods.iter().copied())
            .chain(held.unheld.iter().copied())
    };
    let new: Vec<&Pod> = current
        .map(|i| {
            held.by_rs[i]
                .iter()
                .copied()
                .filter(|p| is_active(p))
                .collect()
        })
        .unwrap_or_default();
    let observed = Observed {
        new,
        old: others().filter(|p| is_active(p)).collect(),
        old_terminating: others()
            .filter(|p| !is_active(p) && !is_finished(p))
            .count(),
        min_ready_seconds: d.spec.min_ready_seconds.unwrap_or(0),
        now: input.now,
    };

    let replicas = d.replicas();
    let fp = rollout::fenceposts(d);
    let step = if d.spec.paused || current.is_none() {
        rollout::Step::default()
    } else if d.is_recreate() {
        rollout::recreate(replicas, &observed)
    } else {
        rollout::rolling(replicas, fp, &observed)
    };
    let max_surge = if d.is_recreate() { 0 } else { fp.max_surge };

    // Each ReplicaSet holds what it has, plus what is created for it, minus
    // what is deleted from it.
    let wanted: Vec<i32> = (0..owned.len())
        .map(|i| {
            let active = held.by_rs[i].iter().filter(|p| is_active(p)).count();
            let deleted = step
                .delete
                .iter()
                .filter(|(p, _)| held.rs_of(p) == Some(i))
                .count();
            let created = if Some(i) == current { step.create } else { 0 };
            count(active + created) - count(deleted)
        })
        .collect();
    let pruned = prunable(d, &owned, &held, &wanted, current);

    let sets = Sets {
        d,
        owned: &owned,
        held: &held,
        current,
        wanted: &wanted,
        pruned: &pruned,
    };
    let (mut actions, respecced, current_revision) = sets.respec(max_surge);

    // Pods Pod Security refuses are not created; the failure is named as
    // Kubernetes names a pod created with `generateName`.
    let failed_create = current.and_then(|i| {
        input
            .refused
            .filter(|_| step.create > 0)
            .map(|why| forbidden_message("pods", &format!("{}-", owned[i].name()), why))
    });
    let create = if failed_create.is_some() {
        0
    } else {
        step.create
    };
    let acted = create > 0 || !step.delete.is_empty();
    if let Some(i) = current {
        let rs = owned[i];
        let taken: BTreeSet<&str> = input.pods.iter().map(Pod::name).collect();
        let seed = super::naming::pod_name_seed(&d.metadata, input.now);
        for name in pod_names(rs.name(), create, &seed, &taken) {
            let pod = from_template(&rs.spec.template, name, "ReplicaSet", &rs.metadata, &[]);
            actions.push(Action::CreatePod(Box::new(pod)));
        }
    }
    for (p, reason) in &step.delete {
        actions.push(Action::DeletePod {
            pod: PodRef::of(p),
            reason,
        });
    }
    actions.extend(sets.statuses(&respecced, input.now));
    for r in &legacy {
        actions.push(Action::DeleteRevision {
            owner_uid: r.owner_uid.clone(),
            hash: r.hash.clone(),
        });
    }

    let annotated = d
        .metadata
        .annotations
        .get(REVISION_ANNOTATION)
        .and_then(|v| v.parse::<i64>().ok());
    if let Some(revision) = current_revision.filter(|r| annotated != Some(*r)) {
        actions.push(Action::SetDeploymentRevision {
            namespace: d.namespace().to_string(),
            name: d.name().to_string(),
            revision,
        });
    }
    let max_unavailable = if d.is_recreate() {
        0
    } else {
        fp.max_unavailable
    };
    let status = deployment_status::compute(d, &observed, max_unavailable, acted, failed_create);
    actions.extend(super::rollback::plan(
        d,
        &status,
        &owned,
        current,
        &observed.new,
        input.now,
    ));
    if d.status.as_ref() != Some(&status) {
        actions.push(Action::UpdateDeploymentStatus {
            namespace: d.namespace().to_string(),
            name: d.name().to_string(),
            status: Box::new(status),
        });
    }
    actions
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
