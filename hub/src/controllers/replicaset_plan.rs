//! What one plan does to a Deployment's ReplicaSets: create the missing
//! ones first ([`create_first`]: an older hub's revision records, the
//! current template's), then scale, annotate and renumber them
//! ([`Sets::respec`]), write their status and prune the old ones beyond
//! `revisionHistoryLimit` ([`Sets::statuses`], [`prunable`]). Pure, like
//! the Deployment controller that calls it.

use std::collections::BTreeSet;
use std::time::SystemTime;

use bramble_api::objects::{Deployment, ReplicaSet};

use super::action::{Action, ObjectRef};
use super::deployment::DeploymentInput;
use super::naming::{POD_TEMPLATE_HASH, template_hash_with};
use super::owners::controls;
use super::pods::{is_active, is_finished};
use super::replicasets::{
    self, CHANGE_CAUSE_ANNOTATION, DESIRED_REPLICAS_ANNOTATION, Held, MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION, equal_ignoring_hash, hash_of, revision,
};
use super::revision::{Revision, renumber};

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A Deployment's ReplicaSets as one plan sees them: `owned` oldest
/// revision first, the pods each holds, the current one's index, the pods
/// each will hold after the step, and those to delete.
pub struct Sets<'a, 'p> {
    pub d: &'a Deployment,
    pub owned: &'a [&'p ReplicaSet],
    pub held: &'a Held<'p>,
    pub current: Option<usize>,
    pub wanted: &'a [i32],
    pub pruned: &'a BTreeSet<usize>,
}

impl Sets<'_, '_> {
    /// The updates of ReplicaSets whose replicas or annotations change: each
    /// is scaled to what it will hold (its `desired-replicas` and
    /// `max-replicas` then set), the current one also gets the Deployment's
    /// annotations and, after an undo, the next revision. Returns them, the
    /// indexes whose spec changes, and the current one's revision.
    pub fn respec(&self, max_surge: i32) -> (Vec<Action>, BTreeSet<usize>, Option<i64>) {
        let (d, replicas) = (self.d, self.d.replicas());
        let mut actions = Vec::new();
        let mut respecced = BTreeSet::new();
        let mut current_revision = None;
        for (i, rs) in self.owned.iter().enumerate() {
            if self.pruned.contains(&i) {
                continue;
            }
            let mut want = (*rs).clone();
            want.spec.replicas = Some(self.wanted[i]);
            if Some(i) == self.current {
                let others_max = self
                    .owned
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, r)| revision(r))
                    .max()
                    .unwrap_or(0);
                current_annotations(d, rs, others_max, &mut want);
                want.spec.min_ready_seconds = d.spec.min_ready_seconds;
                current_revision = Some(revision(&want));
            }
            if Some(i) == self.current || rs.spec.replicas != Some(self.wanted[i]) {
                let a = &mut want.metadata.annotations;
                a.insert(DESIRED_REPLICAS_ANNOTATION.into(), replicas.to_string());
                let max = replicas + max_surge;
                a.insert(MAX_REPLICAS_ANNOTATION.into(), max.to_string());
            }
            if want.spec != rs.spec {
                respecced.insert(i);
            }
            if want.metadata != rs.metadata || want.spec != rs.spec {
                actions.push(Action::UpdateReplicaSet(Box::new(want)));
            }
        }
        (actions, respecced, current_revision)
    }

    /// The deletes of pruned ReplicaSets and the status of the others, when
    /// it changed. The store counts a spec change as a generation: a status
    /// written with one observes it (no second write to catch up).
    pub fn statuses(&self, respecced: &BTreeSet<usize>, now: SystemTime) -> Vec<Action> {
        let mut actions = Vec::new();
        for (i, rs) in self.owned.iter().enumerate() {
            if self.pruned.contains(&i) {
                actions.push(Action::DeleteReplicaSet(ObjectRef::of(&rs.metadata)));
                continue;
            }
            let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
            let mut status = replicasets::status(rs, &self.held.by_rs[i], min_ready, now);
            if respecced.contains(&i) {
                status.observed_generation = rs.metadata.generation.map(|g| g + 1);
            }
            if rs.status.as_ref() != Some(&status) {
                actions.push(Action::UpdateReplicaSetStatus {
                    namespace: rs.namespace().to_string(),
                    name: rs.name().to_string(),
                    status: Box::new(status),
                });
            }
        }
        actions
    }
}

