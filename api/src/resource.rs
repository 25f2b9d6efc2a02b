//! The registry of resource kinds Bramble serves: names, API groups, scope.
//!
//! One table drives the hub's routes and discovery documents and the CLI's
//! kind/short-name resolution, so they can never disagree.

/// Static description of one resource kind, as Kubernetes discovery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// `Kind` as written in manifests, e.g. `Deployment`.
    pub kind: &'static str,
    /// Lower-case plural used in URLs, e.g. `deployments`.
    pub plural: &'static str,
    /// Lower-case singular, e.g. `deployment`.
    pub singular: &'static str,
    /// kubectl-style short names, e.g. `deploy`.
    pub short_names: &'static [&'static str],
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version within the group, e.g. `v1`.
    pub version: &'static str,
    /// Whether objects live inside a namespace.
    pub namespaced: bool,
    /// Objects only the hub's controllers write (ReplicaSets, a Deployment's
    /// revisions): clients read them and may delete one no controller owns,
    /// but never create, replace or patch them.
    pub hub_written: bool,
}

impl ResourceInfo {
    /// `apiVersion` as written in manifests: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` as kubectl prints it (`deployment.apps`), or the singular for core kinds.
    pub fn display_name(&self) -> String {
        if self.group.is_empty() {
            self.singular.to_string()
        } else {
            format!("{}.{}", self.singular, self.group)
        }
    }

    /// `Kind.group` as Kubernetes names a kind in errors (`Deployment.apps`),
    /// the bare kind for the core group.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// URL path of the collection, e.g. `/apis/apps/v1/namespaces/default/deployments`.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }

    /// URL path of one object.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{name}", self.collection_path(namespace))
    }

    /// The verbs the hub serves for this kind (Kubernetes discovery format).
    pub fn verbs(&self) -> &'static [&'static str] {
        if CONVERTED.contains(self) {
            return &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ];
        }
        if self.hub_written {
            &["delete", "get", "list", "watch"]
        } else {
            &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ]
        }
    }
}

const fn core(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
) -> ResourceInfo {
    ResourceInfo {
        kind,
        plural,
        singular,
        short_names,
        group: "",
        version: "v1",
        namespaced,
        hub_written: false,
    }
}

const fn grouped(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
) -> ResourceInfo {
    ResourceInfo {
        kind,
        plural,
        singular,
        short_names,
        group,
        version,
        namespaced: true,
        hub_written: false,
    }
}

/// Every kind the hub stores, in discovery order.
pub const RESOURCES: &[ResourceInfo] = &[
    core("Pod", "pods", "pod", &["po"], true),
    core("Service", "services", "service", &["svc"], true),
    core("ConfigMap", "configmaps", "configmap", &["cm"], true),
    core("Secret", "secrets", "secret", &[], true),
    core("Endpoints", "endpoints", "endpoints", &["ep"], true),
    core("Node", "nodes", "node", &["no"], false),
    core("Namespace", "namespaces", "namespace", &["ns"], false),
    core("Event", "events", "event", &["ev"], true),
    core(
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        &["pvc"],
        true,
    ),
    core(
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        &["pv"],
        false,
    ),
    grouped(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        &["deploy"],
    ),
    grouped(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        &["ds"],
    ),
    grouped(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        &["sts"],
    ),
    ResourceInfo {
        hub_written: true,
        ..grouped(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            "replicaset",
            &["rs"],
        )
    },
    grouped(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        &["hpa"],
    ),
    grouped(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        &["ing"],
    ),
    grouped(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        &["netpol"],
    ),
    ResourceInfo {
        namespaced: false,
        ..grouped(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            "storageclass",
            &["sc"],
        )
    },
    grouped("batch", "v1", "Job", "jobs", "job", &[]),
    grouped("batch", "v1", "CronJob", "cronjobs", "cronjob", &["cj"]),
    grouped("bramble.dev", "v1", "Build", "builds", "build", &[]),
];

