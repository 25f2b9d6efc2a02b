//! Real overlayfs mounts (root): layers unpacked by the layer cache, stacked
//! into a container rootfs where an upper layer's whiteouts hide lower files.
//! Every mount is undone by a guard, also when an assertion fails.

mod unpack_support;

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use bramble_images::rootfs::{self, Rootfs, RootfsError};
use bramble_images::unpack::Compression;
use bramble_images::{BlobStore, Digest, LayerStore};
use unpack_support::{Layer, gzip, zstd};

/// Unmounts on drop, whatever happened.
struct Mounted(Rootfs);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.0.unmount() {
            eprintln!("guard: unmount {}: {e}", self.0.path().display());
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Two layers through the real cache: lower (bottom) and upper (top).
fn two_layers(tmp: &Path) -> (PathBuf, PathBuf) {
    let blobs = BlobStore::open(tmp.join("blobs")).unwrap();
    let layers = LayerStore::open(tmp.join("agent")).unwrap();
    let mut lower = Layer::new();
    lower
        .file("a.txt", b"lower a")
        .file("keep.txt", b"lower keep")
        .dir("d")
        .file("d/x", b"lower x")
        .file("gone/sub/file", b"lower gone")
        .file("shadowed", b"lower version");
    let mut upper = Layer::new();
    upper
        .file(".wh.a.txt", b"")
        .dir("d")
        .file("d/.wh..wh..opq", b"")
        .file("d/y", b"upper y")
        .file(".wh.gone", b"")
        .file("new.txt", b"upper new")
        .file("shadowed", b"upper version");
    let (lower, upper) = (lower.tar(), upper.tar());
    let mut out = Vec::new();
    for (tar, blob) in [(&lower, gzip(&lower)), (&upper, zstd(&upper))] {
        let d = blobs.put_bytes(&blob, None).unwrap();
        let diff_id = Digest::of(tar);
        out.push(
            layers
                .ensure(&blobs, &d, Compression::Auto, &diff_id)
                .unwrap(),
        );
    }
    (out[0].clone(), out[1].clone())
}

fn check_merged(root: &Path) {
    assert!(
        fs::symlink_metadata(root.join("a.txt")).is_err(),
        "the upper whiteout hides a.txt"
    );
    assert!(
        fs::symlink_metadata(root.join("gone")).is_err(),
        "a whiteout hides a whole directory"
    );
    assert_eq!(fs::read(root.join("keep.txt")).unwrap(), b"lower keep");
    assert_eq!(names(&root.join("d")), ["y"], "opaque d hides lower d/x");
    assert_eq!(fs::read(root.join("new.txt")).unwrap(), b"upper new");
    assert_eq!(fs::read(root.join("shadowed")).unwrap(), b"upper version");
    assert_eq!(
        names(root),
        ["d", "keep.txt", "new.txt", "shadowed"],
        "no whiteout devices are visible"
    );
}

#[test]
fn upper_whiteout_hides_lower_file_in_a_writable_rootfs() {
    bramble_tests::require_root("overlayfs mounts");
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = two_layers(tmp.path());
    let dir = tmp.path().join("containers/c1");
    let started = std::time::Instant::now();
    let rootfs = Rootfs::prepare(&[&lower, &upper], &dir, false).unwrap();
    eprintln!("prepare: {:?}", started.elapsed());
    let guard = Mounted(rootfs.clone());
    let root = rootfs.path();
    assert!(rootfs::is_mount_point(&root).unwrap());
    check_merged(&root);

    // Writes land in the container's upper dir; the cached layers stay as they were.
    fs::write(root.join("written"), b"by the container").unwrap();
    fs::remove_file(root.join("keep.txt")).unwrap();
    let up = rootfs.upper().unwrap();
    assert_eq!(fs::read(up.join("written")).unwrap(), b"by the container");
    assert!(
        fs::symlink_metadata(up.join("keep.txt"))
            .unwrap()
            .file_type()
            .is_char_device(),
        "deleting a lower file makes a whiteout in the upper dir"
    );
    assert_eq!(fs::read(lower.join("keep.txt")).unwrap(), b"lower keep");
    assert!(!upper.join("written").exists());

    // A second prepare on the same dir is refused while mounted.
    let err = Rootfs::prepare(&[&lower, &upper], &dir, false).unwrap_err();
    assert!(matches!(err, RootfsError::AlreadyMounted(_)), "{err}");

    drop(guard);
    assert!(!rootfs::is_mount_point(&root).unwrap());
    rootfs.remove().unwrap();
    assert!(!dir.exists());
    assert_eq!(fs::read(lower.join("keep.txt")).unwrap(), b"lower keep");
}

#[test]
fn read_only_rootfs_has_no_upper_and_refuses_writes() {
    bramble_tests::require_root("overlayfs mounts");
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = two_layers(tmp.path());
    let dir = tmp.path().join("containers/ro");
    let rootfs = Rootfs::prepare(&[&lower, &upper], &dir, true).unwrap();
    let _guard = Mounted(rootfs.clone());
    check_merged(&rootfs.path());
    assert!(rootfs.upper().is_none());
    assert!(!dir.join("upper").exists() && !dir.join("work").exists());
    let err = fs::write(rootfs.path().join("nope"), b"x").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::ROFS.raw_os_error())
    );
}

