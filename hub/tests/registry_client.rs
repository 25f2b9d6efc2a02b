//! The registry client (used by agents) against a real hub: platform selection
//! from a multi-arch index, cached layers never fetched twice, a transfer
//! broken mid-blob resumed with a Range request, and one blob fetched by
//! several threads at once stored whole.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bramble_images::{BlobStore, ClientError, Platform, PullOptions, RegistryClient};
use bramble_tests::fixtures::{self, MultiImage, platform_image};
use bramble_tests::{HubProcess, tls_trusting};

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn image() -> MultiImage {
    let (a, b, c) = (noise(300_000, 1), noise(300_000, 2), noise(300_000, 3));
    MultiImage::new(vec![
        platform_image("linux/amd64", &[("data", &a, 0o644)], &["/data"]),
        platform_image("linux/arm64", &[("data", &b, 0o644)], &["/data"]),
        platform_image("linux/arm/v7", &[("data", &c, 0o644)], &["/data"]),
    ])
}

fn start() -> (tempfile::TempDir, HubProcess, MultiImage) {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(
        Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        &dir.path().join("hub"),
    );
    let img = image();
    fixtures::push(&hub.url, &hub.token, &hub.ca_pem(), "demo/multi", "1", &img).unwrap();
    (dir, hub, img)
}

