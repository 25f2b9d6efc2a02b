//! Registry authentication: the hub token as a bearer token, or as the
//! password of basic auth (any user name) — what docker, skopeo and crane
//! send. Agents pull with their node key's registry login (basic auth, user =
//! node name, see `bramble_trust::login`): read-only, only `GET`/`HEAD`, and
//! refused from the moment the node is deleted. A build job's credential
//! (user `_build.…`, which no node name can be: [`crate::build::grants`]) uploads blobs to its Build's
//! repository, nothing else.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::error::RegistryError;
use crate::api::AppState;

/// (user, secret) from a bearer token (no user) or basic auth.
fn credential(req: &Request) -> Option<(Option<String>, String)> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    if let Some(t) = h.strip_prefix("Bearer ") {
        return Some((None, t.trim().to_string()));
    }
    let b = h.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((Some(user.to_string()), pass.to_string()))
}

/// Rejects requests without the hub token or, for reads, a node's key
/// login (401 with a basic-auth challenge).
pub async fn require_token(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let ok = match credential(&req) {
        Some((_, t)) if crate::api::token_matches(&st, &t) => true,
        Some((Some(user), pass)) if user.starts_with(crate::build::grants::USER_PREFIX) => {
            st.builds.as_ref().is_some_and(|b| {
                super::path::parse(req.uri().path())
                    .is_some_and(|route| b.grants.allows(&user, &pass, req.method(), &route))
            })
        }
        Some((Some(node), pass)) if read => st
            .identity
            .as_ref()
            .is_some_and(|i| i.registry_login(&node, &pass)),
        _ => false,
    };
    if ok {
        next.run(req).await
    } else {
        RegistryError::unauthorized().into_response()
    }
}
