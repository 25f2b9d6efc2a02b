//! `fieldValidation=Strict|Warn|Ignore` on create, update and patch, as the
//! Kubernetes API server answers it: every unknown field named in one
//! BadRequest (Strict), dropped with a `Warning` each (Warn, the default), or
//! dropped silently (Ignore); keys a body has twice likewise. A field Kubernetes has and Bramble does not
//! implement is refused (422) in every mode: see
//! [`bramble_api::schema::unknown`].

use axum::extract::Query;
use bramble_api::schema::{FieldValidation, find_unknown_fields};
use bramble_api::{ResourceInfo, Status};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, ApiResult};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WriteQuery {
    field_validation: Option<String>,
}

/// How a write's fields are checked: the request's `fieldValidation` and the
/// keys its body had twice.
#[derive(Debug, Default)]
pub struct FieldCheck {
    pub mode: FieldValidation,
    pub duplicates: Vec<String>,
}

/// Parses a create, update or patch: its `fieldValidation` (Warn when
/// absent) and its body (JSON, noting duplicate keys, or kubectl's protobuf:
/// [`super::content`]).
pub fn parse_write(
    uri: &axum::http::Uri,
    content_type: Option<&str>,
    body: &[u8],
) -> ApiResult<(Value, FieldCheck)> {
    let q = Query::<WriteQuery>::try_from_uri(uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let mode = FieldValidation::parse(q.field_validation.as_deref())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (value, duplicates) = super::content::decode_noting_duplicates(content_type, body)?;
    Ok((value, FieldCheck { mode, duplicates }))
}

/// The `fieldValidation` of a request whose body is parsed elsewhere (an
/// apply configuration in YAML).
pub fn parse_mode(uri: &axum::http::Uri) -> ApiResult<FieldCheck> {
    let q = Query::<WriteQuery>::try_from_uri(uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let mode = FieldValidation::parse(q.field_validation.as_deref())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(FieldCheck {
        mode,
        duplicates: Vec::new(),
    })
}

/// Removes the fields of `body` that `resource` does not have and returns
/// the warnings to send, or the refusal. A body of another kind is left to
/// admission, which refuses it.
pub fn check(
    resource: &'static ResourceInfo,
    body: &mut Value,
    fields: &FieldCheck,
) -> ApiResult<Vec<String>> {
    let same_kind = body["kind"] == resource.kind && body["apiVersion"] == resource.api_version();
    if !same_kind {
        return Ok(Vec::new());
    }
    let mut found = find_unknown_fields(resource, body);
    found.duplicate = fields.duplicates.clone();
    if !found.unimplemented.is_empty() {
        return Err(bramble_api::AdmitError::Invalid {
            kind: resource.qualified_kind(),
            name: body["metadata"]["name"].as_str().unwrap_or("").to_string(),
            errors: found.unimplemented_errors(),
        }
        .into());
    }
    match (fields.mode, found.strict_error()) {
        (FieldValidation::Strict, Some(e)) => Err(ApiError::new(Status::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
            kind = resource.kind,
            version = resource.version,
        )))),
        (FieldValidation::Warn, _) => Ok(found.warnings()),
        _ => Ok(Vec::new()),
    }
}
