//! Hub metrics in Prometheus/OpenMetrics text, via `prometheus-client`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::events::EventMetrics;
use crate::store::Store;

/// Labels of an API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub code: u16,
}

/// Long-lived hub metrics; store figures are read at scrape time.
#[derive(Clone, Default)]
pub struct HubMetrics {
    requests: Family<RequestLabels, Counter>,
    started: Arc<std::sync::OnceLock<std::time::Instant>>,
    events: Arc<EventMetrics>,
}

impl HubMetrics {
    pub fn new() -> Self {
        let m = HubMetrics::default();
        let _ = m.started.set(std::time::Instant::now());
        m
    }

    /// Renders the event recorder's counters too.
    pub fn with_events(mut self, events: Arc<EventMetrics>) -> Self {
        self.events = events;
        self
    }

    /// Counts one served request.
    pub fn request(&self, method: &str, code: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                code,
            })
            .inc();
    }

    /// Renders every metric.
    pub fn render(&self, store: &Store) -> String {
        let mut reg = Registry::with_prefix("bramble");
        reg.register(
            "api_requests",
            "API requests served, by method and HTTP code",
            self.requests.clone(),
        );
        let s = store.metrics();
        reg.register(
            "store_commits",
            "Store write transactions (each a group of writes)",
            ConstCounter::new(s.commits()),
        );
        reg.register(
            "store_writes",
            "Write requests applied by the store",
            ConstCounter::new(s.writes()),
        );
        reg.register(
            "store_commit_seconds",
            "Time spent applying and committing write batches",
            ConstCounter::new(s.commit_seconds()),
        );
        reg.register(
            "store_revision",
            "Latest committed store revision",
            ConstGauge::new(s.revision() as i64),
        );
        reg.register(
            "watchers",
            "Open watch streams",
            ConstGauge::new(store.watchers() as i64),
        );
        let e = &self.events;
        for (name, help, value) in [
            (
                "events_recorded",
                "Events recorded by the hub (before deduplication)",
                e.recorded_total(),
            ),
            (
                "events_dropped",
                "Events dropped because the recorder's queue was full",
                e.dropped_total(),
            ),
            (
                "events_written",
                "Event creates and updates written to the store",
                e.written_total(),
            ),
            (
                "events_flushes",
                "Batches of event writes (each one store transaction)",
                e.flushes_total(),
            ),
            (
                "events_deleted",
                "Events deleted as expired or over a namespace's cap",
                e.deleted_total(),
            ),
        ] {
            reg.register(name, help, ConstCounter::new(value));
        }
        let uptime = self
            .started
            .get()
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        reg.register(
            "uptime_seconds",
            "Seconds since the hub started",
            ConstGauge::<f64>::new(uptime),
        );
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &reg) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}
