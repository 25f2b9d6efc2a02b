//! A rolling update on one board whose containers ignore SIGTERM: prints
//! figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-tests --bench rollout_bench` (as root: real
//! containers) starts a real hub (embedded broker) and one real agent,
//! pushes the busybox fixture image and creates a Deployment of
//! `ROLLOUT_PODS` pods (default 10) whose containers ignore SIGTERM, with a
//! grace period of `ROLLOUT_GRACE` seconds (default 10) and the helper's
//! rolling update (maxSurge 1, maxUnavailable 1). Once they are Ready it
//! changes the template and measures until every pod is of the new template,
//! Ready, and the old ones are gone. An agent that stops a pod in its main
//! loop starts nothing meanwhile, so every step of the rollout waits for an
//! old pod's grace period; an agent whose pods stop on threads of their own
//! rolls as fast as with no grace period at all. Printed beside it: the
//! same rollout with a grace period of 0 (the floor).
//! `BENCH_QUICK=1`: 3 pods, 2 s. Needs the workspace binaries of the bench's
//! profile beside it (`scripts/bench` builds them).

use bramble_tests::eventually;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, deployment};
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Rolls Deployment `name` (`pods` Ready pods, grace `grace` s) to a new
/// template; returns how long until only new, Ready pods are left.
fn roll(c: &Cluster, name: &str, pods: u64, grace: u64) -> Duration {
    let mut d = deployment(
        name,
        pods as i64,
        "busybox:bench",
        "trap '' TERM; while true; do sleep 1; done",
    );
    d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(grace);
    let (code, v) = c.client().post(DEPLOYMENTS, &d);
    assert_eq!(code, 201, "{v}");
    let selector = format!("app={name}");
    let old: BTreeSet<String> = eventually(
        format!("{pods} pods of {name} Ready"),
        Duration::from_secs(300),
        || {
            let ready = c.ready_pods(&selector);
            (ready.len() as u64 == pods).then(|| ready.into_iter().map(|(n, _)| n).collect())
        },
    );
    let mut containers = d["spec"]["template"]["spec"]["containers"].clone();
    containers[0]["env"] = json!([{"name": "VERSION", "value": "2"}]);
    let t = Instant::now();
    let (code, v) = c.client().merge_patch(
        &format!("{DEPLOYMENTS}/{name}"),
        &json!({"spec": {"template": {"spec": {"containers": containers}}}}),
    );
    assert_eq!(code, 200, "{v}");
    eventually(format!("{name} rolled"), Duration::from_secs(600), || {
        let all = c.pods(&selector);
        let ready = c.ready_pods(&selector);
        let done = all.len() as u64 == pods
            && ready.len() as u64 == pods
            && ready.iter().all(|(n, _)| !old.contains(n));
        done.then_some(())
    });
    let took = t.elapsed();
    let (code, v) = c.client().delete(&format!("{DEPLOYMENTS}/{name}"));
    assert_eq!(code, 200, "{v}");
    eventually(
        format!("{name}'s pods gone"),
        Duration::from_secs(600),
        || c.pods(&selector).is_empty().then_some(()),
    );
    took
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let pods = env_or("ROLLOUT_PODS", if quick { 3 } else { 10 });
    let grace = env_or("ROLLOUT_GRACE", if quick { 2 } else { 10 });
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "bench");
    let floor = roll(&c, "floor", pods, 0);
    let slow = roll(&c, "stubborn", pods, grace);
    println!("rolling update of {pods} pods on one node, SIGTERM ignored:");
    println!(
        "  grace {grace:>3} s        {:>8.1} s   (pods x grace = {} s)",
        slow.as_secs_f64(),
        pods * grace
    );
    println!("  grace   0 s        {:>8.1} s", floor.as_secs_f64());
}
