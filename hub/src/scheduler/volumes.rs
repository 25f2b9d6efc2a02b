//! What a pod's PersistentVolumeClaims demand of its node, computed once
//! per pod before the filters run (kube-scheduler's VolumeBinding plugin):
//! a bound claim's volume is usable only on the nodes its `nodeAffinity`
//! allows (a `local-path` volume: its one node); a claim still waiting for
//! its first pod, once a pod picked its node, keeps the others there; a
//! claim that is missing, lost, or unbound with nothing to bind it blocks
//! the pod on every node, with a message that says why.

use bramble_api::objects::persistent_volume::HOSTNAME_LABEL;
use bramble_api::objects::scheduling::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use bramble_api::objects::storage_class::LOCAL_PATH_PROVISIONER;
use bramble_api::objects::{Node, Pod};

use crate::claims::{ClaimState, Claims};
use crate::controllers::volumes::local_path_problem;

/// Reason of a node a pod's volume cannot be used on.
pub const REASON_VOLUME_NODE_AFFINITY: &str = "node(s) had volume node affinity conflict";

/// A pod's volume constraints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeNeeds {
    /// The node must match every one of these.
    pub affinities: Vec<NodeSelector>,
    /// No node can take the pod, for this reason.
    pub blocked: Option<String>,
    /// Added to the message when no node fits (a volume's node is gone).
    pub notes: Vec<String>,
}

impl VolumeNeeds {
    /// Whether a node with these labels and name can use the pod's volumes.
    pub fn fit(&self, labels: &std::collections::BTreeMap<String, String>, node: &str) -> bool {
        self.affinities.iter().all(|s| s.matches(labels, node))
    }
}

/// The needs of `pod` given the cluster's claims and nodes.
pub fn needs_of(pod: &Pod, claims: &Claims<'_>, nodes: &[Node]) -> VolumeNeeds {
    let mut needs = VolumeNeeds::default();
    let ns = pod.namespace();
    for v in &pod.spec.volumes {
        let Some(c) = &v.persistent_volume_claim else {
            continue;
        };
        let name = &c.claim_name;
        let block = |why: String| Some(why);
        match claims.state(ns, name) {
            ClaimState::Missing => {
                needs.blocked = block(format!("persistentvolumeclaim {name:?} not found"));
            }
            ClaimState::Lost { volume } => {
                needs.blocked = block(format!(
                    "persistentvolumeclaim {name:?} bound to non-existent persistentvolume {volume:?}"
                ));
            }
            ClaimState::Unbound(_) => {
                needs.blocked = block("pod has unbound immediate PersistentVolumeClaims".into());
            }
            ClaimState::WaitsForConsumer(claim) => {
                if let Some(why) = claims
                    .class_of(claim)
                    .filter(|c| c.provisioner == LOCAL_PATH_PROVISIONER)
                    .and_then(|_| local_path_problem(claim))
                {
                    needs.blocked = Some(why);
                } else if let Some(node) = Claims::selected_node(claim) {
                    needs.affinities.push(on_node(node));
                    if !Claims::node_exists(nodes, node) {
                        needs.notes.push(format!(
                            "persistentvolumeclaim {name:?} is being provisioned on node {node:?}, which is not in the cluster"
                        ));
                    }
                }
            }
            ClaimState::Bound(pv) => {
                if let Some(sel) = pv
                    .spec
                    .node_affinity
                    .as_ref()
                    .and_then(|a| a.required.clone())
                {
                    needs.affinities.push(sel);
                }
                if let Some(node) = pv.pinned_node()
                    && !Claims::node_exists(nodes, node)
                {
                    needs.notes.push(format!(
                        "persistentvolume {:?} of claim {name:?} is on node {node:?}, which is not in the cluster",
                        pv.name()
                    ));
                }
            }
        }
    }
    needs
}

/// A selector for the node named `node`.
fn on_node(node: &str) -> NodeSelector {
    NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: vec![NodeSelectorRequirement {
                key: HOSTNAME_LABEL.into(),
                operator: "In".into(),
                values: vec![node.to_string()],
            }],
            match_fields: Vec::new(),
        }],
    }
}
