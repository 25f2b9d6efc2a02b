//! Scores of the nodes that passed the filters, each in `0..=MAX_NODE_SCORE`,
//! summed with fixed weights; the highest total wins, and among equal totals
//! the node whose name sorts first (so decisions are reproducible).
//!
//! - **Least allocated** (kube-scheduler's `NodeResourcesFit` default): for cpu
//!   and memory, the free fraction of allocatable after placing the pod, with
//!   the non-zero request defaults; the two averaged. Fills nodes evenly.
//! - **Spread**: fewer replicas of the pod's workload on a node score higher:
//!   `MAX * (most - here) / most` over the feasible nodes, all `MAX` when none
//!   has a replica (kube-scheduler's former `SelectorSpread`). Puts replicas on
//!   different boards so one board failing takes few of them down.
//!
//! Spread weighs double, as kube-scheduler weighs its replica spreading
//! (`PodTopologySpread`, 2) against `NodeResourcesFit` (1): availability first,
//! balance second.

use super::cluster::NodeState;
use super::request::Resources;

/// Upper bound of each score.
pub const MAX_NODE_SCORE: u64 = 100;
/// Weight of the least-allocated score.
pub const LEAST_ALLOCATED_WEIGHT: u64 = 1;
/// Weight of the replica-spread score.
pub const SPREAD_WEIGHT: u64 = 2;

/// Least-allocated score of `node` with a pod of non-zero requests `pod` added.
pub(crate) fn least_allocated(node: &NodeState, pod: Resources) -> u64 {
    let free = |capacity: u64, requested: u64| {
        if capacity == 0 || requested > capacity {
            0
        } else {
            let free = capacity - requested;
            match free.checked_mul(MAX_NODE_SCORE) {
                Some(x) => x / capacity,
                // Above 184 PB free; exact in u128 rather than wrong.
                None => {
                    (u128::from(free) * u128::from(MAX_NODE_SCORE) / u128::from(capacity)) as u64
                }
            }
        }
    };
    let cpu = free(
        node.allocatable.cpu_millis,
        node.non_zero_requested
            .cpu_millis
            .saturating_add(pod.cpu_millis),
    );
    let memory = free(
        node.allocatable.memory_bytes,
        node.non_zero_requested
            .memory_bytes
            .saturating_add(pod.memory_bytes),
    );
    (cpu + memory) / 2
}

/// Spread score of a node holding `here` replicas when the fullest feasible
/// node holds `most`.
pub(crate) fn spread(here: u32, most: u32) -> u64 {
    if most == 0 {
        MAX_NODE_SCORE
    } else {
        MAX_NODE_SCORE * u64::from(most - here.min(most)) / u64::from(most)
    }
}

/// The weighted total.
pub(crate) fn total(least_allocated: u64, spread: u64) -> u64 {
    LEAST_ALLOCATED_WEIGHT * least_allocated + SPREAD_WEIGHT * spread
}
