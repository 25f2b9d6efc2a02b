//! Deployment subresources for `bramble rollout`: `revisions` (GET: the
//! revision history, oldest first) and `rollback` (POST `{"toRevision": N}`,
//! 0 = the previous revision: writes that revision's template back, as
//! `kubectl rollout undo` does), through Pod Security admission.

use axum::response::{IntoResponse, Response};
use bramble_api::Status;
use bramble_api::objects::Deployment;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::warning::with_warnings;
use crate::control::snapshot::{REVISIONS_TABLE, deployments};
use crate::controllers::Revision;
use crate::controllers::revision::{UndoError, records, undo};

fn load(st: &AppState, ns: &str, name: &str) -> ApiResult<(Value, Deployment, Vec<Revision>)> {
    let raw = st
        .store
        .get(deployments(), Some(ns), name)?
        .ok_or_else(|| ApiError::new(Status::not_found("deployments.apps", name)))?;
    let d: Deployment = serde_json::from_value(raw.clone())
        .map_err(|e| ApiError::bad_request(format!("stored deployment does not decode: {e}")))?;
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let mut history = Vec::new();
    for (_, bytes) in st.store.kv_list(REVISIONS_TABLE, &format!("{uid}/"))? {
        if let Ok(r) = serde_json::from_slice::<Revision>(&bytes) {
            history.push(r);
        }
    }
    Ok((raw, d, history))
}

/// `GET .../deployments/{name}/revisions`.
pub fn revisions(st: &AppState, ns: &str, name: &str) -> ApiResult<Response> {
    let (_, d, history) = load(st, ns, name)?;
    let uid = d.metadata.uid.as_deref().unwrap_or("");
    let items: Vec<Value> = records(&history, uid)
        .into_iter()
        .map(|r| {
            json!({
                "revision": r.revision,
                "podTemplateHash": r.hash,
                "changeCause": r.change_cause,
                "template": r.template,
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "apiVersion": "bramble.dev/v1",
        "kind": "DeploymentRevisionList",
        "metadata": {"name": name, "namespace": ns},
        "items": items,
    }))
    .into_response())
}

/// `POST .../deployments/{name}/rollback` with `{"toRevision": N}`.
pub async fn rollback(st: &AppState, ns: &str, name: &str, body: Value) -> ApiResult<Response> {
    let to = match &body["toRevision"] {
        Value::Null => 0,
        v => v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_request(format!(
                "toRevision: {v}: must be a revision number (0 for the previous one)"
            ))
        })?,
    };
    let (raw, d, history) = load(st, ns, name)?;
    let template = undo(&d, &history, to).map_err(|e| match e {
        UndoError::NotFound { .. } => {
            ApiError::new(Status::not_found("revisions", &to.to_string()))
        }
        other => ApiError::bad_request(other.to_string()),
    })?;
    let mut next = raw.clone();
    next["spec"]["template"] = serde_json::to_value(&template)
        .map_err(|e| ApiError::bad_request(format!("template does not encode: {e}")))?;
    // The old template meets today's Pod Security level or is refused.
    let warnings = super::pod_security::admit_write(st, deployments(), &next, Some(&raw))?;
    let (updated, _) = st.store.update(deployments(), next).await?;
    tracing::info!(
        namespace = ns,
        deployment = name,
        to_revision = to,
        "rolled back"
    );
    Ok(with_warnings(
        axum::Json(updated).into_response(),
        &warnings,
    ))
}
