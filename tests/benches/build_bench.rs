//! `bramble build` of a three-step Dockerfile on a board: cold (every step
//! run), cached (the same build again: nothing runs) and after one source
//! file changed (its COPY and the RUN after it run again). Prints figures,
//! asserts nothing about time.
//!
//! `cargo bench -p bramble-tests --bench build_bench` (as root: real
//! containers) starts a real hub (embedded broker) and one real agent,
//! pushes the busybox fixture image as `bb:1`, and writes a context: a
//! Dockerfile `FROM bb:1`, `COPY app/ /app/` (64 files of 16 KiB),
//! `RUN` (a checksum of every file into `/app/SUMS`, a few hundred
//! shell-spawned processes), `WORKDIR /app`, `CMD`. Then `BUILD_RUNS`
//! times (default 5; `BENCH_QUICK=1`: 2) each: `bramble build --no-cache`
//! (cold: the context is in the registry already after the first run, so
//! this is steps only), the same build (cached), and the build after one
//! file changed. The wall time of the CLI process, from its start to the
//! image named. Needs the workspace binaries of the bench's profile beside
//! it (`scripts/bench` builds them).

use std::time::{Duration, Instant};

use bramble_tests::bench::{self, stats};
use bramble_tests::cluster::{Broker, Cluster};

const DOCKERFILE: &str = "FROM bb:1\n\
COPY app/ /app/\n\
RUN cd /app && for f in *.dat; do md5sum \"$f\"; done > /app/SUMS && wc -l /app/SUMS\n\
WORKDIR /app\n\
CMD [\"cat\", \"/app/SUMS\"]\n";

fn build(c: &Cluster, args: &[&str]) -> Duration {
    let start = Instant::now();
    let (ok, out) = c.cli(args);
    assert!(ok, "bramble {args:?}: {out}");
    start.elapsed()
}

fn main() {
    let runs = bench::size("BUILD_RUNS", 5, 2);
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().expect("a temp dir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(ctx.join("app")).expect("context dir");
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).expect("Dockerfile");
    for i in 0..64 {
        let body: Vec<u8> = (0..16 * 1024).map(|j| ((i * 7 + j) % 251) as u8).collect();
        std::fs::write(ctx.join(format!("app/{i:02}.dat")), body).expect("a file");
    }
    let ctx_s = ctx.to_str().expect("UTF-8 path");
    let (mut cold, mut cached, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let tag = |k: &str| format!("bench/app:{k}{run}");
        cold.push(build(
            &c,
            &["build", "--no-cache", "-t", &tag("cold"), ctx_s],
        ));
        cached.push(build(&c, &["build", "-t", &tag("cached"), ctx_s]));
        std::fs::write(ctx.join("app/00.dat"), format!("changed {run}")).expect("a change");
        changed.push(build(&c, &["build", "-t", &tag("changed"), ctx_s]));
    }
    println!(
        "build_bench: FROM + COPY (64 x 16 KiB) + RUN (64 md5sum) + WORKDIR, one agent, {runs} runs"
    );
    stats("cold (--no-cache)", cold);
    stats("cached (nothing runs)", cached);
    stats("one file changed (COPY, RUN again)", changed);
}
