//! Hand-written schemas for the scalar types whose JSON form is not what
//! their Rust shape says: named and shaped as Kubernetes publishes them.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::intstr::IntOrString;
use crate::quantity::Quantity;

impl JsonSchema for IntOrString {
    fn schema_name() -> Cow<'static, str> {
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.",
            "type": "string",
            "format": "int-or-string",
            "x-kubernetes-int-or-string": true
        })
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "io.k8s.apimachinery.pkg.api.resource.Quantity".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Quantity is a fixed-point representation of a number: an integer or decimal with an optional binary (Ki, Mi, Gi, Ti, Pi, Ei) or decimal (m, k, M, G, T, P, E) suffix, e.g. 500m, 2, 64Mi.",
            "type": "string"
        })
    }
}
