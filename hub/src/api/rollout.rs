//! Deployment subresources for `bramble rollout`: `revisions` (GET: the
//! revision history, oldest first) and `rollback` (POST `{"toRevision": N}`,
//! 0 = the previous revision: writes that revision's template back, as
//! `kubectl rollout undo` does), through Pod Security admission. Both read
//! the Deployment's ReplicaSets, as kubectl does.

use axum::response::{IntoResponse, Response};
use bramble_api::objects::{Deployment, ReplicaSet};
use bramble_api::{Selector, Status};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::warning::with_warnings;
use crate::control::snapshot::{deployments, replicasets};
use crate::controllers::UndoError;
use crate::controllers::naming::POD_TEMPLATE_HASH;
use crate::controllers::replicasets::{CHANGE_CAUSE_ANNOTATION, hash_of, owned, revision};
use crate::controllers::revision::undo;

/// The stored Deployment, decoded, and the ReplicaSets of its namespace.
fn load(st: &AppState, ns: &str, name: &str) -> ApiResult<(Value, Deployment, Vec<ReplicaSet>)> {
    let raw = st
        .store
        .get(deployments(), Some(ns), name)?
        .ok_or_else(|| ApiError::new(Status::not_found("deployments.apps", name)))?;
    let d: Deployment = serde_json::from_value(raw.clone())
        .map_err(|e| ApiError::bad_request(format!("stored deployment does not decode: {e}")))?;
    let replica_sets = st
        .store
        .list(replicasets(), Some(ns), &Selector::default())?
        .items
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    Ok((raw, d, replica_sets))
}

/// `GET .../deployments/{name}/revisions`.
pub fn revisions(st: &AppState, ns: &str, name: &str) -> ApiResult<Response> {
    let (_, d, replica_sets) = load(st, ns, name)?;
    let items: Vec<Value> = owned(&d, &replica_sets)
        .into_iter()
        .map(|rs| {
            let mut template = rs.spec.template.clone();
            template.metadata.labels.remove(POD_TEMPLATE_HASH);
            json!({
                "revision": revision(rs),
                "podTemplateHash": hash_of(rs),
                "changeCause": rs.metadata.annotations.get(CHANGE_CAUSE_ANNOTATION),
                "template": template,
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
    let (raw, d, replica_sets) = load(st, ns, name)?;
    let template = undo(&d, &owned(&d, &replica_sets), to).map_err(|e| match e {
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
