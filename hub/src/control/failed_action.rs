//! What the control loop says about an action that failed: the object it
//! was about ([`involved`]: the object written, or for a create the owner
//! of the object to be made, as Kubernetes' controllers report
//! `FailedCreate` on a ReplicaSet), and the event's reason
//! (`FailedCreate`, `FailedDelete` or `FailedUpdate`). Pure.

use bramble_api::meta::ObjectMeta;
use serde_json::json;

use crate::controllers::{Action, Garbage};
use crate::events::Involved;

/// The object an event about failed `action` goes on, if any.
pub fn involved(action: &Action) -> Option<Involved> {
    let named = |api_version: &str, kind: &str, namespace: &str, name: &str| {
        Some(Involved::of(&json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"namespace": namespace, "name": name}})))
    };
    use Action as A;
    match action {
        A::CreatePod(p) => owner(&p.metadata),
        A::CreateJob(j) => owner(&j.metadata),
        A::CreateReplicaSet(r) => owner(&r.metadata),
        A::CreateClaim(c) => owner(&c.metadata),
        A::DeletePod { pod, .. }
        | A::EvictPod { pod, .. }
        | A::CollectGarbage(Garbage::Pod(pod)) => named("v1", "Pod", &pod.namespace, &pod.name),
        A::UpdateReplicaSet(r) => named(
            "apps/v1",
            "ReplicaSet",
            r.metadata.namespace_or_default(),
            &r.metadata.name,
        ),
        A::UpdateReplicaSetStatus {
            namespace, name, ..
        } => named("apps/v1", "ReplicaSet", namespace, name),
        A::DeleteReplicaSet(r) | A::CollectGarbage(Garbage::ReplicaSet(r)) => {
            named("apps/v1", "ReplicaSet", &r.namespace, &r.name)
        }
        A::UpdateDeploymentStatus {
            namespace, name, ..
        }
        | A::SetDeploymentRevision {
            namespace, name, ..
        }
        | A::ScaleDeployment {
            namespace, name, ..
        }
        | A::MarkFullyAvailable { namespace, name }
        | A::RollBack {
            namespace, name, ..
        } => named("apps/v1", "Deployment", namespace, name),
        A::UpdateDaemonSetStatus {
            namespace, name, ..
        } => named("apps/v1", "DaemonSet", namespace, name),
        A::UpdateStatefulSetStatus {
            namespace, name, ..
        } => named("apps/v1", "StatefulSet", namespace, name),
        A::UpdateJobStatus {
            namespace, name, ..
        } => named("batch/v1", "Job", namespace, name),
        A::DeleteJob { job, .. } | A::CollectGarbage(Garbage::Job(job)) => {
            named("batch/v1", "Job", &job.namespace, &job.name)
        }
        A::UpdateCronJobStatus {
            namespace, name, ..
        } => named("batch/v1", "CronJob", namespace, name),
        A::UpdateServiceStatus {
            namespace, name, ..
        } => named("v1", "Service", namespace, name),
        A::UpdateHpaStatus {
            namespace, name, ..
        } => named("autoscaling/v2", "HorizontalPodAutoscaler", namespace, name),
        A::UpdateClaimStatus {
            namespace, name, ..
        } => named("v1", "PersistentVolumeClaim", namespace, name),
        A::BindClaim { claim, .. } => {
            named("v1", "PersistentVolumeClaim", &claim.namespace, &claim.name)
        }
        A::SetNodeReady { node, .. } | A::FencePods { node, .. } => named("v1", "Node", "", node),
        A::PutEndpoints(_)
        | A::DeleteEndpoints { .. }
        | A::DeleteRevision { .. }
        | A::CreateVolume(_)
        | A::BindVolume { .. }
        | A::UpdateVolumeStatus { .. }
        | A::DeleteVolume { .. } => None,
    }
}

/// The controller of the object `meta` describes (its first owner
/// without one marked controller).
fn owner(meta: &ObjectMeta) -> Option<Involved> {
    let refs = &meta.owner_references;
    let o = refs
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| refs.first())?;
    Some(Involved {
        api_version: o.api_version.clone(),
        kind: o.kind.clone(),
        namespace: meta.namespace_or_default().to_string(),
        name: o.name.clone(),
        uid: o.uid.clone(),
        field_path: None,
    })
}

/// The event reason for failed `action`.
pub fn reason(action: &Action) -> &'static str {
    use Action as A;
    match action {
        A::CreatePod(_)
        | A::CreateJob(_)
        | A::CreateReplicaSet(_)
        | A::CreateClaim(_)
        | A::CreateVolume(_) => "FailedCreate",
        A::DeletePod { .. }
        | A::DeleteReplicaSet(_)
        | A::DeleteRevision { .. }
        | A::CollectGarbage(_)
        | A::DeleteEndpoints { .. }
        | A::DeleteJob { .. }
        | A::DeleteVolume { .. }
        | A::EvictPod { .. } => "FailedDelete",
        _ => "FailedUpdate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::PodRef;

    #[test]
    fn a_failed_create_is_told_on_the_owner_and_a_delete_on_the_object() {
        let pod: bramble_api::objects::Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d", "uid": "u1", "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}))
        .unwrap();
        let create = Action::CreatePod(Box::new(pod));
        let on = involved(&create).unwrap();
        assert_eq!(
            (on.kind.as_str(), on.namespace.as_str(), on.name.as_str()),
            ("ReplicaSet", "shop", "web-5d")
        );
        assert_eq!(reason(&create), "FailedCreate");
        let delete = Action::DeletePod {
            pod: PodRef {
                namespace: "shop".into(),
                name: "web-1".into(),
                uid: None,
            },
            reason: "scaled down",
        };
        assert_eq!(involved(&delete).unwrap().kind, "Pod");
        assert_eq!(reason(&delete), "FailedDelete");
        let node = Action::SetNodeReady {
            node: "pi-1".into(),
            condition: Default::default(),
        };
        assert_eq!(involved(&node).unwrap().namespace, "", "cluster-scoped");
        assert_eq!(reason(&node), "FailedUpdate");
    }
}