/// Kinds also served at a second group version, converted to and from the
/// kind that stores them (Kubernetes' one storage, several versions):
/// `events.k8s.io/v1` Events are the `core/v1` Events. Not in [`RESOURCES`]:
/// nothing is stored under them, and what a user types on the command line
/// resolves to the stored kinds.
pub const CONVERTED: &[ResourceInfo] = &[grouped(
    "events.k8s.io",
    "v1",
    "Event",
    "events",
    "event",
    &["ev"],
)];

/// Every kind the hub serves: [`RESOURCES`], then [`CONVERTED`].
pub fn served() -> impl Iterator<Item = &'static ResourceInfo> {
    RESOURCES.iter().chain(CONVERTED)
}

/// Finds a [`CONVERTED`] kind by its URL coordinates.
pub fn converted(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    CONVERTED
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a kind by `apiVersion` and `kind` as written in a manifest.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// Finds a kind by its URL coordinates (group may be empty for core).
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Resolves what a user typed on the command line: plural, singular, short name,
/// kind, or `plural.group` (`deployments.apps`), case-insensitively.
pub fn resolve(name: &str) -> Option<&'static ResourceInfo> {
    let lower = name.to_ascii_lowercase();
    let (base, group) = match lower.split_once('.') {
        Some((b, g)) => (b.to_string(), Some(g.to_string())),
        None => (lower.clone(), None),
    };
    RESOURCES.iter().find(|r| {
        let name_matches = r.plural == base
            || r.singular == base
            || r.kind.eq_ignore_ascii_case(&base)
            || r.short_names.contains(&base.as_str());
        let group_matches = group.as_deref().is_none_or(|g| g == r.group);
        name_matches && group_matches
    })
}

/// The API groups other than core, with their versions, in discovery order
/// (those of [`CONVERTED`] kinds last).
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in served().filter(|r| !r.group.is_empty()) {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_short_names_plurals_and_groups() {
        assert_eq!(resolve("deploy").unwrap().kind, "Deployment");
        assert_eq!(resolve("deployments.apps").unwrap().kind, "Deployment");
        assert_eq!(resolve("PO").unwrap().kind, "Pod");
        assert_eq!(resolve("svc").unwrap().kind, "Service");
        assert_eq!(resolve("no").unwrap().kind, "Node");
        assert_eq!(resolve("ev").unwrap().kind, "Event");
        assert_eq!(resolve("rs").unwrap().kind, "ReplicaSet");
        assert_eq!(resolve("cj").unwrap().kind, "CronJob");
        assert_eq!(resolve("jobs.batch").unwrap().kind, "Job");
        assert_eq!(
            resolve("rs").unwrap().verbs(),
            ["delete", "get", "list", "watch"]
        );
        assert!(resolve("deployments.core").is_none());
        // events.k8s.io/v1 is served, not stored: names resolve to core/v1.
        assert_eq!(resolve("events").unwrap().api_version(), "v1");
        assert!(resolve("events.events.k8s.io").is_none());
        assert!(resolve("widgets").is_none());
    }

    #[test]
    fn builds_kubernetes_paths() {
        let d = by_kind("apps/v1", "Deployment").unwrap();
        assert_eq!(
            d.object_path(Some("default"), "web"),
            "/apis/apps/v1/namespaces/default/deployments/web"
        );
        let n = by_plural("", "v1", "nodes").unwrap();
        assert_eq!(n.collection_path(Some("ignored")), "/api/v1/nodes");
        assert_eq!(d.display_name(), "deployment.apps");
        assert!(by_kind("v1", "Deployment").is_none());
    }

    #[test]
    fn lists_groups_once() {
        let g = groups();
        assert_eq!(g.len(), 7);
        assert!(g.contains(&("bramble.dev", "v1")));
        assert!(g.contains(&("networking.k8s.io", "v1")));
        assert!(g.contains(&("batch", "v1")));
        assert_eq!(g.last(), Some(&("events.k8s.io", "v1")));
    }
}
