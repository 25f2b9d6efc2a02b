//! The Bramble node agent as a library: the container runtime seam and its
//! backends (`runtime`). The `bramble-agent` binary wires these together.

pub mod lifecycle;
pub mod logs;
pub mod node;
pub mod pod;
pub mod runtime;
