//! Kubernetes Events recorded by the hub's scheduler, controllers and status
//! ingest, as kube-scheduler, the controller manager and the kubelet record
//! them. [`Recorder::record`] never blocks: it queues an [`Occurrence`] for
//! one task ([`flusher`]) that deduplicates repeats into `count` +
//! `lastTimestamp` ([`correlator`]), writes each batch of events together
//! (so the store's group commit makes them one transaction: no write per
//! event on an SD card) and deletes expired events and those over a
//! namespace's cap in batches ([`retention`]). [`kubelet`] derives the pod
//! events from the status transitions the agents report.

#[cfg(test)]
mod burst_tests;
pub mod correlator;
pub mod flusher;
pub mod kubelet;
pub mod metrics;
pub mod reference;
pub mod retention;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

pub use flusher::spawn;
pub use metrics::EventMetrics;
pub use reference::Involved;

/// Flush pending events at least this often while any are pending.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// ...or as soon as this many distinct events are pending.
pub const FLUSH_PENDING: usize = 512;
/// Most events kept per namespace; the oldest (by last time seen) go first.
pub const NAMESPACE_CAP: usize = 1000;
/// Events not seen again for this long are deleted (Kubernetes' `--event-ttl`).
pub const TTL: Duration = Duration::from_secs(3600);
/// How often expired events are looked for when nothing was written.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How soon after writing new events the caps are enforced.
pub const SWEEP_AFTER_WRITE: Duration = Duration::from_secs(10);
/// Occurrences queued for the flusher; more are dropped (and counted).
pub const QUEUE: usize = 4096;
/// Stored events remembered for deduplication across flushes.
pub const REMEMBERED: usize = 2048;

/// The numbers above, overridable by tests.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    pub flush_interval: Duration,
    pub flush_pending: usize,
    pub namespace_cap: usize,
    pub ttl: Duration,
    pub sweep_interval: Duration,
    pub sweep_after_write: Duration,
    pub remembered: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            flush_interval: FLUSH_INTERVAL,
            flush_pending: FLUSH_PENDING,
            namespace_cap: NAMESPACE_CAP,
            ttl: TTL,
            sweep_interval: SWEEP_INTERVAL,
            sweep_after_write: SWEEP_AFTER_WRITE,
            remembered: REMEMBERED,
        }
    }
}

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    /// As Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Who records: `default-scheduler`, `deployment-controller`, `kubelet` on a host...
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    pub component: &'static str,
    pub host: Option<String>,
}

impl Source {
    /// A hub component (no host).
    pub const fn hub(component: &'static str) -> Source {
        Source {
            component,
            host: None,
        }
    }
}

/// One thing that happened, before deduplication.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    pub involved: Involved,
    pub type_: EventType,
    pub reason: &'static str,
    pub message: String,
    pub source: Source,
    pub at: SystemTime,
}

/// Queues occurrences for the flusher. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: Option<mpsc::Sender<Occurrence>>,
    metrics: Arc<EventMetrics>,
}

impl Recorder {
    /// A recorder feeding `tx`.
    pub(crate) fn new(tx: mpsc::Sender<Occurrence>, metrics: Arc<EventMetrics>) -> Recorder {
        Recorder {
            tx: Some(tx),
            metrics,
        }
    }

    /// A recorder that records nothing (hubs and tests without events).
    pub fn disabled() -> Recorder {
        Recorder {
            tx: None,
            metrics: Arc::default(),
        }
    }

    /// Records that `reason` happened to `involved` now. Never blocks: a
    /// full queue drops the event (counted in `bramble_events_dropped_total`).
    pub fn record(
        &self,
        involved: Involved,
        type_: EventType,
        reason: &'static str,
        message: impl Into<String>,
        source: Source,
    ) {
        self.record_occurrence(Occurrence {
            involved,
            type_,
            reason,
            message: message.into(),
            source,
            at: SystemTime::now(),
        });
    }

    /// Records a prepared occurrence (see [`Recorder::record`]).
    pub fn record_occurrence(&self, occurrence: Occurrence) {
        let Some(tx) = &self.tx else { return };
        self.metrics.recorded();
        if tx.try_send(occurrence).is_err() {
            self.metrics.dropped();
        }
    }

    /// The recorder's counters.
    pub fn metrics(&self) -> &Arc<EventMetrics> {
        &self.metrics
    }
}
