//! The applier against a real store (a temporary redb file): one action the
//! store refuses does not stop the others, is told as a `Warning` event on
//! its object's owner, and is not tried again before its back-off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bramble_api::Selector;
use bramble_api::objects::Pod;
use serde_json::json;
use tokio::sync::watch;

use super::applier::apply;
use super::backoff::Backoff;
use super::snapshot::pods;
use crate::controllers::Action;
use crate::events::{EventMetrics, EventsConfig};

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f",
             "uid": "rs-uid", "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_action_backs_off_alone_and_is_told_on_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::testing::store_with_default_namespace(&dir.path().join("state.redb")).await;
    // A pod of that name is there already: creating it again fails.
    store
        .create(pods(), serde_json::to_value(pod("taken")).unwrap())
        .await
        .unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let (events, task) = crate::events::spawn(
        store.clone(),
        EventsConfig::default(),
        Arc::new(EventMetrics::default()),
        stop_rx,
    );
    let mut backoff = Backoff::default();
    let now = Instant::now();

    let actions = vec![
        Action::CreatePod(Box::new(pod("taken"))),
        Action::CreatePod(Box::new(pod("fresh"))),
    ];
    let wrote = apply(&store, actions, &events, &mut backoff, now)
        .await
        .expect("only a closing store stops the batch");
    assert_eq!(wrote, 1, "the action after the failed one was applied");
    assert!(
        store
            .get(pods(), Some("default"), "fresh")
            .unwrap()
            .is_some()
    );
    assert_eq!(backoff.len(), 1);

    // Planned again at once: not tried (a second failure would double the
    // delay to 2 s, so it would still wait at 1.5 s).
    let again = vec![Action::CreatePod(Box::new(pod("taken")))];
    assert_eq!(
        apply(&store, again.clone(), &events, &mut backoff, now)
            .await
            .unwrap(),
        0
    );
    let later = now + Duration::from_millis(1500);
    assert!(
        !backoff.waits("create pod default/taken", later),
        "tried once only"
    );
    // After its delay it is tried again (and fails again: 2 s now).
    apply(&store, again, &events, &mut backoff, later)
        .await
        .unwrap();
    assert!(backoff.waits(
        "create pod default/taken",
        later + Duration::from_millis(1500)
    ));
    // No longer planned: forgotten.
    apply(&store, Vec::new(), &events, &mut backoff, later)
        .await
        .unwrap();
    assert!(backoff.is_empty());

    let told = bramble_tests::try_eventually_async(Duration::from_secs(10), async || {
        let items = store
            .list(crate::events::flusher::events(), None, &Selector::default())
            .unwrap()
            .items;
        items
            .into_iter()
            .find(|e| e["reason"] == "FailedCreate")
            .ok_or("no FailedCreate event yet")
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let e = told.unwrap_or_else(|t| panic!("{t}"));
    assert_eq!(e["type"], "Warning", "{e}");
    assert_eq!(e["involvedObject"]["kind"], "ReplicaSet", "{e}");
    assert_eq!(e["involvedObject"]["name"], "web-5d8f", "{e}");
    let message = e["message"].as_str().unwrap_or("");
    assert!(message.starts_with("create pod default/taken: "), "{e}");
}
