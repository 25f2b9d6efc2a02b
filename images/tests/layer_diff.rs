//! Layers made from a real overlay's upper directory (root: overlayfs
//! mounts): what was changed through the mount — files added, deleted,
//! chmodded, a directory replaced, links and a fifo made — becomes a layer
//! that, unpacked by the safe unpacker and stacked on the same lower layer,
//! shows exactly what the mount showed; whiteouts and the opaque marker are
//! OCI's; the bytes are the same on a second write; mtimes are clamped to
//! SOURCE_DATE_EPOCH; overlay metacopy files are refused. Every mount is
//! undone by a guard, also when an assertion fails.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use bramble_images::layer_diff::{DiffError, DiffOptions, write_layer};
use bramble_images::rootfs::Rootfs;
use bramble_images::unpack::{Compression, UnpackOptions, unpack_layer};
use bramble_tests::root::require_root;

/// Unmounts on drop, whatever happened.
struct Mounted(Rootfs);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.0.unmount() {
            eprintln!("guard: unmount {}: {e}", self.0.path().display());
        }
    }
}

/// Every path under `root` with what it is: kind, mode, and content or
/// link target (owners and times left out: they are checked apart).
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            let what = if m.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                walk(root, &p, out);
                format!("dir {mode:o}")
            } else if m.is_file() {
                format!("file {mode:o} {:?}", fs::read(&p).unwrap())
            } else {
                format!("other {mode:o}")
            };
            out.insert(rel, what);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// (name, kind, mode, mtime, link target) of every entry of a gzip layer.
fn entries(blob: &[u8]) -> Vec<(String, tar::EntryType, u32, u64, String)> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.entry_type(),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                e.link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

#[test]
fn an_upper_directory_becomes_a_layer_that_stacks_back_to_the_same_tree() {
    require_root("overlayfs mounts");
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    for d in ["a", "dir/sub", "bin"] {
        fs::create_dir_all(lower.join(d)).unwrap();
    }
    write(&lower.join("a/keep.txt"), "keep");
    write(&lower.join("a/gone.txt"), "gone");
    write(&lower.join("dir/old.txt"), "old");
    write(&lower.join("dir/sub/deep.txt"), "deep");
    write(&lower.join("bin/tool"), "#!/bin/sh\n");
    fs::set_permissions(lower.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();

    // A build step's changes, made through the mount.
    let step = Mounted(Rootfs::prepare(&[&lower], tmp.path().join("step"), false).unwrap());
    let root = step.0.path();
    write(&root.join("a/new.txt"), "new");
    fs::remove_file(root.join("a/gone.txt")).unwrap();
    fs::remove_dir_all(root.join("dir")).unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    write(&root.join("dir/fresh.txt"), "fresh");
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink("/a/keep.txt", root.join("a/link")).unwrap();
    write(&root.join("a/h1"), "twice");
    fs::hard_link(root.join("a/h1"), root.join("a/h2")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("a/pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let seen = tree(&root);
    let upper = step.0.upper().unwrap();
    drop(step);

    let epoch = 1_700_000_000;
    let opts = DiffOptions {
        source_date_epoch: Some(epoch),
        level: None,
    };
    let mut blob = Vec::new();
    let info = write_layer(&upper, &mut blob, &opts).unwrap();
    assert_eq!(info.size, blob.len() as u64);
    assert_eq!(info.digest, bramble_images::Digest::of(&blob));
    let mut again = Vec::new();
    assert_eq!(write_layer(&upper, &mut again, &opts).unwrap(), info);
    assert_eq!(again, blob, "the same directory gives the same bytes");

    let list = entries(&blob);
    let names: Vec<&str> = list.iter().map(|e| e.0.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries in name order");
    let find = |n: &str| {
        list.iter()
            .find(|e| e.0.trim_end_matches('/') == n)
            .unwrap_or_else(|| panic!("no entry {n} in {names:?}"))
    };
    assert_eq!(find("a/.wh.gone.txt").1, tar::EntryType::Regular);
    assert_eq!(find("dir/.wh..wh..opq").1, tar::EntryType::Regular);
    assert_eq!(find("bin/tool").2, 0o4755);
    assert_eq!(find("a/link").4, "/a/keep.txt");
    assert_eq!(find("a/h2").1, tar::EntryType::Link);
    assert_eq!(find("a/h2").4, "a/h1");
    assert_eq!(find("a/pipe").1, tar::EntryType::Fifo);
    assert!(
        list.iter().all(|e| e.3 <= epoch),
        "mtimes clamped: {list:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("keep.txt") && !n.ends_with("link"))
    );
    assert_eq!(info.entries, list.len() as u64);

    // Unpacked safely and stacked on the lower layer: the same tree.
    let unpacked = tmp.path().join("layer");
    let stats = unpack_layer(
        blob.as_slice(),
        Compression::Gzip,
        &unpacked,
        &info.diff_id,
        &UnpackOptions {
            allow_devices: true,
            keep_setuid: true,
            ..UnpackOptions::default()
        },
    )
    .unwrap();
    assert!(stats.entries > 0);
    let view =
        Mounted(Rootfs::prepare(&[&lower, &unpacked], tmp.path().join("view"), true).unwrap());
    assert_eq!(tree(&view.0.path()), seen);
    let h1 = fs::metadata(view.0.path().join("a/h1")).unwrap();
    let h2 = fs::metadata(view.0.path().join("a/h2")).unwrap();
    assert_eq!(h1.ino(), h2.ino(), "a hardlink stays one file");
}

#[test]
fn overlay_metacopy_files_are_refused_with_their_path() {
    require_root("trusted.* xattrs");
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir_all(upper.join("usr")).unwrap();
    write(&upper.join("usr/big"), "");
    rustix::fs::setxattr(
        upper.join("usr/big"),
        "trusted.overlay.metacopy",
        b"",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let err = write_layer(&upper, std::io::sink(), &DiffOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DiffError::OverlayIndirection { path, .. } if path.ends_with("usr/big")),
        "{err}"
    );
    assert!(err.to_string().contains("metacopy=off"), "{err}");
}

#[test]
fn the_layer_of_an_empty_directory_is_an_empty_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let mut blob = Vec::new();
    let info = write_layer(tmp.path(), &mut blob, &DiffOptions::default()).unwrap();
    assert_eq!(info.entries, 0);
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(blob.as_slice())
        .read_to_end(&mut raw)
        .unwrap();
    assert!(
        raw.iter().all(|b| *b == 0),
        "only the end-of-archive blocks"
    );
    assert_eq!(info.diff_id, bramble_images::Digest::of(&raw));
}
