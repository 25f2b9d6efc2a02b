//! `bramble compose up` of a three-service project until every service is
//! Ready, and `down`: prints figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-tests --bench compose_bench` (as root: real
//! containers) starts a real hub (embedded broker) and one real agent,
//! pushes the busybox fixture image, and writes a Compose file: `db` (busybox
//! `httpd` with a healthcheck), `web` (`depends_on: db: service_healthy`,
//! port 18085 published through the hub's load balancer) and `worker`
//! (`depends_on: db: service_started`). Then, `COMPOSE_RUNS` times (default
//! 5; `BENCH_QUICK=1`: 2), each as a fresh project: the time `compose up -d`
//! takes to return (it waits for `db` to be healthy before creating `web`),
//! the time from its start until all three services' pods are Ready and the
//! published port answers, and the time `compose down` takes. Needs the
//! workspace binaries of the bench's profile beside it (`scripts/bench`
//! builds them).

use std::process::Command;
use std::time::{Duration, Instant};

use bramble_tests::bench::{self, stats};
use bramble_tests::cluster::{Broker, Cluster};
use bramble_tests::eventually;

const COMPOSE: &str = r#"
services:
  db:
    image: bb:1
    command: ["sh", "-c", "mkdir -p /www && echo db > /www/index.html && exec httpd -f -p 80 -h /www"]
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1/"]
      interval: 1s
      retries: 30
  web:
    image: bb:1
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["18085:80"]
    depends_on:
      db:
        condition: service_healthy
  worker:
    image: bb:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    depends_on:
      db:
        condition: service_started
"#;

/// Ready pods of project `ns` (all namespaces' pods are in `ns`).
fn ready_services(c: &Cluster, ns: &str) -> usize {
    let (_, pods) = c.client().get(&format!("/api/v1/namespaces/{ns}/pods"));
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| bramble_tests::cluster::is_ready(p))
        .count()
}

fn main() {
    let runs = bench::size("COMPOSE_RUNS", 5, 2);
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, COMPOSE).expect("writing compose.yaml");
    let file = file.to_str().expect("a UTF-8 path");
    let published = format!("http://{}:18085/", c.hub.lb_address);
    let (mut up, mut ready, mut down) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let project = format!("bench{run}");
        let start = Instant::now();
        let (ok, out) = c.cli(&["compose", "-f", file, "-p", &project, "up", "-d"]);
        assert!(ok, "compose up: {out}");
        up.push(start.elapsed());
        eventually("all three Ready", Duration::from_secs(120), || {
            (ready_services(&c, &project) == 3).then_some(())
        });
        eventually("the published port", Duration::from_secs(60), || {
            let ok = Command::new("curl")
                .args(["-sf", "--max-time", "2", &published])
                .output()
                .is_ok_and(|o| o.status.success());
            ok.then_some(())
        });
        ready.push(start.elapsed());
        let start = Instant::now();
        let (ok, out) = c.cli(&["compose", "-f", file, "-p", &project, "down", "-v"]);
        assert!(ok, "compose down: {out}");
        down.push(start.elapsed());
    }
    println!("compose_bench: 3 services (db healthy → web, worker), one agent, {runs} runs");
    stats("compose up -d returns", up);
    stats("up → all Ready, port published", ready);
    stats("compose down -v", down);
}
