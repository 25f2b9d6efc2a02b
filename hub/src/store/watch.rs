//! Change events and the watch log: a bounded in-memory ring of recent events
//! plus a broadcast channel for live ones.
//!
//! Invariant: every event with `revision > compacted` is in the ring, and events
//! enter the ring and the channel under one lock, so a watcher that copies the
//! backlog and subscribes under that lock sees each event exactly once.
//!
//! A watch with a label or field selector sees objects enter and leave its
//! selection as the Kubernetes API server's watch cache shows them: a change
//! that makes an object match is `ADDED`, one that makes it stop matching is
//! `DELETED` with the object as it was (at the change's resourceVersion). For
//! that, a `MODIFIED` event keeps the previous object when its labels or a
//! selectable field changed (rare: a pod's binding, phase or IP).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use bramble_api::field_selector::FieldSelector;
use bramble_api::{ResourceInfo, Selector};
use bytes::Bytes;
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

/// One committed change, kept compact: the watch line is serialized once, and
/// only what filters need is kept decoded.
#[derive(Debug)]
pub struct Event {
    pub revision: u64,
    pub resource: &'static ResourceInfo,
    pub kind: EventType,
    pub namespace: Option<String>,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `{"type":"...","object":{...}}\n`, as a watch stream sends it.
    line: Bytes,
    /// Where the object's JSON sits inside `line`.
    object_at: std::ops::Range<usize>,
    /// For `MODIFIED`: the object before the change, when its labels or a
    /// selectable field differ from the new one's (else selections cannot
    /// tell the two apart).
    prev: Option<Prev>,
}

/// The object before a change, as selections need it.
#[derive(Debug)]
struct Prev {
    labels: BTreeMap<String, String>,
    json: Bytes,
}

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `before` and `after` can differ to any selector on `resource`.
fn selection_may_differ(resource: &ResourceInfo, before: &Value, after: &Value) -> bool {
    before["metadata"]["labels"] != after["metadata"]["labels"]
        || bramble_api::field_selector::selectable_pointers(resource.kind)
            .any(|p| before.pointer(&p) != after.pointer(&p))
}

impl Event {
    /// Builds an event for `object` (after the change; for `DELETED`, as it was),
    /// reusing `json` when the caller already serialized it.
    pub fn new(
        revision: u64,
        resource: &'static ResourceInfo,
        kind: EventType,
        object: &Value,
        json: Option<&[u8]>,
    ) -> Event {
        let owned;
        let json = match json {
            Some(j) => j,
            None => {
                owned = serde_json::to_vec(object).expect("JSON values always serialize");
                &owned
            }
        };
        let head = format!("{{\"type\":\"{}\",\"object\":", kind.as_str());
        let mut line = Vec::with_capacity(head.len() + json.len() + 2);
        line.extend_from_slice(head.as_bytes());
        line.extend_from_slice(json);
        line.extend_from_slice(b"}\n");
        let meta = &object["metadata"];
        Event {
            revision,
            resource,
            kind,
            namespace: meta["namespace"].as_str().map(str::to_string),
            name: meta["name"].as_str().unwrap_or("").to_string(),
            labels: labels_of(object),
            object_at: head.len()..head.len() + json.len(),
            line: Bytes::from(line),
            prev: None,
        }
    }

    /// A `MODIFIED` event for `object`, which was `before`: keeps `before`
    /// if a selector could tell the two apart.
    pub fn modified(
        revision: u64,
        resource: &'static ResourceInfo,
        before: &Value,
        object: &Value,
        json: Option<&[u8]>,
    ) -> Event {
        let mut e = Event::new(revision, resource, EventType::Modified, object, json);
        if selection_may_differ(resource, before, object) {
            e.prev = Some(Prev {
                labels: labels_of(before),
                json: Bytes::from(
                    serde_json::to_vec(before).expect("JSON values always serialize"),
                ),
            });
        }
        e
    }

    /// The watch-stream line for this event.
    pub fn line(&self) -> Bytes {
        self.line.clone()
    }

    /// The object's JSON.
    pub fn object_json(&self) -> &[u8] {
        &self.line[self.object_at.clone()]
    }

    /// The object, decoded.
    pub fn object(&self) -> Value {
        serde_json::from_slice(self.object_json()).expect("events hold valid JSON")
    }

    fn size(&self) -> usize {
        self.line.len() + 128 + self.prev.as_ref().map_or(0, |p| p.json.len())
    }

    /// This change as a watch that sees the object enter its selection
    /// shows it: `ADDED`, same revision and object.
    fn entering(&self) -> Event {
        Event::new(
            self.revision,
            self.resource,
            EventType::Added,
            &self.object(),
            Some(self.object_json()),
        )
    }

