//! Registry pull benchmark: prints figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-hub --bench registry_bench`:
//! - imports a 200 MB, 4-layer OCI archive into a blob store and pushes it to a
//!   `bramble-hub` process (what `bramble images import` does);
//! - pushes a 200 MB blob, then downloads it on loopback with plain `curl` (to a
//!   file) and with Bramble's registry client (to a node blob store: written,
//!   verified, fsynced), and prints both throughputs.
//!
//! `BENCH_QUICK=1` uses 20 MB and one download of each kind instead of the best of 3.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bramble_images::{BlobStore, Digest, PullOptions, RegistryClient};
use bramble_tests::HubProcess;

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Fast pseudo-random bytes (incompressible enough for gzip).
fn noise(size: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; size];
    let mut x = 0x9e3779b97f4a7c15u64 ^ seed;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    out
}

fn bench_import(hub: &HubProcess, dir: &Path, size: usize) {
    let per_layer = size / 4;
    let files: Vec<Vec<u8>> = (0..4).map(|i| noise(per_layer, i)).collect();
    let layers: Vec<bramble_tests::fixtures::PlatformImage> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let path = format!("data/{i}");
            bramble_tests::fixtures::platform_image(
                "linux/amd64",
                &[(path.as_str(), f.as_slice(), 0o644)],
                &["/x"],
            )
        })
        .collect();
    // One image whose manifest stacks the four layers.
    let mut img = layers[0].clone();
    img.layers = layers.iter().map(|l| l.layers[0].clone()).collect();
    let diff_ids: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            bramble_tests::fixtures::layer(&[(format!("data/{i}").as_str(), f.as_slice(), 0o644)]).1
        })
        .collect();
    let cfg = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/x"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    img.config.bytes = serde_json::to_vec(&cfg).unwrap();
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": img.config.descriptor(), "layers": img.layers.iter().map(|l| l.descriptor()).collect::<Vec<_>>()});
    img.manifest.bytes = serde_json::to_vec(&manifest).unwrap();
    let multi = bramble_tests::fixtures::MultiImage::new(vec![img]);
    let archive = dir.join("import.tar");
    multi.write_archive(&archive, "bench:1").unwrap();
    let archive_size = std::fs::metadata(&archive).unwrap().len();

    let store = BlobStore::open(dir.join("import-store")).unwrap();
    let t = Instant::now();
    let report = bramble_images::import(&store, &archive, |_| {}).unwrap();
    let import = t.elapsed();
    let client = RegistryClient::new(&hub.url, Some(&hub.token))
        .with_tls(bramble_tests::tls_trusting(&hub.ca_pem()));
    let t = Instant::now();
    client
        .push_image(
            &store,
            &report.images[0].digest,
            "bench/import",
            "1",
            &|_, _| {},
        )
        .unwrap();
    let push = t.elapsed();
    println!(
        "== import: {:.0} MB OCI archive, 4 gzip layers",
        archive_size as f64 / 1e6
    );
    println!(
        "  import into a blob store (verified, fsynced): {:.0} MB/s",
        mb_s(archive_size, import)
    );
    println!(
        "  push to the hub (blobs streamed from disk):   {:.0} MB/s",
        mb_s(archive_size, push)
    );
}

fn main() {
    let size: usize = bramble_tests::bench::pick(200 << 20, 20 << 20);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let hub = HubProcess::start(
        Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        &dir.path().join("hub"),
    );
    bench_import(&hub, dir.path(), size);
    let blob = noise(size, 99);
    let digest = Digest::of(&blob);
    let agent = bramble_tests::agent_trusting(&hub.ca_pem(), std::time::Duration::from_secs(600));
    let started = Instant::now();
    agent
        .post(format!(
            "{}/v2/bench/blobs/uploads/?digest={digest}",
            hub.url
        ))
        .header("Authorization", format!("Bearer {}", hub.token))
        .send(&blob[..])
        .unwrap();
    let push = started.elapsed();
    drop(blob);
    println!("== registry: {} MB blob", size >> 20);
    println!(
        "  push (monolithic POST, verified, fsynced): {:.0} MB/s",
        mb_s(size as u64, push)
    );

    let url = format!("{}/v2/bench/blobs/{digest}", hub.url);
    let runs = bramble_tests::bench::pick(3, 1);
    let mut curl = Vec::new();
    let mut curl_synced = Vec::new();
    let mut ours = Vec::new();
    for i in 0..runs {
        let out = dir.path().join(format!("curl-{i}"));
        let t = Instant::now();
        let status = Command::new("curl")
            .args(["-sS", "--fail", "--cacert"])
            .arg(hub.data_dir.join("ca.crt"))
            .arg("-o")
            .arg(&out)
            .args(["-H", &format!("Authorization: Bearer {}", hub.token), &url])
            .status()
            .expect("curl is installed");
        assert!(status.success(), "curl failed");
        curl.push(t.elapsed());
        // The same download made durable, as the blob store makes every blob.
        std::fs::File::open(&out).unwrap().sync_all().unwrap();
        curl_synced.push(t.elapsed());
        std::fs::remove_file(&out).unwrap();

        let store = BlobStore::open(dir.path().join(format!("node-{i}"))).unwrap();
        let client = RegistryClient::new(&hub.url, Some(&hub.token))
            .with_tls(bramble_tests::tls_trusting(&hub.ca_pem()));
        let t = Instant::now();
        client
            .fetch_blob(
                "bench",
                &digest,
                Some(size as u64),
                &store,
                &PullOptions::default(),
            )
            .unwrap();
        ours.push(t.elapsed());
        std::fs::remove_dir_all(store.root()).unwrap();
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let (c, o) = (best(&curl), best(&ours));
    println!(
        "  curl -o FILE (best of {runs}):            {:.0} MB/s",
        mb_s(size as u64, c)
    );
    println!(
        "  bramble client -> blob store (best of {runs}): {:.0} MB/s (verified + fsynced)",
        mb_s(size as u64, o)
    );
    let cs = best(&curl_synced);
    println!(
        "  curl -o FILE + fsync (best of {runs}):     {:.0} MB/s",
        mb_s(size as u64, cs)
    );
    println!(
        "  client / curl: {:.0}%   client / (curl + fsync): {:.0}%",
        100.0 * c.as_secs_f64() / o.as_secs_f64(),
        100.0 * cs.as_secs_f64() / o.as_secs_f64()
    );
}
