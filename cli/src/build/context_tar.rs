//! The build context as one uncompressed tar, the blob `bramble build`
//! uploads: the files [`Context::send_list`] names (what the docker CLI
//! sends: the files a build may read, the Dockerfile and the ignore file),
//! each preceded by its parent directories.
//!
//! Deterministic, so the same directory gives the same bytes and the same
//! digest (and a second build sends nothing): entries sorted by path, owners
//! 0:0 without names, permission bits (setuid, setgid, sticky included) and
//! mtimes kept (COPY keeps mtimes, as Docker does), symlinks stored as
//! symlinks and never followed, regular files with their content. Hard
//! links become separate regular files. Sockets are left out with a warning
//! (the docker CLI skips them too); fifos and device nodes are refused: the
//! docker CLI would send them, but a build has no use for them and a board
//! should not be asked to make them (exclude them in `.dockerignore`).
//!
//! The tar is streamed to a temporary file while it is hashed; no file is
//! held in memory. A file that changes while it is read is an error (the
//! digest would not describe what a build reads).

use std::collections::BTreeSet;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use bramble_dockerfile::context::Context;
use bramble_images::Digest;
use bramble_images::digest::HashingWriter;
use bramble_images::exact::Exact;

/// Why the context could not be packed.
#[derive(Debug, thiserror::Error)]
pub enum ContextTarError {
    #[error(
        "{path} is a {kind}: a build context holds files, directories and symlinks only (add it to .dockerignore)"
    )]
    Special { path: PathBuf, kind: &'static str },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} changed while the build context was read: build again when it is stable")]
    Changed { path: PathBuf },
    #[error("writing the context tar {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// What went into a tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub digest: Digest,
    /// Bytes of the tar.
    pub size: u64,
    /// Entries written (directories included).
    pub entries: usize,
    /// Sockets left out, context-relative.
    pub skipped: Vec<String>,
}

/// A packed context in a temporary file (deleted on drop).
#[derive(Debug)]
pub struct ContextTar {
    pub file: tempfile::NamedTempFile,
    pub packed: Packed,
}

/// Packs `context` (scanned from `dir`) into a new temporary file.
pub fn pack(dir: &Path, context: &Context) -> Result<ContextTar, ContextTarError> {
    let tmp_err = |source| ContextTarError::Write {
        path: std::env::temp_dir(),
        source,
    };
    let file = tempfile::Builder::new()
        .prefix("bramble-context-")
        .suffix(".tar")
        .tempfile()
        .map_err(tmp_err)?;
    let path = file.path().to_path_buf();
    let out = file.reopen().map_err(tmp_err)?;
    let packed = write_tar(dir, &context.send_list(), BufWriter::new(out), &path)?;
    Ok(ContextTar { file, packed })
}

/// Writes the tar of `files` (context-relative, `/`-separated) under `dir`
/// to `out`; `shown` names `out` in errors.
pub fn write_tar<W: Write>(
    dir: &Path,
    files: &[String],
    out: W,
    shown: &Path,
) -> Result<Packed, ContextTarError> {
    let write_err = |source| ContextTarError::Write {
        path: shown.to_path_buf(),
        source,
    };
    let mut paths: BTreeSet<(String, bool)> = BTreeSet::new();
    for f in files {
        let mut parent = f.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            paths.insert((p.to_string(), true));
            parent = p;
        }
        paths.insert((f.clone(), false));
    }
    let mut builder = tar::Builder::new(HashingWriter::new(out));
    let mut entries = 0;
    let mut skipped = Vec::new();
    for (rel, is_parent) in &paths {
        let path = dir.join(rel);
        let meta = fs::symlink_metadata(&path).map_err(|source| ContextTarError::Read {
            path: path.clone(),
            source,
        })?;
        let kind = meta.file_type();
        if *is_parent && !kind.is_dir() {
            return Err(ContextTarError::Changed { path });
        }
        if kind.is_socket() {
            skipped.push(rel.clone());
            continue;
        }
        let special = if kind.is_fifo() {
            Some("fifo")
        } else if kind.is_block_device() {
            Some("block device")
        } else if kind.is_char_device() {
            Some("character device")
        } else {
            None
        };
        if let Some(kind) = special {
            return Err(ContextTarError::Special { path, kind });
        }
        let mut header = header_for(&meta);
        if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder
                .append_data(&mut header, rel, io::empty())
                .map_err(write_err)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(|source| ContextTarError::Read {
                path: path.clone(),
                source,
            })?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, rel, target)
                .map_err(write_err)?;
        } else {
            let file = File::open(&path).map_err(|source| ContextTarError::Read {
                path: path.clone(),
                source,
            })?;
            let opened = file.metadata().map_err(|source| ContextTarError::Read {
                path: path.clone(),
                source,
            })?;
            // Swapped for something else between lstat and open (a symlink
            // that open followed, say): refuse rather than pack it.
            if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) || !opened.is_file() {
                return Err(ContextTarError::Changed { path });
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let mut reader = Exact::new(&file, meta.len());
            builder
                .append_data(&mut header, rel, &mut reader)
                .map_err(|source| match source.kind() {
                    io::ErrorKind::UnexpectedEof => ContextTarError::Changed { path: path.clone() },
                    _ => ContextTarError::Read {
                        path: path.clone(),
                        source,
                    },
                })?;
            let after = file.metadata().map_err(|source| ContextTarError::Read {
                path: path.clone(),
                source,
            })?;
            if after.len() != meta.len() || after.mtime() != meta.mtime() {
                return Err(ContextTarError::Changed { path });
            }
        }
        entries += 1;
    }
    let hashing = builder.into_inner().map_err(write_err)?;
    let (mut inner, digest, size) = hashing.into_parts();
    inner.flush().map_err(write_err)?;
    Ok(Packed {
        digest,
        size,
        entries,
        skipped,
    })
}

