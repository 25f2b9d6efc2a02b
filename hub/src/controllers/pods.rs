//! Pod predicates the controllers share (active, ready, available, owned)
//! and stamping a pod from a template.

use std::time::{Duration, SystemTime};

use bramble_api::meta::{ObjectMeta, OwnerReference};
use bramble_api::objects::common::find_condition;
use bramble_api::objects::{Pod, PodTemplateSpec};

use super::time;

/// A pod not finished (`Succeeded`/`Failed`) and not being deleted: it holds
/// (or will hold) a replica.
pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !is_finished(pod)
}

/// `Succeeded` or `Failed`.
pub fn is_finished(pod: &Pod) -> bool {
    matches!(pod.phase(), "Succeeded" | "Failed")
}

/// The `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| s.is_ready())
}

/// When the pod last became Ready (`lastTransitionTime` of `Ready`).
pub fn ready_since(pod: &Pod) -> Option<SystemTime> {
    let s = pod.status.as_ref()?;
    let c = find_condition(&s.conditions, "Ready").filter(|c| c.is_true())?;
    time::parse(c.last_transition_time.as_deref())
}

/// Ready for at least `min_ready_seconds` (Kubernetes `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: SystemTime) -> bool {
    if !is_ready(pod) {
        return false;
    }
    let min = u64::try_from(min_ready_seconds).unwrap_or(0);
    min == 0 || time::elapsed(ready_since(pod), Duration::from_secs(min), now)
}

/// The controller owner reference of a pod, if any.
pub fn controller_of(pod: &Pod) -> Option<&OwnerReference> {
    super::owners::controller_ref(&pod.metadata)
}

/// Whether `pod` is controlled by the object of `kind` with `meta` (by uid,
/// or by name when the owner has no uid yet).
pub fn is_controlled_by(pod: &Pod, kind: &str, meta: &ObjectMeta) -> bool {
    super::owners::controls(kind, meta, &pod.metadata)
}

/// A pod stamped from `template`: its labels (plus `extra_labels`),
/// annotations and spec, in the owner's namespace, controlled by the owner.
pub fn from_template(
    template: &PodTemplateSpec,
    name: String,
    owner_kind: &str,
    owner: &ObjectMeta,
    extra_labels: &[(&str, &str)],
) -> Pod {
    let mut labels = template.metadata.labels.clone();
    for (k, v) in extra_labels {
        labels.insert((*k).to_string(), (*v).to_string());
    }
    Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: ObjectMeta {
            name,
            namespace: Some(owner.namespace_or_default().to_string()),
            labels,
            annotations: template.metadata.annotations.clone(),
            owner_references: vec![super::owners::controller_ref_to(owner_kind, owner)],
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}
