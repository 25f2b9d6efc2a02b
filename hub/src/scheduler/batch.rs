//! Scheduling a queue of pending pods in one go: each decision sees the
//! placements before it (requests, host ports, replicas), so six replicas on
//! three equal nodes land two per node, and a full node stops taking pods
//! within the batch.

use bramble_api::objects::Pod;

use super::cluster::Cluster;
use super::facts::PodFacts;
use super::message::Unschedulable;
use super::platform::ImagePlatforms;
use super::volumes::VolumeNeeds;
use super::{Placement, decide};

/// A pod waiting for a node, with its workload key (see [`super::workload_key`]).
#[derive(Debug, Clone, Copy)]
pub struct PendingPod<'a> {
    pub pod: &'a Pod,
    pub workload: Option<&'a str>,
    /// What its PersistentVolumeClaims demand ([`super::volumes::needs_of`]).
    pub volumes: Option<&'a VolumeNeeds>,
}

/// Schedules `pending` in order, accounting each placement in `cluster`; one
/// result per pod, in the same order. The caller decides the order (e.g.
/// creation time) and writes the bindings.
pub fn schedule_batch(
    cluster: &mut Cluster,
    pending: &[PendingPod<'_>],
    images: &ImagePlatforms,
) -> Vec<Result<Placement, Unschedulable>> {
    pending
        .iter()
        .map(|p| {
            let mut facts = PodFacts::new(p.pod, images);
            facts.volumes = p.volumes;
            let (i, score, feasible) = decide(cluster, &facts, p.workload)?;
            cluster.place(i, &facts.request, p.workload);
            Ok(Placement {
                node: cluster.nodes[i].name.clone(),
                score,
                feasible,
            })
        })
        .collect()
}
