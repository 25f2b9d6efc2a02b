//! Aggregated discovery (`apidiscovery.k8s.io/v2`, and `v2beta1` for older
//! clients): `/api` and `/apis` answered as one `APIGroupDiscoveryList`
//! with every group's versions and resources when the client's `Accept`
//! asks for it first, as kubectl 1.32 does, so it makes no request per
//! group version. Built from the plain documents of [`super::discovery`]
//! (each resource with its kind, scope, verbs, short names, categories and
//! subresources), so the two forms cannot disagree; any other `Accept` gets
//! the plain form.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::discovery;

/// The aggregated form a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregated {
    V2,
    V2Beta1,
}

impl Aggregated {
    fn version(self) -> &'static str {
        match self {
            Aggregated::V2 => "v2",
            Aggregated::V2Beta1 => "v2beta1",
        }
    }

    /// The `Content-Type` that tells a client the answer is aggregated.
    fn content_type(self) -> String {
        format!(
            "application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList",
            self.version()
        )
    }

    /// The first media range of `accept` this server serves, if it is an
    /// aggregated one (a plain `application/json` before it wins: the
    /// client's order is its preference).
    pub fn negotiate(accept: &str) -> Option<Aggregated> {
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let (mut g, mut v, mut as_) = (None, None, None);
            for p in parts {
                match p.split_once('=') {
                    Some(("g", x)) => g = Some(x),
                    Some(("v", x)) => v = Some(x),
                    Some(("as", x)) => as_ = Some(x),
                    _ => {}
                }
            }
            let plain = g.is_none() && v.is_none() && as_.is_none();
            if plain && matches!(media, "application/json" | "*/*" | "application/*") {
                return None;
            }
            if media != "application/json"
                || g != Some("apidiscovery.k8s.io")
                || as_ != Some("APIGroupDiscoveryList")
            {
                continue;
            }
            match v {
                Some("v2") => return Some(Aggregated::V2),
                Some("v2beta1") => return Some(Aggregated::V2Beta1),
                _ => continue,
            }
        }
        None
    }
}

/// What `/api` or `/apis` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `/api`: the core group.
    Core,
    /// `/apis`: the named groups.
    Groups,
}

/// The answer to `GET /api` or `GET /apis` for `headers`' `Accept`.
pub fn answer(root: Root, headers: &HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (body, content_type) = match Aggregated::negotiate(accept) {
        Some(form) => (list(root, form), form.content_type()),
        None => {
            let plain = match root {
                Root::Core => discovery::core_versions(),
                Root::Groups => discovery::group_list(),
            };
            (plain, "application/json".to_string())
        }
    };
    let mut resp = axum::Json(body).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    resp
}

/// The `APIGroupDiscoveryList` of `root`.
pub fn list(root: Root, form: Aggregated) -> Value {
    let items: Vec<Value> = match root {
        Root::Core => vec![group("", &["v1"])],
        Root::Groups => discovery::group_list()["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                let versions: Vec<&str> = g["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["version"].as_str())
                    .collect();
                group(g["name"].as_str().unwrap_or(""), &versions)
            })
            .collect(),
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{}", form.version()),
        "metadata": {},
        "items": items,
    })
}

/// One `APIGroupDiscovery`: its versions, the preferred first.
fn group(name: &str, versions: &[&str]) -> Value {
    let metadata = if name.is_empty() {
        json!({})
    } else {
        json!({"name": name})
    };
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| version(&discovery::resource_list(name, v), name, v))
        .collect();
    json!({"metadata": metadata, "versions": versions})
}