/// The ReplicaSets that must exist before any pod is planned: those of an
/// older hub's revision records, and one for the current template unless
/// paused. `None` when all exist. A name another ReplicaSet already has
/// raises the Deployment's `collisionCount`, which salts the next hash.
pub fn create_first(
    input: &DeploymentInput<'_>,
    owned: &[&ReplicaSet],
    legacy: &[&Revision],
) -> Option<Vec<Action>> {
    let d = input.deployment;
    let taken = |name: &str| input.replica_sets.iter().any(|rs| rs.name() == name);
    let mut actions = Vec::new();
    let mut current_made = owned
        .iter()
        .any(|rs| equal_ignoring_hash(&rs.spec.template, &d.spec.template));
    for r in legacy {
        if owned.iter().any(|rs| hash_of(rs) == Some(r.hash.as_str()))
            || taken(&format!("{}-{}", d.name(), r.hash))
        {
            continue;
        }
        // Its pods are those the Deployment controls directly with its hash.
        let active = input
            .pods
            .iter()
            .filter(|p| controls("Deployment", &d.metadata, &p.metadata) && is_active(p))
            .filter(|p| p.metadata.labels.get(POD_TEMPLATE_HASH) == Some(&r.hash))
            .count();
        let mut rs = replicasets::stamp(d, &r.hash, &r.template, r.revision, count(active));
        rs.metadata.annotations.remove(CHANGE_CAUSE_ANNOTATION);
        if let Some(cause) = &r.change_cause {
            rs.metadata
                .annotations
                .insert(CHANGE_CAUSE_ANNOTATION.into(), cause.clone());
        }
        current_made |= equal_ignoring_hash(&r.template, &d.spec.template);
        actions.push(Action::CreateReplicaSet(Box::new(rs)));
    }
    if !current_made && !d.spec.paused {
        let collisions = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash_with(&d.spec.template, collisions.unwrap_or(0));
        let name = format!("{}-{hash}", d.name());
        let made_now = |a: &Action| matches!(a, Action::CreateReplicaSet(rs) if rs.name() == name);
        if taken(&name) || actions.iter().any(made_now) {
            let mut status = d.status.clone().unwrap_or_default();
            status.collision_count = Some(collisions.unwrap_or(0) + 1);
            return Some(vec![Action::UpdateDeploymentStatus {
                namespace: d.namespace().to_string(),
                name: d.name().to_string(),
                status: Box::new(status),
            }]);
        }
        let max = owned
            .iter()
            .map(|rs| revision(rs))
            .chain(legacy.iter().map(|r| r.revision))
            .max()
            .unwrap_or(0);
        let rs = replicasets::stamp(d, &hash, &d.spec.template, max + 1, 0);
        actions.push(Action::CreateReplicaSet(Box::new(rs)));
    }
    (!actions.is_empty()).then_some(actions)
}

/// The current ReplicaSet's annotations: the Deployment's (but those
/// [`replicasets::NOT_COPIED`]), and the next revision number when an older
/// template came back (undo), the old numbers kept in `revision-history`.
fn current_annotations(d: &Deployment, rs: &ReplicaSet, others_max: i64, want: &mut ReplicaSet) {
    let a = &mut want.metadata.annotations;
    a.extend(replicasets::copied_annotations(d));
    let history = rs.metadata.annotations.get(REVISION_HISTORY_ANNOTATION);
    if let Some((n, history)) = renumber(revision(rs), others_max, history.map(String::as_str)) {
        a.insert(REVISION_ANNOTATION.into(), n.to_string());
        if !history.is_empty() {
            a.insert(REVISION_HISTORY_ANNOTATION.into(), history);
        }
    }
}

/// Old ReplicaSets beyond `revisionHistoryLimit` to delete now, as
/// Kubernetes' `cleanupDeployment` picks them: of the oldest ones over the
/// limit, those scaled to 0 that hold no pod still running or stopping.
pub fn prunable(
    d: &Deployment,
    owned: &[&ReplicaSet],
    held: &Held<'_>,
    wanted: &[i32],
    current: Option<usize>,
) -> BTreeSet<usize> {
    let limit = usize::try_from(d.spec.revision_history_limit.unwrap_or(10)).unwrap_or(0);
    let old: Vec<usize> = (0..owned.len()).filter(|i| Some(*i) != current).collect();
    let excess = old.len().saturating_sub(limit);
    old.into_iter()
        .take(excess)
        .filter(|&i| {
            wanted[i] == 0
                && owned[i].spec.replicas == Some(0)
                && held.by_rs[i].iter().all(|p| is_finished(p))
        })
        .collect()
}
