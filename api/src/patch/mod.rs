//! Patches as Kubernetes applies them: the merge keys of its lists
//! ([`merge_keys`]) and strategic merge patch ([`strategic`]).

pub mod field_set;
pub mod merge_keys;
pub mod server_side;
pub mod strategic;

pub use strategic::StrategicError;
