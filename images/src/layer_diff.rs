//! An overlayfs upper directory (what a build step changed) → an OCI layer
//! blob: a gzip-compressed tar, with its `diff_id` (the uncompressed
//! stream's digest), `digest` and size ([`write_layer`]). The reverse of
//! [`crate::unpack`], so a layer unpacked and stacked under the same lower
//! layers shows what the overlay showed.
//!
//! - **Whiteouts**: a 0/0 character device `NAME` (overlayfs' deletion
//!   mark) becomes `.wh.NAME`; a directory with `trusted.overlay.opaque=y`
//!   (or `user.overlay.opaque`) gets a `.wh..wh..opq` entry after it.
//! - **Reproducible**: entries sorted by name (each directory's entries in
//!   byte order, a directory before what is in it), numeric owners only
//!   (no user or group names), no xattrs, no access or change times,
//!   mtimes clamped to [`DiffOptions::source_date_epoch`] when given (as
//!   BuildKit's `rewrite-timestamp`), a gzip header without a name or a
//!   time. The same directory gives the same bytes.
//! - **Kept**: modes (setuid/setgid/sticky included), owners, symlinks as
//!   written, hardlinks (a file's later names point to its first), fifos
//!   and device nodes. Sockets are left out, as BuildKit leaves them.
//! - **Refused** (with the path): overlayfs `metacopy` files and
//!   `redirect` directories, whose data is not in the upper directory (the
//!   build's overlay must be mounted with `metacopy=off,redirect_dir=off`).
//!
//! This reads what untrusted build steps wrote: nothing is ever followed
//! (symlinks are listed with `lstat` and stored as links; files are opened
//! with `O_NOFOLLOW`), and it runs after the step's container has exited,
//! so the tree does not change under it.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};

/// How [`write_layer`] writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffOptions {
    /// Clamp every mtime to this many seconds since the epoch.
    pub source_date_epoch: Option<u64>,
    /// gzip level 0-9 (`None`: 6).
    pub level: Option<u32>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar (the image config's `diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the gzip blob (the manifest's layer digest).
    pub digest: Digest,
    /// Bytes of the gzip blob.
    pub size: u64,
    /// Tar entries written (whiteouts included).
    pub entries: u64,
}

