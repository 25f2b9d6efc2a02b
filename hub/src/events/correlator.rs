//! Deduplication and batching, pure (time comes in with each call): repeats
//! of one event (same involved object, type, reason, message and source, as
//! client-go's `EventCorrelator` keys them) become `count + 1` and a new
//! `lastTimestamp` of one stored Event; what changed since the last flush is
//! taken as one batch of creates and updates.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bramble_api::objects::event::truncate_message;
use serde_json::{Value, json};

use super::{EventType, Occurrence};

/// What makes two occurrences the same event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// The uid, or `namespace/kind/name` for an object without one.
    object: String,
    field_path: Option<String>,
    type_: EventType,
    reason: &'static str,
    message: String,
    component: &'static str,
    host: Option<String>,
}

impl Key {
    fn of(o: &Occurrence) -> Key {
        let i = &o.involved;
        Key {
            object: if i.uid.is_empty() {
                format!("{}/{}/{}", i.namespace, i.kind, i.name)
            } else {
                i.uid.clone()
            },
            field_path: i.field_path.clone(),
            type_: o.type_,
            reason: o.reason,
            message: o.message.clone(),
            component: o.source.component,
            host: o.source.host.clone(),
        }
    }
}

/// One write of a flush.
#[derive(Debug, Clone, PartialEq)]
pub enum EventWrite {
    /// A new Event.
    Create(Value),
    /// A known Event with a higher `count` and a later `lastTimestamp`.
    Update(Value),
}

impl EventWrite {
    /// The Event written.
    pub fn object(&self) -> &Value {
        match self {
            EventWrite::Create(v) | EventWrite::Update(v) => v,
        }
    }
}

#[derive(Debug)]
struct Entry {
    object: Value,
    /// Whether the store has it (an update, not a create, writes it next).
    stored: bool,
    /// Changed since the last flush.
    pending: bool,
    last_seen: SystemTime,
}

/// The recorder's memory of recent events.
#[derive(Debug)]
pub struct Correlator {
    entries: HashMap<Key, Entry>,
    /// Keys changed since the last flush, in the order first changed.
    pending: Vec<Key>,
    /// When the oldest pending change happened.
    pending_since: Option<SystemTime>,
    /// Entries kept once flushed (the least recently seen go first).
    remembered: usize,
    /// Disambiguates names made in the same nanosecond.
    seq: u64,
}

impl Correlator {
    /// A correlator remembering up to `remembered` flushed events.
    pub fn new(remembered: usize) -> Correlator {
        Correlator {
            entries: HashMap::new(),
            pending: Vec::new(),
            pending_since: None,
            remembered,
            seq: 0,
        }
    }

    /// Takes one occurrence in.
    pub fn observe(&mut self, o: Occurrence) {
        let key = Key::of(&o);
        let at = stamp(o.at);
        let entry = match self.entries.get_mut(&key) {
            Some(e) => {
                let count = e.object["count"].as_i64().unwrap_or(1) + 1;
                e.object["count"] = count.into();
                e.object["lastTimestamp"] = at.into();
                e.last_seen = e.last_seen.max(o.at);
                e
            }
            None => {
                self.seq += 1;
                let object = new_event(&o, self.seq);
                self.entries.entry(key.clone()).or_insert(Entry {
                    object,
                    stored: false,
                    pending: false,
                    last_seen: o.at,
                })
            }
        };
        if !entry.pending {
            entry.pending = true;
            self.pending.push(key);
            self.pending_since = Some(self.pending_since.map_or(o.at, |t| t.min(o.at)));
        }
    }

    /// Distinct events waiting for a flush.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// When the pending events must be flushed at the latest (`None`: nothing pending).
    pub fn deadline(&self, interval: Duration) -> Option<SystemTime> {
        self.pending_since.map(|t| t + interval)
    }

    /// Whether a flush is due at `now`.
    pub fn due(&self, now: SystemTime, interval: Duration, max_pending: usize) -> bool {
        self.pending.len() >= max_pending || self.deadline(interval).is_some_and(|d| now >= d)
    }

    /// Every pending change as one batch; forgets the least recently seen
    /// flushed events beyond the memory's size.
    pub fn take(&mut self) -> Vec<EventWrite> {
        self.pending_since = None;
        let mut out = Vec::with_capacity(self.pending.len());
        for key in std::mem::take(&mut self.pending) {
            let Some(e) = self.entries.get_mut(&key) else {
                continue;
            };
            e.pending = false;
            out.push(if e.stored {
                EventWrite::Update(e.object.clone())
            } else {
                EventWrite::Create(e.object.clone())
            });
            e.stored = true;
        }
        if self.entries.len() > self.remembered {
            let mut idle: Vec<(SystemTime, Key)> = self
                .entries
                .iter()
                .filter(|(_, e)| !e.pending)
                .map(|(k, e)| (e.last_seen, k.clone()))
                .collect();
            idle.sort_by_key(|(t, _)| *t);
            let excess = self.entries.len() - self.remembered;
            for (_, k) in idle.into_iter().take(excess) {
                self.entries.remove(&k);
            }
        }
        out
    }

    /// Forgets a stored event (deleted by retention or by a user): a repeat
    /// makes a new one.
    pub fn forget(&mut self, namespace: &str, name: &str) {
        self.entries.retain(|_, e| {
            e.pending
                || e.object["metadata"]["namespace"] != namespace
                || e.object["metadata"]["name"] != name
        });
    }

    /// Marks an event as not stored (its update found it gone): the next
    /// flush creates it again.
    pub fn mark_missing(&mut self, namespace: &str, name: &str) {
        for e in self.entries.values_mut() {
            if e.object["metadata"]["namespace"] == namespace
                && e.object["metadata"]["name"] == name
            {
                e.stored = false;
            }
        }
    }