#[test]
fn single_layer_and_empty_rootfs() {
    bramble_tests::require_root("overlayfs mounts");
    let tmp = tempfile::tempdir().unwrap();
    let (lower, _) = two_layers(tmp.path());
    // One layer read-only: padded with an empty bottom layer.
    let one = Rootfs::prepare(&[&lower], tmp.path().join("c-one"), true).unwrap();
    let _g1 = Mounted(one.clone());
    assert_eq!(fs::read(one.path().join("a.txt")).unwrap(), b"lower a");
    // No layers at all (an image with no layers), writable.
    let none: [&Path; 0] = [];
    let empty = Rootfs::prepare(&none, tmp.path().join("c-empty"), false).unwrap();
    let _g2 = Mounted(empty.clone());
    assert!(names(&empty.path()).is_empty());
    fs::write(empty.path().join("f"), b"ok").unwrap();
}

#[test]
fn many_long_layer_paths_use_the_new_mount_api() {
    bramble_tests::require_root("overlayfs mounts");
    let tmp = tempfile::tempdir().unwrap();
    let mut layers = Vec::new();
    for i in 0..70 {
        let l = tmp.path().join(format!("{}-{i:03}", "layer".repeat(16)));
        fs::create_dir(&l).unwrap();
        fs::write(l.join("which"), format!("{i}")).unwrap();
        fs::write(l.join(format!("only-{i}")), b"").unwrap();
        layers.push(l);
    }
    let opts = rootfs::overlay_options(&layers, None);
    assert!(
        opts.len() > 4096,
        "too long for mount(2): {} bytes",
        opts.len()
    );
    let rootfs = Rootfs::prepare(&layers, tmp.path().join("c-many"), false).unwrap();
    let _guard = Mounted(rootfs.clone());
    // The last layer given is the top one.
    assert_eq!(
        fs::read_to_string(rootfs.path().join("which")).unwrap(),
        "69"
    );
    assert_eq!(names(&rootfs.path()).len(), 71);
}

#[test]
fn missing_layers_and_cleanup_after_restart() {
    bramble_tests::require_root("overlayfs mounts");
    let tmp = tempfile::tempdir().unwrap();
    let err = Rootfs::prepare(&[tmp.path().join("nope")], tmp.path().join("c"), false).unwrap_err();
    assert!(matches!(err, RootfsError::MissingLayer(_)), "{err}");

    // A rootfs left mounted by a previous agent process is cleaned up by dir.
    let (lower, upper) = two_layers(tmp.path());
    let dir = tmp.path().join("containers/left");
    let rootfs = Rootfs::prepare(&[&lower, &upper], &dir, false).unwrap();
    let guard = Mounted(rootfs.clone());
    rootfs::cleanup(&dir).unwrap();
    assert!(!dir.exists());
    assert_eq!(fs::read(lower.join("keep.txt")).unwrap(), b"lower keep");
    drop(guard);
    // Cleaning what is not there is fine.
    rootfs::cleanup(&dir).unwrap();
    let e = fs::metadata(&dir).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}
