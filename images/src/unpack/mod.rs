//! Safe, atomic unpacking of one OCI layer into its own directory.
//!
//! This is a **security boundary**: layers come from registries and users.
//! [`unpack_layer`] refuses, with an error naming the entry,
//!
//! - absolute paths and `..` components (`./` and `//` are normalized),
//! - entries whose parent path goes through a symlink (nothing is ever
//!   created by following a symlink: every operation is relative to a
//!   directory fd, see `extract/`),
//! - hardlinks whose target is absolute, escapes with `..`, is not yet
//!   unpacked in this layer, or is not a regular file,
//! - device nodes and fifos unless [`UnpackOptions::allow_devices`],
//! - unknown entry types.
//!
//! Symlinks are created as they are (absolute targets included): they are
//! only dangerous when followed, which unpacking never does. Setuid/setgid
//! bits are kept only with [`UnpackOptions::keep_setuid`]; owners are applied
//! when [`UnpackOptions::apply_owners`] (default: running as root); modes and
//! mtimes are applied; xattrs in the layer are ignored (so a layer cannot
//! smuggle in `trusted.overlay.*` attributes).
//!
//! **OCI whiteouts become overlayfs whiteouts**, because each layer is
//! unpacked into its own directory and layers are stacked with overlayfs:
//! `.wh.NAME` becomes a 0/0 character device `NAME`, and `.wh..wh..opq`
//! sets `trusted.overlay.opaque=y` on its directory (both need root).
//!
//! **Atomicity**: the layer is unpacked into `DEST.tmp-…` beside `DEST`,
//! the uncompressed stream is hashed while it is read and compared with the
//! expected diff_id, and only a layer that checked out completely is renamed
//! to `DEST`. On any error the temporary directory is removed: nothing
//! half-written is ever visible under `DEST`. (The compressed digest is
//! checked by the caller passing [`crate::BlobStore::open_verified`]'s reader;
//! its mismatch is reported as [`UnpackError::BlobDigestMismatch`].)

mod extract;
mod path;
mod stream;

use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags, RenameFlags};

use crate::digest::Digest;
pub use stream::Compression;

pub use extract::OVERLAY_OPAQUE_XATTR;

/// Options for [`unpack_layer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Create character/block devices and fifos found in the layer (default:
    /// refuse them). Whiteouts are always created: they are not devices of
    /// the layer but the overlayfs form of OCI whiteout files.
    pub allow_devices: bool,
    /// Keep setuid/setgid bits (default: cleared).
    pub keep_setuid: bool,
    /// Apply the uid/gid recorded in the layer (default: when running as
    /// root; otherwise files belong to the unpacking user).
    pub apply_owners: bool,
    /// Fail when the uncompressed layer grows beyond this many bytes
    /// (decompression bombs on small SD cards). Default: no limit.
    pub max_uncompressed_bytes: Option<u64>,
    /// `syncfs` the layer before it becomes visible, so a crash cannot leave
    /// a complete-looking layer with missing data (default: on).
    pub sync: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            allow_devices: false,
            keep_setuid: false,
            apply_owners: rustix::process::geteuid().is_root(),
            max_uncompressed_bytes: None,
            sync: true,
        }
    }
}

/// What an unpack did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar stream (equal to the expected diff_id
    /// when the unpack succeeded).
    pub diff_id: Option<Digest>,
    /// The compression that was used (auto-detection resolved).
    pub compression: Option<Compression>,
    /// Bytes of the compressed blob read.
    pub compressed_bytes: u64,
    /// Bytes of the uncompressed tar stream.
    pub uncompressed_bytes: u64,
    /// Tar entries processed (pax global headers excepted).
    pub entries: u64,
    /// Regular files created.
    pub files: u64,
    /// Directories created (explicit entries and missing parents).
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hardlinks created.
    pub hardlinks: u64,
    /// Device nodes and fifos created (only with `allow_devices`).
    pub devices: u64,
    /// OCI whiteouts converted to overlayfs whiteout devices.
    pub whiteouts: u64,
    /// Opaque-directory markers converted to the overlayfs xattr.
    pub opaque_dirs: u64,
}

