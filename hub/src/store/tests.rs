//! Store tests on real redb files in temporary directories.

use std::sync::Arc;

use bramble_api::resource::by_plural;
use serde_json::{Value, json};

use super::*;

fn cm(name: &str, data: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
           "data": {"k": data}})
}

fn ns(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn configmaps() -> &'static ResourceInfo {
    by_plural("", "v1", "configmaps").unwrap()
}
fn namespaces() -> &'static ResourceInfo {
    by_plural("", "v1", "namespaces").unwrap()
}

async fn open(dir: &tempfile::TempDir) -> Store {
    let store = Store::open(&dir.path().join("state.redb"), StoreOptions::default()).unwrap();
    if store.get(namespaces(), None, "default").unwrap().is_none() {
        store.create(namespaces(), ns("default")).await.unwrap();
    }
    store
}

#[tokio::test]
async fn create_assigns_metadata_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = store.create(configmaps(), cm("a", "1")).await.unwrap();
    assert_eq!(a["metadata"]["generation"], 1);
    assert_eq!(a["metadata"]["resourceVersion"], "2");
    assert_eq!(a["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        a["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let err = store.create(configmaps(), cm("a", "2")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert_eq!(err.to_status().code, 409);
    let mut other = cm("b", "1");
    other["metadata"]["namespace"] = "nowhere".into();
    let err = store.create(configmaps(), other).await.unwrap_err();
    assert_eq!(err.to_status().code, 404);
    assert!(err.to_string().contains("nowhere"));
}

#[tokio::test]
async fn update_is_optimistic_and_noop_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = store.create(configmaps(), cm("a", "1")).await.unwrap();
    let rev = store.revision().unwrap();

    let (same, changed) = store.update(configmaps(), cm("a", "1")).await.unwrap();
    assert!(!changed);
    assert_eq!(same, a);
    assert_eq!(
        store.revision().unwrap(),
        rev,
        "a no-op must not bump the revision"
    );

    let (b, changed) = store.update(configmaps(), cm("a", "2")).await.unwrap();
    assert!(changed);
    assert_eq!(b["metadata"]["generation"], 2);
    assert_eq!(b["metadata"]["uid"], a["metadata"]["uid"]);
    assert_eq!(b["metadata"]["resourceVersion"], (rev + 1).to_string());

    let mut stale = cm("a", "3");
    stale["metadata"]["resourceVersion"] = a["metadata"]["resourceVersion"].clone();
    let err = store.update(configmaps(), stale).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        store
            .get(configmaps(), Some("default"), "a")
            .unwrap()
            .unwrap()["data"]["k"],
        "2"
    );

    let mut labels_only = cm("a", "2");
    labels_only["metadata"]["labels"]["extra"] = "x".into();
    let (c, changed) = store.update(configmaps(), labels_only).await.unwrap();
    assert!(changed);
    assert_eq!(
        c["metadata"]["generation"], 2,
        "labels do not bump generation"
    );
}

#[tokio::test]
async fn status_is_kept_by_spec_updates_and_set_by_status_updates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.create(configmaps(), cm("a", "1")).await.unwrap();
    let mut with_status = cm("a", "1");
    with_status["status"] = json!({"phase": "Ready"});
    let (s, changed) = store
        .update_status(configmaps(), with_status)
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(s["status"]["phase"], "Ready");
    let (u, _) = store.update(configmaps(), cm("a", "9")).await.unwrap();
    assert_eq!(u["status"]["phase"], "Ready");
    assert_eq!(u["data"]["k"], "9");
}

