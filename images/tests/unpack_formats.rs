//! Well-formed layers: every compression, metadata (modes, owners, mtimes,
//! setuid), links, devices when allowed, long names, and OCI whiteouts turned
//! into their overlayfs form. These tests run as root (owners, whiteout
//! devices and the trusted.* xattr need it).

mod unpack_support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use bramble_images::unpack::{
    Compression, OVERLAY_OPAQUE_XATTR, UnpackOptions, UnpackStats, unpack_layer,
};
use tar::EntryType;
use unpack_support::{Layer, MTIME, Sandbox, diff_id, gzip, header, zstd};

fn sample() -> Vec<u8> {
    let mut l = Layer::new();
    l.dir("./")
        .dir("etc")
        .file("etc/hostname", b"bramble\n")
        .file_mode("etc/shadow", 0o640, b"root:*:1::::::\n")
        .dir("usr/bin")
        .file_mode("usr/bin/tool", 0o755, b"#!/bin/sh\necho hi\n")
        .hardlink("usr/bin/tool-alias", "usr/bin/tool")
        .symlink("bin", "usr/bin")
        .symlink("etc/abs", "/etc/hostname")
        .file("implicit/parent/file", b"parents created on the fly");
    l.tar()
}

fn unpack(blob: &[u8], c: Compression, tar: &[u8], sb: &Sandbox) -> UnpackStats {
    unpack_layer(
        blob,
        c,
        &sb.dest(),
        &diff_id(tar),
        &UnpackOptions::default(),
    )
    .unwrap()
}

