//! Layer unpack throughput and rootfs preparation time.
//!
//! Generates a multi-layer image (gzip layers of many files of mixed sizes
//! and compressibility, ~200 MB uncompressed; `BENCH_QUICK=1`: ~8 MB), stores
//! the blobs in a [`BlobStore`], unpacks every layer through
//! [`LayerStore::ensure`] (blob digest verified, diff_id checked, `syncfs`),
//! then times preparing a container rootfs from the cached layers with
//! overlayfs (one mount, nothing copied) and tearing it down.
//!
//! Prints figures; asserts nothing about time. Needs root (overlayfs).
//! Run: `cargo bench -p bramble-images --bench unpack_bench`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bramble_images::digest::HashingWriter;
use bramble_images::rootfs::Rootfs;
use bramble_images::unpack::{Compression, UnpackOptions};
use bramble_images::{BlobStore, Digest, LayerStore};

/// A small, fast, deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "container",
    "layer",
    "overlay",
    "bramble",
    "agent",
    "hub",
    "pod",
    "image",
    "digest",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "on",
    "with",
    "config",
    "return",
    "fn",
    "let",
    "mut",
    "struct",
    "impl",
    "error",
    "value",
    "#include",
    "static",
    "int",
];

/// File content: text-like (compresses ~3-4x) or binary-like (barely).
fn content(rng: &mut Rng, size: usize, out: &mut Vec<u8>) {
    out.clear();
    if rng.below(10) < 6 {
        while out.len() < size {
            out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
            out.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
        }
        out.truncate(size);
    } else {
        while out.len() < size {
            let v = rng.next();
            // Some runs of zeros, as in real binaries.
            if v & 0xf == 0 {
                out.extend_from_slice(&[0u8; 64]);
            } else {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out.truncate(size);
    }
}

fn file_size(rng: &mut Rng) -> usize {
    // Roughly like a distribution image: mostly small files, a few big ones.
    match rng.below(100) {
        0..85 => 100 + rng.below(8 * 1024) as usize,
        85..99 => 16 * 1024 + rng.below(112 * 1024) as usize,
        _ => 1024 * 1024 + rng.below(3 * 1024 * 1024) as usize,
    }
}

struct BuiltLayer {
    blob: Digest,
    diff_id: Digest,
    tar_bytes: u64,
    blob_bytes: u64,
    files: u64,
}

/// Streams a gzip tar layer of about `target` bytes straight into the store.
fn build_layer(store: &BlobStore, rng: &mut Rng, index: usize, target: u64) -> BuiltLayer {
    let blob_writer = store.writer().unwrap();
    let gz = flate2::write::GzEncoder::new(blob_writer, flate2::Compression::fast());
    let mut tar = tar::Builder::new(HashingWriter::new(gz));
    let mut buf = Vec::new();
    let mut files = 0u64;
    let mut written = 0u64;
    while written < target {
        let dir = format!("layer{index}/d{:02}/s{}", rng.below(40), rng.below(4));
        let name = format!("{dir}/file{files}.dat");
        let size = file_size(rng);
        content(rng, size, &mut buf);
        let mut h = tar::Header::new_gnu();
        h.set_size(size as u64);
        h.set_mode(if rng.below(5) == 0 { 0o755 } else { 0o644 });
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, &name, buf.as_slice()).unwrap();
        files += 1;
        written += size as u64;
        if files.is_multiple_of(200) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            tar.append_link(&mut h, format!("{dir}/link{files}"), "/usr/lib/target")
                .unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            h.set_mode(0o644);
            tar.append_link(&mut h, format!("{dir}/hard{files}"), &name)
                .unwrap();
        }
    }
    let hashing = tar.into_inner().unwrap();
    let (gz, diff_id, tar_bytes) = hashing.into_parts();
    let mut blob_writer = gz.finish().unwrap();
    blob_writer.flush().unwrap();
    let blob_bytes = blob_writer.len();
    let blob = blob_writer.commit(None).unwrap();
    BuiltLayer {
        blob,
        diff_id,
        tar_bytes,
        blob_bytes,
        files,
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.2} ms, p90 {:.2} ms, min {:.2} ms, max {:.2} ms over {}",
        ms(p(0.5)),
        ms(p(0.9)),
        ms(v[0]),
        ms(v[v.len() - 1]),
        v.len()
    )
}

