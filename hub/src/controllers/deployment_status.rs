//! A Deployment's `status`: counts from its pods and the `Available`,
//! `Progressing` and `ReplicaFailure` conditions, with Kubernetes' reasons (kept verbatim, including
//! the ReplicaSet wording, because `kubectl rollout status` and dashboards
//! match on them).

use std::time::{Duration, SystemTime};

use bramble_api::objects::Deployment;
use bramble_api::objects::common::{Condition, find_condition};
use bramble_api::objects::deployment::DeploymentStatus;

use super::pods::{is_available, is_ready};
use super::rollout::Observed;
use super::time;

pub const REASON_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const REASON_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const REASON_COMPLETE: &str = "NewReplicaSetAvailable";
pub const REASON_UPDATED: &str = "ReplicaSetUpdated";
pub const REASON_DEADLINE: &str = "ProgressDeadlineExceeded";
pub const REASON_PAUSED: &str = "DeploymentPaused";
/// `ReplicaFailure` reason when pods could not be created.
pub const REASON_FAILED_CREATE: &str = "FailedCreate";

/// The status `d` should have given what was observed; `acted` says whether
/// this plan creates or deletes pods (progress), `max_unavailable` is the
/// resolved fencepost (0 for `Recreate`), `failed_create` why pods it
/// needs could not be created (a `ReplicaFailure` condition while it lasts).
pub fn compute(
    d: &Deployment,
    o: &Observed<'_>,
    max_unavailable: i32,
    acted: bool,
    failed_create: Option<String>,
) -> DeploymentStatus {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let all = || o.new.iter().chain(o.old.iter());
    let replicas = count(o.new.len() + o.old.len());
    let available = count(
        all()
            .filter(|p| is_available(p, o.min_ready_seconds, o.now))
            .count(),
    );
    let desired = d.replicas();
    let prev = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(replicas),
        updated_replicas: Some(count(o.new.len())),
        ready_replicas: Some(count(all().filter(|p| is_ready(p)).count())),
        available_replicas: Some(available),
        unavailable_replicas: Some((desired.max(replicas) - available).max(0)),
        conditions: prev.conditions.clone(),
        collision_count: prev.collision_count,
    };
    let now = o.now;
    let (st, reason, message) = if available >= desired - max_unavailable {
        (
            "True",
            REASON_AVAILABLE,
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            REASON_UNAVAILABLE,
            "Deployment does not have minimum availability.",
        )
    };
    let c = &mut status.conditions;
    set(c, "Available", st, reason, message.into(), now, false);
    match failed_create {
        Some(m) => set(
            c,
            "ReplicaFailure",
            "True",
            REASON_FAILED_CREATE,
            m,
            now,
            false,
        ),
        None => c.retain(|c| c.type_ != "ReplicaFailure"),
    }

    let name = d.name();
    let counts_changed = (
        prev.replicas,
        prev.updated_replicas,
        prev.ready_replicas,
        prev.available_replicas,
    ) != (
        status.replicas,
        status.updated_replicas,
        status.ready_replicas,
        status.available_replicas,
    );
    let complete = count(o.new.len()) == desired && o.old.is_empty() && available >= desired;
    let current = find_condition(&status.conditions, "Progressing").cloned();
    let deadline = Duration::from_secs(
        u64::try_from(d.spec.progress_deadline_seconds.unwrap_or(600)).unwrap_or(600),
    );
    if d.spec.paused {
        let m = format!("Deployment {name:?} is paused.");
        set(
            &mut status.conditions,
            "Progressing",
            "Unknown",
            REASON_PAUSED,
            m,
            now,
            false,
        );
    } else if complete {
        let m = format!("Deployment {name:?} has successfully progressed.");
        set(
            &mut status.conditions,
            "Progressing",
            "True",
            REASON_COMPLETE,
            m,
            now,
            false,
        );
    } else if acted || counts_changed || current.is_none() {
        let m = format!("Deployment {name:?} is progressing.");
        set(
            &mut status.conditions,
            "Progressing",
            "True",
            REASON_UPDATED,
            m,
            now,
            true,
        );
    } else if let Some(c) = current.filter(|c| c.reason.as_deref() != Some(REASON_DEADLINE))
        && time::elapsed(time::parse(c.last_update_time.as_deref()), deadline, now)
    {
        let m = format!("Deployment {name:?} has timed out progressing.");
        set(
            &mut status.conditions,
            "Progressing",
            "False",
            REASON_DEADLINE,
            m,
            now,
            false,
        );
    }
    status
}

/// Sets condition `type_`; `lastTransitionTime` moves only when the status
/// changes, `lastUpdateTime` when anything changes or `touch` is set.
pub fn set(
    conds: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: SystemTime,
    touch: bool,
) {
    let ts = Some(time::format(now));
    let i = match conds.iter().position(|c| c.type_ == type_) {
        Some(i) => i,
        None => {
            conds.push(Condition {
                type_: type_.into(),
                ..Condition::default()
            });
            conds.len() - 1
        }
    };
    let c = &mut conds[i];
    if c.status != status {
        c.last_transition_time.clone_from(&ts);
    }
    let changed = c.status != status
        || c.reason.as_deref() != Some(reason)
        || c.message.as_deref() != Some(message.as_str());
    if changed || touch {
        c.last_update_time = ts;
    }
    c.status = status.into();
    c.reason = Some(reason.into());
    c.message = Some(message);
}
