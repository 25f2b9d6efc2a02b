//! A StatefulSet's status as Kubernetes' StatefulSet controller computes
//! it: counts over every pod it owns (`replicas`, `readyReplicas`,
//! `availableReplicas` for `minReadySeconds`, `currentReplicas` and
//! `updatedReplicas` by the pods' `controller-revision-hash`), the
//! revisions, `observedGeneration`, `collisionCount` 0, and a
//! `ReplicaFailure` condition while Pod Security refuses its pods.

use bramble_api::objects::statefulset::StatefulSetStatus;
use bramble_api::objects::{Pod, StatefulSet};

use super::deployment_status::{REASON_FAILED_CREATE, set as set_condition};
use super::pods::is_available;
use super::statefulset::{StatefulSetInput, revision_of, running_and_ready, terminating};
use crate::admission::pod_security::forbidden_message;

/// The status Kubernetes computes: counts over the created pods; the
/// current revision catches up with the update revision once every pod
/// runs it and is ready.
pub(super) fn status(
    sts: &StatefulSet,
    owned: &[&Pod],
    current: &str,
    update: &str,
    refused_create: bool,
    input: StatefulSetInput<'_>,
) -> StatefulSetStatus {
    let min_ready = sts.spec.min_ready_seconds.unwrap_or(0);
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let live = || owned.iter().filter(|p| !terminating(p));
    let ready = owned.iter().filter(|p| running_and_ready(p));
    let mut s = StatefulSetStatus {
        observed_generation: sts.metadata.generation,
        replicas: count(owned.len()),
        ready_replicas: count(ready.clone().count()),
        available_replicas: count(
            ready
                .filter(|p| is_available(p, min_ready, input.now))
                .count(),
        ),
        current_replicas: count(live().filter(|p| revision_of(p) == Some(current)).count()),
        updated_replicas: count(live().filter(|p| revision_of(p) == Some(update)).count()),
        current_revision: current.to_string(),
        update_revision: update.to_string(),
        collision_count: Some(
            sts.status
                .as_ref()
                .and_then(|s| s.collision_count)
                .unwrap_or(0),
        ),
        conditions: sts
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
    };
    if s.updated_replicas == s.replicas && s.ready_replicas == s.replicas {
        s.current_revision = update.to_string();
        s.current_replicas = s.updated_replicas;
    }
    match input.refused.filter(|_| refused_create) {
        Some(why) => set_condition(
            &mut s.conditions,
            "ReplicaFailure",
            "True",
            REASON_FAILED_CREATE,
            forbidden_message("pods", &format!("{}-", sts.name()), why),
            input.now,
            false,
        ),
        None => s.conditions.retain(|c| c.type_ != "ReplicaFailure"),
    }
    s
}
