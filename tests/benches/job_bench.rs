//! Job throughput on one board: prints completions per second, asserts
//! nothing about time.
//!
//! `cargo bench -p bramble-tests --bench job_bench` (as root: real
//! containers) starts a real hub (embedded broker) and one real agent,
//! pushes the busybox fixture image and creates a Job of `JOB_COMPLETIONS`
//! pods (default 1,000) running `true`, `JOB_PARALLELISM` at a time
//! (default 20), `restartPolicy: Never`. It measures from the create until
//! the Job is `Complete` and prints the pods completed per second, then
//! deletes the Job and waits for its pods to go. Every finished pod stays
//! until the Job finishes (the controller counts from the pods), so the
//! last completions are planned beside all the earlier ones.
//! `BENCH_QUICK=1`: 20 completions, parallelism 5. Needs the workspace
//! binaries of the bench's profile beside it (`scripts/bench` builds them).

use std::time::{Duration, Instant};

use bramble_tests::cluster::{Broker, Cluster};
use bramble_tests::eventually;
use serde_json::json;

const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let completions = env_or("JOB_COMPLETIONS", if quick { 20 } else { 1000 });
    let parallelism = env_or("JOB_PARALLELISM", if quick { 5 } else { 20 });
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "bench");
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bench"},
        "spec": {"completions": completions, "parallelism": parallelism,
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "main", "image": "busybox:bench",
                    "command": ["true"]}]}}}});
    let t = Instant::now();
    let (code, v) = c.client().post(JOBS, &job);
    assert_eq!(code, 201, "{v}");
    let status = eventually(
        format!("{completions} completions"),
        Duration::from_secs(3600),
        || {
            let (_, j) = c.client().get(&format!("{JOBS}/bench"));
            let conditions = j["status"]["conditions"].as_array()?;
            let failed = conditions
                .iter()
                .any(|c| c["type"] == "Failed" && c["status"] == "True");
            assert!(!failed, "the Job failed: {j}");
            conditions
                .iter()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")
                .then(|| j["status"].clone())
        },
    );
    let took = t.elapsed();
    assert_eq!(status["succeeded"], completions, "{status}");
    println!("Job of {completions} completions of `true`, parallelism {parallelism}, one node:");
    println!(
        "  {:>8.1} s   {:>8.2} pods/s",
        took.as_secs_f64(),
        completions as f64 / took.as_secs_f64()
    );
    let (code, v) = c.client().delete(&format!("{JOBS}/bench"));
    assert_eq!(code, 200, "{v}");
    eventually("the Job's pods gone", Duration::from_secs(600), || {
        c.pods("batch.kubernetes.io/job-name=bench")
            .is_empty()
            .then_some(())
    });
}
