//! The StatefulSet controller, as Kubernetes' `StatefulSetControl` runs it:
//! pod `NAME-i` for each ordinal `i` (from `spec.ordinals.start`), with
//! `hostname` NAME-i and `subdomain` the `serviceName`, and a claim per
//! `volumeClaimTemplates` entry (`<template>-NAME-i`), created before its
//! pod and never deleted (the `Retain` retention policy: scaled-away
//! ordinals find their data again).
//!
//! `OrderedReady` creates an ordinal only once every lower one is Running
//! and Ready (and available for `minReadySeconds`), and removes surplus
//! ordinals from the highest, one at a time, only while all others are.
//! `Parallel` creates and removes all at once. A Failed or Succeeded pod is
//! deleted, and recreated under its name once it is gone: a terminating
//! pod holds its name.
//!
//! Revisions are `NAME-<template hash>` (the pods' `controller-revision-hash`
//! label), Kubernetes' ControllerRevision names, but Bramble keeps no
//! ControllerRevision objects: the template of the current revision is
//! read back from a pod that runs it (to recreate a pod below the
//! partition), and `rollout history|undo` have nothing to read.
//! `RollingUpdate` deletes, from the highest ordinal down to `partition`,
//! one pod whose revision differs at a time, each once the ones above are
//! healthy; `OnDelete` only stamps the new template on pods it recreates.
//! Pods are matched by owner reference only (no adoption of orphans).

use std::collections::BTreeMap;
use std::time::SystemTime;

use bramble_api::objects::{PersistentVolumeClaim, Pod, PodTemplateSpec, StatefulSet};

use super::action::{Action, PodRef};
use super::daemonset::CONTROLLER_REVISION_HASH;
use super::naming::template_hash_with;
use super::pods::{from_template, is_available, is_controlled_by, is_finished, is_ready};
use super::statefulset_status::status;

/// Label naming a StatefulSet pod (selects it alone, for a per-pod Service).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label with a StatefulSet pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// What the StatefulSet controller reads for one StatefulSet.
#[derive(Debug, Clone, Copy)]
pub struct StatefulSetInput<'a> {
    pub statefulset: &'a StatefulSet,
    /// Pods of the namespace (others are ignored).
    pub pods: &'a [Pod],
    /// Claims of the namespace (others are ignored).
    pub claims: &'a [PersistentVolumeClaim],
    /// Why Pod Security refuses the template's pods now: none are created,
    /// and a `ReplicaFailure` condition says why.
    pub refused: Option<&'a str>,
    pub now: SystemTime,
}

/// The revision name of `sts`'s current template: `NAME-<hash>`.
pub fn update_revision(sts: &StatefulSet) -> String {
    let collisions = sts
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    format!(
        "{}-{}",
        sts.name(),
        template_hash_with(&sts.spec.template, collisions)
    )
}

/// The ordinal of a pod named `NAME-<ordinal>` of `sts`.
pub fn ordinal_of(sts: &StatefulSet, pod_name: &str) -> Option<i32> {
    let suffix = pod_name.strip_prefix(sts.name())?.strip_prefix('-')?;
    let n: i32 = suffix.parse().ok()?;
    (n >= 0 && n.to_string() == suffix).then_some(n)
}

/// The pod of `ordinal` stamped from `template` at `revision`.
pub fn stateful_pod(
    sts: &StatefulSet,
    template: &PodTemplateSpec,
    revision: &str,
    ordinal: i32,
) -> Pod {
    let name = format!("{}-{ordinal}", sts.name());
    let index = ordinal.to_string();
    let mut pod = from_template(
        template,
        name.clone(),
        "StatefulSet",
        &sts.metadata,
        &[
            (POD_NAME_LABEL, &name),
            (POD_INDEX_LABEL, &index),
            (CONTROLLER_REVISION_HASH, revision),
        ],
    );
    let mut with_claims = sts.clone();
    with_claims.spec.template = template.clone();
    pod.spec.volumes = with_claims.volumes_for(ordinal);
    pod.spec.hostname = Some(name);
    pod.spec.subdomain = Some(sts.spec.service_name.clone()).filter(|s| !s.is_empty());
    pod
}

