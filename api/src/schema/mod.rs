//! JSON schemas of the object model (feature `schema`, the hub's): generated
//! from the Rust types by `schemars`, named as Kubernetes names them, and
//! what is built on them: the OpenAPI v3 documents ([`openapi`]), the
//! Swagger 2.0 document converted from them ([`swagger`]), the walker that
//! finds the fields a body has and Bramble does not ([`unknown`]); and the
//! body parser that notices duplicate keys ([`duplicates`]).

mod components;
pub mod duplicates;
pub mod k8s_fields;
pub mod openapi;
mod scalars;
pub mod swagger;
pub mod unknown;

pub use components::{component_name, components};
pub use unknown::{FieldValidation, UnknownFields, find_unknown_fields};
