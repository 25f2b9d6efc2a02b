//! Request bodies by `Content-Type`: JSON as is, Kubernetes protobuf
//! (kubectl's typed client) decoded into the same JSON, anything else 415.

use bramble_api::Status;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::objects::parse_body;
use super::protobuf::{self, MEDIA_TYPE, ProtoError};

/// The JSON of a `POST`, `PUT` or `DELETE` body sent as `content_type`
/// (none is taken as JSON).
pub fn decode(content_type: Option<&str>, body: &[u8]) -> ApiResult<Value> {
    let ct = content_type
        .and_then(|c| c.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "" | "application/json" => parse_body(body),
        MEDIA_TYPE => protobuf::decode(body).map_err(proto_error),
        other => Err(ApiError::new(Status::failure(
            415,
            "UnsupportedMediaType",
            format!(
                "the body's content type {other:?} is not supported: send application/json \
                 (or {MEDIA_TYPE}, as kubectl does)"
            ),
        ))),
    }
}

/// Like [`decode`], also naming the keys a JSON body has twice (protobuf
/// bodies cannot have any).
pub fn decode_noting_duplicates(
    content_type: Option<&str>,
    body: &[u8],
) -> ApiResult<(Value, Vec<String>)> {
    if is_json(content_type) {
        bramble_api::schema::duplicates::parse(body)
            .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
    } else {
        decode(content_type, body).map(|v| (v, Vec::new()))
    }
}

fn is_json(content_type: Option<&str>) -> bool {
    let ct = content_type
        .and_then(|c| c.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(ct.as_str(), "" | "application/json")
}

/// What cannot be decoded from protobuf at all is 415 (send JSON instead);
/// a broken body is 400.
fn proto_error(e: ProtoError) -> ApiError {
    let code = match e {
        ProtoError::UnsupportedField { .. }
        | ProtoError::UnsupportedKind { .. }
        | ProtoError::ContentEncoding(_)
        | ProtoError::ContentType(_) => 415,
        ProtoError::NotEnvelope | ProtoError::Malformed { .. } | ProtoError::TooDeep { .. } => 400,
    };
    let reason = if code == 415 {
        "UnsupportedMediaType"
    } else {
        "BadRequest"
    };
    ApiError::new(Status::failure(code, reason, e.to_string()))
}
