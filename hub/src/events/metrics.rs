//! Counters of the event recorder for `/metrics`: plain atomics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Event recorder counters.
#[derive(Debug, Default)]
pub struct EventMetrics {
    recorded: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    flushes: AtomicU64,
    deleted: AtomicU64,
}

impl EventMetrics {
    pub(super) fn recorded(&self) {
        self.recorded.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn flushed(&self, writes: usize) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.written.fetch_add(writes as u64, Ordering::Relaxed);
    }
    pub(super) fn deleted_n(&self, n: usize) {
        self.deleted.fetch_add(n as u64, Ordering::Relaxed);
    }
    /// Occurrences recorded (before deduplication).
    pub fn recorded_total(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }
    /// Occurrences dropped because the queue was full.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Event creates and updates written.
    pub fn written_total(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
    /// Flushes (each one batch of writes issued together).
    pub fn flushes_total(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
    /// Events deleted as expired or over a namespace's cap.
    pub fn deleted_total(&self) -> u64 {
        self.deleted.load(Ordering::Relaxed)
    }
}