#[test]
fn pulls_the_right_manifest_for_each_platform_and_caches_layers() {
    let (dir, hub, img) = start();
    let client =
        RegistryClient::new(&hub.url, Some(&hub.token)).with_tls(tls_trusting(&hub.ca_pem()));
    for (platform, i) in [("linux/amd64", 0), ("linux/arm64", 1), ("linux/arm/v7", 2)] {
        let store = BlobStore::open(dir.path().join(format!("node-{i}"))).unwrap();
        let want: Platform = platform.parse().unwrap();
        let pulled = client
            .pull("demo/multi", "1", &want, &store, &PullOptions::default())
            .unwrap();
        let expect = &img.images[i];
        assert_eq!(
            pulled.manifest_digest.to_string(),
            expect.manifest.digest(),
            "{platform}"
        );
        assert_eq!(
            pulled.index_digest.as_ref().map(|d| d.to_string()),
            Some(img.index.digest())
        );
        let layer: bramble_images::Digest = expect.layers[0].digest().parse().unwrap();
        assert_eq!(store.read(&layer).unwrap(), expect.layers[0].bytes);
        assert!(
            pulled.downloaded > 300_000,
            "{platform}: {}",
            pulled.downloaded
        );
        // Everything is cached now: a second pull downloads nothing.
        let again = client
            .pull("demo/multi", "1", &want, &store, &PullOptions::default())
            .unwrap();
        assert_eq!(again.downloaded, 0);
    }
    // A platform the image lacks gets a clear error naming what it has.
    let store = BlobStore::open(dir.path().join("riscv")).unwrap();
    let err = client
        .pull(
            "demo/multi",
            "1",
            &"linux/riscv64".parse().unwrap(),
            &store,
            &PullOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, ClientError::Platform(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("linux/riscv64")
            && msg.contains("linux/arm64")
            && msg.contains("linux/arm/v7"),
        "{msg}"
    );
    // A wrong token is refused with the registry's words.
    let bad = RegistryClient::new(&hub.url, Some("wrong")).with_tls(tls_trusting(&hub.ca_pem()));
    let err = bad
        .pull(
            "demo/multi",
            "1",
            &"linux/arm64".parse().unwrap(),
            &store,
            &PullOptions::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

/// A TCP proxy that breaks each of its first `breaks` connections after
/// `budget` bytes towards the client.
fn flaky_proxy(upstream: String, breaks: usize, budget: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let conns = Arc::new(AtomicUsize::new(0));
    let counter = conns.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let limit = if n < breaks { budget } else { usize::MAX };
            let Ok(server) = TcpStream::connect(&upstream) else {
                break;
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
            });
            std::thread::spawn(move || {
                let (mut s_read, mut c_write) = (server, client);
                let mut sent = 0usize;
                let mut buf = [0u8; 8192];
                while let Ok(k) = s_read.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    let k = k.min(limit - sent);
                    if c_write.write_all(&buf[..k]).is_err() {
                        break;
                    }
                    sent += k;
                    if sent >= limit {
                        break;
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Both);
                let _ = s_read.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (addr, conns)
}

#[test]
fn a_broken_transfer_resumes_where_it_stopped() {
    let (dir, hub, img) = start();
    let upstream = hub.url.trim_start_matches("https://").to_string();
    let (proxy, conns) = flaky_proxy(upstream, 2, 100_000);
    let client = RegistryClient::new(&format!("https://{proxy}"), Some(&hub.token))
        .with_tls(tls_trusting(&hub.ca_pem()));
    let store = BlobStore::open(dir.path().join("node")).unwrap();
    let opts = PullOptions {
        parallel: 1,
        ..Default::default()
    };
    let pulled = client
        .pull(
            "demo/multi",
            "1",
            &"linux/arm64".parse().unwrap(),
            &store,
            &opts,
        )
        .unwrap();
    let expect = &img.images[1];
    assert_eq!(pulled.manifest_digest.to_string(), expect.manifest.digest());
    let layer: bramble_images::Digest = expect.layers[0].digest().parse().unwrap();
    assert_eq!(
        store.read(&layer).unwrap(),
        expect.layers[0].bytes,
        "resumed blob verified and complete"
    );
    assert!(
        conns.load(Ordering::SeqCst) >= 3,
        "the transfer was broken and resumed"
    );
    // Resumed, not restarted: less than two full copies came down.
    assert!(
        pulled.downloaded < 2 * expect.layers[0].bytes.len() as u64,
        "{}",
        pulled.downloaded
    );
}

#[test]
fn busybox_fixture_lands_the_right_binary_on_each_platform() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(
        Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        &dir.path().join("hub"),
    );
    let img = bramble_tests::busybox::busybox_image().unwrap();
    fixtures::push(&hub.url, &hub.token, &hub.ca_pem(), "busybox", "1.35", &img).unwrap();
    let client =
        RegistryClient::new(&hub.url, Some(&hub.token)).with_tls(tls_trusting(&hub.ca_pem()));
    for (platform, machine) in [
        ("linux/amd64", 62u16),
        ("linux/arm64", 183),
        ("linux/arm/v7", 40),
    ] {
        let store = BlobStore::open(dir.path().join(platform.replace('/', "-"))).unwrap();
        let pulled = client
            .pull(
                "busybox",
                "1.35",
                &platform.parse().unwrap(),
                &store,
                &PullOptions::default(),
            )
            .unwrap();
        let layer = pulled.layers()[0].digest().to_string().parse().unwrap();
        let bin = fixtures::file_in_layer(&store.read(&layer).unwrap(), "bin/busybox").unwrap();
        assert_eq!(
            bramble_tests::busybox::elf_machine(&bin),
            Some(machine),
            "{platform}"
        );
        assert_eq!(
            pulled.config.architecture().to_string(),
            platform.split('/').nth(1).unwrap()
        );
    }
}

#[test]
fn one_blob_fetched_by_several_threads_at_once_is_stored_whole() {
    let (dir, hub, img) = start();
    let client =
        RegistryClient::new(&hub.url, Some(&hub.token)).with_tls(tls_trusting(&hub.ca_pem()));
    let store = BlobStore::open(dir.path().join("node")).unwrap();
    let layer = &img.images[0].layers[0];
    let digest: bramble_images::Digest = layer.digest().to_string().parse().unwrap();
    let size = layer.bytes.len() as u64;
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                client
                    .fetch_blob(
                        "demo/multi",
                        &digest,
                        Some(size),
                        &store,
                        &PullOptions::default(),
                    )
                    .unwrap()
            });
        }
    });
    let mut stored = Vec::new();
    store
        .open_verified(&digest)
        .unwrap()
        .read_to_end(&mut stored)
        .unwrap();
    assert!(
        stored == layer.bytes,
        "the stored blob is not the one pushed"
    );
}
