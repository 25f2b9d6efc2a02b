//! Field-level validation errors, each carrying the full path of the field.

use std::fmt;

/// What is wrong with a field. Maps onto Kubernetes `StatusCause` reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// The field is required but missing or empty.
    Required,
    /// Required, with what it must be (`Required value: valid values: ...`).
    RequiredWith(String),
    /// The value is malformed or out of range; the string says why.
    Invalid(String),
    /// The field exists in Kubernetes but Bramble does not support it.
    NotSupported,
    /// The value is one of a closed set and this one is not in it.
    Unsupported { allowed: Vec<String> },
    /// The value duplicates another entry.
    Duplicate,
    /// A Kubernetes field that Bramble does not implement, refused whatever
    /// the request's `fieldValidation`.
    NotImplemented,
}

impl FieldErrorKind {
    /// Kubernetes `StatusCause.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            FieldErrorKind::Required | FieldErrorKind::RequiredWith(_) => "FieldValueRequired",
            FieldErrorKind::Invalid(_) => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueForbidden",
            FieldErrorKind::Unsupported { .. } => "FieldValueNotSupported",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::NotImplemented => "FieldValueNotSupported",
        }
    }
}

/// One invalid field: `spec.replicas: Invalid value: must be >= 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Full path such as `spec.template.spec.containers[0].lifecycle`.
    pub path: String,
    pub kind: FieldErrorKind,
}

impl FieldError {
    pub fn required(path: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::Required,
        }
    }
    /// Required, saying what it must be (Kubernetes' `field.Required(path, detail)`).
    pub fn required_with(path: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::RequiredWith(detail.into()),
        }
    }
    pub fn invalid(path: impl Into<String>, why: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::Invalid(why.into()),
        }
    }
    pub fn not_supported(path: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::NotSupported,
        }
    }
    pub fn unsupported_value(path: impl Into<String>, allowed: &[&str]) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::Unsupported {
                allowed: allowed.iter().map(|s| s.to_string()).collect(),
            },
        }
    }
    pub fn not_implemented(path: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::NotImplemented,
        }
    }
    pub fn duplicate(path: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::Duplicate,
        }
    }
}

impl FieldError {
    /// What is wrong, without the path (a Kubernetes `StatusCause.message`:
    /// clients print it after the cause's `field`).
    pub fn detail(&self) -> String {
        match &self.kind {
            FieldErrorKind::Required => "Required value".into(),
            FieldErrorKind::RequiredWith(detail) => format!("Required value: {detail}"),
            FieldErrorKind::Invalid(why) => format!("Invalid value: {why}"),
            FieldErrorKind::NotSupported => "not supported".into(),
            FieldErrorKind::Unsupported { allowed } => format!(
                "Unsupported value: supported values: {}",
                allowed
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            FieldErrorKind::Duplicate => "Duplicate value".into(),
            FieldErrorKind::NotImplemented => {
                "Unsupported value: Bramble does not implement this field".into()
            }
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.detail())
    }
}

/// All errors found in one object; validation collects rather than stopping at the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn extend(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }
    /// `Ok(())` when empty, the errors otherwise.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        if parts.len() == 1 {
            write!(f, "{}", parts[0])
        } else {
            write!(f, "[{}]", parts.join(", "))
        }
    }
}

impl std::error::Error for FieldErrors {}

/// Joins a parent path and a child field: `join("spec", "replicas")` = `spec.replicas`.
pub fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// Indexes a list path: `index("spec.containers", 0)` = `spec.containers[0]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}
