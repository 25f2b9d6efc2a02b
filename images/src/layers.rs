//! The unpacked-layer cache: `ROOT/layers/sha256/<diff_id hex>/`.
//!
//! Each layer is unpacked once per diff_id (the sha256 of its uncompressed
//! tar) and shared by every image that contains it; containers stack these
//! directories with overlayfs (see [`crate::rootfs`]).
//!
//! Invariants: a directory named by a diff_id exists only when it holds the
//! complete layer whose uncompressed stream hashed to that diff_id
//! ([`crate::unpack::unpack_layer`] renames it into place last). Concurrent
//! [`LayerStore::ensure`] calls for the same diff_id, from threads or from
//! processes, serialize on an `flock` of `ROOT/layers/locks/<hex>.lock`; the
//! second caller finds the finished layer. Leftover temporary directories of
//! a crash are removed by [`LayerStore::open`] (skipping any whose lock is
//! held, i.e. an unpack in progress). Lock files are never deleted: removing a
//! lock file others may be waiting on would let two holders in.
//!
//! The calls block (unpacking, flock): call them from a blocking thread in
//! async code.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::blobs::{BlobError, BlobStore};
use crate::digest::Digest;
use crate::unpack::{
    Compression, TMP_MARKER, UnpackError, UnpackOptions, UnpackStats, unpack_layer,
};

/// Layer cache errors, each naming the layer (and blob) concerned.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {diff_id}: blob {blob}: {source}")]
    Blob {
        diff_id: Digest,
        blob: Digest,
        source: BlobError,
    },
    #[error("layer {diff_id} (blob {blob}): {source}")]
    Unpack {
        diff_id: Digest,
        blob: Digest,
        source: UnpackError,
    },
    #[error("layer store I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The cache of unpacked layers; cheap to clone.
#[derive(Debug, Clone)]
pub struct LayerStore {
    root: PathBuf,
    opts: UnpackOptions,
}

