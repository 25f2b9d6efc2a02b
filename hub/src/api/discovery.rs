//! Discovery documents in Kubernetes' format so Kubernetes clients find resources.

use bramble_api::resource::{self, RESOURCES};
use serde_json::{Value, json};

/// Kinds `kubectl get all` shows (their `categories: ["all"]`), as Kubernetes has them.
const IN_ALL: &[&str] = &[
    "pods",
    "services",
    "deployments",
    "daemonsets",
    "replicasets",
    "statefulsets",
    "horizontalpodautoscalers",
    "jobs",
    "cronjobs",
];

/// A subresource as discovery lists it (`deployments/scale`).
struct Subresource {
    plural: &'static str,
    sub: &'static str,
    kind: &'static str,
    /// Another group and version than the parent's (a `Scale` is `autoscaling/v1`).
    group_version: Option<(&'static str, &'static str)>,
    verbs: &'static [&'static str],
}

/// The subresources kubectl finds through discovery.
const SUBRESOURCES: &[Subresource] = &[
    Subresource {
        plural: "pods",
        sub: "log",
        kind: "Pod",
        group_version: None,
        verbs: &["get"],
    },
    Subresource {
        plural: "pods",
        sub: "exec",
        kind: "PodExecOptions",
        group_version: None,
        verbs: &["create", "get"],
    },
    Subresource {
        plural: "pods",
        sub: "attach",
        kind: "PodAttachOptions",
        group_version: None,
        verbs: &["create", "get"],
    },
    Subresource {
        plural: "pods",
        sub: "portforward",
        kind: "PodPortForwardOptions",
        group_version: None,
        verbs: &["create", "get"],
    },
    Subresource {
        plural: "pods",
        sub: "eviction",
        kind: "Eviction",
        group_version: Some(("policy", "v1")),
        verbs: &["create"],
    },
    Subresource {
        plural: "deployments",
        sub: "scale",
        kind: "Scale",
        group_version: Some(("autoscaling", "v1")),
        verbs: &["get", "patch", "update"],
    },
    Subresource {
        plural: "statefulsets",
        sub: "scale",
        kind: "Scale",
        group_version: Some(("autoscaling", "v1")),
        verbs: &["get", "patch", "update"],
    },
];

/// `GET /api`.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })
}

fn group_json(group: &str) -> Option<Value> {
    let versions: Vec<Value> = resource::groups()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first()?.clone();
    Some(json!({
        "name": group,
        "versions": versions,
        "preferredVersion": preferred,
    }))
}

/// The resource metrics API (`kubectl top`), served by [`super::top`] from
/// the agents' reports rather than stored: `(group, version)`.
pub const METRICS: (&str, &str) = ("metrics.k8s.io", "v1beta1");

fn metrics_group() -> Value {
    let (g, v) = METRICS;
    let version = json!({"groupVersion": format!("{g}/{v}"), "version": v});
    json!({"name": g, "versions": [version], "preferredVersion": version})
}

/// `GET /apis`.
pub fn group_list() -> Value {
    let mut names: Vec<&str> = resource::groups().into_iter().map(|(g, _)| g).collect();
    names.dedup();
    let mut groups: Vec<Value> = names.into_iter().filter_map(group_json).collect();
    groups.push(metrics_group());
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`.
pub fn group(group: &str) -> Option<Value> {
    let mut g = if group == METRICS.0 {
        metrics_group()
    } else {
        group_json(group)?
    };
    g["kind"] = "APIGroup".into();
    g["apiVersion"] = "v1".into();
    Some(g)
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`.
pub fn resource_list(group: &str, version: &str) -> Value {
    if (group, version) == METRICS {
        let resources: Vec<Value> = [
            ("nodes", "NodeMetrics", false),
            ("pods", "PodMetrics", true),
        ]
        .iter()
        .map(|(name, kind, namespaced)| {
            json!({"name": name, "singularName": "", "namespaced": namespaced,
                       "kind": kind, "verbs": ["get", "list"]})
        })
        .collect();
        return json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": format!("{group}/{version}"),
            "resources": resources,
        });
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = resource::served()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            let mut v = json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": r.verbs(),
            });
            if !r.short_names.is_empty() {
                v["shortNames"] = json!(r.short_names);
            }
            if IN_ALL.contains(&r.plural) {
                v["categories"] = json!(["all"]);
            }
            v
        })
        .chain(
            SUBRESOURCES
                .iter()
                .filter(|s| {
                    RESOURCES
                        .iter()
                        .any(|r| r.plural == s.plural && r.group == group && r.version == version)
                })
                .map(|s| {
                    let namespaced = RESOURCES
                        .iter()
                        .any(|r| r.plural == s.plural && r.namespaced);
                    let mut v = json!({
                        "name": format!("{}/{}", s.plural, s.sub),
                        "singularName": "",
                        "namespaced": namespaced,
                        "kind": s.kind,
                        "verbs": s.verbs,
                    });
                    if let Some((g, ver)) = s.group_version {
                        v["group"] = g.into();
                        v["version"] = ver.into();
                    }
                    v
                }),
        )
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}
