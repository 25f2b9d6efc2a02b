//! Bearer-token authentication for everything but `/healthz` and `/version`.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::watch_limit::Caller;

/// Rejects requests without `Authorization: Bearer <admin token>` with 401.
/// Requests that pass carry a [`Caller`] naming the token.
pub async fn require_token(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if crate::token::constant_time_eq(t.as_bytes(), st.token.as_bytes()) => {
            req.extensions_mut().insert(Caller {
                token: "admin".into(),
            });
            next.run(req).await
        }
        _ => {
            tracing::debug!(path = req.uri().path(), "unauthorized request");
            ApiError::new(bramble_api::Status::unauthorized()).into_response()
        }
    }
}
