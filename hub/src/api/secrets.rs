//! Secrets encryption at rest, for the admin (`bramble secrets ...`):
//!
//! - `GET /bramble/v2/secrets/encryption`: whether the store seals, the active
//!   key's id, how many keys the file holds and which tables are sealed.
//! - `POST /bramble/v2/secrets/rotate-key`: a new key, every sealed value
//!   sealed again under it, the old key dropped from `DATA_DIR/secrets.key`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bramble_api::Status;
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ApiResult};

pub async fn status(State(st): State<AppState>) -> ApiResult<Response> {
    let body = match st.store.sealer() {
        Some(s) => {
            let ring = s.keyring();
            json!({
                "enabled": true,
                "activeKey": format!("{:08x}", ring.active),
                "keys": ring.keys.len(),
                "tables": s.tables(),
            })
        }
        None => json!({"enabled": false}),
    };
    Ok(axum::Json(body).into_response())
}

pub async fn rotate_key(State(st): State<AppState>) -> ApiResult<Response> {
    let Some(key) = st.secrets_key.as_ref() else {
        return Err(ApiError::new(Status::failure(
            404,
            "NotFound",
            "this hub runs without secrets encryption",
        )));
    };
    let r = key.rotate(&st.store).await.map_err(|e| {
        tracing::error!(error = %e, "secrets key rotation failed");
        ApiError::new(Status::failure(500, "InternalError", e.to_string()))
    })?;
    Ok(axum::Json(json!({
        "activeKey": format!("{:08x}", r.active),
        "resealed": r.resealed,
        "retired": r.retired,
    }))
    .into_response())
}
