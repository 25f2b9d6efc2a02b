//! Container latency through each runtime backend (libcontainer, then the
//! OCI binary backend driving runc), cached image:
//! create-to-running (create + start) and the full create/start/wait/delete
//! of `true`, p50/p99 over N runs (default 100, `BENCH_RUNS` to change).
//! The overlay rootfs is prepared before each run and not timed (printed
//! separately). Then what the default seccomp filter costs a syscall-bound
//! container (busybox `dd bs=1`, filtered vs unconfined). Needs root.
//! Prints figures; asserts nothing about time.
//!
//! `cargo bench -p bramble-agent --bench runtime_bench`; `BENCH_QUICK=1`: 5 runs
//! per backend (`BENCH_RUNS` overrides it).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use bramble_agent::runtime::ExitStatus;
use common::{Backend, Sandbox};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<28} p50 {:>7.2} ms   p99 {:>7.2} ms   min {:>7.2} ms   max {:>7.2} ms",
        ms(pct(&v, 0.50)),
        ms(pct(&v, 0.99)),
        ms(v[0]),
        ms(v[v.len() - 1]),
    );
}

fn main() {
    let runs = bramble_tests::bench::size("BENCH_RUNS", 100, 5).max(1);
    common::image(); // unpack once: the image is cached
    // Removed memory cgroups linger in the kernel ("dying") while memory is
    // still charged to them; hundreds of them (after many test runs) make
    // every cgroup creation, so every create, several ms slower. Dropping
    // the caches releases them: BENCH_DROP_CACHES=1 does that first.
    if std::env::var_os("BENCH_DROP_CACHES").is_some() {
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    }
    println!("memory cgroups in the kernel: {}\n", memory_cgroups());
    for (backend, name) in [
        (Backend::Libcontainer, "libcontainer"),
        (Backend::Runc, "runc"),
    ] {
        bench(backend, name, runs);
        seccomp_cost(backend, name);
        println!(
            "memory cgroups in the kernel after it: {}\n",
            memory_cgroups()
        );
    }
}

/// What the default seccomp filter costs a syscall-bound container: busybox
/// `dd bs=1` (a read and a write per byte) under `RuntimeDefault` and
/// `Unconfined`, best of 3 each; the difference over the syscalls made.
fn seccomp_cost(backend: Backend, name: &str) {
    use bramble_agent::runtime::seccomp::SeccompPolicy;
    let bytes = bramble_tests::bench::pick(1_000_000u64, 100_000);
    let sb = Sandbox::with_backend(&format!("bench-seccomp-{name}"), backend);
    let count = format!("count={bytes}");
    let best = |policy: SeccompPolicy, label: &str| {
        (0..3)
            .map(|i| {
                let mut cfg = sb.config(
                    &format!("{label}{i}"),
                    &["dd", "if=/dev/zero", "of=/dev/null", "bs=1", &count],
                );
                cfg.seccomp = policy.clone();
                let t = Instant::now();
                let h = sb.runtime.create(&cfg).expect("create");
                sb.runtime.start(&h).expect("start");
                let status = sb
                    .runtime
                    .wait(&h, Some(Duration::from_secs(600)))
                    .expect("wait");
                let took = t.elapsed();
                assert_eq!(status, Some(ExitStatus::Code(0)), "dd failed");
                sb.runtime.delete(&h).expect("delete");
                took
            })
            .min()
            .expect("three runs")
    };
    let filtered = best(SeccompPolicy::RuntimeDefault, "f");
    let unconfined = best(SeccompPolicy::Unconfined, "u");
    let syscalls = 2 * bytes;
    let per = (filtered.as_secs_f64() - unconfined.as_secs_f64()) / syscalls as f64 * 1e9;
    println!(
        "seccomp: dd bs=1 count={bytes} ({syscalls} syscalls): RuntimeDefault {:.0} ms, \
         Unconfined {:.0} ms: {per:.0} ns per syscall",
        filtered.as_secs_f64() * 1e3,
        unconfined.as_secs_f64() * 1e3
    );
}

/// `num_cgroups` of the memory controller (live and dying).
fn memory_cgroups() -> String {
    std::fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("memory"))
        .and_then(|l| l.split_whitespace().nth(2).map(String::from))
        .unwrap_or_else(|| "? (cgroup v2: see /sys/fs/cgroup/cgroup.stat)".into())
}

fn bench(backend: Backend, name: &str, runs: usize) {
    let sb = Sandbox::with_backend(&format!("bench-{name}"), backend);
    let (mut prepare, mut create, mut start, mut wait, mut delete) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut to_running, mut full) = (Vec::new(), Vec::new());
    let total = Instant::now();
    for i in 0..runs {
        let t = Instant::now();
        let cfg = sb.config(&format!("r{i}"), &["true"]);
        prepare.push(t.elapsed());

        let t0 = Instant::now();
        let h = sb.runtime.create(&cfg).expect("create");
        let t1 = Instant::now();
        sb.runtime.start(&h).expect("start");
        let t2 = Instant::now();
        let status = sb
            .runtime
            .wait(&h, Some(Duration::from_secs(30)))
            .expect("wait");
        let t3 = Instant::now();
        assert_eq!(status, Some(ExitStatus::Code(0)), "`true` failed");
        sb.runtime.delete(&h).expect("delete");
        let t4 = Instant::now();

        create.push(t1 - t0);
        start.push(t2 - t1);
        wait.push(t3 - t2);
        delete.push(t4 - t3);
        to_running.push(t2 - t0);
        full.push(t4 - t0);
    }
    println!(
        "{name} backend, `true` from the cached busybox image, {runs} runs in {:.1} s",
        total.elapsed().as_secs_f64()
    );
    report("create-to-running", to_running);
    report("create+start+wait+delete", full);
    report("  create", create);
    report("  start", start);
    report("  wait (exit observed)", wait);
    report("  delete", delete);
    report("rootfs prepare (untimed)", prepare);
}
