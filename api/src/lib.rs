//! Bramble's API: the object model, validation and the wire protocol.
//!
//! Pure data and rules: no I/O, no async. Shared by the hub (admission, storage),
//! the agent (pod specs) and the CLI (manifests, tables).

pub mod admit;
pub mod cidr;
pub mod decode;
pub mod field;
pub mod field_selector;
pub mod intstr;
pub mod kubeconfig;
pub mod manifest;
pub mod meta;
pub mod names;
pub mod object_key;
pub mod objects;
pub mod patch;
pub mod printing;
pub mod protocol;
pub mod quantity;
pub mod resource;
#[cfg(feature = "cron")]
pub mod schedule;
#[cfg(feature = "schema")]
pub mod schema;
pub mod selector;
pub mod status;

/// The Kubernetes version whose API Bramble serves (the minor version of
/// kubectl it is tested with).
pub const KUBERNETES_VERSION: &str = "v1.32.0";

pub use admit::{AdmitError, Admitted, admit, admit_node_kind};
pub use field::{FieldError, FieldErrors};
pub use intstr::IntOrString;
pub use manifest::{ManifestError, parse_documents};
pub use object_key::ObjectKey;
pub use quantity::Quantity;
pub use resource::{RESOURCES, ResourceInfo};
pub use selector::Selector;
pub use status::Status;
