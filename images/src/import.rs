//! Importing images into a [`BlobStore`] from an OCI image layout directory, an
//! OCI archive tar (`skopeo copy … oci-archive:`, `docker buildx --output
//! type=oci`) or a `docker save` tar (legacy `manifest.json` form, and Docker
//! ≥ 25's form with an OCI layout inside, which is preferred when present). A
//! gzip-compressed archive (`docker save | gzip`) is decompressed into the
//! store's temporary directory first. The kind is detected automatically.
//!
//! Every blob is verified: manifests and indexes against the digest and size
//! their descriptor gives before they are parsed; configs and layers while they
//! are streamed into the store (never held in memory), against digest and size.
//! A legacy `docker save` carries no manifest: Bramble builds an OCI manifest
//! for it, storing the layer tars as they are (`…layer.v1.tar`, or
//! `…tar+gzip` when the tar is already gzipped) and checking uncompressed
//! layers against the config's `rootfs.diff_ids`.
//!
//! Failure semantics: the whole plan (every manifest read and verified, every
//! referenced blob present with the right size) is checked before anything is
//! written, so a malformed archive, a missing blob or a blob of the wrong size
//! leaves the store unchanged. Blobs are then written children first (layers
//! and configs, then manifests, then indexes), each atomically by the
//! [`BlobStore`]: a blob whose content does not match its digest is never
//! visible. If a later blob fails that check, the blobs fully verified before
//! it stay in the store (they are correct content; garbage collection removes
//! them if nothing refers to them), but no manifest that refers to the failed
//! blob has been written. Blobs already in the store are not read again.

mod copy;
mod docker;
mod layout;
mod source;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::blobs::{BlobError, BlobStore};
use crate::digest::Digest;
use crate::oci::OciError;

use source::Source;

/// Largest JSON file (config, `manifest.json`) accepted from a source.
pub const MAX_JSON_BYTES: u64 = 16 << 20;

/// Annotation carrying an image's reference name in an OCI layout.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and Docker use for the full image name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// What kind of source an import read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// A directory with `oci-layout`, `index.json`, `blobs/`.
    OciLayout,
    /// A tar of an OCI layout (including Docker ≥ 25 `docker save`).
    OciArchive,
    /// A legacy `docker save` tar (`manifest.json`, no `index.json`).
    DockerSave,
}

/// One image found in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// Its names: `io.containerd.image.name` / `org.opencontainers.image.ref.name`
    /// annotations, or `RepoTags` of a `docker save`; empty if untagged.
    pub names: Vec<String>,
    /// Digest of the top manifest or index.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub kind: ImportKind,
    /// The images, in the source's order.
    pub images: Vec<ImportedImage>,
    /// Blobs written to the store.
    pub blobs_written: usize,
    /// Blobs that were already in the store.
    pub blobs_present: usize,
}

/// Progress, reported while blobs are copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportProgress<'a> {
    /// Bytes of blobs processed so far (including skipped ones).
    pub bytes_done: u64,
    /// Total bytes of blobs to process.
    pub bytes_total: u64,
    /// The entry being copied (`blobs/sha256/…`, `<id>/layer.tar`).
    pub current: &'a str,
}

