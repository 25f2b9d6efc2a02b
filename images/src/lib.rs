//! OCI image store, import/export, safe layer unpack and registry client.
//!
//! Empty until M1-2 (issue 3) lands: the crate exists so the workspace layout of
//! DESIGN.md is in place and other crates can depend on it.