/// A header with what is kept of `meta`: mode bits and mtime; owners 0:0.
fn header_for(meta: &Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(meta.mtime().max(0) as u64);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/deep")).unwrap();
        fs::write(root.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
        fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
        fs::write(root.join("src/deep/run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(
            root.join("src/deep/run.sh"),
            fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        fs::write(root.join("ignored.log"), "secret\n").unwrap();
        fs::write(root.join(".dockerignore"), "*.log\n").unwrap();
        std::os::unix::fs::symlink("../outside/nowhere", root.join("src/link")).unwrap();
        let long = format!("{}/f.txt", "d".repeat(120));
        fs::create_dir_all(root.join(&long).parent().unwrap()).unwrap();
        fs::write(root.join(&long), "long\n").unwrap();
        dir
    }

    fn pack_bytes(root: &Path) -> (Vec<u8>, Packed) {
        let ctx = Context::scan(root, &root.join("Dockerfile")).unwrap();
        let mut bytes = Vec::new();
        let packed = write_tar(root, &ctx.send_list(), &mut bytes, Path::new("mem")).unwrap();
        (bytes, packed)
    }

    #[test]
    fn same_directory_same_bytes_and_digest() {
        let dir = tree();
        let (a, pa) = pack_bytes(dir.path());
        let (b, pb) = pack_bytes(dir.path());
        assert_eq!(a, b);
        assert_eq!(pa, pb);
        assert_eq!(pa.digest, Digest::of(&a));
        assert_eq!(pa.size, a.len() as u64);
        // Through a temporary file: the same digest.
        let ctx = Context::scan(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        let tar = pack(dir.path(), &ctx).unwrap();
        assert_eq!(fs::read(tar.file.path()).unwrap(), a);
    }

    #[test]
    fn entries_sorted_with_parents_owners_zero_modes_and_links_kept() {
        let dir = tree();
        let (bytes, packed) = pack_bytes(dir.path());
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let path = e.path().unwrap().display().to_string();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{path}");
            assert_eq!(h.username().unwrap(), Some(""), "{path}");
            let meta = fs::symlink_metadata(dir.path().join(&path)).unwrap();
            assert_eq!(h.mtime().unwrap(), meta.mtime() as u64, "{path}");
            match path.as_str() {
                "src/link" => {
                    assert_eq!(h.entry_type(), tar::EntryType::Symlink);
                    assert_eq!(
                        e.link_name().unwrap().unwrap().to_str(),
                        Some("../outside/nowhere")
                    );
                }
                "src/deep/run.sh" => {
                    assert_eq!(h.mode().unwrap(), 0o4755);
                    let mut body = String::new();
                    e.read_to_string(&mut body).unwrap();
                    assert_eq!(body, "#!/bin/sh\n");
                }
                _ => {}
            }
            seen.push(path);
        }
        let long = "d".repeat(120);
        let want = [
            ".dockerignore".to_string(),
            "Dockerfile".into(),
            long.clone(),
            format!("{long}/f.txt"),
            "src".into(),
            "src/deep".into(),
            "src/deep/run.sh".into(),
            "src/link".into(),
            "src/main.rs".into(),
        ];
        assert_eq!(seen, want);
        assert_eq!(packed.entries, want.len());
    }

    #[test]
    fn sockets_are_skipped_and_fifos_refused() {
        let dir = tree();
        let root = dir.path();
        let _sock = std::os::unix::net::UnixListener::bind(root.join("src/agent.sock")).unwrap();
        let (_, packed) = pack_bytes(root);
        assert_eq!(packed.skipped, ["src/agent.sock"]);
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("pipe"))
            .status()
            .unwrap();
        assert!(status.success());
        let ctx = Context::scan(root, &root.join("Dockerfile")).unwrap();
        let err = write_tar(root, &ctx.send_list(), io::sink(), Path::new("mem")).unwrap_err();
        assert!(
            matches!(&err, ContextTarError::Special { path, kind: "fifo" } if path.ends_with("pipe")),
            "{err}"
        );
        assert!(err.to_string().contains(".dockerignore"), "{err}");
    }
}
