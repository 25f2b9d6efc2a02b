//! The scheduler's view of the cluster: each node's facts (readiness, labels,
//! taints, platform, allocatable) and what is already placed on it (requests,
//! pod count, host ports, replicas per workload).
//!
//! Built from the store's `Node` objects and bound pods; [`Cluster::assume`]
//! accounts for a placement so that the next decision sees it.

use std::collections::{BTreeMap, HashMap};

use bramble_api::objects::node::Taint;
use bramble_api::objects::{Node, Pod};
use bramble_images::Platform;

use super::platform::node_platform;
use super::request::{HostPort, PodRequest, Resources};

/// Pod slots of a node that reports no `pods` allocatable (the kubelet's
/// default `maxPods`).
pub const DEFAULT_MAX_PODS: u64 = 110;

/// One node as the filters and scores see it.
#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub name: String,
    /// `Ready` condition is `True`.
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    pub labels: BTreeMap<String, String>,
    /// Only the `NoSchedule` and `NoExecute` taints: the ones that filter.
    pub taints: Vec<Taint>,
    pub platform: Option<Platform>,
    pub allocatable: Resources,
    pub max_pods: u64,
    /// Sum of the effective requests of the pods on the node.
    pub requested: Resources,
    /// The same with the non-zero defaults, for scoring.
    pub non_zero_requested: Resources,
    pub pods: u64,
    pub host_ports: Vec<HostPort>,
}

impl NodeState {
    fn new(node: &Node) -> NodeState {
        let status = node.status.as_ref();
        // Allocatable, else capacity; a resource reported by neither is 0, so
        // nothing that requests it fits (as in Kubernetes).
        let amount = |name: &str, f: fn(&bramble_api::quantity::Quantity) -> Option<u64>| {
            status
                .and_then(|s| s.allocatable.get(name).or_else(|| s.capacity.get(name)))
                .and_then(f)
        };
        NodeState {
            name: node.name().to_string(),
            ready: node.is_ready(),
            unschedulable: node.spec.unschedulable,
            labels: node.metadata.labels.clone(),
            taints: node
                .spec
                .taints
                .iter()
                .filter(|t| matches!(t.effect.as_str(), "NoSchedule" | "NoExecute"))
                .cloned()
                .collect(),
            platform: node_platform(node),
            allocatable: Resources {
                cpu_millis: amount("cpu", |q| q.to_millis().ok()).unwrap_or(0),
                memory_bytes: amount("memory", |q| q.to_bytes().ok()).unwrap_or(0),
            },
            max_pods: amount("pods", |q| q.value().ok()).unwrap_or(DEFAULT_MAX_PODS),
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            pods: 0,
            host_ports: Vec::new(),
        }
    }
}

/// Nodes (sorted by name: the tie-break order) and what runs on them.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub(crate) nodes: Vec<NodeState>,
    by_name: HashMap<String, usize>,
    /// Workload key -> node index -> replicas there.
    pub(crate) replicas: HashMap<String, HashMap<usize, u32>>,
}

impl Cluster {
    /// A cluster of `nodes` with nothing placed yet; add the bound pods with
    /// [`Cluster::add_pod`]. A name given twice keeps the last node.
    pub fn new<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> Cluster {
        let mut by_name: BTreeMap<&str, &Node> = BTreeMap::new();
        for n in nodes {
            by_name.insert(n.name(), n);
        }
        let nodes: Vec<NodeState> = by_name.values().map(|n| NodeState::new(n)).collect();
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        Cluster {
            nodes,
            by_name,
            replicas: HashMap::new(),
        }
    }

    /// Accounts for a pod already bound to a node (`spec.nodeName`), with its
    /// workload key (see [`super::workload_key`]). Pods that are finished
    /// (`Succeeded`, `Failed`) hold nothing and are skipped, as are pods bound
    /// to a node not in the cluster. Returns whether the pod was counted.
    pub fn add_pod(&mut self, pod: &Pod, workload: Option<&str>) -> bool {
        if matches!(pod.phase(), "Succeeded" | "Failed") {
            return false;
        }
        match pod.node_name() {
            Some(node) => self.assume(node, pod, workload),
            None => false,
        }
    }

    /// Accounts for `pod` placed on `node` (by the scheduler, before the store
    /// has the binding). Returns false when the node is unknown.
    pub fn assume(&mut self, node: &str, pod: &Pod, workload: Option<&str>) -> bool {
        let Some(&i) = self.by_name.get(node) else {
            return false;
        };
        self.place(i, &PodRequest::of(&pod.spec), workload);
        true
    }

    pub(crate) fn place(&mut self, i: usize, req: &PodRequest, workload: Option<&str>) {
        let n = &mut self.nodes[i];
        n.requested.add(req.requests);
        n.non_zero_requested.add(req.non_zero);
        n.pods += 1;
        n.host_ports.extend(req.host_ports.iter().cloned());
        if let Some(w) = workload {
            let per_node = match self.replicas.get_mut(w) {
                Some(m) => m,
                None => self.replicas.entry(w.to_string()).or_default(),
            };
            *per_node.entry(i).or_insert(0) += 1;
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node names in tie-break order.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.name.as_str())
    }

    /// Pods counted on `node`.
    pub fn pods_on(&self, node: &str) -> u64 {
        self.by_name.get(node).map_or(0, |&i| self.nodes[i].pods)
    }

    /// Summed effective requests of the pods counted on `node`.
    pub fn requested_on(&self, node: &str) -> Resources {
        self.by_name
            .get(node)
            .map_or_else(Resources::default, |&i| self.nodes[i].requested)
    }

    /// Replicas of `workload` counted on `node`.
    pub fn replicas_on(&self, workload: &str, node: &str) -> u32 {
        let Some(i) = self.by_name.get(node) else {
            return 0;
        };
        self.replicas
            .get(workload)
            .and_then(|m| m.get(i))
            .copied()
            .unwrap_or(0)
    }
}
