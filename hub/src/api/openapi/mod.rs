//! The OpenAPI documents the hub serves, built from the api crate's schemas
//! at first use and cached with their hashes: v3 per group version
//! ([`v3`]), and the one Swagger 2.0 document at `/openapi/v2` ([`v2`]), as
//! JSON or as gnostic's protobuf ([`gnostic`]).

mod gnostic;
#[cfg(test)]
mod gnostic_tests;
mod served;
pub mod v2;
pub mod v3;
