//! How a strategic merge patch merges each list: Kubernetes' `patchStrategy`
//! and `patchMergeKey` struct tags (k8s.io/api `types.go`) for the types
//! Bramble serves, as one table. The strategic merge patch engine
//! ([`super::strategic`]) and the OpenAPI documents (`x-kubernetes-patch-strategy`,
//! `x-kubernetes-patch-merge-key`) both read it.
//!
//! Types are named as Kubernetes' OpenAPI names them
//! (`io.k8s.api.core.v1.PodSpec`). Fields not in the table are merged the
//! default way: maps recursively, lists replaced whole.

/// What a field holds and how a patch merges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchField {
    /// The type the field holds (for a list, of its items), when the table
    /// knows fields under it.
    pub child: Option<&'static str>,
    /// `patchStrategy: merge`: a list merged item by item (by `merge_key`
    /// for objects, by value for scalars) instead of replaced.
    pub merge: bool,
    /// `patchStrategy: retainKeys`: a patch may list, in `$retainKeys`,
    /// the only keys that stay (used by union types such as a volume's source).
    pub retain_keys: bool,
    /// `patchMergeKey`: the key identifying an object in a merged list.
    pub merge_key: Option<&'static str>,
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const TEMPLATE: &str = "io.k8s.api.core.v1.PodTemplateSpec";
const CONTAINER: &str = "io.k8s.api.core.v1.Container";

/// A field leading to a type the table knows more of.
const fn to(child: &'static str) -> PatchField {
    PatchField {
        child: Some(child),
        merge: false,
        retain_keys: false,
        merge_key: None,
    }
}

/// A list merged by `key` (items of type `child` when known).
const fn by(key: &'static str, child: Option<&'static str>) -> PatchField {
    PatchField {
        child,
        merge: true,
        retain_keys: false,
        merge_key: Some(key),
    }
}

/// A list of scalars merged by value.
const SET: PatchField = PatchField {
    child: None,
    merge: true,
    retain_keys: false,
    merge_key: None,
};

/// `(type, field, how)`: every non-default field of the types Bramble serves.
const FIELDS: &[(&str, &str, PatchField)] = &[
    // meta/v1
    (META, "finalizers", SET),
    (META, "ownerReferences", by("uid", None)),
    // core/v1 Pod
    ("io.k8s.api.core.v1.Pod", "spec", to(POD_SPEC)),
    (
        "io.k8s.api.core.v1.Pod",
        "status",
        to("io.k8s.api.core.v1.PodStatus"),
    ),
    (TEMPLATE, "metadata", to(META)),
    (TEMPLATE, "spec", to(POD_SPEC)),
    (POD_SPEC, "containers", by("name", Some(CONTAINER))),
    (POD_SPEC, "initContainers", by("name", Some(CONTAINER))),
    (POD_SPEC, "ephemeralContainers", by("name", Some(CONTAINER))),
    (
        POD_SPEC,
        "volumes",
        PatchField {
            child: None,
            merge: true,
            retain_keys: true,
            merge_key: Some("name"),
        },
    ),
    (POD_SPEC, "imagePullSecrets", by("name", None)),
    (POD_SPEC, "hostAliases", by("ip", None)),
    (
        POD_SPEC,
        "topologySpreadConstraints",
        by("topologyKey", None),
    ),
    (POD_SPEC, "schedulingGates", by("name", None)),
    (CONTAINER, "ports", by("containerPort", None)),
    (CONTAINER, "env", by("name", None)),
    (CONTAINER, "volumeMounts", by("mountPath", None)),
    (CONTAINER, "volumeDevices", by("devicePath", None)),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        by("type", None),
    ),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", by("ip", None)),
    ("io.k8s.api.core.v1.PodStatus", "podIPs", by("ip", None)),
    // core/v1 Service, Node, Namespace
    (
        "io.k8s.api.core.v1.Service",
        "spec",
        to("io.k8s.api.core.v1.ServiceSpec"),
    ),
    (
        "io.k8s.api.core.v1.Service",
        "status",
        to("io.k8s.api.core.v1.ServiceStatus"),
    ),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", by("port", None)),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        by("type", None),
    ),
    (
        "io.k8s.api.core.v1.Node",
        "spec",
        to("io.k8s.api.core.v1.NodeSpec"),
    ),
    (
        "io.k8s.api.core.v1.Node",
        "status",
        to("io.k8s.api.core.v1.NodeStatus"),
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", SET),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        by("type", None),
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        by("type", None),
    ),
    (
        "io.k8s.api.core.v1.Namespace",
        "status",
        to("io.k8s.api.core.v1.NamespaceStatus"),
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        by("type", None),
    ),
    // apps/v1
    (
        "io.k8s.api.apps.v1.Deployment",
        "spec",
        to("io.k8s.api.apps.v1.DeploymentSpec"),
    ),
    (
        "io.k8s.api.apps.v1.Deployment",
        "status",
        to("io.k8s.api.apps.v1.DeploymentStatus"),
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "template",
        to(TEMPLATE),
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        PatchField {
            child: None,
            merge: false,
            retain_keys: true,
            merge_key: None,
        },
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        by("type", None),
    ),
    (
        "io.k8s.api.apps.v1.DaemonSet",
        "spec",
        to("io.k8s.api.apps.v1.DaemonSetSpec"),
    ),
    (
        "io.k8s.api.apps.v1.DaemonSet",
        "status",
        to("io.k8s.api.apps.v1.DaemonSetStatus"),
    ),
    ("io.k8s.api.apps.v1.DaemonSetSpec", "template", to(TEMPLATE)),
    (
        "io.k8s.api.apps.v1.StatefulSet",
        "spec",
        to("io.k8s.api.apps.v1.StatefulSetSpec"),
    ),
    (
        "io.k8s.api.apps.v1.StatefulSet",
        "status",
        to("io.k8s.api.apps.v1.StatefulSetStatus"),
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetSpec",
        "template",
        to(TEMPLATE),
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        by("type", None),
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        by("type", None),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSet",
        "spec",
        to("io.k8s.api.apps.v1.ReplicaSetSpec"),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSet",
        "status",
        to("io.k8s.api.apps.v1.ReplicaSetStatus"),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetSpec",
        "template",
        to(TEMPLATE),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        by("type", None),
    ),
    // batch/v1
    (
        "io.k8s.api.batch.v1.Job",
        "spec",
        to("io.k8s.api.batch.v1.JobSpec"),
    ),
    (
        "io.k8s.api.batch.v1.Job",
        "status",
        to("io.k8s.api.batch.v1.JobStatus"),
    ),
    ("io.k8s.api.batch.v1.JobSpec", "template", to(TEMPLATE)),
    (
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        by("type", None),
    ),
    (
        "io.k8s.api.batch.v1.CronJob",
        "spec",
        to("io.k8s.api.batch.v1.CronJobSpec"),
    ),
    (
        "io.k8s.api.batch.v1.CronJobSpec",
        "jobTemplate",
        to("io.k8s.api.batch.v1.JobTemplateSpec"),
    ),
    ("io.k8s.api.batch.v1.JobTemplateSpec", "metadata", to(META)),
    (
        "io.k8s.api.batch.v1.JobTemplateSpec",
        "spec",
        to("io.k8s.api.batch.v1.JobSpec"),
    ),
    // autoscaling/v2
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
        "status",
        to("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus"),
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        by("type", None),
    ),
];

