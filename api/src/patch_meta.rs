//! Kubernetes' patch metadata of list and struct fields: which lists merge by
//! a key (`containers` by `name`, `ports` by `containerPort`, ...) and which
//! fields replace their siblings (`retainKeys`).
//!
//! One table for everything that needs it: the OpenAPI documents publish it
//! as `x-kubernetes-patch-merge-key` / `x-kubernetes-patch-strategy` (what
//! kubectl's client-side apply reads), and strategic merge patch applies it.
//! Entries are as in Kubernetes' own types (`patchMergeKey`/`patchStrategy`
//! struct tags) for the fields Bramble serves.

/// Patch metadata of one field of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchMeta {
    /// Kubernetes' name of the type holding the field (`io.k8s.api.core.v1.PodSpec`).
    pub owner: &'static str,
    /// The field's JSON name.
    pub field: &'static str,
    /// `merge`, `retainKeys` or `merge,retainKeys`.
    pub strategy: &'static str,
    /// The key that identifies an entry of a merged list.
    pub merge_key: Option<&'static str>,
}

const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const CONTAINER: &str = "io.k8s.api.core.v1.Container";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

const fn merge(owner: &'static str, field: &'static str, key: &'static str) -> PatchMeta {
    PatchMeta {
        owner,
        field,
        strategy: "merge",
        merge_key: Some(key),
    }
}

/// Every field with patch metadata, by owner type.
pub const PATCH_META: &[PatchMeta] = &[
    merge(OBJECT_META, "ownerReferences", "uid"),
    PatchMeta {
        owner: OBJECT_META,
        field: "finalizers",
        strategy: "merge",
        merge_key: None,
    },
    merge(POD_SPEC, "containers", "name"),
    merge(POD_SPEC, "initContainers", "name"),
    merge(POD_SPEC, "imagePullSecrets", "name"),
    merge(POD_SPEC, "hostAliases", "ip"),
    PatchMeta {
        owner: POD_SPEC,
        field: "volumes",
        strategy: "merge,retainKeys",
        merge_key: Some("name"),
    },
    merge(CONTAINER, "env", "name"),
    merge(CONTAINER, "ports", "containerPort"),
    merge(CONTAINER, "volumeMounts", "mountPath"),
    merge(CONTAINER, "volumeDevices", "devicePath"),
    merge("io.k8s.api.core.v1.ServiceSpec", "ports", "port"),
    PatchMeta {
        owner: "io.k8s.api.core.v1.NodeSpec",
        field: "podCIDRs",
        strategy: "merge",
        merge_key: None,
    },
    PatchMeta {
        owner: "io.k8s.api.apps.v1.DeploymentSpec",
        field: "strategy",
        strategy: "retainKeys",
        merge_key: None,
    },
    merge("io.k8s.api.apps.v1.DeploymentStatus", "conditions", "type"),
    merge("io.k8s.api.apps.v1.DaemonSetStatus", "conditions", "type"),
    merge("io.k8s.api.core.v1.PodStatus", "conditions", "type"),
    merge("io.k8s.api.core.v1.PodStatus", "podIPs", "ip"),
    merge("io.k8s.api.core.v1.NodeStatus", "conditions", "type"),
    merge("io.k8s.api.core.v1.NodeStatus", "addresses", "type"),
];

/// Where each owner type sits in each kind's objects (indices dropped).
const LOCATIONS: &[(&str, &str, &str)] = &[
    ("*", "metadata", OBJECT_META),
    ("*", "spec.template.metadata", OBJECT_META),
    ("Pod", "spec", POD_SPEC),
    ("Pod", "spec.containers", CONTAINER),
    ("Pod", "spec.initContainers", CONTAINER),
    ("Pod", "status", "io.k8s.api.core.v1.PodStatus"),
    ("Deployment", "spec", "io.k8s.api.apps.v1.DeploymentSpec"),
    ("Deployment", "spec.template.spec", POD_SPEC),
    ("Deployment", "spec.template.spec.containers", CONTAINER),
    ("Deployment", "spec.template.spec.initContainers", CONTAINER),
    (
        "Deployment",
        "status",
        "io.k8s.api.apps.v1.DeploymentStatus",
    ),
    ("DaemonSet", "spec.template.spec", POD_SPEC),
    ("DaemonSet", "spec.template.spec.containers", CONTAINER),
    ("DaemonSet", "spec.template.spec.initContainers", CONTAINER),
    ("DaemonSet", "status", "io.k8s.api.apps.v1.DaemonSetStatus"),
    ("Service", "spec", "io.k8s.api.core.v1.ServiceSpec"),
    ("Node", "spec", "io.k8s.api.core.v1.NodeSpec"),
    ("Node", "status", "io.k8s.api.core.v1.NodeStatus"),
];

/// The metadata of `field` of the type `owner`.
pub fn of_field(owner: &str, field: &str) -> Option<&'static PatchMeta> {
    PATCH_META
        .iter()
        .find(|m| m.owner == owner && m.field == field)
}

/// The metadata of the field at `path` in an object of `kind`: a dotted JSON
/// path, list indices optional (`spec.template.spec.containers[0].env`).
pub fn of_path(kind: &str, path: &str) -> Option<&'static PatchMeta> {
    let bare = strip_indices(path);
    let (parent, field) = bare.rsplit_once('.')?;
    LOCATIONS
        .iter()
        .filter(|(k, at, _)| (*k == "*" || *k == kind) && *at == parent)
        .find_map(|(_, _, owner)| of_field(owner, field))
}

fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_merge_keys_by_path_in_every_kind_that_has_the_field() {
        let c = of_path("Deployment", "spec.template.spec.containers").unwrap();
        assert_eq!((c.strategy, c.merge_key), ("merge", Some("name")));
        let env = of_path("Pod", "spec.containers[1].env").unwrap();
        assert_eq!(env.merge_key, Some("name"));
        let ports = of_path("DaemonSet", "spec.template.spec.containers[0].ports").unwrap();
        assert_eq!(ports.merge_key, Some("containerPort"));
        let mounts = of_path("Pod", "spec.containers[0].volumeMounts").unwrap();
        assert_eq!(mounts.merge_key, Some("mountPath"));
        let vols = of_path("Deployment", "spec.template.spec.volumes").unwrap();
        assert_eq!(vols.strategy, "merge,retainKeys");
        let svc = of_path("Service", "spec.ports").unwrap();
        assert_eq!(svc.merge_key, Some("port"));
        let owners = of_path("ConfigMap", "metadata.ownerReferences").unwrap();
        assert_eq!(owners.merge_key, Some("uid"));
        assert_eq!(
            of_path("Deployment", "spec.strategy").unwrap().strategy,
            "retainKeys"
        );
    }

    #[test]
    fn fields_without_metadata_and_unknown_places_have_none() {
        assert!(of_path("Pod", "spec.containers[0].args").is_none());
        assert!(of_path("Pod", "spec.template.spec.containers").is_none());
        assert!(of_path("Pod", "containers").is_none());
        assert!(of_field("io.k8s.api.core.v1.Pod", "containers").is_none());
    }
}
