//! OCI images for Bramble: a content-addressed blob store, image formats and
//! platform selection, import/export, safe layer unpacking, layers from an
//! overlay's upper directory (builds) and a registry client.
//!
//! Used by the hub (its registry serves from a [`BlobStore`]) and the agent
//! (pulls into its own store and unpacks layers).

pub mod blobs;
pub mod client;
pub mod defaults;
pub mod digest;
pub mod exact;
pub mod export;
pub mod import;
pub mod layer_diff;
pub mod layers;
pub mod oci;
pub mod platform;
pub mod reference;
pub mod rootfs;
pub mod unpack;

pub use blobs::{BlobError, BlobStore};
pub use client::{ClientError, Progress, PullOptions, PulledImage, RegistryClient};
pub use defaults::{DefaultsError, ProcessDefaults, ProcessUser, process_defaults};
pub use digest::Digest;
pub use export::{ExportError, ExportImage, export_oci_archive};
pub use import::{ImportError, ImportProgress, ImportReport, ImportedImage, import};
pub use layers::{LayerError, LayerStore};
pub use oci::{ManifestOrIndex, OciError, parse_manifest};
pub use platform::{Platform, PlatformError};
pub use reference::{Reference, ReferenceError};
pub use rootfs::{Rootfs, RootfsError};
pub use unpack::{Compression, UnpackError, UnpackOptions, UnpackStats, unpack_layer};