#[tokio::test]
async fn list_filters_by_namespace_and_selector() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.create(namespaces(), ns("other")).await.unwrap();
    store.create(configmaps(), cm("a", "1")).await.unwrap();
    store.create(configmaps(), cm("b", "1")).await.unwrap();
    let mut o = cm("a", "1");
    o["metadata"]["namespace"] = "other".into();
    store.create(configmaps(), o).await.unwrap();

    let all = store
        .list(configmaps(), None, &Selector::default())
        .unwrap();
    assert_eq!(all.items.len(), 3);
    assert_eq!(all.revision, store.revision().unwrap());
    let def = store
        .list(configmaps(), Some("default"), &Selector::default())
        .unwrap();
    assert_eq!(def.items.len(), 2);
    let sel = Selector::parse("app=b").unwrap();
    let b = store.list(configmaps(), None, &sel).unwrap();
    assert_eq!(b.items.len(), 1);
    assert_eq!(b.items[0]["metadata"]["name"], "b");
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.create(namespaces(), ns("gone")).await.unwrap();
    let mut o = cm("a", "1");
    o["metadata"]["namespace"] = "gone".into();
    store.create(configmaps(), o).await.unwrap();
    store.create(configmaps(), cm("a", "1")).await.unwrap();
    store
        .delete(namespaces(), None, "gone", None)
        .await
        .unwrap();
    assert!(
        store
            .get(configmaps(), Some("gone"), "a")
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get(configmaps(), Some("default"), "a")
            .unwrap()
            .is_some()
    );
    let err = store
        .delete(configmaps(), Some("gone"), "a", None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
}

#[tokio::test]
async fn watch_replays_from_revision_and_streams_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let start = store.revision().unwrap();
    store.create(configmaps(), cm("a", "1")).await.unwrap();
    store.create(namespaces(), ns("x")).await.unwrap();
    let filter = WatchFilter {
        resource: configmaps(),
        namespace: Some("default".into()),
        selector: Selector::default(),
        fields: Default::default(),
    };
    let mut w = store.watch(filter, start).unwrap();
    let e = w.next().await.unwrap();
    assert_eq!(
        (e.kind, Some(e.name.as_str())),
        (EventType::Added, Some("a"))
    );
    store.update(configmaps(), cm("a", "2")).await.unwrap();
    store
        .delete(configmaps(), Some("default"), "a", None)
        .await
        .unwrap();
    let e = w.next().await.unwrap();
    assert_eq!(e.kind, EventType::Modified);
    assert_eq!(e.object()["data"]["k"], "2");
    let e = w.next().await.unwrap();
    assert_eq!(e.kind, EventType::Deleted);
}

