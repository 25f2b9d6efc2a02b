//! The typed object model: one module per API group.

pub mod core;

use serde_json::Value;

use crate::admit::admit_as;
use crate::field::FieldErrors;

/// Dispatches admission to the typed struct of `kind`.
pub(crate) fn admit_kind(kind: &str, value: Value) -> Result<Value, FieldErrors> {
    match kind {
        "ConfigMap" => admit_as::<core::ConfigMap>(value),
        "Namespace" => admit_as::<core::Namespace>(value),
        other => Err(FieldErrors(vec![crate::field::FieldError::invalid(
            "kind",
            format!("{other} is not implemented yet"),
        )])),
    }
}
