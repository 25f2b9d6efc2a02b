//! Why an image a pod needs could not be had from its [`ImageSource`]
//! ([`ImageError`]: being pulled, not on the node, unusable in the store,
//! its pull failed), and why a pull from the hub's registry failed
//! ([`PullError`]). The node's image store and its background pulls
//! (`crate::node::images`, `crate::node::pull`) give them; a test's image
//! source may too.
//!
//! [`ImageSource`]: super::ImageSource

use std::path::PathBuf;

use bramble_images::digest::DigestError;
use bramble_images::{
    BlobError, ClientError, Digest, LayerError, OciError, PlatformError, ReferenceError,
};

/// Why an image could not be resolved. Every variant but [`Pulling`] says
/// what is wrong with which image (or how to get it onto the node).
///
/// [`Pulling`]: ImageError::Pulling
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A pull of it is under way; the start is tried again when it ends.
    #[error("is being pulled")]
    Pulling,
    /// The reference is not an image name.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("image {image} is not on this node (import it with --image {reference}=ARCHIVE)")]
    NotOnNode {
        /// As the store keys it (`name:tag`).
        image: String,
        /// As the pod spec gives it.
        reference: String,
    },
    #[error("reading manifest {digest}: {source}")]
    ReadManifest {
        digest: Digest,
        #[source]
        source: BlobError,
    },
    /// A manifest or index in the store that does not parse, or one of its
    /// descriptors.
    #[error(transparent)]
    Manifest(#[from] OciError),
    /// The image has no manifest for this node's platform.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("image {image}: nested index {digest} not supported")]
    NestedIndex { image: String, digest: Digest },
    #[error("image {image}: config: {source}")]
    ReadConfig {
        image: String,
        #[source]
        source: BlobError,
    },
    #[error("image {image}: config {digest}: {source}")]
    ParseConfig {
        image: String,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("image {image}: {layers} layers but {diff_ids} diff_ids in the config")]
    LayerCount {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("image {image}: layer media type {media_type} not supported")]
    LayerMediaType { image: String, media_type: String },
    #[error("image {image}: diff_id {diff_id}: {source}")]
    DiffId {
        image: String,
        diff_id: String,
        #[source]
        source: DigestError,
    },
    /// A layer that could not be unpacked into the layer cache.
    #[error("image {image}: layer {blob}: {source}")]
    Layer {
        image: String,
        blob: Digest,
        #[source]
        source: Box<LayerError>,
    },
    /// Its last pull failed (the next attempt starts a new one).
    #[error(transparent)]
    PullFailed(Box<PullError>),
    #[error("starting a pull of {reference}: {source}")]
    StartPull {
        reference: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why pulling an image from the hub's registry failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("image {reference:?}: {source}")]
    Reference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    #[error(
        "image {reference}: only images of the hub's registry can be pulled (push it to the \
         hub, or import it with --image)"
    )]
    NotHubLocal { reference: String },
    /// The registry refused or failed (its answer says why).
    #[error("pulling {reference}: {source}")]
    Registry {
        reference: String,
        #[source]
        source: Box<ClientError>,
    },
    /// Pulled, but the store's name table could not be written.
    #[error("writing {path}: {source}")]
    WriteRefs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<PullError> for ImageError {
    fn from(e: PullError) -> Self {
        ImageError::PullFailed(Box::new(e))
    }
}
