//! `GET /bramble/v2/identity?challenge=C`, no auth: the hub's public keys and
//! its signature over the asker's random challenge (`bramble_trust::challenge`),
//! so a board that found a hub on the LAN can check it holds the key its
//! join token names before it says anything to it.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::AppState;

#[derive(Deserialize)]
pub struct Challenge {
    challenge: String,
}

/// Longest challenge accepted (bytes, decoded).
const MAX_CHALLENGE: usize = 256;

pub async fn identity(State(st): State<AppState>, Query(q): Query<Challenge>) -> Response {
    let Some(id) = &st.identity else {
        return (
            StatusCode::NOT_FOUND,
            "this hub runs without node identities",
        )
            .into_response();
    };
    let challenge = match base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(q.challenge.trim())
    {
        Ok(c) if (bramble_trust::challenge::MIN_CHALLENGE..=MAX_CHALLENGE).contains(&c.len()) => c,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "challenge must be {}..{MAX_CHALLENGE} random bytes, unpadded base64url",
                    bramble_trust::challenge::MIN_CHALLENGE
                ),
            )
                .into_response();
        }
    };
    let keys = id.hub_keys();
    let proof = bramble_trust::challenge::prove(keys, &challenge);
    axum::Json(json!({
        "signing": keys.public().signing_text(),
        "encryption": keys.public().encryption_text(),
        "fingerprint": keys.public().fingerprint().to_string(),
        "proof": bramble_trust::text::b64(&proof),
    }))
    .into_response()
}
