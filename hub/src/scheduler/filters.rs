//! The filters: whether a pod may go on a node at all. They run in
//! kube-scheduler's plugin order (NodeUnschedulable, TaintToleration,
//! NodeAffinity, NodePorts, NodeResourcesFit), with Bramble's readiness check
//! first and its platform check after node affinity; a node is reported with
//! the first filter it fails only (the fit filter names every resource short).

use bramble_api::objects::node::Taint;

use super::cluster::NodeState;
use super::facts::PodFacts;

/// Why one node cannot take the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure<'n> {
    /// `Ready` is not `True`.
    NotReady,
    /// Cordoned (`spec.unschedulable`).
    Unschedulable,
    /// The first `NoSchedule`/`NoExecute` taint the pod does not tolerate.
    Taint(&'n Taint),
    /// `nodeSelector` or required node affinity does not match.
    NodeAffinity,
    /// A volume of the pod cannot be used there (kube-scheduler's
    /// VolumeBinding filter, which runs after NodeAffinity).
    VolumeAffinity,
    /// Some image has no build for the node's platform.
    Platform,
    /// A host port is taken.
    HostPorts,
    /// Not enough room; each flag is one reason.
    Resources(Shortage),
}

/// Which resources are short on a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shortage {
    pub pods: bool,
    pub cpu: bool,
    pub memory: bool,
}

/// Runs every filter; `Ok` when the node fits.
pub(crate) fn check<'n>(pod: &PodFacts<'_>, node: &'n NodeState) -> Result<(), Failure<'n>> {
    if !node.ready && !pod.tolerates_not_ready {
        return Err(Failure::NotReady);
    }
    if node.unschedulable && !pod.tolerates_unschedulable {
        return Err(Failure::Unschedulable);
    }
    if let Some(t) = untolerated_taint(pod, node) {
        return Err(Failure::Taint(t));
    }
    if !matches_affinity(pod, node) {
        return Err(Failure::NodeAffinity);
    }
    if pod
        .volumes
        .is_some_and(|v| !v.fit(&node.labels, &node.name))
    {
        return Err(Failure::VolumeAffinity);
    }
    if !pod.platforms.accepts(node.platform.as_ref()) {
        return Err(Failure::Platform);
    }
    if !ports_free(pod, node) {
        return Err(Failure::HostPorts);
    }
    let s = shortage(pod, node);
    if s != Shortage::default() {
        return Err(Failure::Resources(s));
    }
    Ok(())
}

/// The first filtering taint no toleration of the pod tolerates.
fn untolerated_taint<'n>(pod: &PodFacts<'_>, node: &'n NodeState) -> Option<&'n Taint> {
    node.taints
        .iter()
        .find(|t| !pod.tolerations.iter().any(|tol| tol.tolerates(t)))
}

/// `nodeSelector` (every label equal) and required node affinity (any term).
fn matches_affinity(pod: &PodFacts<'_>, node: &NodeState) -> bool {
    pod.node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
        && pod
            .required_affinity
            .is_none_or(|sel| sel.matches(&node.labels, &node.name))
}

fn ports_free(pod: &PodFacts<'_>, node: &NodeState) -> bool {
    pod.request
        .host_ports
        .iter()
        .all(|want| !node.host_ports.iter().any(|used| used.conflicts(want)))
}

/// kube-scheduler's `fitsRequest` for pods, cpu and memory: a resource the pod
/// requests none of is never short.
fn shortage(pod: &PodFacts<'_>, node: &NodeState) -> Shortage {
    let want = pod.request.requests;
    let free = |alloc: u64, used: u64| alloc.saturating_sub(used);
    Shortage {
        pods: node.pods + 1 > node.max_pods,
        cpu: want.cpu_millis > 0
            && want.cpu_millis > free(node.allocatable.cpu_millis, node.requested.cpu_millis),
        memory: want.memory_bytes > 0
            && want.memory_bytes > free(node.allocatable.memory_bytes, node.requested.memory_bytes),
    }
}