#[tokio::test]
async fn watch_from_a_compacted_revision_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let opts = StoreOptions {
        watch_history: 3,
        ..Default::default()
    };
    let store = Store::open(&path, opts).unwrap();
    store.create(namespaces(), ns("default")).await.unwrap();
    for i in 0..5 {
        store
            .create(configmaps(), cm(&format!("c{i}"), "1"))
            .await
            .unwrap();
    }
    let filter = WatchFilter {
        resource: configmaps(),
        namespace: None,
        selector: Selector::default(),
        fields: Default::default(),
    };
    let err = store.watch(filter.clone(), 1).err().unwrap();
    assert!(matches!(err, StoreError::Gone { .. }));
    assert_eq!(err.to_status().code, 410);
    assert!(store.watch(filter, store.revision().unwrap() - 1).is_ok());
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rev = {
        let store = open(&dir).await;
        store.create(configmaps(), cm("a", "1")).await.unwrap();
        let rev = store.revision().unwrap();
        store.shutdown().await;
        rev
    };
    let store = open(&dir).await;
    assert_eq!(store.revision().unwrap(), rev);
    assert_eq!(
        store
            .get(configmaps(), Some("default"), "a")
            .unwrap()
            .unwrap()["data"]["k"],
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir).await);
    let mut tasks = Vec::new();
    for t in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                store
                    .create(configmaps(), cm(&format!("c{t}-{i}"), "1"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store
        .list(configmaps(), None, &Selector::default())
        .unwrap();
    assert_eq!(all.items.len(), 640);
    let m = store.metrics();
    assert_eq!(m.writes(), 641);
    assert!(
        m.commits() < 641,
        "{} commits for 641 writes: no batching",
        m.commits()
    );
}

#[tokio::test]
async fn kv_entries_are_written_atomically_without_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let rev = store.revision().unwrap();
    let w = |k: &str, v: Option<&str>| KvWrite {
        table: "kv_test",
        key: k.to_string(),
        value: v.map(|v| v.as_bytes().to_vec()),
    };
    store
        .kv_write(vec![
            w("a/1", Some("x")),
            w("a/2", Some("y")),
            w("b/1", Some("z")),
        ])
        .await
        .unwrap();
    assert_eq!(store.kv_get("kv_test", "a/2").unwrap(), Some(b"y".to_vec()));
    let keys: Vec<String> = store
        .kv_list("kv_test", "a/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["a/1", "a/2"]);
    store.kv_write(vec![w("a/1", None)]).await.unwrap();
    assert_eq!(store.kv_get("kv_test", "a/1").unwrap(), None);
    assert_eq!(
        store.revision().unwrap(),
        rev,
        "kv writes do not bump the object revision"
    );
    assert_eq!(store.kv_get("kv_missing", "x").unwrap(), None);
}

#[tokio::test]
async fn dry_runs_answer_as_the_write_would_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = store.create(configmaps(), cm("a", "1")).await.unwrap();
    let rev = store.revision().unwrap();
    let mut watch = store
        .watch(
            WatchFilter {
                resource: configmaps(),
                namespace: None,
                selector: Default::default(),
                fields: Default::default(),
            },
            rev,
        )
        .unwrap();
    let dry = store.dry_run();

    let b = dry.create(configmaps(), cm("b", "1")).await.unwrap();
    assert_eq!(b["metadata"]["name"], "b");
    assert_eq!(b["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(b["metadata"]["resourceVersion"].is_null(), "{b}");
    assert!(
        store
            .get(configmaps(), Some("default"), "b")
            .unwrap()
            .is_none()
    );
    let err = dry.create(configmaps(), cm("a", "2")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");

    let (changed, _) = dry.update(configmaps(), cm("a", "2")).await.unwrap();
    assert_eq!(changed["data"]["k"], "2");
    assert_eq!(changed["metadata"]["generation"], 2);
    assert_eq!(
        changed["metadata"]["resourceVersion"],
        a["metadata"]["resourceVersion"]
    );
    let mut stale = cm("a", "3");
    stale["metadata"]["resourceVersion"] = "1".into();
    let err = dry.update(configmaps(), stale).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");

    let gone = dry
        .delete(configmaps(), Some("default"), "a", None)
        .await
        .unwrap();
    assert_eq!(gone["metadata"]["name"], "a");
    assert_eq!(
        store.get(configmaps(), Some("default"), "a").unwrap(),
        Some(a)
    );
    assert_eq!(
        store.revision().unwrap(),
        rev,
        "a dry run takes no revision"
    );

    // The next real write is the next event: the dry runs sent none.
    store.create(configmaps(), cm("c", "1")).await.unwrap();
    let e = watch.next().await.unwrap();
    assert_eq!(e.name, "c");
}

fn pods() -> &'static ResourceInfo {
    by_plural("", "v1", "pods").unwrap()
}

fn pod(name: &str, node: Option<&str>, phase: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
           "status": {"phase": phase}})
}

/// The events `w` delivers up to and including the one about `last`, an
/// object every watch of the test selects, written last.
async fn drain(w: &mut Watch, last: &str) -> Vec<(EventType, String, Value)> {
    let mut seen = Vec::new();
    loop {
        let e = w.next().await.unwrap();
        seen.push((e.kind, e.name.clone(), e.object()));
        if e.name == last {
            return seen;
        }
    }
}