/// The claim from `template` for the pod of `ordinal`: the template's spec
/// and annotations, its labels plus the selector's `matchLabels`, no owner.
pub fn stateful_claim(
    sts: &StatefulSet,
    template: &PersistentVolumeClaim,
    ordinal: i32,
) -> PersistentVolumeClaim {
    let mut metadata = template.metadata.clone();
    metadata.name = sts.claim_name(&template.metadata.name, ordinal);
    metadata.namespace = Some(sts.namespace().to_string());
    if let Some(sel) = &sts.spec.selector {
        for (k, v) in &sel.match_labels {
            metadata.labels.insert(k.clone(), v.clone());
        }
    }
    PersistentVolumeClaim {
        api_version: "v1".into(),
        kind: "PersistentVolumeClaim".into(),
        metadata,
        spec: template.spec.clone(),
        status: None,
    }
}

/// The template a pod of `revision` was stamped from, read back from the
/// pod: what the StatefulSet added (its labels, name, node, claims' volumes
/// are restamped anyway) taken away.
pub fn template_of(pod: &Pod) -> PodTemplateSpec {
    let mut t = PodTemplateSpec::default();
    t.metadata.labels = pod.metadata.labels.clone();
    for l in [POD_NAME_LABEL, POD_INDEX_LABEL, CONTROLLER_REVISION_HASH] {
        t.metadata.labels.remove(l);
    }
    t.metadata.annotations = pod.metadata.annotations.clone();
    t.spec = pod.spec.clone();
    t.spec.node_name = None;
    t.spec.hostname = None;
    t.spec.subdomain = None;
    t
}

pub(super) fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .get(CONTROLLER_REVISION_HASH)
        .map(String::as_str)
}

pub(super) fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

pub(super) fn running_and_ready(pod: &Pod) -> bool {
    pod.phase() == "Running" && is_ready(pod)
}

/// Plans the missing claims of the pod of `ordinal`; false while one of
/// them is being deleted (the pod must wait for it to be gone).
fn create_claims(
    sts: &StatefulSet,
    claims: &BTreeMap<&str, &PersistentVolumeClaim>,
    ordinal: i32,
    actions: &mut Vec<Action>,
) -> bool {
    let mut ready = true;
    for t in &sts.spec.volume_claim_templates {
        match claims.get(sts.claim_name(&t.metadata.name, ordinal).as_str()) {
            None => actions.push(Action::CreateClaim(Box::new(stateful_claim(
                sts, t, ordinal,
            )))),
            Some(c) if c.metadata.deletion_timestamp.is_some() => ready = false,
            Some(_) => {}
        }
    }
    ready
}