/// The OpenAPI name of a kind's type: `io.k8s.api.apps.v1.Deployment`.
pub fn root_type(group: &str, version: &str, kind: &str) -> String {
    let package = match group {
        "" => "core",
        g => g.strip_suffix(".k8s.io").unwrap_or(g),
    };
    format!("io.k8s.api.{package}.{version}.{kind}")
}

/// How `field` of `type_name` is patched; `None` for the default (and for
/// every root's `metadata`, see [`field`]).
pub fn lookup(type_name: &str, field: &str) -> Option<PatchField> {
    FIELDS
        .iter()
        .find(|(t, f, _)| *t == type_name && *f == field)
        .map(|(_, _, p)| *p)
}

/// How `field` of `type_name` is patched: [`lookup`], plus `metadata` of any
/// kind leading to `ObjectMeta`.
pub fn field(type_name: &str, field: &str) -> Option<PatchField> {
    lookup(type_name, field).or_else(|| {
        (field == "metadata" && type_name.starts_with("io.k8s.api.") && type_name != TEMPLATE)
            .then(|| to(META))
    })
}

/// Every entry, for documents that annotate types (OpenAPI).
pub fn all() -> impl Iterator<Item = (&'static str, &'static str, PatchField)> {
    FIELDS.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployments_containers_merge_by_name() {
        let dep = root_type("apps", "v1", "Deployment");
        let spec = field(&dep, "spec").unwrap().child.unwrap();
        let tpl = field(spec, "template").unwrap().child.unwrap();
        let pod = field(tpl, "spec").unwrap().child.unwrap();
        let containers = field(pod, "containers").unwrap();
        assert_eq!(containers.merge_key, Some("name"));
        assert!(containers.merge);
        let env = field(containers.child.unwrap(), "env").unwrap();
        assert_eq!(env.merge_key, Some("name"));
    }

    #[test]
    fn kinds_name_their_types_as_kubernetes_does() {
        assert_eq!(root_type("", "v1", "Pod"), "io.k8s.api.core.v1.Pod");
        assert_eq!(
            root_type("networking.k8s.io", "v1", "Ingress"),
            "io.k8s.api.networking.v1.Ingress"
        );
        assert_eq!(
            field("io.k8s.api.core.v1.ConfigMap", "metadata")
                .unwrap()
                .child,
            Some(META)
        );
    }
}
