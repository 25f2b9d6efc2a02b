//! Helpers shared by the `unpack_*` integration tests: layers crafted byte by
//! byte with `tar::Header` (the `tar` builder refuses `..` and absolute
//! paths, which is exactly what these tests need to write), compressors, and
//! a sandbox with a canary directory beside the destination.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use bramble_images::Digest;

/// A tar layer built in memory.
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

/// Fixed mtime of crafted entries.
pub const MTIME: u64 = 1_600_000_000;

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Layer {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry with raw name and link bytes (no validation at all).
    /// Names up to 100 bytes use the header field; longer ones a GNU long-name
    /// record.
    pub fn raw(
        &mut self,
        name: &[u8],
        kind: tar::EntryType,
        mode: u32,
        link: Option<&[u8]>,
        data: &[u8],
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        if name.len() <= 100 {
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
        } else {
            let mut long = tar::Header::new_gnu();
            long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
            long.set_entry_type(tar::EntryType::GNULongName);
            long.set_mode(0o644);
            long.set_size(name.len() as u64 + 1);
            long.set_cksum();
            let mut n = name.to_vec();
            n.push(0);
            self.b.append(&long, n.as_slice()).unwrap();
            h.as_old_mut().name[..100].copy_from_slice(&name[..100]);
        }
        if let Some(l) = link {
            assert!(l.len() <= 100, "long link names are not needed here");
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(name.as_bytes(), tar::EntryType::Regular, 0o644, None, data)
    }

    pub fn file_mode(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.raw(name.as_bytes(), tar::EntryType::Regular, mode, None, data)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(name.as_bytes(), tar::EntryType::Directory, 0o755, None, b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            tar::EntryType::Symlink,
            0o777,
            Some(target.as_bytes()),
            b"",
        )
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            tar::EntryType::Link,
            0o644,
            Some(target.as_bytes()),
            b"",
        )
    }

    /// An entry with a fully custom header (owner, device numbers...).
    pub fn header(&mut self, h: &tar::Header, data: &[u8]) -> &mut Self {
        self.b.append(h, data).unwrap();
        self
    }

    /// The finished tar stream (with its end-of-archive marker).
    pub fn tar(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// A header for a short name, ready for custom fields (call `set_cksum`).
pub fn header(name: &str, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_mtime(MTIME);
    h.set_size(0);
    h
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

pub fn diff_id(tar: &[u8]) -> Digest {
    Digest::of(tar)
}

/// A temporary directory holding a canary directory (`canary/keep`) and the
/// place for the destination (`layer`), to prove that nothing is written
/// outside the destination.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("canary")).unwrap();
        fs::write(tmp.path().join("canary/keep"), b"canary").unwrap();
        Sandbox { tmp }
    }

    pub fn base(&self) -> &Path {
        self.tmp.path()
    }

    pub fn dest(&self) -> PathBuf {
        self.base().join("layer")
    }

    pub fn canary(&self) -> PathBuf {
        self.base().join("canary")
    }

    /// The canary's absolute path as a string (for absolute-path attacks).
    pub fn canary_str(&self) -> String {
        self.canary().to_str().unwrap().to_string()
    }

    fn names(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    /// Asserts the canary is untouched and the sandbox holds exactly the
    /// canary plus, when `dest_exists`, the destination (no temporary dirs).
    pub fn assert_clean(&self, dest_exists: bool) {
        let mut want = BTreeSet::from(["canary".to_string()]);
        if dest_exists {
            want.insert("layer".to_string());
        }
        assert_eq!(Self::names(self.base()), want, "sandbox contents");
        assert_eq!(
            Self::names(&self.canary()),
            BTreeSet::from(["keep".to_string()]),
            "canary directory contents"
        );
        let keep = self.canary().join("keep");
        let meta = fs::symlink_metadata(&keep).unwrap();
        assert!(meta.file_type().is_file(), "canary/keep is still a file");
        assert_eq!(fs::read(&keep).unwrap(), b"canary", "canary content");
        assert_eq!(
            fs::symlink_metadata(self.dest()).is_ok(),
            dest_exists,
            "destination existence"
        );
    }
}