/// Plans one StatefulSet. Applying the actions and planning again converges.
pub fn plan_statefulset(input: StatefulSetInput<'_>) -> Vec<Action> {
    let sts = input.statefulset;
    if sts.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let update = update_revision(sts);
    let previous = sts.status.as_ref().map(|s| s.current_revision.as_str());
    let current = previous.filter(|r| !r.is_empty()).unwrap_or(&update);
    let min_ready = sts.spec.min_ready_seconds.unwrap_or(0);
    let healthy = |p: &Pod| running_and_ready(p) && is_available(p, min_ready, input.now);
    let monotonic = !sts.parallel();
    let start = sts.start_ordinal();
    let end = start.saturating_add(sts.replicas().max(0));

    let owned: Vec<&Pod> = input
        .pods
        .iter()
        .filter(|p| is_controlled_by(p, "StatefulSet", &sts.metadata))
        .collect();
    // The pod of each wanted ordinal, and the surplus ones (highest last).
    let mut replicas: BTreeMap<i32, &Pod> = BTreeMap::new();
    let mut condemned: Vec<(i32, &Pod)> = Vec::new();
    for p in &owned {
        match ordinal_of(sts, p.name()) {
            Some(i) if (start..end).contains(&i) => {
                replicas.insert(i, p);
            }
            Some(i) => condemned.push((i, p)),
            None => condemned.push((-1, p)),
        }
    }
    condemned.sort_by_key(|(i, p)| (*i, p.name()));
    let taken: BTreeMap<&str, &Pod> = input.pods.iter().map(|p| (p.name(), p)).collect();
    let claims: BTreeMap<&str, &PersistentVolumeClaim> =
        input.claims.iter().map(|c| (c.name(), c)).collect();
    // The current revision's template, read back from a pod running it.
    let current_template = owned
        .iter()
        .find(|p| revision_of(p) == Some(current) && !terminating(p))
        .map(|p| template_of(p));

    let mut actions = Vec::new();
    let mut refused_create = false;
    let mut blocked = false;
    for i in start..end {
        let Some(pod) = replicas.get(&i) else {
            let name = format!("{}-{i}", sts.name());
            // A pod of that name not ours (or not gone yet) holds it.
            if taken.contains_key(name.as_str()) {
                if monotonic {
                    blocked = true;
                    break;
                }
                continue;
            }
            if input.refused.is_some() {
                refused_create = true;
                blocked = true;
                break;
            }
            // Below the partition a pod is recreated at the current revision.
            let (template, revision) = match &current_template {
                Some(t) if !sts.on_delete() && i - start < sts.partition() => (t, current),
                _ => (&sts.spec.template, update.as_str()),
            };
            if create_claims(sts, &claims, i, &mut actions) {
                actions.push(Action::CreatePod(Box::new(stateful_pod(
                    sts, template, revision, i,
                ))));
            }
            if monotonic {
                blocked = true;
                break;
            }
            continue;
        };
        // A Pending pod whose claim went (deleted meanwhile) gets it again.
        if pod.phase() == "Pending" && !terminating(pod) {
            create_claims(sts, &claims, i, &mut actions);
        }
        if is_finished(pod) {
            if !terminating(pod) {
                actions.push(Action::DeletePod {
                    pod: PodRef::of(pod),
                    reason: "Failed",
                });
            }
            if monotonic {
                blocked = true;
                break;
            }
            continue;
        }
        if monotonic && (terminating(pod) || !healthy(pod)) {
            blocked = true;
            break;
        }
    }

    // Surplus ordinals, from the highest; in order only when all the
    // wanted ones are healthy, and the first unhealthy pod may go at once.
    if !blocked {
        let first_unhealthy = replicas
            .values()
            .chain(condemned.iter().map(|(_, p)| p))
            .find(|p| !healthy(p))
            .map(|p| p.name());
        for (_, p) in condemned.iter().rev() {
            if terminating(p) {
                if monotonic {
                    blocked = true;
                    break;
                }
                continue;
            }
            if monotonic && !healthy(p) && Some(p.name()) != first_unhealthy {
                blocked = true;
                break;
            }
            actions.push(Action::DeletePod {
                pod: PodRef::of(p),
                reason: "ScaleDown",
            });
            if monotonic {
                blocked = true;
                break;
            }
        }
    }

    // Rolling update: the highest pod at another revision goes, once the
    // ones above it are healthy.
    if !blocked && !sts.on_delete() {
        let min = start.saturating_add(sts.partition());
        for (i, p) in replicas.iter().rev() {
            if *i < min {
                break;
            }
            if revision_of(p) != Some(update.as_str()) && !terminating(p) {
                actions.push(Action::DeletePod {
                    pod: PodRef::of(p),
                    reason: "RollingUpdate",
                });
                break;
            }
            if !healthy(p) {
                break;
            }
        }
    }

    let status = status(sts, &owned, current, &update, refused_create, input);
    if sts.status.as_ref() != Some(&status) {
        actions.push(Action::UpdateStatefulSetStatus {
            namespace: sts.namespace().to_string(),
            name: sts.name().to_string(),
            status: Box::new(status),
        });
    }
    actions
}
