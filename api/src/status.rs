//! Kubernetes `Status` objects: how every API error is reported.

use serde::{Deserialize, Serialize};

/// A `v1 Status` as the Kubernetes API returns it on errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub kind: String,
    pub api_version: String,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `Success` or `Failure`.
    pub status: String,
    #[serde(default)]
    pub message: String,
    /// Machine-readable reason: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// HTTP status code.
    #[serde(default)]
    pub code: u16,
}

/// Which object an error is about and, for `Invalid`, which fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
}

/// One failing field of an `Invalid` error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, ...
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    /// Field path, e.g. `spec.template.spec.containers[0].image`.
    #[serde(default)]
    pub field: String,
}

impl Status {
    /// A failure with the given HTTP code, reason and message.
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Status {
            kind: "Status".into(),
            api_version: "v1".into(),
            metadata: Default::default(),
            status: "Failure".into(),
            message: message.into(),
            reason: reason.into(),
            details: None,
            code,
        }
    }

    /// A success status (returned by some deletes).
    pub fn success(message: impl Into<String>) -> Self {
        Status {
            status: "Success".into(),
            ..Self::failure(200, "", message)
        }
    }

    /// Adds details naming the object.
    pub fn with_details(mut self, details: StatusDetails) -> Self {
        self.details = Some(details);
        self
    }

    /// `404 NotFound` in the Kubernetes wording: `deployments.apps "web" not found`.
    pub fn not_found(resource: &str, name: &str) -> Self {
        Self::failure(404, "NotFound", format!("{resource} \"{name}\" not found"))
    }

    /// `409 AlreadyExists`.
    pub fn already_exists(resource: &str, name: &str) -> Self {
        Self::failure(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
        )
    }

    /// `409 Conflict` for a stale `resourceVersion`.
    pub fn conflict(resource: &str, name: &str, detail: &str) -> Self {
        Self::failure(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": {detail}; \
                 fetch the latest version and try again"
            ),
        )
    }

    /// `400 BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::failure(400, "BadRequest", message)
    }

    /// `410 Gone` / `Expired` for a watch from a compacted revision.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::failure(410, "Expired", message)
    }

    /// `401 Unauthorized`.
    pub fn unauthorized() -> Self {
        Self::failure(
            401,
            "Unauthorized",
            "missing or invalid bearer token: pass --token, set BRAMBLE_TOKEN, \
             or run on the hub machine where the CLI reads DATA_DIR/token",
        )
    }

    /// `500 InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::failure(500, "InternalError", message)
    }

    /// `422 Invalid` listing every failing field. `kind` may be qualified
    /// by its group (`Deployment.apps`), as Kubernetes names it in the
    /// message; the details carry kind and group apart.
    pub fn invalid(kind: &str, name: &str, errors: &crate::FieldErrors) -> Self {
        let message = format!("{kind} \"{name}\" is invalid: {errors}");
        let (bare, group) = kind.split_once('.').unwrap_or((kind, ""));
        Self::failure(422, "Invalid", message).with_details(StatusDetails {
            name: name.to_string(),
            group: group.to_string(),
            kind: bare.to_string(),
            causes: errors
                .0
                .iter()
                .map(|e| StatusCause {
                    reason: e.kind.reason().to_string(),
                    // Without the path: clients print `field: message`.
                    message: e.detail(),
                    field: e.path.clone(),
                })
                .collect(),
        })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}
