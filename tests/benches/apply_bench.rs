//! Apply-to-Running latency: prints figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-tests --bench apply_bench` (as root: the agent runs
//! real containers with libcontainer) starts a real hub (embedded broker) and
//! one real agent, pushes the busybox fixture image, then `APPLY_RUNS` times
//! (default 50) creates a bare Pod (`sh -c 'sleep 3600'`, grace period 0) and
//! measures from just before the POST to the first watch event with
//! `status.phase == Running`, deletes the pod and waits until it is gone. The
//! first run (image pull + unpack on the agent) is reported on its own; the
//! others give p50/p90/p99/min/max. `BENCH_QUICK=1`: 3 runs (`APPLY_RUNS`
//! overrides it). Needs the workspace binaries of the bench's profile beside
//! it (`cargo build --release --bins` for `cargo bench`, `cargo build --bins`
//! for `cargo bench --profile dev`; `scripts/bench` does).

use bramble_tests::eventually;
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bramble_tests::cluster::{Broker, Cluster};
use serde_json::{Value, json};

/// Watches pod `name` in `default`; sends the instant of the first event
/// whose phase is Running. Returns once the watch is established.
fn watch_running(base: &str, token: &str, ca: &[u8], name: &str) -> mpsc::Receiver<Instant> {
    let agent = bramble_tests::agent_trusting(ca, Duration::from_secs(120));
    let url = format!(
        "{base}/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name={name}"
    );
    let resp = agent
        .get(&url)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .expect("watch request");
    assert_eq!(resp.status().as_u16(), 200, "watch refused");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(resp.into_body().into_reader());
        for line in reader.lines().map_while(Result::ok) {
            let at = Instant::now();
            let Ok(ev) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if ev["object"]["status"]["phase"] == "Running" {
                let _ = tx.send(at);
                return;
            }
        }
    });
    rx
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:bench",
                "command": ["sh", "-c", "sleep 3600"]}]
        }
    })
}

/// One create → Running → delete → gone cycle; returns create→Running.
fn cycle(cluster: &Cluster, name: &str) -> Duration {
    let client = cluster.client();
    let running = watch_running(
        &cluster.hub.url,
        &cluster.hub.token,
        &cluster.hub.ca_pem(),
        name,
    );
    let t0 = Instant::now();
    let (code, v) = client.post("/api/v1/namespaces/default/pods", &pod(name));
    assert!(code == 201 || code == 200, "create {name}: {code} {v}");
    let at = running
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| {
            let (_, p) = client.get(&format!("/api/v1/namespaces/default/pods/{name}"));
            panic!(
                "{name} not Running within 120 s: {p}\nagent log tail:\n{}",
                tail(&cluster.agents[0].proc.log())
            )
        });
    let latency = at - t0;
    let path = format!("/api/v1/namespaces/default/pods/{name}");
    let (code, v) = client.delete(&path);
    assert!(code == 200 || code == 202, "delete {name}: {code} {v}");
    eventually(format!("{name} gone"), Duration::from_secs(60), || {
        (client.get(&path).0 == 404).then_some(())
    });
    latency
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runs = bramble_tests::bench::size("APPLY_RUNS", 50, 3).max(1);
    let t = Instant::now();
    let cluster = Cluster::start(Broker::Embedded, 1, &[]);
    println!(
        "cluster (hub + 1 agent) Ready in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    cluster.push_busybox("busybox", "bench");

    let first = cycle(&cluster, "apply-first");
    println!("first run (image pull + unpack): {}", ms(first));

    let mut lat: Vec<Duration> = (0..runs)
        .map(|i| cycle(&cluster, &format!("apply-{i}")))
        .collect();
    lat.sort();
    println!(
        "apply_bench: create -> Running over {runs} runs (image cached): p50 {} p90 {} p99 {} min {} max {}",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.9)),
        ms(pct(&lat, 0.99)),
        ms(lat[0]),
        ms(lat[lat.len() - 1]),
    );
}