/// Why a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: an overlayfs {what} (its data is not in the upper directory); mount the build's overlay with metacopy=off,redirect_dir=off"
    )]
    OverlayIndirection { path: PathBuf, what: &'static str },
    #[error("{path}: a path in a layer must be UTF-8 or short enough for tar: {source}")]
    Name {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> DiffError + '_ {
    move |source| DiffError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The xattrs overlayfs marks an opaque directory with.
const OPAQUE: [&str; 2] = [crate::unpack::OVERLAY_OPAQUE_XATTR, "user.overlay.opaque"];
/// Overlayfs xattrs whose files' data lives elsewhere.
const INDIRECTIONS: [(&str, &str); 4] = [
    ("trusted.overlay.metacopy", "metacopy file"),
    ("user.overlay.metacopy", "metacopy file"),
    ("trusted.overlay.redirect", "redirected directory"),
    ("user.overlay.redirect", "redirected directory"),
];

/// Whether `path` (not followed) has xattr `name` equal to `y` (or, with
/// `any`, set at all).
fn xattr_is(path: &Path, name: &str, any: bool) -> bool {
    let mut buf = [0u8; 8];
    match rustix::fs::lgetxattr(path, name, &mut buf) {
        Ok(n) => any || &buf[..n] == b"y",
        Err(_) => false,
    }
}

/// Writes the layer of `upper` to `out` (gzip); see the module docs.
pub fn write_layer<W: Write>(
    upper: &Path,
    out: W,
    opts: &DiffOptions,
) -> Result<LayerInfo, DiffError> {
    let blob = HashingWriter::new(out);
    let level = flate2::Compression::new(opts.level.unwrap_or(6).min(9));
    // No name, mtime 0, OS "unknown": the same input gives the same blob.
    let gz = flate2::GzBuilder::new()
        .operating_system(255)
        .write(blob, level);
    let mut writer = LayerWriter {
        tar: tar::Builder::new(HashingWriter::new(gz)),
        opts,
        links: HashMap::new(),
        entries: 0,
    };
    writer.tar.mode(tar::HeaderMode::Complete);
    writer.walk(upper, Path::new(""))?;
    let entries = writer.entries;
    let (gz, diff_id, _) = writer.tar.into_inner().map_err(io_at(upper))?.into_parts();
    let (digest, size) = gz.finish().map_err(io_at(upper))?.finish();
    Ok(LayerInfo {
        diff_id,
        digest,
        size,
        entries,
    })
}

struct LayerWriter<'a, W: Write> {
    tar: tar::Builder<W>,
    opts: &'a DiffOptions,
    /// (dev, inode) of files with several names → the first name written.
    links: HashMap<(u64, u64), PathBuf>,
    entries: u64,
}

impl<W: Write> LayerWriter<'_, W> {
    /// Writes the entries under `dir` (`rel` inside the layer), sorted.
    fn walk(&mut self, dir: &Path, rel: &Path) -> Result<(), DiffError> {
        let mut names: Vec<std::ffi::OsString> = fs::read_dir(dir)
            .map_err(io_at(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_at(dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = dir.join(&name);
            let inner = rel.join(&name);
            let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
            for (xattr, what) in INDIRECTIONS {
                if !meta.file_type().is_symlink() && xattr_is(&path, xattr, true) {
                    return Err(DiffError::OverlayIndirection { path, what });
                }
            }
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
                // overlayfs' deletion mark → an OCI whiteout.
                let mut wh = std::ffi::OsString::from(".wh.");
                wh.push(&name);
                self.empty_file(&rel.join(wh), &meta, &path)?;
            } else if ft.is_dir() {
                self.entry(&path, &inner, &meta, tar::EntryType::Directory, None)?;
                if OPAQUE.iter().any(|x| xattr_is(&path, x, false)) {
                    self.empty_file(&inner.join(".wh..wh..opq"), &meta, &path)?;
                }
                self.walk(&path, &inner)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&path).map_err(io_at(&path))?;
                self.entry(&path, &inner, &meta, tar::EntryType::Symlink, Some(&target))?;
            } else if ft.is_file() {
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = self.links.get(&key).cloned() {
                        self.entry(&path, &inner, &meta, tar::EntryType::Link, Some(&first))?;
                        continue;
                    }
                    self.links.insert(key, inner.clone());
                }
                self.entry(&path, &inner, &meta, tar::EntryType::Regular, None)?;
            } else if ft.is_fifo() {
                self.entry(&path, &inner, &meta, tar::EntryType::Fifo, None)?;
            } else if ft.is_char_device() {
                self.entry(&path, &inner, &meta, tar::EntryType::Char, None)?;
            } else if ft.is_block_device() {
                self.entry(&path, &inner, &meta, tar::EntryType::Block, None)?;
            }
            // Sockets: left out.
        }
        Ok(())
    }

    fn mtime(&self, meta: &fs::Metadata) -> u64 {
        let t = meta.mtime().max(0) as u64;
        match self.opts.source_date_epoch {
            Some(epoch) => t.min(epoch),
            None => t,
        }
    }

    fn header(&self, meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(u64::from(meta.uid()));
        h.set_gid(u64::from(meta.gid()));
        h.set_mtime(self.mtime(meta));
        h.set_size(0);
        h
    }

    /// An empty regular file `inner` (a whiteout), owned and dated as `meta`.
    fn empty_file(
        &mut self,
        inner: &Path,
        meta: &fs::Metadata,
        at: &Path,
    ) -> Result<(), DiffError> {
        let mut h = self.header(meta, tar::EntryType::Regular);
        h.set_mode(0o644);
        self.tar
            .append_data(&mut h, inner, io::empty())
            .map_err(|source| DiffError::Name {
                path: at.to_path_buf(),
                source,
            })?;
        self.entries += 1;
        Ok(())
    }

    fn entry(
        &mut self,
        path: &Path,
        inner: &Path,
        meta: &fs::Metadata,
        kind: tar::EntryType,
        link: Option<&Path>,
    ) -> Result<(), DiffError> {
        let mut h = self.header(meta, kind);
        let name_err = |source| DiffError::Name {
            path: path.to_path_buf(),
            source,
        };
        match kind {
            tar::EntryType::Regular => {
                h.set_size(meta.len());
                let file = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(path)
                    .map_err(io_at(path))?;
                // A file that changed size meanwhile is an error, not a
                // short or long entry.
                let mut body = crate::exact::Exact::new(file, meta.len());
                self.tar
                    .append_data(&mut h, inner, &mut body)
                    .map_err(io_at(path))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = link.unwrap_or(Path::new(""));
                self.tar
                    .append_link(&mut h, inner, target)
                    .map_err(name_err)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let rdev = meta.rdev();
                h.set_device_major(rustix::fs::major(rdev))
                    .map_err(name_err)?;
                h.set_device_minor(rustix::fs::minor(rdev))
                    .map_err(|source| DiffError::Name {
                        path: path.to_path_buf(),
                        source,
                    })?;
                self.tar
                    .append_data(&mut h, inner, io::empty())
                    .map_err(io_at(path))?;
            }
            _ => {
                self.tar
                    .append_data(&mut h, inner, io::empty())
                    .map_err(io_at(path))?;
            }
        }
        self.entries += 1;
        Ok(())
    }
}