/// Import errors; each names the file or entry concerned.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not an image archive or layout: {why}")]
    NotAnImage { path: PathBuf, why: String },
    #[error("malformed archive {archive}: {why}")]
    Malformed { archive: PathBuf, why: String },
    #[error(
        "{source_path}: {entry} is missing, but {referenced_by} refers to it; the archive is \
         incomplete (re-export it, with all platforms if it is multi-arch)"
    )]
    Missing {
        entry: String,
        source_path: PathBuf,
        referenced_by: String,
    },
    #[error(
        "{entry}: size mismatch: {referenced_by} says {expected} bytes, the entry has {actual} \
         (truncated or tampered archive)"
    )]
    SizeMismatch {
        entry: String,
        referenced_by: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{entry}: digest mismatch: expected {expected}, content hashes to {actual} \
         (corrupted or tampered archive)"
    )]
    DigestMismatch {
        entry: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{entry}: is {size} bytes, more than the {limit}-byte limit for this file")]
    TooLarge {
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("{entry}: invalid JSON: {source}")]
    Json {
        entry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{entry}: {why}")]
    Invalid { entry: String, why: String },
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("writing to the blob store: {0}")]
    Store(#[from] BlobError),
}

/// Detects what `path` is without importing it (a gzipped archive is
/// decompressed to a temporary file to look inside).
pub fn detect(path: &Path) -> Result<ImportKind, ImportError> {
    let (_, kind, _tmp) = open_source(path, None)?;
    Ok(kind)
}

/// Imports every image in `path` (a directory or a tar, detected) into `store`.
/// `progress` is called as blob bytes are copied. See the module docs for what
/// is verified and what a failure leaves behind.
pub fn import(
    store: &BlobStore,
    path: &Path,
    mut progress: impl FnMut(ImportProgress<'_>),
) -> Result<ImportReport, ImportError> {
    let (src, kind, _tmp) = open_source(path, Some(store))?;
    let plan = match kind {
        ImportKind::OciLayout | ImportKind::OciArchive => layout::plan(&src)?,
        ImportKind::DockerSave => docker::plan(&src)?,
    };
    let (images, blobs_written, blobs_present) = copy::execute(store, &src, plan, &mut progress)?;
    Ok(ImportReport {
        kind,
        images,
        blobs_written,
        blobs_present,
    })
}

/// Deletes a temporary file when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens `path` as a source and detects its kind. A gzip-compressed archive is
/// decompressed into `store`'s temporary directory (the returned guard removes
/// it); without a store (detection only) into the system temporary directory.
fn open_source(
    path: &Path,
    store: Option<&BlobStore>,
) -> Result<(Source, ImportKind, Option<TempFile>), ImportError> {
    let meta = std::fs::metadata(path).map_err(io_at(path))?;
    if meta.is_dir() {
        let src = Source::Dir(path.to_path_buf());
        let kind = detect_kind(&src, ImportKind::OciLayout)?;
        return Ok((src, kind, None));
    }
    let mut file = File::open(path).map_err(io_at(path))?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic).map_err(io_at(path))?;
    let magic = &magic[..n];
    if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(ImportError::NotAnImage {
            path: path.to_path_buf(),
            why: "zstd-compressed archives are not supported; decompress it first \
                  (`zstd -d`)"
                .into(),
        });
    }
    let mut tmp = None;
    let (file, shown) = if magic.starts_with(&[0x1f, 0x8b]) {
        let tmp_dir = match store {
            Some(s) => s.tmp_dir(),
            None => std::env::temp_dir(),
        };
        let tmp_path = tmp_dir.join(format!(
            "import-{}-{}.tar",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let guard = TempFile(tmp_path.clone());
        let mut out = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(io_at(&tmp_path))?;
        let f = File::open(path).map_err(io_at(path))?;
        io::copy(&mut flate2::read::MultiGzDecoder::new(f), &mut out).map_err(|e| {
            ImportError::Malformed {
                archive: path.to_path_buf(),
                why: format!("gzip stream is corrupt: {e}"),
            }
        })?;
        out.flush().map_err(io_at(&tmp_path))?;
        tmp = Some(guard);
        (out, path)
    } else {
        (file, path)
    };
    let src = Source::tar(shown, file)?;
    let kind = detect_kind(&src, ImportKind::OciArchive)?;
    Ok((src, kind, tmp))
}

pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn detect_kind(src: &Source, oci_kind: ImportKind) -> Result<ImportKind, ImportError> {
    let has = |n: &str| src.size(n).map(|s| s.is_some());
    if has("index.json")? && has("oci-layout")? {
        return Ok(oci_kind);
    }
    if has("manifest.json")? {
        return Ok(ImportKind::DockerSave);
    }
    let why = if has("index.json")? {
        "it has index.json but no oci-layout file, which an OCI image layout requires"
    } else if has("repositories")? {
        "it is a pre-1.10 `docker save` archive without manifest.json; save it again with a \
         current Docker"
    } else {
        "expected an OCI layout (oci-layout, index.json, blobs/) or a `docker save` archive \
         (manifest.json)"
    };
    Err(ImportError::NotAnImage {
        path: src.path().to_path_buf(),
        why: why.into(),
    })
}

/// One blob to copy into the store.
#[derive(Debug)]
pub(crate) struct PlanItem {
    /// The entry in the source.
    pub entry: String,
    /// The expected digest; `None` for a compressed legacy `docker save` layer,
    /// whose digest is learnt while storing it (see `docker.rs`).
    pub digest: Option<Digest>,
    pub size: u64,
    /// What refers to it, for messages.
    pub referenced_by: String,
    /// Content already read and verified (manifests, indexes, configs).
    pub bytes: Option<Vec<u8>>,
    /// For legacy layers: the slot in the docker plan's layer table that
    /// receives the stored digest.
    pub slot: Option<usize>,
}

/// Blobs in write order, the images (for an OCI source) and, for a legacy
/// `docker save`, the manifests to build once the layer digests are known.
pub(crate) struct Plan {
    pub items: Vec<PlanItem>,
    pub images: Vec<ImportedImage>,
    pub deferred: Option<docker::Deferred>,
}

/// The path of a blob in an OCI layout.
pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}
