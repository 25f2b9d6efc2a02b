//! Which pods go first when scaling down: Kubernetes' `ActivePods` order.
//!
//! Earlier in the order is deleted first: unscheduled before scheduled;
//! `Pending` before `Unknown` before `Running`; not ready before ready; ready
//! for less time before ready for longer; more restarts before fewer; newer
//! before older. Names break the remaining ties so plans are deterministic.

use std::cmp::{Ordering, Reverse};

use bramble_api::objects::Pod;

use super::pods::{is_ready, ready_since};
use super::time;

fn phase_rank(pod: &Pod) -> u8 {
    match pod.phase() {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

/// `Less` when `a` should be deleted before `b`.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let restarts = |p: &Pod| p.status.as_ref().map_or(0, |s| s.restart_count());
    let created = |p: &Pod| time::parse(p.metadata.creation_timestamp.as_deref());
    a.node_name()
        .is_some()
        .cmp(&b.node_name().is_some())
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(is_ready(a).cmp(&is_ready(b)))
        // Both ready: the more recently ready goes first (unknown times tie).
        .then_with(|| match (is_ready(a), ready_since(a), ready_since(b)) {
            (true, Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then(Reverse(restarts(a)).cmp(&Reverse(restarts(b))))
        .then_with(|| match (created(a), created(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.name().cmp(b.name()))
}

/// Sorts `pods` so that the first should be deleted first.
pub fn sort_for_deletion(pods: &mut [&Pod]) {
    pods.sort_by(|a, b| deletion_order(a, b));
}
