//! Scheduler benchmark: prints figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-hub --bench scheduler_bench` places 1,000 pending
//! pods (50 workloads of 20 replicas with cpu/memory requests; a tenth with a
//! `nodeSelector`, a twentieth with a `hostPort`, a twentieth with an
//! arm64-only image) on clusters of 10, 100, 500 and 1,000 nodes (a fifth of
//! them armv7, a tenth tainted, each already running 5 pods), and prints:
//! - pods placed per second through `schedule_batch` (best of a few runs);
//! - p50/p99/max of one decision (`schedule` then `Cluster::assume`);
//! - how many pods were placed, and the time to build the `Cluster` view.
//!
//! `BENCH_QUICK=1` runs one repetition and stops at 500 nodes (the 1,000-node
//! cluster takes the same paths).

use std::time::{Duration, Instant};

use bramble_api::objects::{Node, Pod};
use bramble_hub::scheduler::{
    Cluster, ImagePlatforms, PendingPod, schedule, schedule_batch, workload_key,
};
use bramble_tests::bench::quick;
use serde_json::json;

const PENDING: usize = 1_000;
const WORKLOADS: usize = 50;
const BOUND_PER_NODE: usize = 5;

fn node(i: usize) -> Node {
    let arch = if i % 5 == 4 { "armv7l" } else { "arm64" };
    let taints = if i % 10 == 3 {
        json!([{"key": "dedicated", "value": "sensors", "effect": "NoSchedule"}])
    } else {
        json!([])
    };
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("pi-{i:04}"), "labels": {
            "kubernetes.io/hostname": format!("pi-{i:04}"),
            "zone": format!("zone-{}", i % 4),
        }},
        "spec": {"taints": taints},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"architecture": arch, "operatingSystem": "linux"}
        }
    }))
    .unwrap()
}

/// Replica `r` of workload `w`.
fn pod(w: usize, r: usize) -> Pod {
    let image = if w % 20 == 7 { "sensor:1" } else { "web:1" };
    let mut container = json!({"name": "app", "image": image,
        "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}}});
    if w % 20 == 3 {
        container["ports"] = json!([{"containerPort": 8000 + w, "hostPort": 8000 + w}]);
    }
    let mut spec = json!({"containers": [container]});
    if w % 10 == 5 {
        spec["nodeSelector"] = json!({"zone": "zone-1"});
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("w{w}-{r}"), "namespace": "default",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                "name": format!("w{w}"), "uid": format!("u{w}"), "controller": true}]},
        "spec": spec
    }))
    .unwrap()
}

fn images() -> ImagePlatforms {
    let p = |s: &[&str]| s.iter().map(|x| x.parse().unwrap()).collect();
    [
        (
            "web:1".to_string(),
            p(&["linux/amd64", "linux/arm64", "linux/arm/v7"]),
        ),
        ("sensor:1".to_string(), p(&["linux/arm64"])),
    ]
    .into()
}

/// Nodes, and the pods already bound to them (plain pods of other workloads).
fn cluster(n: usize) -> (Vec<Node>, Vec<Pod>) {
    let nodes: Vec<Node> = (0..n).map(node).collect();
    let mut bound = Vec::new();
    for (i, nd) in nodes.iter().enumerate() {
        for b in 0..BOUND_PER_NODE {
            let mut p = pod(1000 + (i + b) % 7, i * BOUND_PER_NODE + b);
            p.spec.containers[0].ports.clear();
            p.spec.node_selector.clear();
            p.spec.containers[0].image = "web:1".into();
            p.spec.node_name = Some(nd.name().to_string());
            bound.push(p);
        }
    }
    (nodes, bound)
}

fn build(nodes: &[Node], bound: &[Pod], keys: &[Option<String>]) -> Cluster {
    let mut c = Cluster::new(nodes);
    for (p, k) in bound.iter().zip(keys) {
        c.add_pod(p, k.as_deref());
    }
    c
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let images = images();
    // Interleave workloads, as a queue of several rollouts would.
    let pending: Vec<Pod> = (0..PENDING)
        .map(|i| pod(i % WORKLOADS, i / WORKLOADS))
        .collect();
    let keys: Vec<Option<String>> = pending.iter().map(workload_key).collect();
    let queue: Vec<PendingPod> = pending
        .iter()
        .zip(&keys)
        .map(|(pod, k)| PendingPod {
            pod,
            workload: k.as_deref(),
            volumes: None,
        })
        .collect();
    let reps = if quick() { 1 } else { 5 };
    let sizes: &[usize] = if quick() {
        &[10, 100, 500]
    } else {
        &[10, 100, 500, 1000]
    };

    println!(
        "scheduler: {PENDING} pending pods ({WORKLOADS} workloads), {BOUND_PER_NODE} bound pods per node"
    );
    println!(
        "{:>6} {:>10} {:>12} {:>10} {:>10} {:>10} {:>8} {:>12}",
        "nodes", "build", "pods/s", "p50", "p99", "max", "placed", "unsched."
    );
    for &n in sizes {
        let (nodes, bound) = cluster(n);
        let bound_keys: Vec<Option<String>> = bound.iter().map(workload_key).collect();

        let t = Instant::now();
        let base = build(&nodes, &bound, &bound_keys);
        let build_time = t.elapsed();

        // Throughput: the whole queue through schedule_batch.
        let mut best = Duration::MAX;
        let mut placed = 0;
        for _ in 0..reps {
            let mut c = base.clone();
            let t = Instant::now();
            let results = schedule_batch(&mut c, &queue, &images);
            best = best.min(t.elapsed());
            placed = results.iter().filter(|r| r.is_ok()).count();
        }
        let per_sec = PENDING as f64 / best.as_secs_f64();

        // Latency of one decision, each seeing the placements before it.
        let mut lat = Vec::with_capacity(PENDING * reps);
        for _ in 0..reps {
            let mut c = base.clone();
            for p in &queue {
                let t = Instant::now();
                let r = schedule(&c, p.pod, p.workload, &images);
                if let Ok(pl) = &r {
                    c.assume(&pl.node, p.pod, p.workload);
                }
                lat.push(t.elapsed());
            }
        }
        lat.sort();
        println!(
            "{:>6} {:>10} {:>12.0} {:>10} {:>10} {:>10} {:>8} {:>12}",
            n,
            us(build_time),
            per_sec,
            us(pct(&lat, 0.50)),
            us(pct(&lat, 0.99)),
            us(*lat.last().unwrap()),
            placed,
            PENDING - placed
        );
    }
}
