//! Malicious layers: every one is refused with an error naming the entry, the
//! destination does not exist afterwards, no temporary directory is left, and
//! the canary directory beside the destination is untouched.
//!
//! Attacks that would reach outside the sandbox aim at the canary (by
//! absolute path or through a symlink to `/`) rather than at real system
//! files, so a regression fails the test instead of damaging the machine.

mod unpack_support;

use bramble_images::unpack::{Compression, UnpackError, UnpackOptions, unpack_layer};
use bramble_images::{BlobStore, Digest};
use tar::EntryType;
use unpack_support::{Layer, Sandbox, diff_id, gzip, header, zstd};

/// Unpacks `tar` (uncompressed, correct diff_id) into a fresh sandbox and
/// returns the error, after checking that nothing is left anywhere.
fn refuse(tar: Vec<u8>) -> UnpackError {
    refuse_with(tar, &UnpackOptions::default())
}

fn refuse_with(tar: Vec<u8>, opts: &UnpackOptions) -> UnpackError {
    let sb = Sandbox::new();
    let id = diff_id(&tar);
    let err = unpack_layer(&tar[..], Compression::None, &sb.dest(), &id, opts)
        .expect_err("the layer must be refused");
    sb.assert_clean(false);
    err
}

fn assert_names(err: &UnpackError, entry: &str) {
    assert_eq!(err.entry(), Some(entry), "{err}");
    assert!(
        err.to_string().contains(entry),
        "message names the entry: {err}"
    );
}

#[test]
fn path_traversal_is_refused() {
    for bad in [
        "../x",
        "a/../../x",
        "./../canary/pwned",
        "a/b/../../../canary/pwned",
    ] {
        let mut l = Layer::new();
        l.dir("a").file("ok", b"fine").file(bad, b"pwned");
        let err = refuse(l.tar());
        assert!(
            matches!(err, UnpackError::PathTraversal { .. }),
            "{bad}: {err}"
        );
        assert_names(&err, bad);
    }
    // Also as a directory and as a symlink name.
    let mut l = Layer::new();
    l.dir("../canary/newdir");
    assert!(matches!(refuse(l.tar()), UnpackError::PathTraversal { .. }));
    let mut l = Layer::new();
    l.symlink("../canary/link", "/");
    assert!(matches!(refuse(l.tar()), UnpackError::PathTraversal { .. }));
}

#[test]
fn absolute_path_is_refused() {
    let sb = Sandbox::new();
    let target = format!("{}/pwned", sb.canary_str());
    let mut l = Layer::new();
    l.file("ok", b"fine").file(&target, b"pwned");
    let err = refuse(l.tar());
    assert!(matches!(err, UnpackError::AbsolutePath { .. }), "{err}");
    assert_names(&err, &target);
    sb.assert_clean(false);
}

#[test]
fn symlink_escape_is_refused() {
    // `evil -> /`, then a file "through" it at the canary's absolute path.
    let sb = Sandbox::new();
    let through = format!("evil{}/pwned", sb.canary_str());
    let mut l = Layer::new();
    l.symlink("evil", "/").file(&through, b"pwned");
    let err = refuse(l.tar());
    assert!(
        matches!(&err, UnpackError::SymlinkInPath { component, .. } if component == "evil"),
        "{err}"
    );
    assert_names(&err, &through);
    sb.assert_clean(false);

    // `evil -> <canary>` (absolute), then `evil/pwned`.
    let mut l = Layer::new();
    l.symlink("evil", &sb.canary_str())
        .file("evil/pwned", b"pwned");
    let err = refuse(l.tar());
    assert!(matches!(err, UnpackError::SymlinkInPath { .. }), "{err}");
    sb.assert_clean(false);

    // The same with a directory entry and a symlink through the link.
    let mut l = Layer::new();
    l.symlink("evil", &sb.canary_str()).dir("evil/sub");
    assert!(matches!(refuse(l.tar()), UnpackError::SymlinkInPath { .. }));
    let mut l = Layer::new();
    l.symlink("evil", &sb.canary_str()).symlink("evil/l", "/");
    assert!(matches!(refuse(l.tar()), UnpackError::SymlinkInPath { .. }));
    sb.assert_clean(false);
}

#[test]
fn file_through_a_symlink_to_a_directory_inside_the_root_is_refused() {
    let mut l = Layer::new();
    l.dir("d").symlink("link", "d").file("link/f", b"through");
    let err = refuse(l.tar());
    assert!(
        matches!(&err, UnpackError::SymlinkInPath { component, .. } if component == "link"),
        "{err}"
    );
    assert_names(&err, "link/f");

    // Deeper: a symlinked directory in the middle of the path.
    let mut l = Layer::new();
    l.dir("a/b").symlink("a/l", "b").file("a/l/c/f", b"x");
    let err = refuse(l.tar());
    assert!(
        matches!(&err, UnpackError::SymlinkInPath { component, .. } if component == "a/l"),
        "{err}"
    );
}

