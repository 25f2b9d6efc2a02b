//! A content-addressed blob store on disk: `ROOT/blobs/sha256/<hex>`.
//!
//! Invariants: a blob file exists only with the content its name says. Writes go
//! to `ROOT/tmp/` (same filesystem), are hashed while written, fsynced, checked
//! against the expected digest and only then renamed into place, so a crash or a
//! wrong digest never leaves a visible partial blob. Reads can be verified too.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};

/// Blob store errors, each naming the blob or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} not found")]
    NotFound(Digest),
    #[error("digest mismatch: expected {expected}, content hashes to {actual} ({len} bytes)")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        len: u64,
    },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob store I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The store; cheap to clone.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating) a store at `root` and removes temporary files a crash
    /// may have left.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore, BlobError> {
        let root = root.into();
        let store = BlobStore { root };
        for dir in [store.blob_dir(), store.tmp_dir()] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let tmp = store.tmp_dir();
        for entry in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let path = entry.map_err(io_err(&tmp))?.path();
            let _ = fs::remove_file(&path);
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where unfinished writes live (same filesystem as the blobs).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Path of a blob (it may not exist).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blob_dir().join(d.hex())
    }

    /// Whether the blob is present.
    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// The blob's size, if present.
    pub fn size(&self, d: &Digest) -> Result<Option<u64>, BlobError> {
        let p = self.path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    /// Starts a streamed write into a new temporary file.
    pub fn writer(&self) -> Result<BlobWriter, BlobError> {
        let tmp = tempfile_in(&self.tmp_dir())?;
        Ok(BlobWriter {
            store: self.clone(),
            inner: HashingWriter::new(tmp.1),
            tmp_path: tmp.0,
        })
    }

    /// Stores `bytes`, checking them against `expected` when given.
    pub fn put_bytes(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest, BlobError> {
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(io_err(&w.tmp_path))?;
        w.commit(expected)
    }

    /// Stores everything `r` yields, checking it against `expected` when given.
    pub fn put_reader(
        &self,
        mut r: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), BlobError> {
        let mut w = self.writer()?;
        io::copy(&mut r, &mut w).map_err(io_err(&w.tmp_path))?;
        let len = w.len();
        Ok((w.commit(expected)?, len))
    }

    /// Moves a finished file (written elsewhere under [`BlobStore::tmp_dir`],
    /// e.g. a chunked registry upload) into the store after hashing it.
    pub fn commit_file(&self, path: &Path, expected: &Digest) -> Result<u64, BlobError> {
        let f = File::open(path).map_err(io_err(path))?;
        let (actual, len) = Digest::of_reader(f).map_err(io_err(path))?;
        if &actual != expected {
            let _ = fs::remove_file(path);
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
                len,
            });
        }
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io_err(path))?;
        self.install(path, expected)?;
        Ok(len)
    }

    /// Installs a file the caller hashed while writing it (to `d`): fsync and
    /// rename. Crate-private so the "content matches name" invariant stays here.
    pub(crate) fn install_hashed(&self, path: &Path, d: &Digest) -> Result<(), BlobError> {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io_err(path))?;
        self.install(path, d)
    }

    fn install(&self, tmp: &Path, d: &Digest) -> Result<(), BlobError> {
        let dest = self.path(d);
        fs::rename(tmp, &dest).map_err(io_err(&dest))?;
        let dir = self.blob_dir();
        File::open(&dir)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&dir))?;
        Ok(())
    }

    /// Opens a blob for reading (unverified: see [`BlobStore::open_verified`]).
    pub fn open_blob(&self, d: &Digest) -> Result<File, BlobError> {
        let p = self.path(d);
        File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                BlobError::NotFound(d.clone())
            } else {
                io_err(&p)(e)
            }
        })
    }

    /// Opens a blob through a reader that fails at the end if the content does
    /// not hash to `d` (on-disk corruption).
    pub fn open_verified(&self, d: &Digest) -> Result<VerifyingReader<File>, BlobError> {
        Ok(VerifyingReader::new(self.open_blob(d)?, d.clone()))
    }

    /// Reads a whole (small) blob, verified: manifests, configs, indexes.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, BlobError> {
        let mut out = Vec::new();
        let p = self.path(d);
        self.open_verified(d)?.read_to_end(&mut out).map_err(|e| {
            match e.get_ref().and_then(|i| i.downcast_ref::<Mismatch>()) {
                Some(m) => BlobError::DigestMismatch {
                    expected: d.clone(),
                    actual: m.0.clone(),
                    len: out.len() as u64,
                },
                None => io_err(&p)(e),
            }
        })?;
        Ok(out)
    }

    /// Removes a blob; `false` if it was not there.
    pub fn delete(&self, d: &Digest) -> Result<bool, BlobError> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    /// Every blob in the store.
    pub fn list(&self) -> Result<Vec<Digest>, BlobError> {
        let dir = self.blob_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            if let Some(name) = entry.file_name().to_str()
                && let Ok(d) = format!("sha256:{name}").parse()
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Creates a uniquely named file in `dir`.
fn tempfile_in(dir: &Path) -> Result<(PathBuf, File), BlobError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    loop {
        let name = format!(
            "{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let path = dir.join(name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
}

/// A streamed write into the store. Dropping it without [`BlobWriter::commit`]
/// removes the temporary file.
pub struct BlobWriter {
    store: BlobStore,
    inner: HashingWriter<File>,
    tmp_path: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Finishes the write: fsync, check against `expected` (if given), rename
    /// into place. On a mismatch nothing becomes visible.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Digest, BlobError> {
        let tmp = std::mem::take(&mut self.tmp_path);
        let inner = std::mem::replace(&mut self.inner, HashingWriter::new(placeholder()));
        let (file, actual, len) = inner.into_parts();
        let result = (|| {
            file.sync_all().map_err(io_err(&tmp))?;
            drop(file);
            if let Some(e) = expected
                && e != &actual
            {
                return Err(BlobError::DigestMismatch {
                    expected: e.clone(),
                    actual: actual.clone(),
                    len,
                });
            }
            self.store.install(&tmp, &actual)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| actual)
    }
}

/// A stand-in file used only while moving the real one out of a writer.
fn placeholder() -> File {
    File::open("/dev/null").expect("/dev/null exists")
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.tmp_path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

/// Marker error inside the `io::Error` a [`VerifyingReader`] returns at EOF.
#[derive(Debug)]
pub struct Mismatch(pub Digest);

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "content hashes to {}", self.0)
    }
}