/// One `APIVersionDiscovery` from the plain `APIResourceList` of
/// `group`/`version`: each resource with its subresources (`pods/log`)
/// folded in.
fn version(plain: &Value, group: &str, version: &str) -> Value {
    let listed = plain["resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut resources: Vec<Value> = Vec::new();
    for r in listed {
        let name = r["name"].as_str().unwrap_or("");
        if name.contains('/') {
            continue;
        }
        let mut d = Map::new();
        d.insert("resource".into(), name.into());
        d.insert("responseKind".into(), response_kind(r, group, version));
        let scope = if r["namespaced"] == true {
            "Namespaced"
        } else {
            "Cluster"
        };
        d.insert("scope".into(), scope.into());
        d.insert("singularResource".into(), r["singularName"].clone());
        d.insert("verbs".into(), r["verbs"].clone());
        for key in ["shortNames", "categories"] {
            if r[key].as_array().is_some_and(|a| !a.is_empty()) {
                d.insert(key.into(), r[key].clone());
            }
        }
        let prefix = format!("{name}/");
        let subresources: Vec<Value> = listed
            .iter()
            .filter_map(|s| {
                let sub = s["name"].as_str()?.strip_prefix(&prefix)?;
                Some(json!({
                    "subresource": sub,
                    "responseKind": response_kind(s, group, version),
                    "verbs": s["verbs"],
                }))
            })
            .collect();
        if !subresources.is_empty() {
            d.insert("subresources".into(), subresources.into());
        }
        resources.push(Value::Object(d));
    }
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

/// The `{group, version, kind}` a plain entry answers with: its own group
/// and version when it names them (a `Scale` is `autoscaling/v1`), else the
/// list's.
fn response_kind(r: &Value, group: &str, version: &str) -> Value {
    json!({
        "group": r["group"].as_str().unwrap_or(group),
        "version": r["version"].as_str().unwrap_or(version),
        "kind": r["kind"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

    #[test]
    fn kubectls_accept_gets_v2_and_plain_json_gets_the_plain_form() {
        assert_eq!(Aggregated::negotiate(KUBECTL), Some(Aggregated::V2));
        let older = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(Aggregated::negotiate(older), Some(Aggregated::V2Beta1));
        assert_eq!(Aggregated::negotiate("application/json"), None);
        assert_eq!(Aggregated::negotiate(""), None);
        assert_eq!(
            Aggregated::negotiate(&format!("application/json, {KUBECTL}")),
            None,
            "the client prefers plain JSON"
        );
        let protobuf_first = format!(
            "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,{KUBECTL}"
        );
        assert_eq!(Aggregated::negotiate(&protobuf_first), Some(Aggregated::V2));
    }

    /// Every plain group version and resource, as (group/version, name,
    /// kind, namespaced, verbs, short names, categories, group, version).
    fn plain_entries() -> Vec<Value> {
        let mut gvs = vec![(String::new(), "v1".to_string())];
        for g in discovery::group_list()["groups"].as_array().unwrap() {
            for v in g["versions"].as_array().unwrap() {
                gvs.push((
                    g["name"].as_str().unwrap().to_string(),
                    v["version"].as_str().unwrap().to_string(),
                ));
            }
        }
        let mut out = Vec::new();
        for (g, v) in gvs {
            for r in discovery::resource_list(&g, &v)["resources"]
                .as_array()
                .unwrap()
            {
                out.push(json!([
                    g,
                    v,
                    r["name"],
                    r["kind"],
                    r["namespaced"],
                    r["verbs"],
                    r["shortNames"].as_array().cloned().unwrap_or_default(),
                    r["categories"].as_array().cloned().unwrap_or_default(),
                    r["group"].as_str().unwrap_or(&g),
                    r["version"].as_str().unwrap_or(&v)
                ]));
            }
        }
        out
    }

    /// The same, read back from the aggregated lists as client-go converts
    /// them (a subresource takes its parent's scope).
    fn aggregated_entries() -> Vec<Value> {
        let mut out = Vec::new();
        for root in [Root::Core, Root::Groups] {
            let list = list(root, Aggregated::V2);
            assert_eq!(list["apiVersion"], "apidiscovery.k8s.io/v2");
            for g in list["items"].as_array().unwrap() {
                let group = g["metadata"]["name"].as_str().unwrap_or("");
                for v in g["versions"].as_array().unwrap() {
                    assert_eq!(v["freshness"], "Current");
                    let version = v["version"].as_str().unwrap();
                    for r in v["resources"].as_array().unwrap() {
                        let namespaced = r["scope"] == "Namespaced";
                        let kind = &r["responseKind"];
                        out.push(json!([
                            group,
                            version,
                            r["resource"],
                            kind["kind"],
                            namespaced,
                            r["verbs"],
                            r["shortNames"].as_array().cloned().unwrap_or_default(),
                            r["categories"].as_array().cloned().unwrap_or_default(),
                            kind["group"],
                            kind["version"]
                        ]));
                        for s in r["subresources"].as_array().into_iter().flatten() {
                            let kind = &s["responseKind"];
                            let name = format!(
                                "{}/{}",
                                r["resource"].as_str().unwrap(),
                                s["subresource"].as_str().unwrap()
                            );
                            out.push(json!([
                                group,
                                version,
                                name,
                                kind["kind"],
                                namespaced,
                                s["verbs"],
                                [],
                                [],
                                kind["group"],
                                kind["version"]
                            ]));
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_plain_resource_and_subresource_is_aggregated_alike() {
        let mut plain = plain_entries();
        let mut aggregated = aggregated_entries();
        let key = |v: &Value| v.to_string();
        plain.sort_by_key(key);
        aggregated.sort_by_key(key);
        assert_eq!(plain, aggregated);
        assert!(plain.len() >= 20, "{} entries", plain.len());
    }

    #[test]
    fn resources_carry_kubernetes_fields() {
        let core = list(Root::Core, Aggregated::V2);
        let pods = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(
            pods["responseKind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["singularResource"], "pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let eviction = pods["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "eviction")
            .unwrap();
        assert_eq!(
            eviction["responseKind"],
            json!({"group": "policy", "version": "v1", "kind": "Eviction"})
        );
        let groups = list(Root::Groups, Aggregated::V2Beta1);
        assert_eq!(groups["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        let names: Vec<&str> = groups["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["metadata"]["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"apps") && names.contains(&"metrics.k8s.io"),
            "{names:?}"
        );
        let nodes = list(Root::Core, Aggregated::V2)["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "nodes")
            .cloned()
            .unwrap();
        assert_eq!(nodes["scope"], "Cluster");
    }
}
