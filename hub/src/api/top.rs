//! The resource metrics API (`metrics.k8s.io/v1beta1`, as metrics-server
//! serves it) from the agents' usage reports: `GET
//! /apis/metrics.k8s.io/v1beta1/nodes[/{name}]` and
//! `.../namespaces/{ns}/pods[/{name}]` (or `/pods` for all namespaces).
//! Feeds `bramble top` and `kubectl top`.
//!
//! Agents measure a pod's cgroup as a whole, not each container, while
//! `kubectl top pod` sums `containers[].usage`: a one-container pod's usage
//! is its container's; a pod of several has one entry named
//! [`ALL_CONTAINERS`], so the sum is right and `--containers` does not
//! pretend to a split nobody measured. Each item also carries the pod's
//! `usage` (what `bramble top` reads).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bramble_api::Status;
use bramble_api::quantity::Quantity;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::controllers::PodMetrics;

/// The container name of a several-container pod's usage.
pub const ALL_CONTAINERS: &str = "(all containers)";

fn usage(m: &PodMetrics) -> Value {
    json!({
        "cpu": Quantity::from_millis(m.cpu_millis).as_str(),
        "memory": Quantity::from_bytes(m.memory_bytes).as_str(),
    })
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn node_item(name: &str, m: &PodMetrics) -> Value {
    json!({
        "kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": name},
        "timestamp": now(), "window": "10s",
        "usage": usage(m),
    })
}

/// The container entries of a pod with app containers `containers`.
fn containers(containers: &[String], m: &PodMetrics) -> Value {
    let name = match containers {
        [one] => one.as_str(),
        _ => ALL_CONTAINERS,
    };
    json!([{"name": name, "usage": usage(m)}])
}

fn pod_item(st: &AppState, ns: &str, name: &str, m: &PodMetrics) -> Value {
    let names: Vec<String> = st
        .store
        .get(crate::control::snapshot::pods(), Some(ns), name)
        .ok()
        .flatten()
        .and_then(|p| {
            p["spec"]["containers"].as_array().map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
    json!({
        "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": name, "namespace": ns},
        "timestamp": now(), "window": "10s",
        "containers": containers(&names, m),
        "usage": usage(m),
    })
}

fn nodes_of(st: &AppState, only: Option<&str>) -> Vec<Value> {
    let live = st.fleet.as_ref().map(|f| f.snapshot()).unwrap_or_default();
    live.iter()
        .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
        .filter_map(|(name, l)| Some(node_item(name, l.node_metrics.as_ref()?)))
        .collect()
}

fn pods_of(st: &AppState, ns: Option<&str>, only: Option<&str>) -> Vec<Value> {
    let live = st.fleet.as_ref().map(|f| f.snapshot()).unwrap_or_default();
    let mut items = Vec::new();
    for l in live.values() {
        for (key, m) in &l.pod_metrics {
            let Some((pns, name)) = key.split_once('/') else {
                continue;
            };
            if ns.is_some_and(|n| n != pns) || only.is_some_and(|o| o != name) {
                continue;
            }
            items.push(pod_item(st, pns, name, m));
        }
    }
    items
}

fn list(kind: &str, items: Vec<Value>) -> Response {
    axum::Json(json!({"kind": kind, "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {}, "items": items}))
    .into_response()
}

fn one(resource: &str, name: &str, items: Vec<Value>) -> Response {
    match items.into_iter().next() {
        Some(v) => axum::Json(v).into_response(),
        None => ApiError::new(Status::not_found(resource, name)).into_response(),
    }
}

/// `GET /apis/metrics.k8s.io/v1beta1/nodes`.
pub async fn nodes(State(st): State<AppState>) -> Response {
    list("NodeMetricsList", nodes_of(&st, None))
}

/// `GET /apis/metrics.k8s.io/v1beta1/nodes/{name}`.
pub async fn node(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    one("nodes.metrics.k8s.io", &name, nodes_of(&st, Some(&name)))
}

/// `GET /apis/metrics.k8s.io/v1beta1/pods`.
pub async fn all_pods(State(st): State<AppState>) -> Response {
    list("PodMetricsList", pods_of(&st, None, None))
}

/// `GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods`.
pub async fn pods(State(st): State<AppState>, Path(ns): Path<String>) -> Response {
    list("PodMetricsList", pods_of(&st, Some(&ns), None))
}

/// `GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{name}`.
pub async fn pod(State(st): State<AppState>, Path((ns, name)): Path<(String, String)>) -> Response {
    one(
        "pods.metrics.k8s.io",
        &name,
        pods_of(&st, Some(&ns), Some(&name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_container_gets_the_pods_usage_and_several_share_one_entry() {
        let m = PodMetrics {
            cpu_millis: 250,
            memory_bytes: 64 << 20,
        };
        let one = containers(&["web".into()], &m);
        assert_eq!(one[0]["name"], "web");
        assert_eq!(one[0]["usage"]["cpu"], "250m");
        assert_eq!(one[0]["usage"]["memory"], "64Mi");
        let two = containers(&["web".into(), "sidecar".into()], &m);
        assert_eq!(two.as_array().unwrap().len(), 1);
        assert_eq!(two[0]["name"], ALL_CONTAINERS);
    }
}
