//! The DaemonSet controller: one pod per matching node, created already bound
//! to it (`spec.nodeName`), removed when the node stops matching or is gone,
//! and replaced node by node within `maxUnavailable` when the template
//! changes (`RollingUpdate`; `OnDelete` waits for the user to delete pods).
//!
//! Whether a node should run the pod is the scheduler's own filter chain on a
//! one-node cluster, with Kubernetes' DaemonSet tolerations added to the pod
//! (not-ready, unreachable, unschedulable, pressure) so that readiness and
//! cordons do not count. Failing only on room (cpu, memory, pod slots, host
//! ports) still counts as matching: the pod is created and the agent admits
//! it or not, as the kubelet would. Taints, `nodeSelector`, required node
//! affinity and image platforms decide. Not implemented: `maxSurge` for
//! DaemonSets (pods are replaced delete-first), and keeping pods on nodes
//! that gained a `NoSchedule` taint (any untolerated taint removes them).
//! Pods that Pod Security now refuses are not created (see
//! [`DaemonSetInput::refused`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use bramble_api::intstr::IntOrString;
use bramble_api::objects::daemonset::DaemonSetStatus;
use bramble_api::objects::scheduling::Toleration;
use bramble_api::objects::{DaemonSet, Node, Pod};

use super::action::{Action, PodRef};
use super::deployment_status::{REASON_FAILED_CREATE, set as set_condition};
use super::naming::{pod_names, template_hash};
use super::pods::{
    from_template, is_active, is_available, is_controlled_by, is_finished, is_ready,
};
use super::rank::sort_for_deletion;
use crate::admission::pod_security::forbidden_message;
use crate::scheduler::{self, Cluster, ImagePlatforms};

/// Label of DaemonSet pods carrying the hash of their template.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// Tolerations every DaemonSet pod gets (Kubernetes `AddOrUpdateDaemonPodTolerations`).
pub const DAEMON_TOLERATIONS: &[(&str, &str)] = &[
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

/// Scheduler reasons that do not stop a DaemonSet pod from belonging on a node.
const ROOM_REASONS: &[&str] = &[
    scheduler::REASON_HOST_PORTS,
    scheduler::REASON_TOO_MANY_PODS,
    scheduler::REASON_INSUFFICIENT_CPU,
    scheduler::REASON_INSUFFICIENT_MEMORY,
];

/// What the DaemonSet controller reads for one DaemonSet.
#[derive(Debug, Clone, Copy)]
pub struct DaemonSetInput<'a> {
    pub daemonset: &'a DaemonSet,
    pub nodes: &'a [Node],
    /// Pods of the namespace (others are ignored).
    pub pods: &'a [Pod],
    /// Image platforms from the registry, for the platform filter.
    pub images: &'a ImagePlatforms,
    /// Why Pod Security refuses the template's pods now (`violates
    /// PodSecurity ...`): none are created, and a `ReplicaFailure`
    /// condition says why (Bramble's stand-in for Kubernetes'
    /// `FailedCreate` events, which it does not have).
    pub refused: Option<&'a str>,
    pub now: SystemTime,
}

/// The pod `ds` stamps (without name and node), tolerations added.
pub fn daemon_pod(ds: &DaemonSet, hash: &str) -> Pod {
    let mut pod = from_template(
        &ds.spec.template,
        String::new(),
        "DaemonSet",
        &ds.metadata,
        &[(CONTROLLER_REVISION_HASH, hash)],
    );
    for (key, effect) in DAEMON_TOLERATIONS {
        let t = Toleration {
            key: Some((*key).into()),
            operator: Some("Exists".into()),
            effect: Some((*effect).into()),
            ..Toleration::default()
        };
        if !pod.spec.tolerations.contains(&t) {
            pod.spec.tolerations.push(t);
        }
    }
    pod
}

/// Whether `pod` (from [`daemon_pod`]) belongs on `node`.
pub fn should_run(pod: &Pod, node: &Node, images: &ImagePlatforms) -> bool {
    // The filters run readiness and cordon first; the daemon tolerations
    // cover NoExecute/NoSchedule, so tolerate every effect of those two here.
    let mut pod = pod.clone();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unschedulable",
    ] {
        pod.spec.tolerations.push(Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            ..Toleration::default()
        });
    }
    let cluster = Cluster::new(std::iter::once(node));
    match scheduler::schedule(&cluster, &pod, None, images) {
        Ok(_) => true,
        Err(u) => u
            .reasons
            .iter()
            .all(|(r, _)| ROOM_REASONS.contains(&r.as_str())),
    }
}

