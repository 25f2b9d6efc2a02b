//! The per-diff_id layer cache: unpack once and reuse, concurrent callers,
//! corrupt and missing blobs, crash leftovers, removal.

mod unpack_support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Barrier};

use bramble_images::unpack::{Compression, UnpackError};
use bramble_images::{BlobError, BlobStore, Digest, LayerError, LayerStore};
use unpack_support::{Layer, gzip, zstd};

struct Fixture {
    _tmp: tempfile::TempDir,
    blobs: BlobStore,
    layers: LayerStore,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(tmp.path().join("blobs")).unwrap();
    let layers = LayerStore::open(tmp.path().join("agent")).unwrap();
    Fixture {
        _tmp: tmp,
        blobs,
        layers,
    }
}

fn layer(tag: &str) -> Vec<u8> {
    let mut l = Layer::new();
    l.dir("app").file("app/tag", tag.as_bytes());
    for i in 0..50 {
        l.file(
            &format!("app/f{i}"),
            format!("{tag}-{i}").repeat(200).as_bytes(),
        );
    }
    l.tar()
}

#[test]
fn ensure_unpacks_once_and_reuses() {
    let f = fixture();
    let tar = layer("one");
    let diff_id = Digest::of(&tar);
    let blob = f.blobs.put_bytes(&gzip(&tar), None).unwrap();
    assert!(!f.layers.has(&diff_id));

    let (path, stats) = f
        .layers
        .ensure_with_stats(&f.blobs, &blob, Compression::Gzip, &diff_id)
        .unwrap();
    assert!(stats.is_some(), "first call unpacks");
    assert_eq!(path, f.layers.path(&diff_id));
    assert!(path.ends_with(format!("layers/sha256/{}", diff_id.hex())));
    assert_eq!(fs::read(path.join("app/tag")).unwrap(), b"one");
    let ino = fs::metadata(&path).unwrap().ino();

    // A second image sharing the layer (even with another blob encoding).
    let zblob = f.blobs.put_bytes(&zstd(&tar), None).unwrap();
    let (again, stats) = f
        .layers
        .ensure_with_stats(&f.blobs, &zblob, Compression::Zstd, &diff_id)
        .unwrap();
    assert!(stats.is_none(), "second call reuses the cached layer");
    assert_eq!(again, path);
    assert_eq!(fs::metadata(&path).unwrap().ino(), ino);
    assert!(f.layers.has(&diff_id));
    assert_eq!(f.layers.list().unwrap(), vec![diff_id.clone()]);

    assert!(f.layers.remove(&diff_id).unwrap());
    assert!(!f.layers.remove(&diff_id).unwrap());
    assert!(!f.layers.has(&diff_id));
    assert!(f.layers.list().unwrap().is_empty());
    let dir = f.layers.root().join("layers/sha256");
    assert_eq!(fs::read_dir(dir).unwrap().count(), 0, "no leftovers");
}

#[test]
fn concurrent_ensure_of_one_layer_unpacks_once() {
    let f = fixture();
    let tar = layer("shared");
    let diff_id = Digest::of(&tar);
    let blob = f.blobs.put_bytes(&gzip(&tar), None).unwrap();
    let n = 4;
    let barrier = Arc::new(Barrier::new(n));
    let results: Vec<_> = std::thread::scope(|s| {
        // Spawn all first (collect), then join: the barrier needs all of them.
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (layers, blobs, blob, diff_id, barrier) =
                    (&f.layers, &f.blobs, &blob, &diff_id, barrier.clone());
                s.spawn(move || {
                    barrier.wait();
                    layers.ensure_with_stats(blobs, blob, Compression::Auto, diff_id)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unpacked = 0;
    for r in results {
        let (p, stats) = r.unwrap();
        assert_eq!(p, f.layers.path(&diff_id));
        unpacked += usize::from(stats.is_some());
    }
    assert_eq!(unpacked, 1, "exactly one caller unpacked");
    // Also across processes' worth of handles: a second store on the same root.
    let other = LayerStore::open(f.layers.root()).unwrap();
    assert!(other.has(&diff_id));
    let dir = f.layers.root().join("layers/sha256");
    assert_eq!(fs::read_dir(dir).unwrap().count(), 1, "just the layer");
}

#[test]
fn corrupt_or_missing_blobs_leave_nothing() {
    let f = fixture();
    let tar = layer("bad");
    let diff_id = Digest::of(&tar);
    let blob = f.blobs.put_bytes(&gzip(&tar), None).unwrap();
    // Append an empty gzip member: same tar, different blob digest.
    let mut bad = gzip(&tar);
    bad.extend(gzip(b""));
    fs::write(f.blobs.path(&blob), &bad).unwrap();
    let err = f
        .layers
        .ensure(&f.blobs, &blob, Compression::Gzip, &diff_id)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            LayerError::Unpack {
                source: UnpackError::BlobDigestMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&blob.to_string()), "{err}");
    assert!(!f.layers.has(&diff_id));

    let missing = Digest::of(b"never stored");
    let err = f
        .layers
        .ensure(&f.blobs, &missing, Compression::Gzip, &diff_id)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            LayerError::Blob {
                source: BlobError::NotFound(_),
                ..
            }
        ),
        "{err}"
    );

    // Wrong diff_id for a good blob.
    let good = f.blobs.put_bytes(&zstd(&tar), None).unwrap();
    let wrong = Digest::of(b"not this layer");
    let err = f
        .layers
        .ensure(&f.blobs, &good, Compression::Zstd, &wrong)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            LayerError::Unpack {
                source: UnpackError::DiffIdMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!f.layers.has(&wrong));
    let dir = f.layers.root().join("layers/sha256");
    assert_eq!(fs::read_dir(dir).unwrap().count(), 0, "no leftovers");
}

#[test]
fn crash_leftovers_are_cleaned_on_open() {
    let f = fixture();
    let dir = f.layers.root().join("layers/sha256");
    let hex = Digest::of(b"x").hex().to_string();
    let tmp = dir.join(format!("{hex}.tmp-123-0-0"));
    fs::create_dir_all(tmp.join("half/written")).unwrap();
    fs::write(tmp.join("half/written/file"), b"partial").unwrap();
    let doomed = dir.join(format!("{hex}.tmp-rm-99"));
    fs::create_dir_all(&doomed).unwrap();
    let unrelated = dir.join("not-a-layer");
    fs::create_dir_all(&unrelated).unwrap();

    let store = LayerStore::open(f.layers.root()).unwrap();
    assert!(!tmp.exists());
    assert!(!doomed.exists());
    assert!(unrelated.exists(), "only leftovers of unpacks are removed");
    assert!(store.list().unwrap().is_empty());
}
