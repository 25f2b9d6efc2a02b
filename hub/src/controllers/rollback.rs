//! Rollbacks that happen by themselves: a Deployment annotated
//! `bramble.dev/rollback-on-failure: "true"` whose rollout exceeds its
//! `progressDeadlineSeconds` (`Progressing=False`,
//! `ProgressDeadlineExceeded`) is rolled back to the newest revision that
//! was ever fully available, and says why: the `bramble.dev/rolled-back`
//! annotation and the change cause (which `rollout history` shows for the
//! revision it makes), and a `DeploymentRollback` event.
//!
//! "Fully available" is recorded as it happens: when a Deployment's rollout
//! has completed (`NewReplicaSetAvailable`) and every pod of its current
//! ReplicaSet has been ready for [`STABLE_FOR`] (or `minReadySeconds`, if
//! longer), that ReplicaSet is marked `bramble.dev/fully-available`. A
//! container that crashes right after it starts is ready for an instant
//! (without a readiness probe, a running container is ready): its release
//! completes, but never counts as available. A Deployment none of whose
//! revisions ever was stays where it is, stuck, as without the annotation.
//! Pure.

use bramble_api::objects::common::find_condition;
use bramble_api::objects::deployment::DeploymentStatus;
use std::time::{Duration, SystemTime};

use bramble_api::objects::{Deployment, Pod, ReplicaSet};

use super::action::Action;
use super::deployment_status::{REASON_COMPLETE, REASON_DEADLINE};
use super::naming::POD_TEMPLATE_HASH;
use super::pods::ready_since;
use super::replicasets::revision;

/// Opt-in annotation on a Deployment.
pub const ROLLBACK_ON_FAILURE: &str = "bramble.dev/rollback-on-failure";
/// Mark on a ReplicaSet whose rollout once completed.
pub const FULLY_AVAILABLE: &str = "bramble.dev/fully-available";
/// On a Deployment the hub rolled back: when, from and to which revision, why.
pub const ROLLED_BACK: &str = "bramble.dev/rolled-back";
/// How long every pod of a completed rollout must have been ready before
/// its revision counts as fully available.
pub const STABLE_FOR: Duration = Duration::from_secs(10);

/// The mark and rollback actions for `d` given its new `status`, its
/// ReplicaSets `owned`, the index of the current one and its active pods.
pub fn plan(
    d: &Deployment,
    status: &DeploymentStatus,
    owned: &[&ReplicaSet],
    current: Option<usize>,
    new_pods: &[&Pod],
    now: SystemTime,
) -> Vec<Action> {
    let Some(cur) = current.map(|i| owned[i]) else {
        return Vec::new();
    };
    let progressing = find_condition(&status.conditions, "Progressing");
    let reason = progressing.and_then(|c| c.reason.as_deref());
    if reason == Some(REASON_COMPLETE) && progressing.is_some_and(|c| c.status == "True") {
        let min_ready =
            Duration::from_secs(u64::try_from(d.spec.min_ready_seconds.unwrap_or(0)).unwrap_or(0));
        let stable = STABLE_FOR.max(min_ready);
        let settled = !new_pods.is_empty()
            && new_pods
                .iter()
                .all(|p| ready_since(p).is_some_and(|t| t + stable <= now));
        if !settled || cur.metadata.annotations.contains_key(FULLY_AVAILABLE) {
            return Vec::new();
        }
        return vec![Action::MarkFullyAvailable {
            namespace: cur.namespace().to_string(),
            name: cur.name().to_string(),
        }];
    }
    let opted_in = d
        .metadata
        .annotations
        .get(ROLLBACK_ON_FAILURE)
        .is_some_and(|v| v == "true");
    let failed =
        reason == Some(REASON_DEADLINE) && progressing.is_some_and(|c| c.status == "False");
    if !opted_in || !failed || cur.metadata.annotations.contains_key(FULLY_AVAILABLE) {
        return Vec::new();
    }
    let Some(target) = owned
        .iter()
        .filter(|rs| {
            rs.name() != cur.name() && rs.metadata.annotations.contains_key(FULLY_AVAILABLE)
        })
        .max_by_key(|rs| revision(rs))
    else {
        return Vec::new();
    };
    let mut template = target.spec.template.clone();
    template.metadata.labels.remove(POD_TEMPLATE_HASH);
    let deadline = d.spec.progress_deadline_seconds.unwrap_or(600);
    let why = progressing
        .and_then(|c| c.message.as_deref())
        .unwrap_or("the rollout timed out");
    vec![Action::RollBack {
        namespace: d.namespace().to_string(),
        name: d.name().to_string(),
        uid: d.metadata.uid.clone(),
        template: Box::new(template),
        why: format!(
            "revision {} made no progress for {deadline}s ({REASON_DEADLINE}: {why}); rolled back to revision {}, the last fully available",
            revision(cur),
            revision(target)
        ),
        to_revision: revision(target),
    }]
}