/// A held per-diff_id lock (released when dropped, by closing the file).
struct LayerLock(#[allow(dead_code)] File);

impl LayerStore {
    /// Opens (creating) the cache under `root` with default unpack options,
    /// removing leftovers of a crash.
    pub fn open(root: impl Into<PathBuf>) -> Result<LayerStore, LayerError> {
        LayerStore::open_with(root, UnpackOptions::default())
    }

    /// Like [`LayerStore::open`], with the options every layer is unpacked
    /// with (they shape the cached content, which images share).
    pub fn open_with(
        root: impl Into<PathBuf>,
        opts: UnpackOptions,
    ) -> Result<LayerStore, LayerError> {
        let store = LayerStore {
            root: root.into(),
            opts,
        };
        for dir in [store.layer_dir(), store.lock_dir()] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        store.clean_leftovers()?;
        Ok(store)
    }

    /// The store's root directory (the layers live in `ROOT/layers/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options layers are unpacked with.
    pub fn options(&self) -> &UnpackOptions {
        &self.opts
    }

    fn layer_dir(&self) -> PathBuf {
        self.root.join("layers").join("sha256")
    }

    fn lock_dir(&self) -> PathBuf {
        self.root.join("layers").join("locks")
    }

    /// Where the layer with this diff_id lives (it may not exist).
    pub fn path(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir().join(diff_id.hex())
    }

    /// Whether the layer is unpacked.
    pub fn has(&self, diff_id: &Digest) -> bool {
        fs::symlink_metadata(self.path(diff_id)).is_ok_and(|m| m.is_dir())
    }

    fn lock_path(&self, hex: &str) -> PathBuf {
        self.lock_dir().join(format!("{hex}.lock"))
    }

    fn open_lock_file(&self, hex: &str) -> Result<File, LayerError> {
        let p = self.lock_path(hex);
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err(&p))
    }

    /// Takes the per-diff_id lock, waiting for it.
    fn lock(&self, hex: &str) -> Result<LayerLock, LayerError> {
        let f = self.open_lock_file(hex)?;
        flock(&f, FlockOperation::LockExclusive)
            .map_err(|e| io_err(&self.lock_path(hex))(e.into()))?;
        Ok(LayerLock(f))
    }

    /// Takes the lock if nobody holds it.
    fn try_lock(&self, hex: &str) -> Result<Option<LayerLock>, LayerError> {
        let f = self.open_lock_file(hex)?;
        match flock(&f, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(LayerLock(f))),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(io_err(&self.lock_path(hex))(e.into())),
        }
    }

    fn clean_leftovers(&self) -> Result<(), LayerError> {
        let dir = self.layer_dir();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((hex, _)) = name.split_once(TMP_MARKER) else {
                continue;
            };
            if format!("sha256:{hex}").parse::<Digest>().is_err() {
                continue;
            }
            // An unpack in progress (another process) holds the lock.
            let Some(_lock) = self.try_lock(hex)? else {
                continue;
            };
            let p = entry.path();
            tracing::info!(path = %p.display(), "removing leftover of an interrupted layer unpack");
            fs::remove_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(())
    }

    /// Makes sure the layer `diff_id` is unpacked, unpacking the compressed
    /// blob `blob` from `blobs` if it is not; returns its directory. The blob
    /// is read through a verifying reader, so a corrupt blob fails
    /// ([`UnpackError::BlobDigestMismatch`]) and leaves nothing behind.
    pub fn ensure(
        &self,
        blobs: &BlobStore,
        blob: &Digest,
        compression: Compression,
        diff_id: &Digest,
    ) -> Result<PathBuf, LayerError> {
        self.ensure_with_stats(blobs, blob, compression, diff_id)
            .map(|(p, _)| p)
    }

    /// Like [`LayerStore::ensure`], also returning the unpack's figures when
    /// this call did the unpacking (`None` when the layer was cached).
    pub fn ensure_with_stats(
        &self,
        blobs: &BlobStore,
        blob: &Digest,
        compression: Compression,
        diff_id: &Digest,
    ) -> Result<(PathBuf, Option<UnpackStats>), LayerError> {
        let dest = self.path(diff_id);
        if self.has(diff_id) {
            return Ok((dest, None));
        }
        let _lock = self.lock(diff_id.hex())?;
        if self.has(diff_id) {
            return Ok((dest, None));
        }
        let reader = blobs
            .open_verified(blob)
            .map_err(|source| LayerError::Blob {
                diff_id: diff_id.clone(),
                blob: blob.clone(),
                source,
            })?;
        let stats =
            unpack_layer(reader, compression, &dest, diff_id, &self.opts).map_err(|source| {
                LayerError::Unpack {
                    diff_id: diff_id.clone(),
                    blob: blob.clone(),
                    source,
                }
            })?;
        tracing::info!(
            %diff_id, %blob,
            compressed = stats.compressed_bytes,
            uncompressed = stats.uncompressed_bytes,
            entries = stats.entries,
            "layer unpacked"
        );
        Ok((dest, Some(stats)))
    }

    /// Removes an unpacked layer; `false` if it was not there. The directory
    /// disappears atomically (renamed away, then deleted). The caller makes
    /// sure no mounted rootfs still uses it.
    pub fn remove(&self, diff_id: &Digest) -> Result<bool, LayerError> {
        let _lock = self.lock(diff_id.hex())?;
        let dest = self.path(diff_id);
        if !self.has(diff_id) {
            return Ok(false);
        }
        let doomed = self.layer_dir().join(format!(
            "{}{TMP_MARKER}rm-{}",
            diff_id.hex(),
            std::process::id()
        ));
        fs::rename(&dest, &doomed).map_err(io_err(&dest))?;
        fs::remove_dir_all(&doomed).map_err(io_err(&doomed))?;
        Ok(true)
    }

    /// Every unpacked layer's diff_id, sorted.
    pub fn list(&self) -> Result<Vec<Digest>, LayerError> {
        let dir = self.layer_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            if let Some(name) = entry.file_name().to_str()
                && let Ok(d) = format!("sha256:{name}").parse::<Digest>()
                && entry.file_type().is_ok_and(|t| t.is_dir())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }
}
