//! What anyone may ask the hub before trusting it (no auth; read over TLS
//! without verification, so everything here is checked by signature):
//!
//! - `GET /bramble/v2/identity?challenge=C`: the hub's public keys, its
//!   signature over the asker's random challenge (`bramble_trust::challenge`),
//!   and its CA certificate with the key's endorsement (`bramble_trust::ca`).
//!   A board checks the key against its join token, the proof, then the
//!   endorsement, and from then on trusts exactly that CA for HTTPS and MQTT.
//! - `GET /cacerts`: the CA certificate as PEM (k3s' path), for `curl` and
//!   scripts that check its hash themselves.

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
    let mut answer = json!({
        "signing": keys.public().signing_text(),
        "encryption": keys.public().encryption_text(),
        "fingerprint": keys.public().fingerprint().to_string(),
        "proof": bramble_trust::text::b64(&proof),
    });
    if let Some(tls) = &st.tls {
        answer["ca"] = json!(tls.ca.pem());
        answer["caSignature"] = json!(bramble_trust::text::b64(&bramble_trust::ca::endorse(
            keys,
            tls.ca.der()
        )));
    }
    axum::Json(answer).into_response()
}

pub async fn cacerts(State(st): State<AppState>) -> Response {
    match &st.tls {
        Some(tls) => (
            [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
            tls.ca.pem().to_string(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "this hub has no CA").into_response(),
    }
}
