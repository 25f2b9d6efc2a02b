//! What every bench shares: the quick mode and sizes read from the
//! environment, a process's resident memory, and the one-line min, median
//! and max of a run's wall times.
//!
//! `BENCH_QUICK=1` (any value but empty or `0`) makes a bench use small sizes
//! (few iterations, nodes, pods, connections, short windows) so that
//! `scripts/bench --quick` runs them all in a few minutes on a debug build,
//! still through every code path of a full run. A bench's own variables
//! (`FLEET_NODES`, `APPLY_RUNS`, ...) override both defaults.

use std::time::Duration;

/// Whether `BENCH_QUICK` asks for the quick mode.
pub fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `name` from the environment if it is set to a number, else `quick` in
/// the quick mode and `full` otherwise.
pub fn size(name: &str, full: usize, quick: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(if self::quick() { quick } else { full })
}

/// `full` or, in the quick mode, `quick` (for figures no variable sets).
pub fn pick<T>(full: T, quick: T) -> T {
    if self::quick() { quick } else { full }
}

/// VmRSS of process `pid` in KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `d` in seconds with two decimals: `1.23 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Prints one line: `name` (padded to 40 columns), then the min, median
/// and max of `v` in [`secs`]. `v` must not be empty.
pub fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name:<40} min {:>8}  median {:>8}  max {:>8}",
        secs(v[0]),
        secs(v[v.len() / 2]),
        secs(v[v.len() - 1])
    );
}