/// Plans one DaemonSet. Applying the actions and planning again converges.
pub fn plan_daemonset(input: DaemonSetInput<'_>) -> Vec<Action> {
    let ds = input.daemonset;
    if ds.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let hash = template_hash(&ds.spec.template);
    let template = daemon_pod(ds, &hash);
    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
    let owned: Vec<&Pod> = input
        .pods
        .iter()
        .filter(|p| is_controlled_by(p, "DaemonSet", &ds.metadata))
        .collect();
    let mut by_node: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
    let mut deletes: Vec<(&Pod, &'static str)> = Vec::new();
    let nodes: BTreeMap<&str, &Node> = input.nodes.iter().map(|n| (n.name(), n)).collect();
    for p in &owned {
        match p.node_name().filter(|n| nodes.contains_key(n)) {
            Some(n) => by_node.entry(n).or_default().push(p),
            None if is_active(p) || p.phase() == "Failed" => deletes.push((p, "NodeGone")),
            None => {}
        }
    }

    let current = |p: &Pod| p.metadata.labels.get(CONTROLLER_REVISION_HASH) == Some(&hash);
    let mut create: Vec<&str> = Vec::new();
    // Per node that should run: the one pod kept there, if any.
    let mut kept: Vec<(&str, Option<&Pod>)> = Vec::new();
    let mut misscheduled = 0;
    for (name, node) in &nodes {
        let pods = by_node.get(name).map_or(&[][..], Vec::as_slice);
        for p in pods.iter().filter(|p| p.phase() == "Failed") {
            deletes.push((p, "Failed"));
        }
        let mut active: Vec<&Pod> = pods.iter().copied().filter(|p| is_active(p)).collect();
        let terminating = pods.iter().any(|p| !is_active(p) && !is_finished(p));
        if !should_run(&template, node, input.images) {
            misscheduled += usize::from(!active.is_empty());
            deletes.extend(active.into_iter().map(|p| (p, "NodeMismatch")));
            continue;
        }
        // Keep the best pod: current template, available, then the rank.
        sort_for_deletion(&mut active);
        let best = active
            .iter()
            .max_by_key(|p| (current(p), is_available(p, min_ready, input.now)))
            .copied();
        for p in active.iter().filter(|p| Some(**p) != best) {
            deletes.push((p, "Surplus"));
        }
        if best.is_none() && !terminating {
            create.push(name);
        }
        kept.push((name, best));
    }

    let desired = kept.len();
    let available = |p: &&Pod| is_available(p, min_ready, input.now);
    if rolling(ds) {
        let max_unavailable = max_unavailable(ds, desired);
        let mut unavailable = kept
            .iter()
            .filter(|(_, p)| !p.is_some_and(|p| available(&p)))
            .count();
        for (_, p) in &kept {
            let Some(p) = p.filter(|p| !current(p)) else {
                continue;
            };
            if !available(&p) {
                deletes.push((p, "RollingUpdate"));
            } else if unavailable < max_unavailable {
                deletes.push((p, "RollingUpdate"));
                unavailable += 1;
            }
        }
    }

    let failed_create = input
        .refused
        .filter(|_| !create.is_empty())
        .map(|why| forbidden_message("pods", &format!("{}-", ds.name()), why));
    if failed_create.is_some() {
        create.clear();
    }

    let mut actions = Vec::new();
    let taken: BTreeSet<&str> = input.pods.iter().map(Pod::name).collect();
    let seed = super::naming::pod_name_seed(&ds.metadata, input.now);
    for (node, name) in create
        .iter()
        .zip(pod_names(ds.name(), create.len(), &seed, &taken))
    {
        let mut pod = template.clone();
        pod.metadata.name = name;
        pod.spec.node_name = Some((*node).to_string());
        actions.push(Action::CreatePod(Box::new(pod)));
    }
    for (p, reason) in deletes {
        actions.push(Action::DeletePod {
            pod: PodRef::of(p),
            reason,
        });
    }

    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let on = || kept.iter().filter_map(|(_, p)| *p);
    let number_available = on().filter(|p| available(p)).count();
    let mut status = DaemonSetStatus {
        current_number_scheduled: count(on().count()),
        number_misscheduled: count(misscheduled),
        desired_number_scheduled: count(desired),
        number_ready: count(on().filter(|p| is_ready(p)).count()),
        observed_generation: ds.metadata.generation,
        updated_number_scheduled: Some(count(on().filter(|p| current(p)).count())),
        number_available: Some(count(number_available)),
        number_unavailable: Some(count(desired - number_available)),
        collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
        conditions: ds
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
    };
    match failed_create {
        Some(m) => set_condition(
            &mut status.conditions,
            "ReplicaFailure",
            "True",
            REASON_FAILED_CREATE,
            m,
            input.now,
            false,
        ),
        None => status.conditions.retain(|c| c.type_ != "ReplicaFailure"),
    }
    if ds.status.as_ref() != Some(&status) {
        actions.push(Action::UpdateDaemonSetStatus {
            namespace: ds.namespace().to_string(),
            name: ds.name().to_string(),
            status: Box::new(status),
        });
    }
    actions
}

fn rolling(ds: &DaemonSet) -> bool {
    ds.spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// `maxUnavailable` against the desired count, rounded up (as Kubernetes
/// does for DaemonSets); at least 1.
fn max_unavailable(ds: &DaemonSet, desired: usize) -> usize {
    let v = ds
        .spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(IntOrString::Int(1));
    let total = i32::try_from(desired).unwrap_or(i32::MAX);
    usize::try_from(v.scaled_value(total, true).unwrap_or(1))
        .unwrap_or(1)
        .max(1)
}
