//! What the scheduler needs to know about one pod, computed once per decision
//! rather than once per node.

use std::collections::BTreeMap;

use bramble_api::objects::Pod;
use bramble_api::objects::node::Taint;
use bramble_api::objects::scheduling::{NodeSelector, Toleration};

use super::platform::{ImagePlatforms, PlatformNeeds};
use super::request::PodRequest;
use super::volumes::VolumeNeeds;

/// Taint the node lifecycle puts on a node that is not Ready; a pod tolerating
/// it (with effect `NoSchedule`) may be placed on such a node.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Taint of a cordoned node; a pod tolerating it (`NoSchedule`) ignores the cordon.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// A pod, prepared for the filters and scores.
#[derive(Debug)]
pub(crate) struct PodFacts<'a> {
    pub request: PodRequest,
    pub platforms: PlatformNeeds<'a>,
    pub node_selector: &'a BTreeMap<String, String>,
    pub required_affinity: Option<&'a NodeSelector>,
    pub tolerations: &'a [Toleration],
    pub tolerates_not_ready: bool,
    pub tolerates_unschedulable: bool,
    /// What its claims demand (none: no claims, or not looked up).
    pub volumes: Option<&'a VolumeNeeds>,
}

impl<'a> PodFacts<'a> {
    pub fn new(pod: &'a Pod, images: &'a ImagePlatforms) -> PodFacts<'a> {
        let spec = &pod.spec;
        let tolerates = |key: &str| {
            let t = Taint {
                key: key.into(),
                effect: "NoSchedule".into(),
                ..Taint::default()
            };
            spec.tolerations.iter().any(|tol| tol.tolerates(&t))
        };
        PodFacts {
            request: PodRequest::of(spec),
            platforms: PlatformNeeds::of(spec, images),
            node_selector: &spec.node_selector,
            required_affinity: spec
                .affinity
                .as_ref()
                .and_then(|a| a.required_node_selector()),
            tolerations: &spec.tolerations,
            tolerates_not_ready: tolerates(TAINT_NOT_READY),
            tolerates_unschedulable: tolerates(TAINT_UNSCHEDULABLE),
            volumes: None,
        }
    }
}
