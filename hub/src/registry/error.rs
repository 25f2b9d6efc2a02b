//! Registry errors in the OCI distribution format:
//! `{"errors":[{"code":"BLOB_UNKNOWN","message":"...","detail":...}]}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An OCI distribution error code with its HTTP status and a message.
#[derive(Debug)]
pub struct RegistryError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl RegistryError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        RegistryError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn blob_unknown(digest: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob {digest} is not in the hub's registry"),
        )
    }
    pub fn manifest_unknown(repo: &str, reference: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest {repo}:{reference} is not in the hub's registry"),
        )
    }
    pub fn name_unknown(repo: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {repo} is not in the hub's registry"),
        )
    }
    pub fn upload_unknown(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            format!(
                "upload {id} is unknown (finished, cancelled, or lost in a hub restart): start the upload again"
            ),
        )
    }
    pub fn digest_invalid(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", msg)
    }
    pub fn name_invalid(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "NAME_INVALID", msg)
    }
    pub fn manifest_invalid(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", msg)
    }
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", msg)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required: use the hub's token as a bearer token or as the password of basic auth (any user name)",
        )
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        tracing::error!(error = %msg, "registry failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            msg.to_string(),
        )
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let body =
            json!({"errors": [{"code": self.code, "message": self.message, "detail": null}]});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Basic realm=\"bramble\""),
            );
        }
        resp
    }
}

impl From<bramble_images::BlobError> for RegistryError {
    fn from(e: bramble_images::BlobError) -> Self {
        match e {
            bramble_images::BlobError::NotFound(d) => RegistryError::blob_unknown(&d.to_string()),
            bramble_images::BlobError::DigestMismatch { .. } => {
                RegistryError::digest_invalid(e.to_string())
            }
            other => RegistryError::internal(other),
        }
    }
}

impl From<crate::store::StoreError> for RegistryError {
    fn from(e: crate::store::StoreError) -> Self {
        RegistryError::internal(e)
    }
}

/// Result of a registry handler.
pub type RegistryResult<T> = Result<T, RegistryError>;
