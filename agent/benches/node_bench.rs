//! The `bramble-agent` binary at node scale, per backend (libcontainer,
//! then runc): its RSS idle (no pods), the time for 20 pods given at once
//! (one `run -f` with 20 Pods, from process start to every pod reported
//! Running), its RSS with the 20 pods running, the same after a kill -9 and
//! restart that adopts them, and `reset` (stop and remove all 20). Cached
//! image. Needs root. Prints figures; asserts nothing about time.
//!
//! `cargo bench -p bramble-agent --bench node_bench` (`BENCH_PODS` to change 20;
//! `BENCH_QUICK=1`: 3 pods, `BENCH_PODS` overrides it)

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bramble_agent::runtime::cgroup::CgroupFiles;

const AGENT: &str = env!("CARGO_BIN_EXE_bramble-agent");

struct Bench {
    dir: PathBuf,
    runtime: &'static str,
    cgroup_parent: String,
}

impl Bench {
    fn cmd(&self, sub: &str) -> Command {
        let mut c = Command::new(AGENT);
        c.arg(sub)
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--run-dir")
            .arg(self.dir.join("run"))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--runtime")
            .arg(self.runtime)
            .env("BRAMBLE_LOG", "warn");
        c
    }

    fn run(&self, files: &[&Path]) -> Child {
        let mut c = self.cmd("run");
        for f in files {
            c.arg("-f").arg(f);
        }
        c.arg("--image")
            .arg(format!(
                "busybox={}",
                self.dir.join("busybox.tar").display()
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bramble-agent")
    }

    fn reset(&self) -> Duration {
        let t = Instant::now();
        let out = self.cmd("reset").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed()
    }
}

/// (VmRSS, Pss) in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    (field(&status, "VmRSS:"), field(&rollup, "Pss:"))
}

/// Reads status lines until `n` pods are Running; returns when.
fn until_running(child: &mut Child, n: usize) -> Instant {
    let stdout = child.stdout.as_mut().unwrap();
    let mut running = BTreeSet::new();
    for line in BufReader::new(stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["status"]["phase"] == "Running" {
            running.insert(v["pod"].as_str().unwrap().to_string());
        } else {
            running.remove(v["pod"].as_str().unwrap());
        }
        if running.len() == n {
            return Instant::now();
        }
    }
    panic!("the agent exited before {n} pods ran");
}

fn kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / 1024.0)
}

fn main() {
    let pods = bramble_tests::bench::size("BENCH_PODS", 20, 3).max(1);
    let tmp = tempfile::Builder::new()
        .prefix("bramble-node-bench-")
        .tempdir()
        .unwrap();
    bramble_tests::busybox::busybox_image()
        .expect("busybox fixture")
        .write_archive(&tmp.path().join("busybox.tar"), "busybox:latest")
        .unwrap();
    let file = tmp.path().join("pods.yaml");
    let yaml: Vec<String> = (0..pods)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: busybox, command: [sleep, '100000']}}\n"
            )
        })
        .collect();
    std::fs::write(&file, yaml.join("---\n")).unwrap();
    let size = std::fs::metadata(AGENT).map(|m| m.len()).unwrap_or(0);
    println!(
        "bramble-agent binary: {:.1} MiB ({AGENT})\n",
        size as f64 / 1048576.0
    );
    for runtime in ["libcontainer", "runc"] {
        let b = Bench {
            dir: tmp.path().join(runtime),
            runtime,
            cgroup_parent: format!("/bramble-bench-{runtime}-{}", std::process::id()),
        };
        std::fs::create_dir_all(&b.dir).unwrap();
        std::fs::copy(tmp.path().join("busybox.tar"), b.dir.join("busybox.tar")).unwrap();

        // Idle: no pods (the image import happens here, so it is cached below).
        let mut idle = b.run(&[]);
        std::thread::sleep(Duration::from_millis(1500));
        let (rss_idle, pss_idle) = memory(idle.id());
        idle.kill().unwrap();
        idle.wait().unwrap();

        let t = Instant::now();
        let mut agent = b.run(&[&file]);
        let done = until_running(&mut agent, pods);
        let start_all = done - t;
        std::thread::sleep(Duration::from_millis(500));
        let (rss_pods, pss_pods) = memory(agent.id());

        agent.kill().unwrap();
        agent.wait().unwrap();
        let t = Instant::now();
        let mut adopted = b.run(&[&file]);
        let done = until_running(&mut adopted, pods);
        let adopt_all = done - t;
        std::thread::sleep(Duration::from_millis(500));
        let (rss_adopted, _) = memory(adopted.id());
        adopted.kill().unwrap();
        adopted.wait().unwrap();
        let reset = b.reset();

        println!("{runtime}:");
        println!(
            "  agent RSS idle                    {} (PSS {})",
            kib(rss_idle),
            kib(pss_idle)
        );
        println!(
            "  {pods} pods at once, start to Running {:>8.1} ms  ({:.1} ms/pod)",
            start_all.as_secs_f64() * 1000.0,
            start_all.as_secs_f64() * 1000.0 / pods as f64
        );
        println!(
            "  agent RSS with {pods} pods             {} (PSS {})",
            kib(rss_pods),
            kib(pss_pods)
        );
        println!(
            "  kill -9, restart, adopt {pods} pods     {:>8.1} ms   RSS {}",
            adopt_all.as_secs_f64() * 1000.0,
            kib(rss_adopted)
        );
        println!(
            "  reset (stop + remove {pods} pods)     {:>8.1} ms",
            reset.as_secs_f64() * 1000.0
        );
        println!();
        // `reset` leaves the (empty) parent cgroup; this run's is unique, so it
        // goes, from every hierarchy (cgroup v1 has one per controller).
        let parent = CgroupFiles::detect(Path::new(&b.cgroup_parent)).expect("cgroup layout");
        for (dir, e) in parent.remove_leftovers() {
            eprintln!("warning: removing {}: {e}", dir.display());
        }
    }
}