    /// This change as a watch that sees the object leave its selection
    /// shows it: `DELETED`, the object as it was, at this revision.
    fn leaving(&self, prev: &Prev) -> Event {
        let mut before: Value = serde_json::from_slice(&prev.json).expect("events hold valid JSON");
        if let Some(meta) = before["metadata"].as_object_mut() {
            meta.insert("resourceVersion".into(), self.revision.to_string().into());
        }
        Event::new(
            self.revision,
            self.resource,
            EventType::Deleted,
            &before,
            None,
        )
    }
}

/// What a watcher wants to see.
#[derive(Debug, Clone)]
pub struct WatchFilter {
    pub resource: &'static ResourceInfo,
    /// `None` watches all namespaces.
    pub namespace: Option<String>,
    pub selector: Selector,
    /// `fieldSelector`: names are checked from the event, other fields
    /// (`spec.nodeName`...) from its object.
    pub fields: FieldSelector,
}

impl WatchFilter {
    /// Whether the fields of `object` (decoded only if a term needs more
    /// than the name and namespace) satisfy the field selector.
    fn fields_match(&self, e: &Event, object: impl FnOnce() -> Value) -> bool {
        if self.fields.is_empty() {
            return true;
        }
        let on_metadata = self
            .fields
            .terms
            .iter()
            .all(|t| t.field == "metadata.name" || t.field == "metadata.namespace");
        if on_metadata {
            let meta = serde_json::json!({"metadata": {"name": e.name, "namespace": e.namespace}});
            self.fields.matches(&meta)
        } else {
            self.fields.matches(&object())
        }
    }

    /// Whether `e` is about this watch's kind and namespace.
    fn in_scope(&self, e: &Event) -> bool {
        std::ptr::eq(e.resource, self.resource)
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| e.namespace.as_deref() == Some(ns))
    }

    /// What a watcher with this filter sees of `e`: the event itself, its
    /// `ADDED` or `DELETED` form when the object enters or leaves the
    /// selection, or nothing.
    fn deliver(&self, e: &Arc<Event>) -> Option<Arc<Event>> {
        if !self.in_scope(e) {
            return None;
        }
        let now = self.selector.matches(&e.labels) && self.fields_match(e, || e.object());
        let before = match &e.prev {
            None => now,
            Some(p) => {
                self.selector.matches(&p.labels)
                    && self.fields_match(e, || {
                        serde_json::from_slice(&p.json).expect("events hold valid JSON")
                    })
            }
        };
        match (before, now, &e.prev) {
            (true, true, _) => Some(e.clone()),
            (false, true, _) => Some(Arc::new(e.entering())),
            (true, false, Some(p)) => Some(Arc::new(e.leaving(p))),
            _ => None,
        }
    }
}

struct Inner {
    ring: VecDeque<Arc<Event>>,
    /// Approximate bytes held by `ring`.
    bytes: usize,
    /// Every event after this revision is in `ring`.
    compacted: u64,
}

/// The shared event log.
pub struct EventLog {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    capacity: usize,
    max_bytes: usize,
}

impl EventLog {
    /// A log holding at most the last `capacity` events and about `max_bytes`
    /// of them, starting empty at `revision`.
    pub fn new(revision: u64, capacity: usize, max_bytes: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.clamp(16, 4096));
        EventLog {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(capacity.min(1024)),
                bytes: 0,
                compacted: revision,
            }),
            tx,
            capacity,
            max_bytes,
        }
    }

    /// Appends committed events (in revision order) and wakes watchers.
    pub fn publish(&self, events: Vec<Event>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            let e = Arc::new(e);
            inner.bytes += e.size();
            inner.ring.push_back(e.clone());
            while inner.ring.len() > self.capacity || inner.bytes > self.max_bytes {
                let Some(old) = inner.ring.pop_front() else {
                    break;
                };
                inner.bytes -= old.size();
                inner.compacted = old.revision;
            }
            // No receivers is fine: nobody is watching.
            let _ = self.tx.send(e);
        }
    }

    /// Every event committed from now on, unfiltered (for in-process
    /// loops that re-read the store on any change).
    pub fn raw(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
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
            .filter(|e| e.revision > from)
            .filter_map(|e| filter.deliver(e))
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
    /// The revision this watch has read up to: every event at or below it
    /// was delivered or did not match (a bookmark's resourceVersion).
    pub fn progress(&self) -> u64 {
        self.last
    }

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
                    if let Some(e) = self.filter.deliver(&e) {
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
