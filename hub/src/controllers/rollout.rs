//! One step of a Deployment rollout: how many pods of the current template to
//! create and which pods to delete, for `RollingUpdate` and `Recreate`.
//!
//! Follows Kubernetes' `rolloutRolling`: scale the new pods up within
//! `replicas + maxSurge`, and when nothing was created scale old pods down
//! while at least `replicas - maxUnavailable` pods stay available — old pods
//! that are not available go first, as they cost no availability. A step
//! is in pods: "replicas of a ReplicaSet" is "its active pods", and the
//! Deployment controller sets each ReplicaSet's `spec.replicas` from the
//! step.

use std::time::SystemTime;

use bramble_api::intstr::IntOrString;
use bramble_api::objects::{Deployment, Pod};

use super::pods::is_available;
use super::rank::sort_for_deletion;

/// `maxSurge` and `maxUnavailable` resolved against `replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fenceposts {
    pub max_surge: i32,
    pub max_unavailable: i32,
}

/// Kubernetes `ResolveFenceposts`: surge rounds up, unavailable down; both
/// zero (possible through rounding) makes unavailable 1. Unavailable never
/// exceeds `replicas`. Unparsable values count as 0 (admission refuses them).
pub fn fenceposts(d: &Deployment) -> Fenceposts {
    let replicas = d.replicas();
    let ru = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::from("25%");
    let surge = ru.and_then(|r| r.max_surge.as_ref()).unwrap_or(&default);
    let unavailable = ru
        .and_then(|r| r.max_unavailable.as_ref())
        .unwrap_or(&default);
    let max_surge = surge.scaled_value(replicas, true).unwrap_or(0).max(0);
    let mut max_unavailable = unavailable
        .scaled_value(replicas, false)
        .unwrap_or(0)
        .max(0);
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    Fenceposts {
        max_surge,
        max_unavailable: max_unavailable.min(replicas),
    }
}

/// The pods of one Deployment, as a step sees them.
#[derive(Debug)]
pub struct Observed<'a> {
    /// Active pods of the current template.
    pub new: Vec<&'a Pod>,
    /// Active pods of older templates.
    pub old: Vec<&'a Pod>,
    /// Old pods being deleted or not yet finished stopping (for `Recreate`).
    pub old_terminating: usize,
    pub min_ready_seconds: i32,
    pub now: SystemTime,
}

/// What one step does.
#[derive(Debug, Default, PartialEq)]
pub struct Step<'a> {
    /// New pods to create from the current template.
    pub create: usize,
    /// Pods to delete, with the reason.
    pub delete: Vec<(&'a Pod, &'static str)>,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn available(pods: &[&Pod], o: &Observed<'_>) -> i32 {
    count(
        pods.iter()
            .filter(|p| is_available(p, o.min_ready_seconds, o.now))
            .count(),
    )
}

/// New pods beyond `replicas`, worst first.
fn trim_new<'a>(replicas: i32, o: &Observed<'a>, step: &mut Step<'a>) {
    let excess = usize::try_from(count(o.new.len()) - replicas).unwrap_or(0);
    let mut new = o.new.clone();
    sort_for_deletion(&mut new);
    step.delete
        .extend(new.into_iter().take(excess).map(|p| (p, "ScaleDown")));
}

/// A `RollingUpdate` step.
pub fn rolling<'a>(replicas: i32, fp: Fenceposts, o: &Observed<'a>) -> Step<'a> {
    let mut step = Step::default();
    let new = count(o.new.len());
    if new > replicas {
        trim_new(replicas, o, &mut step);
        return step;
    }
    let total = new + count(o.old.len());
    let max_total = replicas + fp.max_surge;
    if total < max_total && new < replicas {
        step.create = usize::try_from((max_total - total).min(replicas - new)).unwrap_or(0);
        return step;
    }
    if o.old.is_empty() {
        return step;
    }
    let min_available = replicas - fp.max_unavailable;
    let new_unavailable = new - available(&o.new, o);
    let max_scaled_down = total - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return step;
    }
    let (mut unhealthy, mut healthy): (Vec<&Pod>, Vec<&Pod>) = o
        .old
        .iter()
        .partition(|p| !is_available(p, o.min_ready_seconds, o.now));
    sort_for_deletion(&mut unhealthy);
    let cleanup = usize::try_from(max_scaled_down)
        .unwrap_or(0)
        .min(unhealthy.len());
    step.delete.extend(
        unhealthy
            .into_iter()
            .take(cleanup)
            .map(|p| (p, "RollingUpdate")),
    );
    // Deleting an available pod lowers availability by one; stop at the floor.
    let all_available = available(&o.new, o) + available(&o.old, o);
    let budget = usize::try_from(all_available - min_available).unwrap_or(0);
    sort_for_deletion(&mut healthy);
    step.delete.extend(
        healthy
            .into_iter()
            .take(budget)
            .map(|p| (p, "RollingUpdate")),
    );
    step
}

/// A `Recreate` step: delete every old pod, wait until they are gone, then
/// bring the new pods up to `replicas`.
pub fn recreate<'a>(replicas: i32, o: &Observed<'a>) -> Step<'a> {
    let mut step = Step::default();
    if !o.old.is_empty() {
        let mut old = o.old.clone();
        sort_for_deletion(&mut old);
        step.delete.extend(old.into_iter().map(|p| (p, "Recreate")));
        return step;
    }
    if o.old_terminating > 0 {
        return step;
    }
    let new = count(o.new.len());
    if new > replicas {
        trim_new(replicas, o, &mut step);
    } else {
        step.create = usize::try_from(replicas - new).unwrap_or(0);
    }
    step
}
