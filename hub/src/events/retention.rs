//! Which stored events to delete, pure: those not seen for the TTL, and in
//! each namespace those beyond the cap, least recently seen first (as
//! Kubernetes' `--event-ttl`, plus a bound an SD card can afford).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bramble_api::printing::age::parse_time;
use serde_json::Value;

/// A stored event as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub namespace: String,
    pub name: String,
    /// When it was last seen (`lastTimestamp`, else `eventTime`, else creation).
    pub last: Option<SystemTime>,
}

impl Stored {
    /// Reads a stored Event.
    pub fn of(event: &Value) -> Stored {
        let s = |p: &str| event.pointer(p).and_then(Value::as_str);
        let last = [
            "/series/lastObservedTime",
            "/lastTimestamp",
            "/eventTime",
            "/firstTimestamp",
            "/metadata/creationTimestamp",
        ]
        .iter()
        .find_map(|p| s(p).and_then(parse_time));
        Stored {
            namespace: s("/metadata/namespace").unwrap_or("default").to_string(),
            name: s("/metadata/name").unwrap_or("").to_string(),
            last,
        }
    }
}

/// `(namespace, name)` of every event to delete at `now`.
pub fn plan(
    events: &[Stored],
    now: SystemTime,
    ttl: Duration,
    cap: usize,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut kept: BTreeMap<&str, Vec<&Stored>> = BTreeMap::new();
    for e in events {
        // An event without a time is as old as can be.
        let expired = e.last.is_none_or(|t| t + ttl <= now);
        if expired {
            out.push((e.namespace.clone(), e.name.clone()));
        } else {
            kept.entry(&e.namespace).or_default().push(e);
        }
    }
    for (_, mut list) in kept {
        if list.len() <= cap {
            continue;
        }
        list.sort_by(|a, b| (a.last, &a.name).cmp(&(b.last, &b.name)));
        let excess = list.len() - cap;
        out.extend(
            list.into_iter()
                .take(excess)
                .map(|e| (e.namespace.clone(), e.name.clone())),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn ev(ns: &str, name: &str, last: u64) -> Stored {
        Stored {
            namespace: ns.into(),
            name: name.into(),
            last: Some(t(last)),
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn events_not_seen_for_the_ttl_go() {
        let events = [ev("a", "old", 0), ev("a", "new", 3000)];
        assert_eq!(plan(&events, t(3599), HOUR, 10), vec![]);
        assert_eq!(
            plan(&events, t(3600), HOUR, 10),
            vec![("a".to_string(), "old".to_string())]
        );
    }

    #[test]
    fn each_namespace_keeps_its_newest_up_to_the_cap() {
        let mut events: Vec<Stored> = (0..5).map(|i| ev("a", &format!("e{i}"), i)).collect();
        events.push(ev("b", "lone", 0));
        let gone = plan(&events, t(10), HOUR, 3);
        assert_eq!(
            gone,
            vec![("a".into(), "e0".into()), ("a".into(), "e1".into())],
            "the oldest of a; b is under its cap"
        );
    }

    #[test]
    fn the_last_time_is_read_from_a_stored_event() {
        let v = serde_json::json!({"metadata": {"name": "x", "namespace": "n"},
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:05:00Z"});
        let s = Stored::of(&v);
        assert_eq!(s.last, parse_time("2026-01-01T00:05:00Z"));
        let none = Stored::of(&serde_json::json!({"metadata": {"name": "y"}}));
        assert_eq!(plan(&[none], t(0), HOUR, 10).len(), 1, "no time: expired");
    }
}
