//! ADD's local archives: a source file that is a tar stream (plain, gzip
//! or zstd: what `bramble_images::unpack` reads; BuildKit also reads xz
//! and bzip2, which Bramble does not) is extracted into the destination
//! instead of copied, as BuildKit's `isArchivePath` + `applyRootArchive`
//! do. Anything else (a text file, a `.gz` of something that is not a
//! tar, an empty file) is not an archive and is copied like COPY.
//!
//! The extraction is the image layer unpacker's (absolute paths, `..`
//! and links through symlinks refused, devices refused, setuid bits kept
//! as Docker keeps them), into a scratch directory of the step; the
//! extracted tree is then copied into the image's root like a stage's
//! (archive owners kept unless `--chown`). The unpacker checks a layer's
//! digest and has no entry point without one, so the archive is unpacked
//! twice: once to learn its digest (an unpack against a digest that
//! cannot match, which reports the real one), once for real.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use bramble_images::{Compression, Digest, UnpackError, UnpackOptions, unpack_layer};

/// What [`extract`] found.
#[derive(Debug)]
pub enum Extracted {
    /// Not an archive: copy the file.
    NotArchive,
    /// The archive's tree, in this scratch directory (remove it after use).
    Tree(PathBuf),
}

/// Why an archive could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    #[error("{0} (fix or rebuild the archive)")]
    Unpack(#[source] UnpackError),
}

/// Extracts the archive read from `open()` (called once per pass) into
/// `scratch` (which must not exist; its parent must).
pub fn extract(
    open: &dyn Fn() -> io::Result<File>,
    scratch: &Path,
) -> Result<Extracted, ArchiveError> {
    let opts = UnpackOptions {
        keep_setuid: true,
        sync: false,
        ..UnpackOptions::default()
    };
    let never: Digest = format!("sha256:{}", "0".repeat(64))
        .parse()
        .expect("a well-formed digest");
    let first = unpack_layer(
        open().map_err(ArchiveError::Read)?,
        Compression::Auto,
        scratch,
        &never,
        &opts,
    );
    let diff_id = match first {
        // Cannot happen (no stream hashes to zeros), and would be complete.
        Ok(_) => return Ok(Extracted::Tree(scratch.to_path_buf())),
        Err(UnpackError::DiffIdMismatch { actual, .. }) => actual,
        // Not a (compressed) tar stream: a file like any other.
        Err(UnpackError::Stream { .. }) => return Ok(Extracted::NotArchive),
        Err(e) => return Err(ArchiveError::Unpack(e)),
    };
    let stats = unpack_layer(
        open().map_err(ArchiveError::Read)?,
        Compression::Auto,
        scratch,
        &diff_id,
        &opts,
    )
    .map_err(ArchiveError::Unpack)?;
    if stats.entries == 0 {
        // An empty file or zeros: Go's tar reader finds no first header,
        // so BuildKit copies such a file as it is.
        std::fs::remove_dir_all(scratch).map_err(ArchiveError::Read)?;
        return Ok(Extracted::NotArchive);
    }
    Ok(Extracted::Tree(scratch.to_path_buf()))
}
