//! `POST pods/{name}/eviction` (`policy/v1` `Eviction`): what `kubectl drain`
//! asks instead of a delete. Bramble has no PodDisruptionBudgets yet, so an
//! eviction is always allowed: it deletes the pod with the Eviction's
//! `deleteOptions` (precondition, dry run) and answers `201` with a
//! `Success` Status, as the Kubernetes API server does.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bramble_api::{ResourceInfo, Status};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiResult};

/// Evicts `ns/name` as `eviction` asks.
pub async fn evict(
    st: &AppState,
    pods: &'static ResourceInfo,
    ns: &str,
    name: &str,
    eviction: Value,
) -> ApiResult<Response> {
    if eviction["kind"] != "Eviction" {
        return Err(ApiError::bad_request(format!(
            "the body of pods/{name}/eviction must be a policy/v1 Eviction, not {}",
            eviction["kind"]
        )));
    }
    if let Some(n) = eviction["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the Eviction names pod {n:?} but the URL names {name:?}"
        )));
    }
    let options = match &eviction["deleteOptions"] {
        Value::Null => None,
        o => Some(o.clone()),
    };
    let dry = super::dry_run::in_delete_options(options.as_ref())?;
    let state;
    let st = if dry {
        state = super::dry_run::state(st);
        &state
    } else {
        st
    };
    super::objects::delete(st, pods, Some(ns), name, options).await?;
    let mut status = Status::success(format!("pod {name:?} evicted"));
    status.code = 201;
    Ok((StatusCode::CREATED, axum::Json(status)).into_response())
}
