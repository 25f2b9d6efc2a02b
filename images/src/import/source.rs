//! Random access to the files of an import source: a directory, or a tar
//! archive indexed once (headers only) and then read by byte range, so a layer
//! is streamed straight from the archive without extracting it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::ImportError;

/// Where a regular file's bytes lie in the archive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    offset: u64,
    size: u64,
}

/// An import source.
pub(crate) enum Source {
    /// A directory (an OCI image layout, or an extracted `docker save`).
    Dir(PathBuf),
    /// An indexed tar archive. `file` stays open for positional reads, so the
    /// archive may be a temporary file that is already unlinked.
    Tar {
        path: PathBuf,
        file: File,
        files: HashMap<String, Span>,
    },
}

impl Source {
    /// Indexes the tar archive in `file` (named `path` in errors): regular
    /// files by normalized path, hard and symbolic links resolved to the file
    /// they name. Refuses truncated archives, sparse entries, duplicate names
    /// and links that leave the archive.
    pub(crate) fn tar(path: &Path, file: File) -> Result<Source, ImportError> {
        let malformed = |why: String| ImportError::Malformed {
            archive: path.to_path_buf(),
            why,
        };
        let len = file
            .metadata()
            .map_err(|source| ImportError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let mut files: HashMap<String, Span> = HashMap::new();
        // link path -> (target path, is_symlink)
        let mut links: HashMap<String, (String, bool)> = HashMap::new();
        let mut reader = &file;
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|source| ImportError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let mut ar = tar::Archive::new(&mut reader);
        let entries = ar
            .entries_with_seek()
            .map_err(|e| malformed(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| malformed(format!("unreadable tar header: {e}")))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            // `./` (the archive's root directory, as `tar -C dir .` writes it).
            if raw.split('/').all(|c| c.is_empty() || c == ".")
                && entry.header().entry_type() == tar::EntryType::Directory
            {
                continue;
            }
            let Some(name) = normalize(&raw) else {
                return Err(malformed(format!(
                    "entry {raw:?} points outside the archive"
                )));
            };
            let kind = entry.header().entry_type();
            let sparse = kind == tar::EntryType::GNUSparse
                || entry.pax_extensions().ok().flatten().is_some_and(|mut p| {
                    p.any(|x| x.is_ok_and(|x| x.key_bytes().starts_with(b"GNU.sparse")))
                });
            if sparse {
                return Err(malformed(format!(
                    "entry {name:?} is a sparse file, which image archives never contain"
                )));
            }
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let span = Span {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    };
                    if span.offset.saturating_add(span.size) > len {
                        return Err(malformed(format!(
                            "entry {name:?} is truncated: it needs {} bytes but the archive \
                             ends after {} (incomplete download or copy?)",
                            span.size,
                            len.saturating_sub(span.offset)
                        )));
                    }
                    if files.insert(name.clone(), span).is_some() || links.contains_key(&name) {
                        return Err(malformed(format!("two entries are named {name:?}")));
                    }
                }
                tar::EntryType::Link | tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let sym = kind == tar::EntryType::Symlink;
                    // Symlinks are relative to the link's directory, hard links
                    // to the archive root.
                    let joined = match (sym, name.rsplit_once('/')) {
                        (true, _) if target.starts_with('/') => None,
                        (true, Some((dir, _))) => normalize(&format!("{dir}/{target}")),
                        _ => normalize(&target),
                    };
                    let Some(t) = joined else {
                        return Err(malformed(format!(
                            "link {name:?} -> {target:?} points outside the archive"
                        )));
                    };
                    if links.insert(name.clone(), (t, sym)).is_some() || files.contains_key(&name) {
                        return Err(malformed(format!("two entries are named {name:?}")));
                    }
                }
                _ => {}
            }
        }
        for (name, (target, _)) in &links {
            let mut t = target.clone();
            let mut hops = 0;
            while let Some((next, _)) = links.get(&t) {
                hops += 1;
                if hops > 16 {
                    return Err(malformed(format!("link {name:?} is part of a loop")));
                }
                t = next.clone();
            }
            if let Some(span) = files.get(&t).copied() {
                files.insert(name.clone(), span);
            }
        }
        Ok(Source::Tar {
            path: path.to_path_buf(),
            file,
            files,
        })
    }

    /// Where the source is, for messages.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Source::Dir(p) => p,
            Source::Tar { path, .. } => path,
        }
    }

    /// The size of a regular file, `None` if there is none at `name`.
    pub(crate) fn size(&self, name: &str) -> Result<Option<u64>, ImportError> {
        match self {
            Source::Dir(root) => {
                let Some(rel) = normalize(name) else {
                    return Ok(None);
                };
                let p = root.join(rel);
                match std::fs::metadata(&p) {
                    Ok(m) if m.is_file() => Ok(Some(m.len())),
                    Ok(_) => Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(ImportError::Io { path: p, source }),
                }
            }
            Source::Tar { files, .. } => {
                Ok(normalize(name).and_then(|n| files.get(&n)).map(|s| s.size))
            }
        }
    }

    /// Opens the regular file `name`.
    pub(crate) fn open(&self, name: &str) -> Result<Box<dyn Read + '_>, ImportError> {
        let missing = || ImportError::Io {
            path: self.path().join(name),
            source: io::Error::new(io::ErrorKind::NotFound, "no such file in the source"),
        };
        let rel = normalize(name).ok_or_else(missing)?;
        match self {
            Source::Dir(root) => {
                let p = root.join(&rel);
                let f = File::open(&p).map_err(|source| ImportError::Io { path: p, source })?;
                Ok(Box::new(f))
            }
            Source::Tar { file, files, .. } => {
                let span = files.get(&rel).ok_or_else(missing)?;
                Ok(Box::new(RangeReader {
                    file,
                    pos: span.offset,
                    end: span.offset + span.size,
                }))
            }
        }
    }

    /// Reads a whole small file, refusing more than `limit` bytes.
    pub(crate) fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, ImportError> {
        let size = self.size(name)?.ok_or_else(|| ImportError::Missing {
            entry: name.to_string(),
            source_path: self.path().to_path_buf(),
            referenced_by: "the image format".into(),
        })?;
        if size > limit {
            return Err(ImportError::TooLarge {
                entry: name.to_string(),
                size,
                limit,
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        self.open(name)?
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|source| ImportError::Io {
                path: self.path().join(name),
                source,
            })?;
        Ok(out)
    }
}

/// Reads `[pos, end)` of a file with positional reads (no shared cursor).
struct RangeReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ended inside an entry",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Normalizes an archive path: no leading `/` or `./`, `.` removed, `..`
/// resolved; `None` if it climbs above the root or is empty.
pub(crate) fn normalize(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize("./index.json").as_deref(), Some("index.json"));
        assert_eq!(
            normalize("/blobs//sha256/x").as_deref(),
            Some("blobs/sha256/x")
        );
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("../etc/passwd"), None);
        assert_eq!(normalize("./"), None);
    }

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let bytes = b.into_inner().unwrap();
        let p = dir.path().join("a.tar");
        std::fs::write(&p, bytes).unwrap();
        (dir, p)
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        b.append_link(&mut h, name, target).unwrap();
    }

    #[test]
    fn indexes_files_and_resolves_links() {
        let (_d, p) = tar_with(|b| {
            file(b, "./a/layer.tar", b"hello");
            link(b, tar::EntryType::Symlink, "b/layer.tar", "../a/layer.tar");
            link(b, tar::EntryType::Link, "c", "a/layer.tar");
        });
        let src = Source::tar(&p, File::open(&p).unwrap()).unwrap();
        for name in ["a/layer.tar", "b/layer.tar", "c"] {
            assert_eq!(src.size(name).unwrap(), Some(5), "{name}");
            assert_eq!(src.read_small(name, 10).unwrap(), b"hello");
        }
        assert_eq!(src.size("nope").unwrap(), None);
        assert!(matches!(
            src.read_small("a/layer.tar", 2),
            Err(ImportError::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_escaping_links_duplicates_and_truncation() {
        let (_d, p) = tar_with(|b| link(b, tar::EntryType::Symlink, "x", "../../etc/passwd"));
        let e = Source::tar(&p, File::open(&p).unwrap()).err().unwrap();
        assert!(e.to_string().contains("outside the archive"), "{e}");
        let (_d, p) = tar_with(|b| {
            file(b, "index.json", b"{}");
            file(b, "./index.json", b"{}");
        });
        let e = Source::tar(&p, File::open(&p).unwrap()).err().unwrap();
        assert!(e.to_string().contains("two entries"), "{e}");
        let (_d, p) = tar_with(|b| file(b, "big", &[7u8; 4096]));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..512 + 1000]).unwrap();
        let e = Source::tar(&p, File::open(&p).unwrap()).err().unwrap();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
