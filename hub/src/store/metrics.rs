//! Counters the store keeps for `/metrics`: plain atomics, read at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Store counters.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    commits: AtomicU64,
    writes: AtomicU64,
    commit_micros: AtomicU64,
    revision: AtomicU64,
}

impl StoreMetrics {
    pub(super) fn record_commit(&self, writes: usize, took: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
        self.commit_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
    pub(super) fn set_revision(&self, rev: u64) {
        self.revision.fetch_max(rev, Ordering::Relaxed);
    }
    /// Transactions committed (or aborted as no-ops) by the writer.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
    /// Write requests processed.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
    /// Total time spent in batches, in seconds.
    pub fn commit_seconds(&self) -> f64 {
        self.commit_micros.load(Ordering::Relaxed) as f64 / 1e6
    }
    /// Highest revision seen.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Relaxed)
    }
}
