//! Registry authentication: the hub token as a bearer token, or as the
//! password of basic auth (any user name) — what docker, skopeo and crane send.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::error::RegistryError;
use crate::api::AppState;

fn credential(req: &Request) -> Option<String> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    if let Some(t) = h.strip_prefix("Bearer ") {
        return Some(t.trim().to_string());
    }
    let b = h.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    Some(text.split_once(':')?.1.to_string())
}

/// Rejects requests without the hub token (401 with a basic-auth challenge).
pub async fn require_token(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match credential(&req) {
        Some(t) if crate::api::token_matches(&st, &t) => next.run(req).await,
        _ => RegistryError::unauthorized().into_response(),
    }
}
