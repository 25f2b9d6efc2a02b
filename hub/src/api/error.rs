//! API errors as Kubernetes `Status` responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bramble_api::Status;

use crate::store::StoreError;

/// An error response: a `Status` object with its HTTP code.
#[derive(Debug)]
pub struct ApiError(pub Box<Status>);

impl ApiError {
    pub fn new(s: Status) -> Self {
        ApiError(Box::new(s))
    }
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::new(Status::bad_request(msg))
    }
    pub fn not_found_path(path: &str) -> Self {
        ApiError::new(Status::failure(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        ))
    }
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        ApiError::new(Status::failure(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on {path}"),
        ))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if matches!(e, StoreError::Db(_) | StoreError::Corrupt { .. }) {
            tracing::error!(error = %e, "store failure");
        }
        ApiError::new(e.to_status())
    }
}

impl From<bramble_api::AdmitError> for ApiError {
    fn from(e: bramble_api::AdmitError) -> Self {
        ApiError::new(e.to_status())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        status_response(&self.0)
    }
}

/// Serializes a `Status` with its own code as the HTTP status.
pub fn status_response(s: &Status) -> Response {
    let code = StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(s)).into_response()
}

/// Result of an API handler.
pub type ApiResult<T> = Result<T, ApiError>;
