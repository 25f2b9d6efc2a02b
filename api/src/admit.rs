//! Admission: from a client's JSON to a decoded, defaulted, validated object.
//!
//! The hub calls [`admit`] on every create and update; the CLI may call it to
//! check manifests before sending them. The result is canonical JSON: what the
//! store keeps and what `get -o yaml` shows.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::field::{FieldError, FieldErrors};
use crate::meta::{NameRule, ObjectMeta};
use crate::resource::{self, ResourceInfo};

/// A kind of object Bramble stores.
pub trait Object: Serialize + DeserializeOwned {
    /// Which syntax the object's name must follow.
    const NAME_RULE: NameRule = NameRule::Subdomain;
    fn metadata(&self) -> &ObjectMeta;
    /// Fills in the defaults Kubernetes applies (restartPolicy, protocol, ...).
    fn apply_defaults(&mut self) {}
    /// Checks everything except `metadata` (which [`admit`] checks).
    fn validate(&self) -> FieldErrors;
}

/// An object that passed admission.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub resource: &'static ResourceInfo,
    /// Canonical JSON with defaults applied.
    pub object: Value,
}

impl Admitted {
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or("")
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object["metadata"]["namespace"].as_str()
    }
}

/// Why an object was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdmitError {
    /// `apiVersion` or `kind` missing or not strings.
    #[error("{0}")]
    TypeMeta(String),
    /// No such kind in that API version.
    #[error(
        "no kind \"{kind}\" is registered for version \"{api_version}\": Bramble serves {known}"
    )]
    UnknownKind {
        api_version: String,
        kind: String,
        known: String,
    },
    /// Fields are invalid or not supported. `kind` is qualified by the
    /// group as Kubernetes writes it ([`ResourceInfo::qualified_kind`]).
    #[error("{kind} \"{name}\" is invalid: {errors}")]
    Invalid {
        kind: String,
        name: String,
        errors: FieldErrors,
    },
}

impl AdmitError {
    /// The Kubernetes `Status` for this error (400, 404 or 422).
    pub fn to_status(&self) -> crate::Status {
        match self {
            AdmitError::TypeMeta(m) => crate::Status::bad_request(m.clone()),
            AdmitError::UnknownKind { .. } => {
                crate::Status::failure(404, "NotFound", self.to_string())
            }
            AdmitError::Invalid { kind, name, errors } => {
                crate::Status::invalid(kind, name, errors)
            }
        }
    }
}

/// Reads `apiVersion` and `kind` and finds the resource.
pub fn resource_of(value: &Value) -> Result<&'static ResourceInfo, AdmitError> {
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    let kind = value.get("kind").and_then(Value::as_str);
    match (api_version, kind) {
        (Some(a), Some(k)) if !a.is_empty() && !k.is_empty() => {
            resource::by_kind(a, k).ok_or_else(|| AdmitError::UnknownKind {
                api_version: a.to_string(),
                kind: k.to_string(),
                known: resource::RESOURCES
                    .iter()
                    .map(|r| format!("{} {}", r.api_version(), r.kind))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
        (None, _) | (Some(""), _) => Err(AdmitError::TypeMeta(
            "apiVersion not set: every object needs apiVersion and kind (e.g. apiVersion: apps/v1, kind: Deployment)".into(),
        )),
        _ => Err(AdmitError::TypeMeta(
            "kind not set: every object needs apiVersion and kind (e.g. apiVersion: v1, kind: ConfigMap)".into(),
        )),
    }
}

/// Decodes, defaults and validates `value`; returns it in canonical form.
pub fn admit(value: Value) -> Result<Admitted, AdmitError> {
    let resource = resource_of(&value)?;
    let name = value["metadata"]["name"].as_str().unwrap_or("").to_string();
    let object =
        crate::objects::admit_kind(resource.kind, value).map_err(|errors| AdmitError::Invalid {
            kind: resource.qualified_kind(),
            name,
            errors,
        })?;
    Ok(Admitted { resource, object })
}

/// The kinds a node runs from local files (`bramble-agent run -f`).
pub const NODE_KINDS: &[&str] = &["Pod", "ConfigMap", "Secret"];

/// [`admit`] for [`NODE_KINDS`] only; `None` for any other kind. The other
/// kinds' decoders and validation are not reachable from here, so a binary
/// that admits nothing else (the agent, which must stay small) does not
/// link them.
pub fn admit_node_kind(value: Value) -> Result<Option<Admitted>, AdmitError> {
    let resource = resource_of(&value)?;
    let name = value["metadata"]["name"].as_str().unwrap_or("").to_string();
    let object = match resource.kind {
        "Pod" => admit_as::<crate::objects::Pod>(value),
        "ConfigMap" => admit_as::<crate::objects::ConfigMap>(value),
        "Secret" => admit_as::<crate::objects::Secret>(value),
        _ => return Ok(None),
    }
    .map_err(|errors| AdmitError::Invalid {
        kind: resource.qualified_kind(),
        name,
        errors,
    })?;
    Ok(Some(Admitted { resource, object }))
}

/// The generic part of admission for one kind `T`. Every invalid field is
/// reported at once, as Kubernetes aggregates them: fields that do not
/// decode (wrong type, bad quantity) are dropped so the rest can still be
/// validated, and their errors merged with the validation's, `metadata`
/// first, then `spec`, then the rest, each in the order found.
pub fn admit_as<T: Object>(value: Value) -> Result<Value, FieldErrors> {
    let (obj, undecoded) = crate::decode::decode_all::<T>(value);
    let Some(mut obj) = obj else {
        return Err(undecoded);
    };
    obj.apply_defaults();
    let mut errs = obj.metadata().validate("metadata", T::NAME_RULE);
    errs.extend(obj.validate());
    merge_undecoded(&mut errs, undecoded);
    errs.into_result()?;
    serde_json::to_value(&obj)
        .map_err(|e| FieldErrors(vec![FieldError::invalid(".", e.to_string())]))
}

/// Merges the errors of fields that did not decode (and were dropped) into
/// the validation's `errs`: what dropping a field caused (it is now
/// "required", its parent lacks a member) is not news; `metadata` first,
/// then `spec`, then the rest, each in the order found.
pub(crate) fn merge_undecoded(errs: &mut FieldErrors, undecoded: FieldErrors) {
    if undecoded.is_empty() {
        return;
    }
    let under = |path: &str, parent: &str| {
        path == parent
            || path.starts_with(&format!("{parent}."))
            || path.starts_with(&format!("{parent}["))
    };
    errs.0.retain(|e| {
        !undecoded
            .0
            .iter()
            .any(|d| under(&e.path, &d.path) || under(&d.path, &e.path))
    });
    errs.extend(undecoded);
    let rank = |path: &str| match path.split(['.', '[']).next() {
        Some("metadata") => 0,
        Some("spec") => 1,
        _ => 2,
    };
    errs.0.sort_by_key(|e| rank(&e.path));
}
