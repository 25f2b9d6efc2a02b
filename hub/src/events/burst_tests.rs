//! The recorder against a real store: a burst of 1,000 events of many pods
//! is a couple of transactions, where one write per event is 1,000; caps
//! and the TTL delete in batches; pending events are flushed at shutdown.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bramble_api::Selector;
use serde_json::json;
use tokio::sync::watch;

use super::flusher::events;
use super::{EventMetrics, EventType, EventsConfig, Involved, Occurrence, Source};
use crate::store::Store;

async fn store(dir: &std::path::Path) -> Store {
    crate::testing::store_with_default_namespace(&dir.join("state.redb")).await
}

fn occurrence(i: usize, at: SystemTime) -> Occurrence {
    Occurrence {
        involved: Involved {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: "default".into(),
            name: format!("web-{i}"),
            uid: format!("uid-{i}"),
            field_path: None,
        },
        type_: EventType::Warning,
        reason: "FailedScheduling",
        message: "0/0 nodes are available: no nodes registered.".into(),
        source: Source::hub("default-scheduler"),
        at,
    }
}

/// Bytes this process handed to `write(2)` so far (`wchar`), Linux only.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("wchar: ").map(|v| v.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_thousand_events_is_a_few_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let (stop, stop_rx) = watch::channel(false);
    let metrics = Arc::new(EventMetrics::default());
    let (recorder, task) = super::spawn(
        store.clone(),
        EventsConfig::default(),
        metrics.clone(),
        stop_rx,
    );
    let (commits, bytes) = (store.metrics().commits(), written_bytes());
    let now = SystemTime::now();
    for i in 0..1000 {
        recorder.record_occurrence(occurrence(i, now));
        // Every pod's scheduler retries once more: deduplicated into count 2.
        recorder.record_occurrence(occurrence(i, now));
    }
    // Flushed as the recorder does while running: at the pending limit or
    // after the interval, whichever comes first.
    // (The recorder stops before any assertion fails.)
    let stored = bramble_tests::try_eventually_async(Duration::from_secs(10), async || {
        let items = store
            .list(events(), None, &Selector::default())
            .unwrap()
            .items;
        if items.len() == 1000 {
            Ok(items)
        } else {
            Err(format!("{} events", items.len()))
        }
    })
    .await;
    let batched = store.metrics().commits() - commits;
    let batched_bytes = written_bytes() - bytes;
    stop.send(true).unwrap();
    task.await.unwrap();
    let stored = stored.unwrap_or_else(|t| panic!("1000 events not stored {t}"));
    assert_eq!(stored.len(), 1000);
    assert!(stored.iter().all(|e| e["count"] == 2));
    assert_eq!(metrics.dropped_total(), 0);

    // The same events written one by one, as a recorder without batching would.
    let (commits, bytes) = (store.metrics().commits(), written_bytes());
    for (i, e) in stored.into_iter().enumerate() {
        let mut e = e;
        e["metadata"] = json!({"name": format!("single-{i}"), "namespace": "default"});
        store.create(events(), e).await.unwrap();
    }
    let single = store.metrics().commits() - commits;
    let single_bytes = written_bytes() - bytes;
    eprintln!(
        "1000 events (2000 occurrences): batched {batched} transactions, {batched_bytes} bytes written; \
         one by one {single} transactions, {single_bytes} bytes written"
    );
    assert!(batched <= 3, "{batched} transactions for one burst");
    assert!(single >= 990, "{single}: about one transaction per event");
    store.shutdown().await;
}

#[tokio::test]
async fn caps_and_the_ttl_delete_in_one_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let (stop, stop_rx) = watch::channel(false);
    let config = EventsConfig {
        namespace_cap: 10,
        flush_interval: Duration::from_millis(10),
        sweep_after_write: Duration::from_millis(50),
        ..EventsConfig::default()
    };
    let (recorder, task) = super::spawn(store.clone(), config, Arc::default(), stop_rx);
    let old = SystemTime::now() - Duration::from_secs(7200);
    for i in 0..5 {
        recorder.record_occurrence(occurrence(100 + i, old));
    }
    for i in 0..20 {
        recorder.record_occurrence(occurrence(i, SystemTime::now()));
    }
    let names = bramble_tests::eventually_async(
        "10 events kept (capped)",
        Duration::from_secs(10),
        async || {
            let names: Vec<String> = store
                .list(events(), None, &Selector::default())
                .unwrap()
                .items
                .iter()
                .map(|e| e["involvedObject"]["name"].as_str().unwrap().to_string())
                .collect();
            if names.len() == 10 {
                Ok(names)
            } else {
                Err(format!("{names:?}"))
            }
        },
    )
    .await;
    assert_eq!(names.len(), 10, "capped: {names:?}");
    assert!(
        names
            .iter()
            .all(|n| !(100..105).any(|i| *n == format!("web-{i}"))),
        "the expired ones went: {names:?}"
    );
    stop.send(true).unwrap();
    task.await.unwrap();
    store.shutdown().await;
}
