//! `/healthz`, `/version` and `/metrics`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// Liveness: the process answers. No auth.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Version in the shape of Kubernetes' `/version`. No auth.
pub async fn version() -> Response {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    };
    axum::Json(json!({
        "major": "1",
        "minor": "32",
        "gitVersion": format!("v1.32.0+bramble-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "bramble": env!("CARGO_PKG_VERSION"),
        "platform": format!("linux/{arch}"),
        "compiler": "rustc",
    }))
    .into_response()
}

/// Prometheus text exposition.
pub async fn metrics(State(st): State<AppState>) -> Response {
    let body = st.metrics.render(&st.store);
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