#[test]
fn entries_replace_symlinks_instead_of_writing_through_them() {
    // A later regular file, hardlink or directory with the name of a symlink
    // replaces the symlink; it never writes to the symlink's target.
    let sb = Sandbox::new();
    let keep = format!("{}/keep", sb.canary_str());
    let mut l = Layer::new();
    l.symlink("x", &keep)
        .file("x", b"replaced")
        .symlink("y", &keep)
        .file("src", b"linked")
        .hardlink("y", "src")
        .symlink("z", &sb.canary_str())
        .dir("z")
        .file("z/inside", b"in");
    let tar = l.tar();
    let id = diff_id(&tar);
    unpack_layer(
        &tar[..],
        Compression::None,
        &sb.dest(),
        &id,
        &UnpackOptions::default(),
    )
    .unwrap();
    sb.assert_clean(true);
    let d = sb.dest();
    assert_eq!(std::fs::read(d.join("x")).unwrap(), b"replaced");
    assert_eq!(std::fs::read(d.join("y")).unwrap(), b"linked");
    assert!(std::fs::symlink_metadata(d.join("z")).unwrap().is_dir());
    assert_eq!(std::fs::read(d.join("z/inside")).unwrap(), b"in");
}

#[test]
fn parent_that_is_a_file_is_refused() {
    let mut l = Layer::new();
    l.file("f", b"file").file("f/x", b"x");
    let err = refuse(l.tar());
    assert!(
        matches!(err, UnpackError::ParentNotDirectory { .. }),
        "{err}"
    );
    assert_names(&err, "f/x");
}

#[test]
fn hardlink_escape_is_refused() {
    let sb = Sandbox::new();
    let abs_keep = format!("{}/keep", sb.canary_str());
    for target in [
        "../../etc/passwd",
        "../canary/keep",
        "/etc/passwd",
        abs_keep.as_str(),
    ] {
        let mut l = Layer::new();
        l.file("ok", b"fine").hardlink("stolen", target);
        let err = refuse(l.tar());
        assert!(
            matches!(&err, UnpackError::HardlinkEscape { target: t, .. } if t == target),
            "{target}: {err}"
        );
        assert_names(&err, "stolen");
    }
    sb.assert_clean(false);
}

#[test]
fn hardlink_to_a_symlink_missing_or_dir_target_is_refused() {
    let sb = Sandbox::new();
    // A hardlink to a symlink that points outside.
    let mut l = Layer::new();
    l.symlink("s", &format!("{}/keep", sb.canary_str()))
        .hardlink("h", "s");
    let err = refuse(l.tar());
    assert!(
        matches!(&err, UnpackError::HardlinkTarget { reason, .. } if reason.contains("regular")),
        "{err}"
    );
    // Not (yet) unpacked: the target comes later, or never.
    let mut l = Layer::new();
    l.hardlink("h", "later").file("later", b"x");
    let err = refuse(l.tar());
    assert!(matches!(err, UnpackError::HardlinkTarget { .. }), "{err}");
    // A directory, the link itself, a target through a symlink.
    let mut l = Layer::new();
    l.dir("d").hardlink("h", "d");
    assert!(matches!(
        refuse(l.tar()),
        UnpackError::HardlinkTarget { .. }
    ));
    let mut l = Layer::new();
    l.hardlink("h", "h");
    assert!(matches!(
        refuse(l.tar()),
        UnpackError::HardlinkTarget { .. }
    ));
    let mut l = Layer::new();
    l.symlink("evil", &sb.canary_str())
        .hardlink("h", "evil/keep");
    assert!(matches!(refuse(l.tar()), UnpackError::SymlinkInPath { .. }));
    sb.assert_clean(false);
}

#[test]
fn device_nodes_and_fifos_are_refused_by_default() {
    for (kind, name) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "fifo"),
    ] {
        let mut h = header("dev/thing", kind, 0o666);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_cksum();
        let mut l = Layer::new();
        l.dir("dev").header(&h, b"");
        let err = refuse(l.tar());
        assert!(
            matches!(&err, UnpackError::DeviceRefused { kind, .. } if *kind == name),
            "{err}"
        );
        assert_names(&err, "dev/thing");
    }
}

#[test]
fn wrong_diff_id_leaves_nothing() {
    let sb = Sandbox::new();
    let mut l = Layer::new();
    l.dir("etc").file("etc/hostname", b"box\n");
    let tar = l.tar();
    let wrong = Digest::of(b"something else");
    let err = unpack_layer(
        &gzip(&tar)[..],
        Compression::Gzip,
        &sb.dest(),
        &wrong,
        &UnpackOptions::default(),
    )
    .unwrap_err();
    match &err {
        UnpackError::DiffIdMismatch {
            expected,
            actual,
            len,
        } => {
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &diff_id(&tar));
            assert_eq!(*len, tar.len() as u64);
        }
        other => panic!("expected a diff_id mismatch, got {other}"),
    }
    sb.assert_clean(false);
}

