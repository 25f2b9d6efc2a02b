//! The admin side of node trust (admin token required): join tokens
//! (`bramble token create|ls|rm`, `bramble nodes rotate-token`) and node
//! keys (`bramble nodes keys`, `bramble nodes approve`).
//!
//! - `GET /bramble/v2/tokens`: every token, never a secret.
//! - `POST /bramble/v2/tokens` `{"ttlSeconds"?, "uses"?, "description"?}`: a new
//!   bootstrap token, returned once in full.
//! - `DELETE /bramble/v2/tokens/{id}`; `POST /bramble/v2/tokens/cluster/rotate`.
//! - `GET /bramble/v2/nodekeys`: each node's key fingerprint, approval,
//!   incarnation and join; `POST /bramble/v2/nodekeys/{name}/approve`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bramble_api::Status;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::identity::{Identity, IdentityError};

fn identity(st: &AppState) -> ApiResult<&Arc<Identity>> {
    st.identity.as_ref().ok_or_else(|| {
        ApiError::new(Status::failure(
            404,
            "NotFound",
            "this hub runs without node identities",
        ))
    })
}

fn failed(e: IdentityError) -> ApiError {
    tracing::error!(error = %e, "node trust store failure");
    ApiError::new(Status::failure(500, "InternalError", e.to_string()))
}

/// A new token's limits.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    ttl_seconds: Option<u64>,
    #[serde(default)]
    uses: Option<u32>,
    #[serde(default)]
    description: String,
}

pub async fn list_tokens(State(st): State<AppState>) -> ApiResult<Response> {
    let tokens = identity(&st)?.tokens().list();
    Ok(axum::Json(json!({"items": tokens})).into_response())
}

pub async fn create_token(
    State(st): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let req: NewToken = if body.is_empty() {
        NewToken::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("a new token's limits: {e}")))?
    };
    if req.ttl_seconds == Some(0) || req.uses == Some(0) {
        return Err(ApiError::bad_request(
            "ttlSeconds and uses must be at least 1 when given",
        ));
    }
    let t = identity(&st)?
        .tokens()
        .create(
            req.ttl_seconds.map(Duration::from_secs),
            req.uses,
            req.description,
        )
        .await
        .map_err(failed)?;
    tracing::info!(id = t.id(), "join token created");
    Ok(axum::Json(json!({"id": t.id(), "token": t.to_string()})).into_response())
}

pub async fn delete_token(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id_ = identity(&st)?;
    if id_.tokens().list().iter().any(|t| t.id == id && t.cluster) {
        return Err(ApiError::bad_request(format!(
            "join token {id:?} is the cluster's token (DATA_DIR/node-token): replace it with \
             `bramble nodes rotate-token`"
        )));
    }
    if !id_.tokens().delete(&id).await.map_err(failed)? {
        return Err(ApiError::new(Status::not_found("jointokens", &id)));
    }
    tracing::info!(id, "join token deleted");
    Ok(axum::Json(json!({"id": id, "deleted": true})).into_response())
}

pub async fn rotate_cluster_token(State(st): State<AppState>) -> ApiResult<Response> {
    let t = identity(&st)?
        .tokens()
        .rotate_cluster()
        .await
        .map_err(failed)?;
    Ok(axum::Json(json!({"id": t.id(), "token": t.to_string()})).into_response())
}

pub async fn list_node_keys(State(st): State<AppState>) -> ApiResult<Response> {
    let items: Vec<_> = identity(&st)?
        .nodes()
        .all()
        .into_iter()
        .map(|(name, r)| {
            let fingerprint = r
                .keys()
                .map(|k| k.fingerprint().to_string())
                .unwrap_or_default();
            json!({"name": name, "fingerprint": fingerprint, "approved": r.approved,
                "incarnation": r.incarnation, "joined": r.joined, "tokenId": r.token_id,
                "architecture": r.architecture, "internalIP": r.internal_ip})
        })
        .collect();
    Ok(axum::Json(json!({"items": items})).into_response())
}

pub async fn approve_node(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !identity(&st)?.approve(&name).await.map_err(failed)? {
        return Err(ApiError::new(Status::failure(
            404,
            "NotFound",
            format!("no board has asked to join as node {name:?} (bramble nodes keys lists them)"),
        )));
    }
    Ok(axum::Json(json!({"name": name, "approved": true})).into_response())
}
