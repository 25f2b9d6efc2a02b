//! Hub benchmark: prints figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-hub --bench hub_bench` measures:
//! - durable creates/s through the store with 1, 16 and 64 concurrent clients
//!   (group commit) and the p50/p99 latency of one create;
//! - the same over HTTPS against a real `bramble-hub` process, then over plain
//!   HTTP against a second one started with `--insecure-http` (what TLS costs);
//! - the hub's idle RSS, and RSS after the load;
//! - watch fan-out latency: time from a create's acknowledgement until each of
//!   100 HTTP watchers has the event.
//!
//! `BENCH_QUICK=1`: a short run through every part (20 creates per store client, 10
//! per HTTP client, 3 watched creates). `BENCH_STORE_ONLY=1` stops after the store
//! figures, `BENCH_CLUSTERED_NAMES=1` uses time-ordered object names.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use bramble_api::resource::by_plural;
use bramble_hub::store::{Store, StoreOptions};
use bramble_tests::bench::quick;
use serde_json::{Value, json};

/// `BENCH_CLUSTERED_NAMES=1`: name objects so that concurrent writers' keys sort
/// together (`c000123-007`) instead of spreading over the key space (`c7-123`).
/// Each distinct B-tree leaf a commit dirties costs a block to sync, so this
/// shows how much of a commit's cost is key spread rather than volume.
fn clustered_names() -> bool {
    std::env::var_os("BENCH_CLUSTERED_NAMES").is_some()
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "default", "labels": {"bench": "yes"}},
           "data": {"payload": "x".repeat(256)}})
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn bench_store(rt: &tokio::runtime::Runtime) {
    println!("== store: durable creates (redb, Durability::Immediate, group commit)");
    println!(
        "{:>8} {:>10} {:>12} {:>10} {:>10} {:>12}",
        "clients", "creates", "creates/s", "p50", "p99", "writes/commit"
    );
    let configmaps = by_plural("", "v1", "configmaps").unwrap();
    let namespaces = by_plural("", "v1", "namespaces").unwrap();
    for &clients in &[1usize, 16, 64] {
        let per_client = if quick() {
            20
        } else if clients == 1 {
            1000
        } else {
            32_000 / clients
        };
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let (elapsed, mut lat, commits) = rt.block_on(async {
            let store = Store::open(&dir.path().join("bench.redb"), StoreOptions::default()).unwrap();
            store
                .create(namespaces, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}))
                .await
                .unwrap();
            let commits0 = store.metrics().commits();
            let started = Instant::now();
            let mut tasks = Vec::new();
            for c in 0..clients {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per_client);
                    for i in 0..per_client {
                        let t = Instant::now();
                        store.create(configmaps, cm(&if clustered_names() { format!("c{i:06}-{c:03}") } else { format!("c{c}-{i}") })).await.unwrap();
                        lat.push(t.elapsed());
                    }
                    lat
                }));
            }
            let mut lat = Vec::new();
            for t in tasks {
                lat.extend(t.await.unwrap());
            }
            let elapsed = started.elapsed();
            let commits = store.metrics().commits() - commits0;
            store.shutdown().await;
            (elapsed, lat, commits)
        });
        lat.sort_unstable();
        let n = clients * per_client;
        println!(
            "{:>8} {:>10} {:>12.0} {:>10} {:>10} {:>12.1}",
            clients,
            n,
            n as f64 / elapsed.as_secs_f64(),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            n as f64 / commits.max(1) as f64
        );
    }
}

struct HubProc {
    proc: bramble_tests::HubProcess,
    url: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl HubProc {
    fn start() -> HubProc {
        Self::start_with(&[])
    }

    /// A hub with extra flags (`--insecure-http` for the plain-HTTP figures).
    fn start_with(extra: &[&str]) -> HubProc {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let proc = bramble_tests::HubProcess::start_with_args(
            Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
            dir.path(),
            "info",
            extra,
        );
        HubProc {
            url: proc.url.clone(),
            token: proc.token.clone(),
            proc,
            _dir: dir,
        }
    }

    /// SIGKILLs the hub and starts a new one on the same data dir; returns how
    /// long the new one took to open the store and listen.
    fn crash_and_restart(&mut self) -> Duration {
        self.proc.kill9();
        let started = Instant::now();
        self.proc = bramble_tests::HubProcess::start(
            Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
            self._dir.path(),
        );
        let took = started.elapsed();
        self.url = self.proc.url.clone();
        took
    }

    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.proc.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// A client pool trusting the hub's CA.
    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .max_idle_connections_per_host(128)
            .tls_config(bramble_tests::tls_trusting(&self.proc.ca_pem()))
            .build()
            .into()
    }
}

