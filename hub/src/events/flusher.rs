//! The recorder's task: takes occurrences from the queue into the
//! [`Correlator`], flushes a batch when one is due (all its writes in one
//! store transaction, [`Store::write_all`]) and enforces the TTL and the
//! namespace caps ([`retention`]) after writes and once a while, deleting in
//! one transaction too. On shutdown it flushes what is pending.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bramble_api::ResourceInfo;
use bramble_api::resource::by_plural;
use bramble_api::selector::Selector;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::correlator::{Correlator, EventWrite};
use super::retention::{self, Stored};
use super::{EventMetrics, EventsConfig, Occurrence, QUEUE, Recorder};
use crate::store::{Store, StoreError, WriteOp, WriteOutcome};

/// The `events` resource.
pub fn events() -> &'static ResourceInfo {
    by_plural("", "v1", "events").expect("events are registered")
}

/// Starts the flusher; returns the recorder feeding it and the task, which
/// ends (after a last flush) when `shutdown` turns true.
pub fn spawn(
    store: Store,
    config: EventsConfig,
    metrics: Arc<EventMetrics>,
    shutdown: watch::Receiver<bool>,
) -> (Recorder, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let recorder = Recorder::new(tx, metrics.clone());
    let task = tokio::spawn(run(store, config, rx, metrics, shutdown));
    (recorder, task)
}

async fn run(
    store: Store,
    config: EventsConfig,
    mut rx: mpsc::Receiver<Occurrence>,
    metrics: Arc<EventMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut c = Correlator::new(config.remembered);
    let mut last_sweep = Instant::now();
    let mut created_since_sweep = false;
    // The first sweep comes soon after start: a hub that was down for
    // hours has expired events.
    let mut sweep_every = config.sweep_after_write;
    loop {
        let flush_in = c
            .deadline(config.flush_interval)
            .map(|d| d.duration_since(SystemTime::now()).unwrap_or_default());
        let sweep_in = sweep_every.saturating_sub(last_sweep.elapsed());
        let mut stopping = false;
        tokio::select! {
            got = rx.recv() => match got {
                Some(o) => {
                    c.observe(o);
                    while c.pending() < config.flush_pending {
                        let Ok(o) = rx.try_recv() else { break };
                        c.observe(o);
                    }
                }
                None => stopping = true,
            },
            _ = tokio::time::sleep(flush_in.unwrap_or(Duration::MAX / 4)), if flush_in.is_some() => {}
            _ = tokio::time::sleep(sweep_in) => {}
            _ = shutdown.changed() => stopping = true,
        }
        if stopping || *shutdown.borrow() {
            while let Ok(o) = rx.try_recv() {
                c.observe(o);
            }
            flush(&store, &mut c, &metrics).await;
            return;
        }
        if c.due(
            SystemTime::now(),
            config.flush_interval,
            config.flush_pending,
        ) {
            created_since_sweep |= flush(&store, &mut c, &metrics).await;
        }
        let sweep_due = last_sweep.elapsed() >= sweep_every;
        if sweep_due {
            sweep(&store, &config, &mut c, &metrics).await;
            last_sweep = Instant::now();
            created_since_sweep = false;
        }
        sweep_every = if created_since_sweep {
            config.sweep_after_write
        } else {
            config.sweep_interval
        };
    }
}

/// Writes the pending batch in one transaction; returns whether it created
/// events.
async fn flush(store: &Store, c: &mut Correlator, metrics: &EventMetrics) -> bool {
    let writes = c.take();
    if writes.is_empty() {
        return false;
    }
    let created = writes.iter().any(|w| matches!(w, EventWrite::Create(_)));
    let n = writes.len();
    let results = store.write_all(writes.iter().map(op).collect()).await;
    metrics.flushed(n);
    // Updates of events deleted meanwhile (TTL, cap, a user): created again.
    let mut again = Vec::new();
    for (w, r) in writes.into_iter().zip(results) {
        match (w, r) {
            (_, Ok(_)) => {}
            (EventWrite::Update(v), Err(StoreError::NotFound { .. })) => {
                again.push(EventWrite::Create(v))
            }
            (w, Err(StoreError::NamespaceNotFound(ns))) => {
                let name = w.object()["metadata"]["name"].as_str().unwrap_or("");
                tracing::debug!(namespace = %ns, event = name, "namespace gone; event dropped");
                c.forget(&ns, name);
            }
            (_, Err(StoreError::AlreadyExists { .. })) => {}
            (w, Err(e)) => {
                tracing::warn!(event = %w.object()["metadata"]["name"], error = %e, "writing an event failed")
            }
        }
    }
    if !again.is_empty() {
        let n = again.len();
        for r in store.write_all(again.iter().map(op).collect()).await {
            if let Err(e) = r {
                tracing::debug!(error = %e, "recreating an event failed");
            }
        }
        metrics.flushed(n);
    }
    created
}

fn op(w: &EventWrite) -> WriteOp {
    match w {
        EventWrite::Create(v) => WriteOp::Create {
            resource: events(),
            object: v.clone(),
        },
        EventWrite::Update(v) => WriteOp::Update {
            resource: events(),
            object: v.clone(),
        },
    }
}

/// Deletes expired events and those over their namespace's cap, in one transaction.
async fn sweep(store: &Store, config: &EventsConfig, c: &mut Correlator, metrics: &EventMetrics) {
    let listed = match store.list(events(), None, &Selector::default()) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "listing events for retention failed");
            return;
        }
    };
    let stored: Vec<Stored> = listed.items.iter().map(Stored::of).collect();
    let gone = retention::plan(&stored, SystemTime::now(), config.ttl, config.namespace_cap);
    if gone.is_empty() {
        return;
    }
    let ops = gone
        .iter()
        .map(|(ns, name)| WriteOp::Delete {
            resource: events(),
            namespace: Some(ns.clone()),
            name: name.clone(),
            precondition: None,
        })
        .collect();
    let results = store.write_all(ops).await;
    let deleted = results
        .iter()
        .filter(|r| matches!(r, Ok(WriteOutcome::Deleted(_))))
        .count();
    for (ns, name) in &gone {
        c.forget(ns, name);
    }
    metrics.deleted_n(deleted);
    tracing::debug!(deleted, "expired and excess events deleted");
}