/// Why a layer was not unpacked. Entry errors name the tar entry.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {entry:?}: absolute paths are refused")]
    AbsolutePath { entry: String },
    #[error("layer entry {entry:?}: `..` path components are refused (path traversal)")]
    PathTraversal { entry: String },
    #[error("layer entry {entry:?}: invalid path: {reason}")]
    InvalidPath { entry: String, reason: &'static str },
    #[error(
        "layer entry {entry:?}: parent {component:?} is a symlink; refusing to create through it"
    )]
    SymlinkInPath { entry: String, component: String },
    #[error("layer entry {entry:?}: parent {component:?} is {found}, not a directory")]
    ParentNotDirectory {
        entry: String,
        component: String,
        found: &'static str,
    },
    #[error("layer entry {entry:?}: hardlink target {target:?} is outside the layer root")]
    HardlinkEscape { entry: String, target: String },
    #[error("layer entry {entry:?}: hardlink target {target:?} {reason}")]
    HardlinkTarget {
        entry: String,
        target: String,
        reason: &'static str,
    },
    #[error("layer entry {entry:?}: {kind} entries are refused (allow_devices is off)")]
    DeviceRefused { entry: String, kind: &'static str },
    #[error("layer entry {entry:?}: unsupported tar entry type {kind}")]
    UnsupportedEntryType { entry: String, kind: String },
    #[error("layer entry {entry:?}: {op}: {source}")]
    Entry {
        entry: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("layer entry {entry:?}: reading its data: {source}")]
    EntryData { entry: String, source: io::Error },
    #[error("layer entry {entry:?}: data ends after {written} of {expected} bytes (truncated)")]
    TruncatedEntry {
        entry: String,
        written: u64,
        expected: u64,
    },
    #[error("corrupt or truncated layer stream ({compression}): {source}")]
    Stream {
        compression: Compression,
        source: io::Error,
    },
    #[error("layer blob content hashes to {actual}, not to its digest (corrupt blob)")]
    BlobDigestMismatch { actual: Digest },
    #[error(
        "layer diff_id mismatch: expected {expected}, the uncompressed layer hashes to {actual} ({len} bytes)"
    )]
    DiffIdMismatch {
        expected: Digest,
        actual: Digest,
        len: u64,
    },
    #[error("uncompressed layer exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("layer destination {path}: {op}: {source}")]
    Destination {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("layer destination {0} already exists")]
    DestinationExists(PathBuf),
}

impl UnpackError {
    /// The tar entry the error is about, if it is about one.
    pub fn entry(&self) -> Option<&str> {
        use UnpackError as E;
        match self {
            E::AbsolutePath { entry }
            | E::PathTraversal { entry }
            | E::InvalidPath { entry, .. }
            | E::SymlinkInPath { entry, .. }
            | E::ParentNotDirectory { entry, .. }
            | E::HardlinkEscape { entry, .. }
            | E::HardlinkTarget { entry, .. }
            | E::DeviceRefused { entry, .. }
            | E::UnsupportedEntryType { entry, .. }
            | E::Entry { entry, .. }
            | E::EntryData { entry, .. }
            | E::TruncatedEntry { entry, .. } => Some(entry),
            _ => None,
        }
    }
}

fn dest_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> UnpackError + 'a {
    move |source| UnpackError::Destination {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Marker in the names of temporary directories beside a destination
/// (`DEST.tmp-…`); anything carrying it is a leftover once no unpack runs.
pub const TMP_MARKER: &str = ".tmp-";

/// Removes the temporary directory unless disarmed.
struct TmpGuard(Option<PathBuf>);

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = fs::remove_dir_all(&p)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "could not remove a failed layer unpack");
        }
    }
}

fn create_tmp_dir(dest: &Path) -> Result<PathBuf, UnpackError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = dest.file_name().ok_or_else(|| UnpackError::Destination {
        path: dest.to_path_buf(),
        op: "check destination",
        source: io::Error::new(io::ErrorKind::InvalidInput, "has no final component"),
    })?;
    loop {
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(
            "{TMP_MARKER}{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        let tmp = dest.with_file_name(tmp_name);
        match fs::DirBuilder::new().mode(0o700).create(&tmp) {
            Ok(()) => return Ok(tmp),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(dest_err(&tmp, "create temporary directory")(e)),
        }
    }
}