fn big_layer() -> Vec<u8> {
    let mut l = Layer::new();
    l.dir("data");
    for i in 0..40 {
        let body: Vec<u8> = (0..20_000u32)
            .map(|j| (j.wrapping_mul(31) ^ i) as u8)
            .collect();
        l.file(&format!("data/f{i}"), &body);
    }
    l.tar()
}

#[test]
fn truncated_streams_leave_nothing() {
    let tar = big_layer();
    let id = diff_id(&tar);
    let cases: Vec<(&str, Vec<u8>, Compression)> = vec![
        ("gzip", gzip(&tar), Compression::Gzip),
        ("zstd", zstd(&tar), Compression::Zstd),
        ("tar", tar.clone(), Compression::None),
        (
            "tar, cut at a header boundary",
            tar[..512 * 3].to_vec(),
            Compression::None,
        ),
    ];
    for (what, blob, c) in cases {
        for cut in [blob.len() / 3, blob.len() / 2, blob.len() - 7] {
            let sb = Sandbox::new();
            let short = &blob[..cut.min(blob.len())];
            let r = unpack_layer(short, c, &sb.dest(), &id, &UnpackOptions::default());
            assert!(r.is_err(), "{what} cut at {cut} must fail");
            sb.assert_clean(false);
        }
        // The same with auto-detection.
        let sb = Sandbox::new();
        let r = unpack_layer(
            &blob[..blob.len() / 2],
            Compression::Auto,
            &sb.dest(),
            &id,
            &UnpackOptions::default(),
        );
        assert!(r.is_err(), "{what} (auto) must fail");
        sb.assert_clean(false);
    }
}

#[test]
fn corrupt_blob_is_reported_and_leaves_nothing() {
    let sb = Sandbox::new();
    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(store_dir.path()).unwrap();
    let tar = big_layer();
    let blob = gzip(&tar);
    let d = store.put_bytes(&blob, None).unwrap();
    // Corrupt the stored blob so that only its digest can tell: append an
    // empty gzip member. It still decompresses to the same tar (same
    // diff_id), but no longer hashes to `d`.
    let mut bad = blob.clone();
    bad.extend(gzip(b""));
    std::fs::write(store.path(&d), &bad).unwrap();
    let err = unpack_layer(
        store.open_verified(&d).unwrap(),
        Compression::Gzip,
        &sb.dest(),
        &diff_id(&tar),
        &UnpackOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, UnpackError::BlobDigestMismatch { actual } if *actual == Digest::of(&bad)),
        "{err}"
    );
    sb.assert_clean(false);
}

#[test]
fn size_limit_is_enforced() {
    let tar = big_layer();
    let opts = UnpackOptions {
        max_uncompressed_bytes: Some(100_000),
        ..UnpackOptions::default()
    };
    let sb = Sandbox::new();
    let err = unpack_layer(
        &gzip(&tar)[..],
        Compression::Gzip,
        &sb.dest(),
        &diff_id(&tar),
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(err, UnpackError::TooLarge { limit: 100_000 }),
        "{err}"
    );
    sb.assert_clean(false);
}

#[test]
fn odd_names_are_refused_or_handled() {
    // A whiteout of `..` would delete the parent in overlay form.
    let mut l = Layer::new();
    l.file("a/.wh...", b"");
    let err = refuse(l.tar());
    assert!(matches!(err, UnpackError::InvalidPath { .. }), "{err}");
    // A non-directory naming the root.
    let mut l = Layer::new();
    l.file("./", b"x");
    assert!(matches!(refuse(l.tar()), UnpackError::InvalidPath { .. }));
    // An unknown entry type.
    let mut l = Layer::new();
    l.raw(b"weird", EntryType::new(b'Z'), 0o644, None, b"");
    let err = refuse(l.tar());
    assert!(
        matches!(err, UnpackError::UnsupportedEntryType { .. }),
        "{err}"
    );
    // Garbage instead of a tar stream.
    let err = refuse(vec![0x42; 4096]);
    assert!(matches!(err, UnpackError::Stream { .. }), "{err}");
}

#[test]
fn existing_destination_is_not_touched() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.dest()).unwrap();
    std::fs::write(sb.dest().join("mine"), b"mine").unwrap();
    let mut l = Layer::new();
    l.file("x", b"x");
    let tar = l.tar();
    let err = unpack_layer(
        &tar[..],
        Compression::None,
        &sb.dest(),
        &diff_id(&tar),
        &UnpackOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, UnpackError::DestinationExists(_)), "{err}");
    assert_eq!(std::fs::read(sb.dest().join("mine")).unwrap(), b"mine");
    assert!(!sb.dest().join("x").exists());
    sb.assert_clean(true);
}
