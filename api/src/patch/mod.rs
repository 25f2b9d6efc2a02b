//! Patches as Kubernetes applies them: the merge keys of its lists
//! ([`merge_keys`]) and strategic merge patch ([`strategic`]).

pub mod merge_keys;
pub mod strategic;

pub use strategic::StrategicError;
