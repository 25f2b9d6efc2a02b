//! Change events and the watch log: a bounded in-memory ring of recent events
//! plus a broadcast channel for live ones.
//!
//! Invariant: every event with `revision > compacted` is in the ring, and events
//! enter the ring and the channel under one lock, so a watcher that copies the
//! backlog and subscribes under that lock sees each event exactly once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bramble_api::{ResourceInfo, Selector};
use serde_json::Value;
use tokio::sync::broadcast;

use super::StoreError;

/// `ADDED`, `MODIFIED` or `DELETED`, as Kubernetes watch events name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug)]
pub struct Event {
    pub revision: u64,
    pub resource: &'static ResourceInfo,
    pub kind: EventType,
    /// The object after the change (for `DELETED`, as it was when deleted).
    pub object: Value,
}

impl Event {
    pub fn namespace(&self) -> Option<&str> {
        self.object["metadata"]["namespace"].as_str()
    }
}

/// What a watcher wants to see.
#[derive(Debug, Clone)]
pub struct WatchFilter {
    pub resource: &'static ResourceInfo,
    /// `None` watches all namespaces.
    pub namespace: Option<String>,
    pub selector: Selector,
    /// Only this object, when set (`fieldSelector=metadata.name=x`).
    pub name: Option<String>,
}

impl WatchFilter {
    fn matches(&self, e: &Event) -> bool {
        std::ptr::eq(e.resource, self.resource)
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| e.namespace() == Some(ns))
            && self
                .name
                .as_deref()
                .is_none_or(|n| e.object["metadata"]["name"].as_str() == Some(n))
            && self
                .selector
                .matches_json(e.object["metadata"].get("labels"))
    }
}

struct Inner {
    ring: VecDeque<Arc<Event>>,
    /// Every event after this revision is in `ring`.
    compacted: u64,
}

/// The shared event log.
pub struct EventLog {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    capacity: usize,
}

impl EventLog {
    /// A log holding the last `capacity` events, starting empty at `revision`.
    pub fn new(revision: u64, capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.clamp(16, 4096));
        EventLog {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(capacity.min(1024)),
                compacted: revision,
            }),
            tx,
            capacity,
        }
    }

    /// Appends committed events (in revision order) and wakes watchers.
    pub fn publish(&self, events: Vec<Event>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            let e = Arc::new(e);
            if inner.ring.len() == self.capacity
                && let Some(old) = inner.ring.pop_front()
            {
                inner.compacted = old.revision;
            }
            inner.ring.push_back(e.clone());
            // No receivers is fine: nobody is watching.
            let _ = self.tx.send(e);
        }
    }

    /// Starts a watch for events after `from`.
    pub fn subscribe(&self, filter: WatchFilter, from: u64) -> Result<Watch, StoreError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if from < inner.compacted {
            return Err(StoreError::Gone {
                requested: from,
                oldest: inner.compacted,
            });
        }
        let backlog = inner
            .ring
            .iter()
            .filter(|e| e.revision > from && filter.matches(e))
            .cloned()
            .collect();
        let rx = self.tx.subscribe();
        Ok(Watch {
            filter,
            backlog,
            rx,
            last: from,
        })
    }

    /// Number of live watchers.
    pub fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// A stream of matching events after a revision.
pub struct Watch {
    filter: WatchFilter,
    backlog: VecDeque<Arc<Event>>,
    rx: broadcast::Receiver<Arc<Event>>,
    last: u64,
}

impl Watch {
    /// The next matching event. `Err(Gone)` if this watcher fell too far behind;
    /// `Err(Closed)` when the store shuts down.
    pub async fn next(&mut self) -> Result<Arc<Event>, StoreError> {
        if let Some(e) = self.backlog.pop_front() {
            self.last = e.revision;
            return Ok(e);
        }
        loop {
            match self.rx.recv().await {
                Ok(e) if e.revision <= self.last => continue,
                Ok(e) => {
                    self.last = e.revision;
                    if self.filter.matches(&e) {
                        return Ok(e);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Err(StoreError::Gone {
                        requested: self.last,
                        oldest: self.last + 1,
                    });
                }
                Err(broadcast::error::RecvError::Closed) => return Err(StoreError::Closed),
            }
        }
    }
}