fn main() {
    // As bramble_tests::bench::quick (this crate does not depend on it).
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let (layers_n, per_layer, mounts) = if quick {
        (2, 4_000_000u64, 5)
    } else {
        (4, 50_000_000u64, 30)
    };
    let tmp = tempfile::Builder::new()
        .prefix("bramble-unpack-bench")
        .tempdir()
        .unwrap();
    let blobs = BlobStore::open(tmp.path().join("blobs")).unwrap();
    let store = LayerStore::open(tmp.path().join("agent")).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    let t = Instant::now();
    let built: Vec<BuiltLayer> = (0..layers_n)
        .map(|i| build_layer(&blobs, &mut rng, i, per_layer))
        .collect();
    let tar_total: u64 = built.iter().map(|l| l.tar_bytes).sum();
    let blob_total: u64 = built.iter().map(|l| l.blob_bytes).sum();
    let files_total: u64 = built.iter().map(|l| l.files).sum();
    println!(
        "unpack_bench{}: {} gzip layers, {:.1} MB uncompressed, {:.1} MB compressed, {} files",
        if quick { " (quick)" } else { "" },
        layers_n,
        mb(tar_total),
        mb(blob_total),
        files_total
    );
    println!(
        "  generating + compressing the image: {:.1} s (not part of the figures)",
        t.elapsed().as_secs_f64()
    );

    // Unpack every layer through the cache, as the agent does.
    let mut dirs: Vec<PathBuf> = Vec::new();
    let t_all = Instant::now();
    for (i, l) in built.iter().enumerate() {
        let t = Instant::now();
        let (dir, stats) = store
            .ensure_with_stats(&blobs, &l.blob, Compression::Gzip, &l.diff_id)
            .unwrap();
        let dt = t.elapsed().as_secs_f64();
        let stats = stats.expect("first ensure unpacks");
        println!(
            "  layer {i}: {:.1} MB in {:.2} s = {:.0} MB/s uncompressed ({:.0} MB/s of gzip), {} files",
            mb(stats.uncompressed_bytes),
            dt,
            mb(stats.uncompressed_bytes) / dt,
            mb(stats.compressed_bytes) / dt,
            stats.files
        );
        dirs.push(dir);
    }
    let dt = t_all.elapsed().as_secs_f64();
    println!(
        "  unpack total (verify blob + diff_id, safe fd-relative writes, syncfs): {:.1} MB in {:.2} s = {:.0} MB/s, {:.0} files/s",
        mb(tar_total),
        dt,
        mb(tar_total) / dt,
        files_total as f64 / dt
    );

    // Where the time goes: the same layers without syncfs, and the stream
    // alone (gunzip + sha256, nothing written).
    let nosync = LayerStore::open_with(
        tmp.path().join("agent-nosync"),
        UnpackOptions {
            sync: false,
            ..UnpackOptions::default()
        },
    )
    .unwrap();
    let t = Instant::now();
    for l in &built {
        nosync
            .ensure(&blobs, &l.blob, Compression::Gzip, &l.diff_id)
            .unwrap();
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "  unpack total without syncfs: {:.2} s = {:.0} MB/s",
        dt,
        mb(tar_total) / dt
    );
    let t = Instant::now();
    for l in &built {
        let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(
            128 * 1024,
            blobs.open_blob(&l.blob).unwrap(),
        ));
        let (d, _) = Digest::of_reader(gz).unwrap();
        assert_eq!(d, l.diff_id);
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "  stream only (gunzip + sha256, no files): {:.2} s = {:.0} MB/s",
        dt,
        mb(tar_total) / dt
    );

    let t = Instant::now();
    for l in &built {
        let (_, stats) = store
            .ensure_with_stats(&blobs, &l.blob, Compression::Gzip, &l.diff_id)
            .unwrap();
        assert!(stats.is_none());
    }
    println!(
        "  ensure of {layers_n} cached layers: {:.3} ms",
        ms(t.elapsed())
    );

    // Rootfs from the cached layers: one overlay mount, nothing copied.
    for read_only in [false, true] {
        let mut prepare = Vec::new();
        let mut teardown = Vec::new();
        for i in 0..mounts {
            let dir = tmp.path().join(format!("containers/c{read_only}{i}"));
            let t = Instant::now();
            let rootfs = Rootfs::prepare(&dirs, &dir, read_only).unwrap();
            prepare.push(t.elapsed());
            let t = Instant::now();
            rootfs.remove().unwrap();
            teardown.push(t.elapsed());
        }
        let kind = if read_only { "read-only" } else { "writable" };
        println!(
            "  rootfs prepare ({kind}, {layers_n} lower layers, overlayfs): {}",
            summary(prepare)
        );
        println!("  rootfs unmount + remove ({kind}): {}", summary(teardown));
    }
}
