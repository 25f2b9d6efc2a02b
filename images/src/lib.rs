//! OCI images for Bramble: a content-addressed blob store, image formats and
//! platform selection, import/export, safe layer unpacking and a registry client.
//!
//! Used by the hub (its registry serves from a [`BlobStore`]) and the agent
//! (pulls into its own store and unpacks layers).

pub mod blobs;
pub mod digest;

pub use blobs::{BlobError, BlobStore};
pub use digest::Digest;
