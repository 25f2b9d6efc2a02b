//! kubectl against the hub: prints figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-hub --bench kubectl_bench` runs the real `kubectl`
//! (Debian's package) against a real `bramble-hub` process over HTTPS and
//! measures:
//! - `kubectl apply -f examples/` wall time (first run: created; later runs:
//!   unchanged), against `kubectl version --client`, the floor of a kubectl
//!   process on this machine;
//! - listing `KUBECTL_PODS` pods (1,000) as the `Table` `kubectl get` asks for
//!   (one HTTPS request, timed in-process) and `kubectl get pods` wall time;
//! - the hub's RSS idle and with `KUBECTL_WATCHES` (50) `kubectl get pods -w`
//!   open.
//!
//! `BENCH_QUICK=1`: 100 pods, 5 watches, 2 applies. Pods have no node (no
//! agent runs): they stay Pending, which is what a list measures anyway.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bramble_tests::HubProcess;
use bramble_tests::bench::{rss_kib, size};
use serde_json::json;

fn kubectl(hub: &HubProcess) -> Command {
    let mut c = Command::new("kubectl");
    c.env("KUBECONFIG", hub.data_dir.join("kubeconfig.yaml"));
    c
}

fn timed(mut c: Command) -> Duration {
    let started = Instant::now();
    let out = c.output().expect("kubectl runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let pods = size("KUBECTL_PODS", 1000, 100);
    let watches = size("KUBECTL_WATCHES", 50, 5);
    let applies = size("KUBECTL_APPLIES", 10, 2).max(2);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let hub = HubProcess::start_with_args(
        Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        dir.path(),
        "info",
        &[],
    );
    let examples = bramble_tests::workspace_root().join("examples");
    let examples = examples.to_str().unwrap();

    println!("== kubectl apply -f examples/ (5 objects), {applies} runs");
    let floor = median(
        (0..applies)
            .map(|_| {
                let mut c = kubectl(&hub);
                c.args(["version", "--client"]);
                timed(c)
            })
            .collect(),
    );
    let mut runs = Vec::new();
    for _ in 0..applies {
        let mut c = kubectl(&hub);
        c.args(["apply", "-f", examples]);
        runs.push(timed(c));
    }
    let first = runs[0];
    let unchanged = median(runs[1..].to_vec());
    println!("kubectl version --client (process floor): {}", ms(floor));
    println!("apply, created:                           {}", ms(first));
    println!(
        "apply, unchanged (median):                {}",
        ms(unchanged)
    );

    println!("== {pods} pods listed as a Table");
    let agent = bramble_tests::agent_trusting(&hub.ca_pem(), Duration::from_secs(60));
    let next = AtomicUsize::new(0);
    let created = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= pods {
                        break;
                    }
                    let pod = json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": format!("p-{i:05}"), "labels": {"bench": "kubectl"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
                    let resp = agent
                        .post(format!("{}/api/v1/namespaces/default/pods", hub.url))
                        .header("Authorization", format!("Bearer {}", hub.token))
                        .send_json(&pod)
                        .unwrap();
                    assert_eq!(resp.status().as_u16(), 201);
                }
            });
        }
    });
    println!("created in {} (8 clients)", ms(created.elapsed()));
    // The control loop schedules (and records events for) the new pods: let
    // it settle so the lists measure listing, not a busy hub.
    let metric = |name: &str| -> f64 {
        let text = agent
            .get(format!("{}/metrics", hub.url))
            .header("Authorization", format!("Bearer {}", hub.token))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let mut last = metric("bramble_store_revision");
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let now = metric("bramble_store_revision");
        if now == last {
            break;
        }
        last = now;
    }
    let table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let mut lists = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let mut resp = agent
            .get(format!(
                "{}/api/v1/namespaces/default/pods?limit=500",
                hub.url
            ))
            .header("Authorization", format!("Bearer {}", hub.token))
            .header("Accept", table_accept)
            .call()
            .unwrap();
        let body = resp.body_mut().read_to_vec().unwrap();
        lists.push(started.elapsed());
        bytes = body.len();
    }
    let mut plain = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut resp = agent
            .get(format!("{}/api/v1/namespaces/default/pods", hub.url))
            .header("Authorization", format!("Bearer {}", hub.token))
            .call()
            .unwrap();
        resp.body_mut().read_to_vec().unwrap();
        plain.push(started.elapsed());
    }
    let mut get = kubectl(&hub);
    get.args(["get", "pods"]).stdout(Stdio::null());
    let kubectl_get = timed(get);
    println!(
        "Table of the first {} (one request, median of 5): {} ({bytes} bytes)",
        pods.min(500),
        ms(median(lists))
    );
    println!(
        "plain JSON list of all {pods} (median of 5):   {}",
        ms(median(plain))
    );
    println!(
        "kubectl get pods (all pages, wall):          {}",
        ms(kubectl_get)
    );

    println!("== hub memory with kubectl watches");
    let idle = rss_kib(hub.child.id());
    let before = metric("bramble_watchers") as usize;
    let mut watchers: Vec<Child> = (0..watches)
        .map(|_| {
            let mut c = kubectl(&hub);
            c.args(["get", "pods", "-w"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Each watch first lists every pod; wait until the hub counts them all.
    let started = Instant::now();
    loop {
        let open = metric("bramble_watchers") as usize;
        if open >= before + watches || started.elapsed() > Duration::from_secs(120) {
            println!(
                "{} kubectl watches open after {}",
                open.saturating_sub(before),
                ms(started.elapsed())
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The watches' first lists done: RSS steady over two reads.
    let mut loaded = rss_kib(hub.child.id());
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        let now = rss_kib(hub.child.id());
        if now == loaded {
            break;
        }
        loaded = now;
    }
    println!(
        "hub RSS: {} KiB with {pods} pods, {} KiB with {watches} kubectl watches (+{} KiB, {:.0} KiB each)",
        idle,
        loaded,
        loaded.saturating_sub(idle),
        loaded.saturating_sub(idle) as f64 / watches.max(1) as f64
    );
    for mut w in watchers.drain(..) {
        let _ = w.kill();
        let _ = w.wait();
    }
}
