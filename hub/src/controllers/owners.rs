//! Ownership through `metadata.ownerReferences`, as Kubernetes reads it:
//! an object's controller reference, whether an owner controls an object
//! (`metav1.IsControlledBy`: by uid, never by name or selector alone), and
//! the reference a controller stamps on what it creates.

use bramble_api::meta::{ObjectMeta, OwnerReference};

/// The controller reference of an object, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .find(|o| o.controller == Some(true))
}

/// Whether the object of `kind` with metadata `owner` controls the object
/// with metadata `dependent`: same namespace, and its controller reference
/// names the owner's kind, name and uid (by name alone while the owner has
/// no uid, which only happens in tests).
pub fn controls(kind: &str, owner: &ObjectMeta, dependent: &ObjectMeta) -> bool {
    dependent.namespace_or_default() == owner.namespace_or_default()
        && controller_ref(dependent).is_some_and(|o| {
            o.kind == kind && o.name == owner.name && owner.uid.as_ref().is_none_or(|u| *u == o.uid)
        })
}

/// The `apiVersion` of the controller kinds the hub runs: `batch/v1` for
/// Jobs and CronJobs, `apps/v1` for the rest.
pub fn api_version_of(kind: &str) -> &'static str {
    match kind {
        "Job" | "CronJob" => "batch/v1",
        _ => "apps/v1",
    }
}

/// The controller reference to stamp on what the object of `kind` with
/// metadata `owner` creates.
pub fn controller_ref_to(kind: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version_of(kind).into(),
        kind: kind.into(),
        name: owner.name.clone(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, ns: &str, uid: &str) -> ObjectMeta {
        ObjectMeta {
            name: name.into(),
            namespace: Some(ns.into()),
            uid: Some(uid.into()),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn control_is_by_kind_name_uid_and_namespace() {
        let owner = meta("web", "default", "u1");
        let mut pod = meta("web-1", "default", "p1");
        assert!(!controls("Deployment", &owner, &pod), "no reference");
        pod.owner_references
            .push(controller_ref_to("Deployment", &owner));
        assert!(controls("Deployment", &owner, &pod));
        assert!(!controls("ReplicaSet", &owner, &pod), "another kind");
        let recreated = meta("web", "default", "u2");
        assert!(!controls("Deployment", &recreated, &pod), "another uid");
        let elsewhere = meta("web", "prod", "u1");
        assert!(!controls("Deployment", &elsewhere, &pod));
        pod.owner_references[0].controller = None;
        assert!(controller_ref(&pod).is_none());
        assert!(
            !controls("Deployment", &owner, &pod),
            "an owner, not the controller"
        );
    }
}