#[tokio::test]
async fn a_field_selected_watch_sees_objects_enter_and_leave_its_selection() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let start = store.revision().unwrap();
    let filter = WatchFilter {
        resource: pods(),
        namespace: None,
        selector: Selector::default(),
        fields: bramble_api::field_selector::FieldSelector::parse("spec.nodeName=n1", "Pod")
            .unwrap(),
    };
    let mut live = store.watch(filter.clone(), start).unwrap();
    store
        .create(pods(), pod("p", None, "Pending"))
        .await
        .unwrap();
    store
        .update(pods(), pod("p", Some("n1"), "Pending"))
        .await
        .unwrap();
    let bound = store.revision().unwrap();
    store
        .update_status(pods(), pod("p", Some("n1"), "Running"))
        .await
        .unwrap();
    store
        .update(pods(), pod("p", Some("n2"), "Running"))
        .await
        .unwrap();
    let moved = store.revision().unwrap();
    store
        .create(pods(), pod("q", Some("n2"), "Pending"))
        .await
        .unwrap();
    store
        .create(pods(), pod("r", Some("n1"), "Pending"))
        .await
        .unwrap();

    // From the ring (a watch started afterwards) and live, the same story.
    let replayed = store.watch(filter, start).unwrap();
    for mut w in [live, replayed] {
        let seen = drain(&mut w, "r").await;
        let story: Vec<(EventType, &str)> = seen.iter().map(|(k, n, _)| (*k, n.as_str())).collect();
        assert_eq!(
            story,
            [
                (EventType::Added, "p"),
                (EventType::Modified, "p"),
                (EventType::Deleted, "p"),
                (EventType::Added, "r"),
            ]
        );
        assert_eq!(seen[0].2["metadata"]["resourceVersion"], bound.to_string());
        assert_eq!(seen[1].2["status"]["phase"], "Running");
        // Leaving: the object as it was (still on n1), at the move's revision.
        assert_eq!(seen[2].2["spec"]["nodeName"], "n1");
        assert_eq!(seen[2].2["metadata"]["resourceVersion"], moved.to_string());
    }
    live = store
        .watch(
            WatchFilter {
                resource: pods(),
                namespace: None,
                selector: Selector::default(),
                fields: Default::default(),
            },
            start,
        )
        .unwrap();
    let all: Vec<EventType> = drain(&mut live, "r").await.iter().map(|e| e.0).collect();
    assert_eq!(
        all,
        [
            EventType::Added,
            EventType::Modified,
            EventType::Modified,
            EventType::Modified,
            EventType::Added,
            EventType::Added,
        ],
        "an unselected watch sees every change as it was"
    );
}

#[tokio::test]
async fn a_label_selected_watch_sees_relabelled_objects_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let start = store.revision().unwrap();
    let mut w = store
        .watch(
            WatchFilter {
                resource: configmaps(),
                namespace: Some("default".into()),
                selector: Selector::parse("tier=web").unwrap(),
                fields: Default::default(),
            },
            start,
        )
        .unwrap();
    let mut a = cm("a", "1");
    store.create(configmaps(), a.clone()).await.unwrap();
    a["metadata"]["labels"]["tier"] = "web".into();
    store.update(configmaps(), a.clone()).await.unwrap();
    a["data"]["k"] = "2".into();
    store.update(configmaps(), a.clone()).await.unwrap();
    a["metadata"]["labels"]["tier"] = "db".into();
    store.update(configmaps(), a.clone()).await.unwrap();
    let end = store.revision().unwrap();
    let mut z = cm("z", "1");
    z["metadata"]["labels"]["tier"] = "web".into();
    store.create(configmaps(), z).await.unwrap();
    let seen = drain(&mut w, "z").await;
    let story: Vec<EventType> = seen.iter().map(|e| e.0).collect();
    assert_eq!(
        story,
        [
            EventType::Added,
            EventType::Modified,
            EventType::Deleted,
            EventType::Added
        ]
    );
    assert_eq!(seen[2].2["metadata"]["labels"]["tier"], "web");
    assert_eq!(seen[2].2["data"]["k"], "2");
    assert_eq!(seen[2].2["metadata"]["resourceVersion"], end.to_string());
}