    /// Events remembered (pending or flushed).
    pub fn remembered(&self) -> usize {
        self.entries.len()
    }
}

/// RFC 3339 with seconds, as Kubernetes' `metav1.Time`.
pub fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A new Event named as client-go names them: `<object>.<hex nanoseconds>`.
fn new_event(o: &Occurrence, seq: u64) -> Value {
    let nanos =
        o.at.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
    let name = format!("{}.{:x}", o.involved.name, nanos.wrapping_add(seq));
    let at = stamp(o.at);
    let mut source = json!({"component": o.source.component});
    if let Some(h) = &o.source.host {
        source["host"] = h.clone().into();
    }
    let mut v = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": o.involved.event_namespace()},
        "involvedObject": o.involved.to_json(),
        "reason": o.reason,
        "message": truncate_message(&o.message),
        "source": source,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
        "type": o.type_.as_str(),
        "reportingComponent": o.source.component,
    });
    if let Some(h) = &o.source.host {
        v["reportingInstance"] = h.clone().into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Involved, Source};

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn pod(name: &str) -> Involved {
        Involved {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            field_path: None,
        }
    }

    fn occ(pod_name: &str, reason: &'static str, message: &str, at: SystemTime) -> Occurrence {
        Occurrence {
            involved: pod(pod_name),
            type_: EventType::Warning,
            reason,
            message: message.into(),
            source: Source::hub("default-scheduler"),
            at,
        }
    }

    #[test]
    fn repeats_become_one_event_with_a_count_and_the_last_time() {
        let mut c = Correlator::new(100);
        for s in 0..3 {
            c.observe(occ("web", "FailedScheduling", "0/0 nodes", t(s)));
        }
        let w = c.take();
        assert_eq!(w.len(), 1);
        let EventWrite::Create(e) = &w[0] else {
            panic!("first write is a create: {w:?}")
        };
        assert_eq!(e["count"], 3);
        assert_eq!(e["firstTimestamp"], stamp(t(0)));
        assert_eq!(e["lastTimestamp"], stamp(t(2)));
        assert_eq!(e["involvedObject"]["uid"], "uid-web");
        // Seen again after the flush: an update of the same object.
        c.observe(occ("web", "FailedScheduling", "0/0 nodes", t(10)));
        let w = c.take();
        assert!(matches!(&w[..], [EventWrite::Update(u)] if u["count"] == 4
            && u["metadata"]["name"] == e["metadata"]["name"]));
    }

    #[test]
    fn another_message_or_object_is_another_event() {
        let mut c = Correlator::new(100);
        c.observe(occ("web", "FailedScheduling", "0/0 nodes", t(0)));
        c.observe(occ("web", "FailedScheduling", "0/1 nodes", t(0)));
        c.observe(occ("db", "FailedScheduling", "0/0 nodes", t(0)));
        let w = c.take();
        assert_eq!(w.len(), 3);
        let names: std::collections::HashSet<_> = w
            .iter()
            .map(|w| w.object()["metadata"]["name"].clone())
            .collect();
        assert_eq!(names.len(), 3, "unique names even in one nanosecond");
    }

    #[test]
    fn a_flush_is_due_after_the_interval_or_at_the_pending_limit() {
        let mut c = Correlator::new(100);
        let second = Duration::from_secs(1);
        assert!(!c.due(t(100), second, 3), "nothing pending");
        c.observe(occ("a", "Started", "x", t(0)));
        assert!(!c.due(t(0), second, 3));
        assert!(c.due(t(1), second, 3));
        c.observe(occ("b", "Started", "x", t(0)));
        c.observe(occ("c", "Started", "x", t(0)));
        assert!(c.due(t(0), second, 3), "three pending");
        assert_eq!(c.take().len(), 3);
        assert!(!c.due(t(5), second, 3), "flushed");
        assert_eq!(c.deadline(second), None);
    }

    #[test]
    fn a_thousand_occurrences_of_many_pods_are_one_batch() {
        let mut c = Correlator::new(2048);
        for i in 0..1000 {
            c.observe(occ(&format!("p{}", i % 250), "BackOff", "restarting", t(i)));
        }
        let w = c.take();
        assert_eq!(w.len(), 250, "deduplicated per pod");
        assert!(w.iter().all(|w| w.object()["count"] == 4));
        assert!(c.take().is_empty());
    }

    #[test]
    fn memory_is_bounded_and_forgetting_makes_a_new_event() {
        let mut c = Correlator::new(2);
        for (i, p) in ["a", "b", "c"].iter().enumerate() {
            c.observe(occ(p, "Started", "x", t(i as u64)));
        }
        c.take();
        assert_eq!(c.remembered(), 2, "the least recently seen is forgotten");
        c.observe(occ("a", "Started", "x", t(9)));
        assert!(matches!(&c.take()[..], [EventWrite::Create(e)] if e["count"] == 1));
        let name = c.entries.values().next().unwrap().object["metadata"]["name"].clone();
        c.mark_missing("default", name.as_str().unwrap());
        c.observe(occ("c", "Started", "x", t(10)));
        c.observe(occ("a", "Started", "x", t(10)));
        let w = c.take();
        assert!(w.iter().any(|w| matches!(w, EventWrite::Create(_))));
    }

    #[test]
    fn long_messages_are_truncated() {
        let mut c = Correlator::new(10);
        c.observe(occ("a", "Failed", &"x".repeat(5000), t(0)));
        let w = c.take();
        assert_eq!(w[0].object()["message"].as_str().unwrap().len(), 1024);
    }
}