impl std::error::Error for Mismatch {}

/// Reads through, hashing; at end of input fails with `InvalidData` unless the
/// content hashed to the expected digest.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: HashingWriter<io::Sink>,
    expected: Digest,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest) -> Self {
        VerifyingReader {
            inner,
            hasher: HashingWriter::new(io::sink()),
            expected,
            done: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.write_all(&buf[..n])?;
        } else if !buf.is_empty() && !self.done {
            self.done = true;
            let h = std::mem::replace(&mut self.hasher, HashingWriter::new(io::sink()));
            let (actual, _) = h.finish();
            if actual != self.expected {
                return Err(io::Error::new(io::ErrorKind::InvalidData, Mismatch(actual)));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_reads_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = store.put_bytes(b"layer", None).unwrap();
        assert_eq!(d, Digest::of(b"layer"));
        assert!(store.has(&d));
        assert_eq!(store.read(&d).unwrap(), b"layer");
        assert_eq!(store.size(&d).unwrap(), Some(5));
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        assert!(store.delete(&d).unwrap());
        assert!(!store.has(&d));
        assert!(matches!(store.read(&d), Err(BlobError::NotFound(_))));
    }

    #[test]
    fn wrong_digest_leaves_nothing_visible() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let wrong = Digest::of(b"other");
        let err = store.put_bytes(b"layer", Some(&wrong)).unwrap_err();
        assert!(matches!(err, BlobError::DigestMismatch { .. }), "{err}");
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn dropped_writer_and_crash_leftovers_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        fs::write(store.tmp_dir().join("left-by-a-crash"), b"x").unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn corruption_is_detected_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = store.put_bytes(b"manifest", None).unwrap();
        fs::write(store.path(&d), b"tampered").unwrap();
        let err = store.read(&d).unwrap_err();
        assert!(matches!(err, BlobError::DigestMismatch { .. }), "{err}");
    }

    #[test]
    fn commit_file_checks_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let p = store.tmp_dir().join("upload");
        fs::write(&p, b"chunked").unwrap();
        assert!(store.commit_file(&p, &Digest::of(b"nope")).is_err());
        assert!(!p.exists());
        fs::write(&p, b"chunked").unwrap();
        assert_eq!(store.commit_file(&p, &Digest::of(b"chunked")).unwrap(), 7);
        assert!(store.has(&Digest::of(b"chunked")));
    }
}