fn check_sample(root: &Path) {
    assert_eq!(fs::read(root.join("etc/hostname")).unwrap(), b"bramble\n");
    let shadow = fs::metadata(root.join("etc/shadow")).unwrap();
    assert_eq!(shadow.mode() & 0o7777, 0o640);
    assert_eq!(shadow.mtime(), MTIME as i64);
    let tool = fs::metadata(root.join("usr/bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o755);
    let alias = fs::metadata(root.join("usr/bin/tool-alias")).unwrap();
    assert_eq!(tool.ino(), alias.ino(), "hardlink shares the inode");
    assert_eq!(
        fs::read_link(root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        fs::read_link(root.join("etc/abs")).unwrap(),
        Path::new("/etc/hostname"),
        "absolute symlink targets are kept as they are"
    );
    let link = fs::symlink_metadata(root.join("etc/abs")).unwrap();
    assert_eq!(link.mtime(), MTIME as i64, "symlink mtime (lutimes)");
    assert_eq!(
        fs::read(root.join("implicit/parent/file")).unwrap(),
        b"parents created on the fly"
    );
    let etc = fs::metadata(root.join("etc")).unwrap();
    assert_eq!(etc.mode() & 0o7777, 0o755);
    assert_eq!(etc.mtime(), MTIME as i64, "directory mtime applied last");
    assert_eq!(fs::metadata(root).unwrap().mode() & 0o7777, 0o755);
}

#[test]
fn gzip_zstd_and_plain_layers_unpack_identically() {
    let tar = sample();
    for (blob, c) in [
        (gzip(&tar), Compression::Gzip),
        (zstd(&tar), Compression::Zstd),
        (tar.clone(), Compression::None),
        (gzip(&tar), Compression::Auto),
        (zstd(&tar), Compression::Auto),
        (tar.clone(), Compression::Auto),
    ] {
        let sb = Sandbox::new();
        let stats = unpack(&blob, c, &tar, &sb);
        check_sample(&sb.dest());
        sb.assert_clean(true);
        assert_eq!(stats.diff_id, Some(diff_id(&tar)));
        assert_eq!(stats.uncompressed_bytes, tar.len() as u64);
        assert_eq!(stats.compressed_bytes, blob.len() as u64);
        assert_ne!(stats.compression, Some(Compression::Auto));
        assert_eq!(
            (stats.files, stats.hardlinks, stats.symlinks),
            (4, 1, 2),
            "{c}: {stats:?}"
        );
    }
}

#[test]
fn owners_and_setuid_bits() {
    let mut l = Layer::new();
    let mut h = header("suid", EntryType::Regular, 0o4755);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_size(3);
    h.set_cksum();
    l.header(&h, &b"abc"[..]);
    let mut h = header("sgid-dir", EntryType::Directory, 0o2775);
    h.set_uid(42);
    h.set_gid(43);
    h.set_cksum();
    l.header(&h, &b""[..]);
    let mut h = header("tmp", EntryType::Directory, 0o1777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    l.header(&h, &b""[..]);
    let tar = l.tar();

    let sb = Sandbox::new();
    unpack(&tar, Compression::None, &tar, &sb);
    let m = fs::metadata(sb.dest().join("suid")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!(m.mode() & 0o7777, 0o755, "setuid cleared by default");
    let m = fs::metadata(sb.dest().join("sgid-dir")).unwrap();
    assert_eq!((m.uid(), m.gid()), (42, 43));
    assert_eq!(m.mode() & 0o7777, 0o775, "setgid cleared by default");
    let m = fs::metadata(sb.dest().join("tmp")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o1777, "sticky bit kept");

    let sb = Sandbox::new();
    let opts = UnpackOptions {
        keep_setuid: true,
        ..UnpackOptions::default()
    };
    unpack_layer(
        &tar[..],
        Compression::None,
        &sb.dest(),
        &diff_id(&tar),
        &opts,
    )
    .unwrap();
    let m = fs::metadata(sb.dest().join("suid")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755, "setuid kept on request");
    assert_eq!(
        (m.uid(), m.gid()),
        (1234, 5678),
        "owner applied before chmod"
    );
    let m = fs::metadata(sb.dest().join("sgid-dir")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o2775);

    let sb = Sandbox::new();
    let opts = UnpackOptions {
        apply_owners: false,
        ..UnpackOptions::default()
    };
    unpack_layer(
        &tar[..],
        Compression::None,
        &sb.dest(),
        &diff_id(&tar),
        &opts,
    )
    .unwrap();
    let m = fs::metadata(sb.dest().join("suid")).unwrap();
    assert_eq!(m.uid(), rustix::process::geteuid().as_raw());
}

#[test]
fn devices_are_created_when_allowed() {
    let mut l = Layer::new();
    l.dir("dev");
    let mut h = header("dev/null", EntryType::Char, 0o666);
    h.set_uid(0);
    h.set_gid(0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_cksum();
    l.header(&h, &b""[..]);
    let mut h = header("dev/pipe", EntryType::Fifo, 0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    l.header(&h, &b""[..]);
    let tar = l.tar();
    let sb = Sandbox::new();
    let opts = UnpackOptions {
        allow_devices: true,
        ..UnpackOptions::default()
    };
    let stats = unpack_layer(
        &tar[..],
        Compression::None,
        &sb.dest(),
        &diff_id(&tar),
        &opts,
    )
    .unwrap();
    assert_eq!(stats.devices, 2);
    let m = fs::symlink_metadata(sb.dest().join("dev/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(m.mode() & 0o7777, 0o666);
    let m = fs::symlink_metadata(sb.dest().join("dev/pipe")).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o600);
}

fn opaque(dir: &Path) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 16];
    match rustix::fs::lgetxattr(dir, OVERLAY_OPAQUE_XATTR, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

#[test]
fn whiteouts_and_opaque_dirs_become_overlay_form() {
    let mut l = Layer::new();
    l.dir("etc")
        .file("etc/.wh.motd", b"")
        .file(".wh.gone-dir", b"")
        .dir("var/cache")
        .file("var/cache/.wh..wh..opq", b"")
        .file("var/cache/fresh", b"new")
        .file("lib/.wh..wh..opq", b"")
        .file(".wh..wh..plnk", b"")
        // A file and its whiteout in the same layer: the file wins.
        .file("both", b"kept")
        .file(".wh.both", b"");
    let tar = l.tar();
    let sb = Sandbox::new();
    let stats = unpack(&gzip(&tar), Compression::Gzip, &tar, &sb);
    let root = sb.dest();
    assert_eq!((stats.whiteouts, stats.opaque_dirs), (2, 2), "{stats:?}");
    for wh in ["etc/motd", "gone-dir"] {
        let m = fs::symlink_metadata(root.join(wh)).unwrap();
        assert!(m.file_type().is_char_device(), "{wh} is a char device");
        assert_eq!(m.rdev(), 0, "{wh} is 0/0");
    }
    assert!(
        !root.join("etc/.wh.motd").exists(),
        "the .wh. file itself is not kept"
    );
    assert_eq!(opaque(&root.join("var/cache")), Some(b"y".to_vec()));
    assert_eq!(opaque(&root.join("lib")), Some(b"y".to_vec()));
    assert_eq!(opaque(&root.join("etc")), None);
    assert_eq!(fs::read(root.join("var/cache/fresh")).unwrap(), b"new");
    assert!(!root.join(".wh..wh..plnk").exists());
    assert!(!root.join(".wh..wh..opq").exists());
    assert_eq!(fs::read(root.join("both")).unwrap(), b"kept");
    sb.assert_clean(true);
}

#[test]
fn long_names_duplicates_and_empty_layers() {
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(130));
    let mut l = Layer::new();
    l.raw(long.as_bytes(), EntryType::Regular, 0o644, None, b"long")
        .file("dup", b"first")
        .file("dup", b"second")
        .dir("dir-then-file")
        .file("dir-then-file/child", b"c")
        .file("dir-then-file", b"now a file");
    let tar = l.tar();
    let sb = Sandbox::new();
    unpack(&tar, Compression::None, &tar, &sb);
    let root = sb.dest();
    assert_eq!(fs::read(root.join(&long)).unwrap(), b"long");
    assert_eq!(fs::read(root.join("dup")).unwrap(), b"second");
    assert_eq!(fs::read(root.join("dir-then-file")).unwrap(), b"now a file");

    // An empty layer (just the end-of-archive marker) and an empty stream.
    for tar in [Layer::new().tar(), Vec::new()] {
        let sb = Sandbox::new();
        let stats = unpack(&tar, Compression::Auto, &tar, &sb);
        assert_eq!(stats.entries, 0);
        assert_eq!(fs::read_dir(sb.dest()).unwrap().count(), 0);
        sb.assert_clean(true);
    }
}

#[test]
fn trailing_data_after_the_archive_counts_for_the_diff_id() {
    let mut tar = sample();
    tar.extend_from_slice(&[0u8; 10240]);
    let sb = Sandbox::new();
    let stats = unpack(&gzip(&tar), Compression::Gzip, &tar, &sb);
    assert_eq!(stats.uncompressed_bytes, tar.len() as u64);
    check_sample(&sb.dest());
}
