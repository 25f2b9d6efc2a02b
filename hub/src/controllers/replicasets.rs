//! A Deployment's ReplicaSets: which it controls, their revision numbers,
//! which of its pods each one holds, stamping a new one, and the counts of
//! its `status`.
//!
//! A pod belongs to a ReplicaSet when the ReplicaSet controls it. Pods an
//! older hub made (controlled by the Deployment itself, before ReplicaSets
//! existed) belong to the ReplicaSet of their `pod-template-hash` label:
//! they are adopted as they are, never rewritten or restarted.

use std::collections::HashMap;
use std::time::SystemTime;

use bramble_api::meta::ObjectMeta;
use bramble_api::objects::replicaset::{ReplicaSetSpec, ReplicaSetStatus};
use bramble_api::objects::{Deployment, Pod, PodTemplateSpec, ReplicaSet};

use super::naming::POD_TEMPLATE_HASH;
use super::owners::{controller_ref, controller_ref_to, controls};
use super::pods::{is_active, is_available, is_ready};

/// A ReplicaSet's revision; also mirrored on its Deployment.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The revisions a ReplicaSet had before an undo renumbered it (`1,3`).
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's replicas plus `maxSurge` when the ReplicaSet was last scaled.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// Why a revision was made; `rollout history` prints it.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";

/// Deployment annotations not copied onto its ReplicaSets (and kept on the
/// Deployment by `kubectl rollout undo`), as Kubernetes lists them.
pub const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];

/// The ReplicaSets `d` controls, oldest revision first (names break ties).
pub fn owned<'a>(d: &Deployment, all: &'a [ReplicaSet]) -> Vec<&'a ReplicaSet> {
    let mut v: Vec<&ReplicaSet> = all
        .iter()
        .filter(|rs| controls("Deployment", &d.metadata, &rs.metadata))
        .collect();
    v.sort_by(|a, b| revision(a).cmp(&revision(b)).then(a.name().cmp(b.name())));
    v
}

/// The revision annotation of a ReplicaSet (0 when absent or unreadable).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .get(REVISION_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The `pod-template-hash` of a ReplicaSet.
pub fn hash_of(rs: &ReplicaSet) -> Option<&str> {
    rs.metadata
        .labels
        .get(POD_TEMPLATE_HASH)
        .map(String::as_str)
}

/// Two templates equal but for their `pod-template-hash` labels: how
/// Kubernetes finds a Deployment's current ReplicaSet.
pub fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        t.metadata.labels.remove(POD_TEMPLATE_HASH);
        t
    };
    strip(a) == strip(b)
}

/// Pods of a Deployment, by the ReplicaSet that holds them.
#[derive(Debug, Default)]
pub struct Held<'a> {
    /// Pods of `owned[i]`, in the order of the `owned` slice given.
    pub by_rs: Vec<Vec<&'a Pod>>,
    /// Pods the Deployment controls directly whose hash has no ReplicaSet.
    pub unheld: Vec<&'a Pod>,
}

impl<'a> Held<'a> {
    /// The index of the ReplicaSet holding `pod`, if any.
    pub fn rs_of(&self, pod: &Pod) -> Option<usize> {
        self.by_rs
            .iter()
            .position(|pods| pods.iter().any(|p| std::ptr::eq(*p, pod)))
    }

    /// Every pod of the Deployment.
    pub fn all(&self) -> impl Iterator<Item = &'a Pod> + '_ {
        self.by_rs.iter().flatten().chain(&self.unheld).copied()
    }
}

/// Sorts the pods of namespace `pods` that belong to `d` by ReplicaSet.
pub fn held<'a>(d: &Deployment, owned: &[&ReplicaSet], pods: &'a [Pod]) -> Held<'a> {
    let mut out = Held {
        by_rs: vec![Vec::new(); owned.len()],
        unheld: Vec::new(),
    };
    // By uid: a round plans every Deployment over every pod of its namespace.
    let by_uid: HashMap<&str, usize> = owned
        .iter()
        .enumerate()
        .filter_map(|(i, rs)| rs.metadata.uid.as_deref().map(|u| (u, i)))
        .collect();
    for p in pods {
        let Some(c) = controller_ref(&p.metadata) else {
            continue;
        };
        if c.kind == "ReplicaSet" {
            if let Some(&i) = by_uid.get(c.uid.as_str())
                && controls("ReplicaSet", &owned[i].metadata, &p.metadata)
            {
                out.by_rs[i].push(p);
            }
        } else if controls("Deployment", &d.metadata, &p.metadata) {
            let hash = p.metadata.labels.get(POD_TEMPLATE_HASH).map(String::as_str);
            match owned
                .iter()
                .position(|rs| hash.is_some() && hash_of(rs) == hash)
            {
                Some(i) => out.by_rs[i].push(p),
                None => out.unheld.push(p),
            }
        }
    }
    out
}

/// Every pod of `d` (through its ReplicaSets or directly), in `pods`.
pub fn deployment_pods<'a>(
    d: &Deployment,
    replica_sets: &[ReplicaSet],
    pods: &'a [Pod],
) -> Vec<&'a Pod> {
    held(d, &owned(d, replica_sets), pods).all().collect()
}

/// A new ReplicaSet of `d` for `template` (without its hash label) hashed
/// to `hash`: named `<deployment>-<hash>`, labelled and selecting like the
/// template plus `pod-template-hash`, controlled by `d`.
pub fn stamp(
    d: &Deployment,
    hash: &str,
    template: &PodTemplateSpec,
    revision: i64,
    replicas: i32,
) -> ReplicaSet {
    let mut template = template.clone();
    template
        .metadata
        .labels
        .insert(POD_TEMPLATE_HASH.into(), hash.into());
    let mut selector = d.spec.selector.clone().unwrap_or_default();
    selector
        .match_labels
        .insert(POD_TEMPLATE_HASH.into(), hash.into());
    let mut annotations = copied_annotations(d);
    annotations.insert(REVISION_ANNOTATION.into(), revision.to_string());
    ReplicaSet {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        metadata: ObjectMeta {
            name: format!("{}-{hash}", d.name()),
            namespace: Some(d.namespace().to_string()),
            labels: template.metadata.labels.clone(),
            annotations,
            owner_references: vec![controller_ref_to("Deployment", &d.metadata)],
            ..ObjectMeta::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: d.spec.min_ready_seconds,
            selector: Some(selector),
            template,
        },
        status: None,
    }
}

/// The annotations of `d` its current ReplicaSet carries.
pub fn copied_annotations(d: &Deployment) -> std::collections::BTreeMap<String, String> {
    d.metadata
        .annotations
        .iter()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The status of `rs` holding `pods`, as Kubernetes' ReplicaSet controller
/// counts it: active pods, those with the template's labels, ready and
/// available ones.
pub fn status(
    rs: &ReplicaSet,
    pods: &[&Pod],
    min_ready_seconds: i32,
    now: SystemTime,
) -> ReplicaSetStatus {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let active: Vec<&&Pod> = pods.iter().filter(|p| is_active(p)).collect();
    let labelled = active
        .iter()
        .filter(|p| {
            rs.spec
                .template
                .metadata
                .labels
                .iter()
                .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
        })
        .count();
    ReplicaSetStatus {
        replicas: count(active.len()),
        fully_labeled_replicas: count(labelled),
        ready_replicas: count(active.iter().filter(|p| is_ready(p)).count()),
        available_replicas: count(
            active
                .iter()
                .filter(|p| is_available(p, min_ready_seconds, now))
                .count(),
        ),
        observed_generation: rs.metadata.generation,
        conditions: rs
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
    }
}
