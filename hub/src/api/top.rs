//! The resource metrics API (`metrics.k8s.io/v1beta1`, as metrics-server
//! serves it) from the agents' usage reports: `GET
//! /apis/metrics.k8s.io/v1beta1/nodes` and `.../namespaces/{ns}/pods`
//! (or `/pods` for all namespaces). Feeds `bramble top` and `kubectl top`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bramble_api::quantity::Quantity;
use serde_json::{Value, json};

use super::AppState;
use crate::controllers::PodMetrics;

fn usage(m: &PodMetrics) -> Value {
    json!({
        "cpu": Quantity::from_millis(m.cpu_millis).as_str(),
        "memory": Quantity::from_bytes(m.memory_bytes).as_str(),
    })
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// `GET /apis/metrics.k8s.io/v1beta1/nodes`.
pub async fn nodes(State(st): State<AppState>) -> Response {
    let live = st.fleet.as_ref().map(|f| f.snapshot()).unwrap_or_default();
    let items: Vec<Value> = live
        .iter()
        .filter_map(|(name, l)| {
            let m = l.node_metrics.as_ref()?;
            Some(json!({
                "metadata": {"name": name},
                "timestamp": now(), "window": "10s",
                "usage": usage(m),
            }))
        })
        .collect();
    axum::Json(
        json!({"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {}, "items": items}),
    )
    .into_response()
}

/// `GET /apis/metrics.k8s.io/v1beta1/pods`.
pub async fn all_pods(State(st): State<AppState>) -> Response {
    pods_in(&st, None)
}

/// `GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods`.
pub async fn pods(State(st): State<AppState>, Path(ns): Path<String>) -> Response {
    pods_in(&st, Some(&ns))
}

fn pods_in(st: &AppState, ns: Option<&str>) -> Response {
    let live = st.fleet.as_ref().map(|f| f.snapshot()).unwrap_or_default();
    let mut items = Vec::new();
    for l in live.values() {
        for (key, m) in &l.pod_metrics {
            let Some((pns, name)) = key.split_once('/') else {
                continue;
            };
            if ns.is_some_and(|n| n != pns) {
                continue;
            }
            items.push(json!({
                "metadata": {"name": name, "namespace": pns},
                "timestamp": now(), "window": "10s",
                "containers": [],
                "usage": usage(m),
            }));
        }
    }
    axum::Json(
        json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {}, "items": items}),
    )
    .into_response()
}
