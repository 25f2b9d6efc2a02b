//! The scheduler: a pure function from (pod, cluster view, image platforms) to
//! a node, or to the reasons no node fits. No I/O and no clock: the caller
//! builds a [`Cluster`] from the store's nodes and bound pods, asks, and writes
//! the binding (or the `Unschedulable` condition) itself.
//!
//! A decision filters every node ([`filters`]: readiness, cordon, taints,
//! node selector and required affinity, volumes' nodes ([`volumes`]),
//! image platforms, host ports, cpu/memory/pod slots), scores the ones left ([`score`]: least allocated,
//! replica spread) and takes the best, ties going to the first node name.
//! When nothing fits, [`Unschedulable`] counts the reasons per node in
//! kube-scheduler's words ([`message`]). [`schedule_batch`] places a queue of
//! pods one after another, each seeing the ones before it.

mod batch;
mod cluster;
mod facts;
mod filters;
mod message;
pub(crate) mod platform;
mod request;
mod score;
#[cfg(test)]
mod tests;
pub mod volumes;

use bramble_api::objects::Pod;

pub use batch::{PendingPod, schedule_batch};
pub use cluster::{Cluster, DEFAULT_MAX_PODS};
pub use facts::{TAINT_NOT_READY, TAINT_UNSCHEDULABLE};
pub use message::{
    NO_NODES, REASON_HOST_PORTS, REASON_INSUFFICIENT_CPU, REASON_INSUFFICIENT_MEMORY,
    REASON_NODE_AFFINITY, REASON_NOT_READY, REASON_TOO_MANY_PODS, REASON_UNSCHEDULABLE,
    Unschedulable, reason_platform, reason_taint,
};
pub use platform::{ImagePlatforms, node_platform};
pub use request::{
    DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST, HostPort, PodRequest, Resources,
};
pub use score::{LEAST_ALLOCATED_WEIGHT, MAX_NODE_SCORE, SPREAD_WEIGHT};

use facts::PodFacts;
use message::Diagnosis;

/// Where a pod goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
    /// The winning weighted score.
    pub score: u64,
    /// Nodes that passed the filters.
    pub feasible: usize,
}

/// The workload a pod belongs to for spreading: its controller owner
/// (`namespace/Kind/name`), `None` for a bare pod.
pub fn workload_key(pod: &Pod) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))?;
    Some(format!("{}/{}/{}", pod.namespace(), owner.kind, owner.name))
}

/// Chooses a node for `pod` (whose replicas of the same workload, if any, are
/// counted in `cluster` under `workload`). Does not change `cluster`: call
/// [`Cluster::assume`] once the binding is written.
pub fn schedule(
    cluster: &Cluster,
    pod: &Pod,
    workload: Option<&str>,
    images: &ImagePlatforms,
) -> Result<Placement, Unschedulable> {
    let facts = PodFacts::new(pod, images);
    decide(cluster, &facts, workload).map(|(i, score, feasible)| Placement {
        node: cluster.nodes[i].name.clone(),
        score,
        feasible,
    })
}

/// Filter, then score: `(node index, score, feasible nodes)`.
pub(crate) fn decide(
    cluster: &Cluster,
    pod: &PodFacts<'_>,
    workload: Option<&str>,
) -> Result<(usize, u64, usize), Unschedulable> {
    if let Some(why) = pod.volumes.and_then(|v| v.blocked.clone()) {
        return Err(Unschedulable {
            nodes: cluster.nodes.len(),
            reasons: Vec::new(),
            blocked: Some(why),
            notes: Vec::new(),
        });
    }
    let mut diagnosis = Diagnosis::default();
    let mut feasible = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        match filters::check(pod, node) {
            Ok(()) => feasible.push(i),
            Err(f) => diagnosis.record(f),
        }
    }
    if feasible.is_empty() {
        let mut u = diagnosis.finish(cluster.nodes.len(), || pod.platforms.describe());
        u.notes = pod.volumes.map(|v| v.notes.clone()).unwrap_or_default();
        return Err(u);
    }

    // Replicas of the workload per node, dense for the scoring loop.
    let mut replicas = Vec::new();
    if let Some(m) = workload.and_then(|w| cluster.replicas.get(w)) {
        replicas.resize(cluster.nodes.len(), 0u32);
        for (&i, &n) in m {
            replicas[i] = n;
        }
    }
    let here = |i: usize| replicas.get(i).copied().unwrap_or(0);
    let most = feasible.iter().map(|&i| here(i)).max().unwrap_or(0);

    let mut best: Option<(usize, u64)> = None;
    for &i in &feasible {
        let s = score::total(
            score::least_allocated(&cluster.nodes[i], pod.request.non_zero),
            score::spread(here(i), most),
        );
        // Strictly greater: among equals the first, i.e. lowest, name stays.
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    let (i, s) = best.expect("feasible is not empty");
    Ok((i, s, feasible.len()))
}