fn bench_http(hub: &HubProc) {
    let scheme = hub.url.split(':').next().unwrap_or("?");
    println!(
        "== HTTP: POST creates against a bramble-hub process over {scheme} (keep-alive; debug/release as built)"
    );
    println!(
        "{:>8} {:>10} {:>12} {:>10} {:>10}",
        "clients", "creates", "creates/s", "p50", "p99"
    );
    for &clients in &[1usize, 16, 64] {
        let per_client = if quick() {
            10
        } else if clients == 1 {
            500
        } else {
            16_000 / clients
        };
        let barrier = Arc::new(Barrier::new(clients + 1));
        let lat = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for c in 0..clients {
            let (url, token, barrier, lat, agent) = (
                hub.url.clone(),
                hub.token.clone(),
                barrier.clone(),
                lat.clone(),
                hub.agent(),
            );
            threads.push(std::thread::spawn(move || {
                let mut mine = Vec::with_capacity(per_client);
                barrier.wait();
                for i in 0..per_client {
                    let t = Instant::now();
                    agent
                        .post(format!("{url}/api/v1/namespaces/default/configmaps"))
                        .header("Authorization", format!("Bearer {token}"))
                        .send_json(cm(&format!("h{clients}-{c}-{i}")))
                        .unwrap()
                        // Read to the end, as a client does: only then does
                        // the connection go back to the pool (unread, every
                        // create paid a new connection and TLS handshake).
                        .body_mut()
                        .read_to_vec()
                        .unwrap();
                    mine.push(t.elapsed());
                }
                lat.lock().unwrap().extend(mine);
            }));
        }
        barrier.wait();
        let started = Instant::now();
        for t in threads {
            t.join().unwrap();
        }
        let elapsed = started.elapsed();
        let mut lat = lat.lock().unwrap().clone();
        lat.sort_unstable();
        let n = clients * per_client;
        println!(
            "{:>8} {:>10} {:>12.0} {:>10} {:>10}",
            clients,
            n,
            n as f64 / elapsed.as_secs_f64(),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        );
    }
}

fn bench_watch(hub: &HubProc) {
    const WATCHERS: usize = 100;
    let events = if quick() { 3 } else { 30 };
    println!("== watch fan-out: {WATCHERS} HTTP watchers, {events} creates");
    // Each watcher records when it saw each event, keyed by object name.
    let seen: Arc<Mutex<Vec<(String, Instant)>>> = Default::default();
    let ready = Arc::new(Barrier::new(WATCHERS + 1));
    for _ in 0..WATCHERS {
        let (url, token, seen, ready, agent) = (
            hub.url.clone(),
            hub.token.clone(),
            seen.clone(),
            ready.clone(),
            hub.agent(),
        );
        std::thread::spawn(move || {
            let resp = agent
                .get(format!("{url}/api/v1/namespaces/default/configmaps?watch=true&labelSelector=fanout%3Dyes"))
                .header("Authorization", format!("Bearer {token}"))
                .call()
                .unwrap();
            ready.wait();
            for line in BufReader::new(resp.into_body().into_reader()).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let v: Value = serde_json::from_str(&line).unwrap();
                let name = v["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                seen.lock().unwrap().push((name, at));
            }
        });
    }
    ready.wait();
    // Wait until the hub has all the watches registered, not a fixed time.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = hub.agent();
    loop {
        let text = metrics
            .get(format!("{}/metrics", hub.url))
            .header("Authorization", format!("Bearer {}", hub.token))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        let watchers = text
            .lines()
            .find_map(|l| l.strip_prefix("bramble_watchers "))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if watchers >= WATCHERS || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let agent = hub.agent();
    let mut per_delivery = Vec::new();
    let mut all_delivered = Vec::new();
    for i in 0..events {
        let name = format!("fan-{i}");
        let mut obj = cm(&name);
        obj["metadata"]["labels"]["fanout"] = "yes".into();
        agent
            .post(format!("{}/api/v1/namespaces/default/configmaps", hub.url))
            .header("Authorization", format!("Bearer {}", hub.token))
            .send_json(obj)
            .unwrap();
        let acked = Instant::now();
        let deadline = acked + Duration::from_secs(10);
        loop {
            let got: Vec<Instant> = seen
                .lock()
                .unwrap()
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, t)| *t)
                .collect();
            if got.len() == WATCHERS || Instant::now() > deadline {
                let lat: Vec<Duration> = got
                    .iter()
                    .map(|t| t.saturating_duration_since(acked))
                    .collect();
                if let Some(max) = lat.iter().max() {
                    all_delivered.push(*max);
                }
                per_delivery.extend(lat);
                if got.len() < WATCHERS {
                    println!(
                        "  event {name}: only {} of {WATCHERS} watchers got it within 10 s",
                        got.len()
                    );
                }
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    per_delivery.sort_unstable();
    all_delivered.sort_unstable();
    println!(
        "  per watcher after ack: p50 {}  p99 {}   all {WATCHERS} watchers: p50 {}  max {}",
        ms(percentile(&per_delivery, 0.5)),
        ms(percentile(&per_delivery, 0.99)),
        ms(percentile(&all_delivered, 0.5)),
        ms(all_delivered.last().copied().unwrap_or_default())
    );
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    bench_store(&rt);
    if std::env::var_os("BENCH_STORE_ONLY").is_some() {
        return;
    }
    let hub = HubProc::start();
    std::thread::sleep(Duration::from_millis(500));
    println!(
        "== hub RSS: idle after start {} KiB ({:.1} MiB)",
        hub.rss_kib(),
        hub.rss_kib() as f64 / 1024.0
    );
    bench_http(&hub);
    println!("== hub RSS: after HTTP load {} KiB", hub.rss_kib());
    {
        // The same creates without TLS (`--insecure-http`): what TLS costs.
        let plain = HubProc::start_with(&["--insecure-http"]);
        bench_http(&plain);
    }
    bench_watch(&hub);
    println!("== hub RSS: with 100 watchers {} KiB", hub.rss_kib());
    let mut hub = hub;
    let db = hub._dir.path().join("state.redb");
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let took = hub.crash_and_restart();
    println!(
        "== recovery: restart after kill -9 with a {:.1} MiB store (full repair, no quick-repair): {} to listening",
        size as f64 / (1024.0 * 1024.0),
        ms(took)
    );
}
