//! Write throughput into a `local-path` volume from a container, against the
//! same directory written directly on the node: prints figures, asserts
//! nothing about time.
//!
//! `cargo bench -p bramble-tests --bench volume_bench` (as root: real
//! containers) starts a real hub (embedded broker) and one real agent,
//! pushes the busybox fixture image, creates a claim of the default class
//! and a pod that writes `VOLUME_MIB` MiB (default 512) with `dd ...
//! conv=fsync` into it `VOLUME_RUNS` times (default 5), timed with
//! `/proc/uptime` around each dd and read from the pod's log; then it runs
//! the same script with the same busybox (the fixture's binary) on the node
//! into the volume's own directory. The
//! volume is a bind mount of that directory, so the two should match: the
//! figure shows the mount costs nothing. `BENCH_QUICK=1`: 16 MiB, 2 runs.
//! Needs the workspace binaries of the bench's profile beside it
//! (`scripts/bench` builds them).

use std::process::Command;
use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster};
use bramble_tests::eventually;
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The script that writes `mib` MiB into `dir` `runs` times, each timed
/// (`elapsed START END` from `/proc/uptime`); `bb` prefixes every command
/// (the busybox binary on the node, nothing in the container).
fn script(bb: &str, dir: &str, mib: u64, runs: u64) -> String {
    format!(
        "for i in $({bb}seq {runs}); do a=$({bb}cut -d' ' -f1 /proc/uptime); \
         {bb}dd if=/dev/zero of={dir}/f bs=1M count={mib} conv=fsync 2>/dev/null; \
         b=$({bb}cut -d' ' -f1 /proc/uptime); echo elapsed $a $b; {bb}rm {dir}/f; done"
    )
}

/// MiB/s of every `elapsed START END` line of `text` for `mib` MiB.
fn rates(text: &str, mib: u64) -> Vec<f64> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("elapsed ")?.split_whitespace();
            let a: f64 = w.next()?.parse().ok()?;
            let b: f64 = w.next()?.parse().ok()?;
            // /proc/uptime counts hundredths: one at least.
            Some(mib as f64 / (b - a).max(0.01))
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let mib = env_or("VOLUME_MIB", if quick { 16 } else { 512 });
    let runs = env_or("VOLUME_RUNS", if quick { 2 } else { 5 });
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "bench");
    let client = c.client();
    let (code, v) = client.post(
        "/api/v1/namespaces/default/persistentvolumeclaims",
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "bench"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": format!("{}Mi", mib * 2)}}}}),
    );
    assert_eq!(code, 201, "{v}");
    let in_container = script("", "/data", mib, runs);
    let (code, v) = client.post(
        "/api/v1/namespaces/default/pods",
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "writer"},
            "spec": {"restartPolicy": "Never",
                "containers": [{"name": "dd", "image": "busybox:bench", "command": ["sh", "-c", in_container],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "bench"}}]}}),
    );
    assert_eq!(code, 201, "{v}");
    eventually("the writer done", Duration::from_secs(600), || {
        let (_, p) = client.get("/api/v1/namespaces/default/pods/writer");
        (p["status"]["phase"] == "Succeeded")
            .then_some(())
            .ok_or_else(|| p["status"].to_string())
    });
    let (_, log) = client.get("/api/v1/namespaces/default/pods/writer/log");
    let in_pod = rates(log.as_str().unwrap_or(""), mib);
    assert_eq!(in_pod.len() as u64, runs, "the pod's timings: {log}");
    let (_, claim) = client.get("/api/v1/namespaces/default/persistentvolumeclaims/bench");
    let volume = claim["spec"]["volumeName"]
        .as_str()
        .expect("bound")
        .to_string();
    let dir = c.agents[0].data_dir.join("volumes").join(&volume);
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "arm" => "armhf",
        _ => "amd64",
    };
    let tools = tempfile::tempdir().expect("a temporary directory");
    let busybox = tools.path().join("busybox");
    std::fs::write(
        &busybox,
        bramble_tests::busybox::binary(arch).expect("the fixture's busybox"),
    )
    .expect("writing busybox");
    std::fs::set_permissions(
        &busybox,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("making busybox executable");
    let bb = format!("{} ", busybox.display());
    let out = Command::new(&busybox)
        .args([
            "sh",
            "-c",
            &script(&bb, &dir.display().to_string(), mib, runs),
        ])
        .output()
        .expect("running busybox on the node");
    assert!(out.status.success(), "{out:?}");
    let direct = rates(&String::from_utf8_lossy(&out.stdout), mib);
    assert_eq!(direct.len() as u64, runs, "the node's timings: {out:?}");
    println!("write {mib} MiB with dd conv=fsync, median of {runs}:");
    println!(
        "  into the claim, from a container  {:>8.1} MiB/s",
        median(in_pod)
    );
    println!(
        "  into its directory, on the node   {:>8.1} MiB/s",
        median(direct)
    );
}
