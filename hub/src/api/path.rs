//! Parsing Kubernetes-style request paths into what they address.

use bramble_api::ResourceInfo;
use bramble_api::resource;

/// What a path under `/api` or `/apis` addresses.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// `/api`: core versions.
    CoreVersions,
    /// `/apis`: the group list.
    GroupList,
    /// `/apis/{group}`: one group.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`: the resource list.
    ResourceList { group: String, version: String },
    /// A collection (`name` None) or an object.
    Resource {
        resource: &'static ResourceInfo,
        namespace: Option<String>,
        name: Option<String>,
    },
    /// A collection or an object of a kind served by conversion
    /// (`bramble_api::resource::CONVERTED`: `events.k8s.io/v1` events).
    Converted {
        resource: &'static ResourceInfo,
        namespace: Option<String>,
        name: Option<String>,
    },
    /// `/namespaces/{ns}/{plural}/{name}/{sub}`: a subresource (`log` and
    /// `exec` of pods; `revisions`, `rollback` and `scale` of deployments).
    Subresource {
        resource: &'static ResourceInfo,
        namespace: String,
        name: String,
        sub: String,
    },
}

/// Subresources Bramble serves (or, `replicasets/scale`, answers why it
/// does not), per plural.
const SUBRESOURCES: [(&str, &str); 11] = [
    ("pods", "log"),
    ("builds", "log"),
    ("pods", "eviction"),
    ("pods", "exec"),
    ("pods", "attach"),
    ("pods", "portforward"),
    ("deployments", "revisions"),
    ("deployments", "rollback"),
    ("deployments", "scale"),
    ("statefulsets", "scale"),
    ("replicasets", "scale"),
];

/// Parses `path`; `None` when it addresses nothing Bramble serves.
pub fn parse(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => return Some(Target::CoreVersions),
        ["apis"] => return Some(Target::GroupList),
        ["apis", g] => return Some(Target::Group(g.to_string())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if let Some(t) = converted(group, version, rest) {
        return Some(t);
    }
    let known = |plural: &str| resource::by_plural(group, version, plural);
    let target = |r: &'static ResourceInfo, ns: Option<&str>, name: Option<&str>| {
        if r.namespaced != ns.is_some() && name.is_some() {
            return None;
        }
        Some(Target::Resource {
            resource: r,
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
        })
    };
    match rest {
        [] => {
            if group.is_empty() && version != "v1" {
                return None;
            }
            if !group.is_empty()
                && !resource::groups().contains(&(group, version))
                && (group, version) != super::discovery::METRICS
            {
                return None;
            }
            Some(Target::ResourceList {
                group: group.to_string(),
                version: version.to_string(),
            })
        }
        // /namespaces/{ns}/{plural}[/{name}]
        ["namespaces", ns, plural] if known(plural).is_some_and(|r| r.namespaced) => {
            target(known(plural)?, Some(ns), None)
        }
        ["namespaces", ns, plural, name] if known(plural).is_some_and(|r| r.namespaced) => {
            target(known(plural)?, Some(ns), Some(name))
        }
        ["namespaces", ns, plural, name, sub] if SUBRESOURCES.contains(&(*plural, *sub)) => {
            Some(Target::Subresource {
                resource: known(plural)?,
                namespace: ns.to_string(),
                name: name.to_string(),
                sub: sub.to_string(),
            })
        }
        // /{plural} (cluster-scoped, or all namespaces) and /{plural}/{name}
        [plural] => target(known(plural)?, None, None),
        [plural, name] => target(known(plural)?, None, Some(name)),
        _ => None,
    }
}

/// A path under a kind served by conversion (all of them namespaced):
/// `namespaces/{ns}/{plural}[/{name}]` or `{plural}` across namespaces.
fn converted(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let (plural, namespace, name) = match rest {
        ["namespaces", ns, plural] => (plural, Some(ns), None),
        ["namespaces", ns, plural, name] => (plural, Some(ns), Some(name)),
        [plural] => (plural, None, None),
        _ => return None,
    };
    let resource = resource::converted(group, version, plural)?;
    Some(Target::Converted {
        resource,
        namespace: namespace.map(|n| n.to_string()),
        name: name.map(|n| n.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(t: Option<Target>) -> (&'static str, Option<String>, Option<String>) {
        match t {
            Some(Target::Resource {
                resource,
                namespace,
                name,
            }) => (resource.plural, namespace, name),
            other => panic!("not a resource: {other:?}"),
        }
    }

    #[test]
    fn parses_core_and_group_paths() {
        assert_eq!(
            res(parse("/api/v1/namespaces/default/pods")),
            ("pods", Some("default".into()), None)
        );
        assert_eq!(
            res(parse("/apis/apps/v1/namespaces/x/deployments/web")),
            ("deployments", Some("x".into()), Some("web".into()))
        );
        assert_eq!(res(parse("/api/v1/pods")), ("pods", None, None));
        assert_eq!(
            res(parse("/api/v1/nodes/n1")),
            ("nodes", None, Some("n1".into()))
        );
        // /api/v1/namespaces/{name} is the Namespace object itself.
        assert_eq!(
            res(parse("/api/v1/namespaces/default")),
            ("namespaces", None, Some("default".into()))
        );
        assert_eq!(res(parse("/api/v1/namespaces")), ("namespaces", None, None));
    }

    #[test]
    fn parses_discovery_and_rejects_unknown() {
        assert_eq!(parse("/api"), Some(Target::CoreVersions));
        assert_eq!(parse("/apis"), Some(Target::GroupList));
        assert_eq!(
            parse("/apis/apps/v1"),
            Some(Target::ResourceList {
                group: "apps".into(),
                version: "v1".into()
            })
        );
        assert_eq!(parse("/api/v2"), None);
        assert_eq!(parse("/apis/apps/v2"), None);
        assert_eq!(parse("/api/v1/widgets"), None);
        assert_eq!(parse("/apis/apps/v1/deployments/web"), None);
        assert_eq!(parse("/api/v1/namespaces/x/nodes"), None);
        assert_eq!(parse("/api/v1/pods/a/b/c"), None);
        assert_eq!(parse("/api/v1/namespaces/x/pods/a/status"), None);
        assert!(matches!(
            parse("/apis/events.k8s.io/v1/namespaces/x/events/e1"),
            Some(Target::Converted { resource, namespace: Some(ns), name: Some(n) })
                if resource.group == "events.k8s.io" && ns == "x" && n == "e1"
        ));
        assert!(matches!(
            parse("/apis/events.k8s.io/v1/events"),
            Some(Target::Converted {
                namespace: None,
                name: None,
                ..
            })
        ));
        assert_eq!(parse("/apis/events.k8s.io/v1/events/e1"), None);
        assert_eq!(parse("/apis/events.k8s.io/v1/namespaces/x/pods"), None);
        assert!(matches!(
            parse("/apis/apps/v1/namespaces/x/deployments/web/rollback"),
            Some(Target::Subresource { sub, .. }) if sub == "rollback"
        ));
    }
}