/// Unpacks the layer blob read from `reader` into a new directory `dest`.
///
/// `compression` is the blob's compression ([`Compression::Auto`] detects it
/// from the magic bytes). The uncompressed stream must hash to
/// `expected_diff_id`. `dest` must not exist; its parent must. On success
/// `dest` holds the complete layer (whiteouts in overlayfs form); on any
/// error `dest` does not exist and no temporary directory is left.
pub fn unpack_layer<R: Read>(
    reader: R,
    compression: Compression,
    dest: &Path,
    expected_diff_id: &Digest,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    if dest.symlink_metadata().is_ok() {
        return Err(UnpackError::DestinationExists(dest.to_path_buf()));
    }
    let tmp = create_tmp_dir(dest)?;
    let mut guard = TmpGuard(Some(tmp.clone()));
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
        .map_err(dest_err(&tmp, "chmod temporary directory"))?;
    let root: OwnedFd = rustix::fs::openat(
        CWD,
        &tmp,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| dest_err(&tmp, "open temporary directory")(e.into()))?;
    let sync_fd = root.try_clone().map_err(dest_err(&tmp, "duplicate fd"))?;
    let stats = unpack_into(reader, compression, root, expected_diff_id, opts)?;
    if opts.sync {
        rustix::fs::syncfs(&sync_fd).map_err(|e| dest_err(&tmp, "syncfs")(e.into()))?;
    }
    match rustix::fs::renameat_with(CWD, &tmp, CWD, dest, RenameFlags::NOREPLACE) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY) => {
            return Err(UnpackError::DestinationExists(dest.to_path_buf()));
        }
        // Filesystems without RENAME_NOREPLACE: a plain rename still refuses
        // to replace a non-empty directory.
        Err(rustix::io::Errno::INVAL) => {
            fs::rename(&tmp, dest).map_err(dest_err(dest, "rename into place"))?
        }
        Err(e) => return Err(dest_err(dest, "rename into place")(e.into())),
    }
    guard.0 = None;
    if opts.sync
        && let Some(parent) = dest.parent()
    {
        let dir = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(dest_err(dir, "fsync parent directory"))?;
    }
    Ok(stats)
}

/// Unpacks into the open, empty directory `root`, checking the diff_id.
fn unpack_into<R: Read>(
    raw: R,
    compression: Compression,
    root: OwnedFd,
    expected: &Digest,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let state = stream::Shared::default();
    let mut used = compression;
    let result = (|| {
        let stream_err = |c: Compression| {
            move |source| UnpackError::Stream {
                compression: c,
                source,
            }
        };
        let (reader, resolved) =
            stream::open(raw, compression, opts.max_uncompressed_bytes, state.clone())
                .map_err(stream_err(compression))?;
        used = resolved;
        let mut archive = tar::Archive::new(reader);
        let mut ex = extract::Extractor::new(root, opts);
        for entry in archive.entries().map_err(stream_err(resolved))? {
            let mut entry = entry.map_err(stream_err(resolved))?;
            ex.entry(&mut entry)?;
        }
        ex.finish()?;
        // The diff_id covers the whole stream, also what follows the tar
        // end-of-archive marker; reading to the end also lets the caller's
        // verifying reader check the compressed digest.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(stream_err(resolved))?;
        let (actual, len) = rest.into_inner().finish();
        if &actual != expected {
            return Err(UnpackError::DiffIdMismatch {
                expected: expected.clone(),
                actual,
                len,
            });
        }
        let mut stats = std::mem::take(&mut ex.stats);
        stats.diff_id = Some(actual);
        stats.uncompressed_bytes = len;
        Ok(stats)
    })();
    let st = state.borrow();
    match result {
        Ok(mut stats) => {
            stats.compressed_bytes = st.compressed_bytes;
            stats.compression = Some(used);
            Ok(stats)
        }
        Err(e) => Err(if let Some(actual) = &st.blob_mismatch {
            UnpackError::BlobDigestMismatch {
                actual: actual.clone(),
            }
        } else if st.too_large {
            UnpackError::TooLarge {
                limit: opts.max_uncompressed_bytes.unwrap_or(0),
            }
        } else {
            e
        }),
    }
}
