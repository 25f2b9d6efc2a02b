//! Crash safety: writes acknowledged to clients survive SIGKILL of the hub, and
//! the hub exits cleanly on SIGTERM.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bramble_tests::HubProcess;
use serde_json::{Value, json};

fn cm(name: &str, i: u64) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "labels": {"crash": "test"}},
           "data": {"i": i.to_string(), "pad": "x".repeat(200)}})
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = HubProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        dir.path(),
    );
    // name -> (uid, resourceVersion) for every 201 the clients received.
    let acked: Arc<Mutex<HashMap<String, (String, u64)>>> = Default::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..8 {
        let client = hub.client();
        let acked = acked.clone();
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("c-{t}-{i}");
                let url = format!("{}/api/v1/namespaces/default/configmaps", client.base);
                let resp = client
                    .agent
                    .post(&url)
                    .header("Authorization", format!("Bearer {}", client.token))
                    .send_json(cm(&name, i));
                match resp {
                    Ok(mut r) if r.status().as_u16() == 201 => {
                        let v: Value = r.body_mut().read_json().unwrap();
                        let uid = v["metadata"]["uid"].as_str().unwrap().to_string();
                        let rv = v["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        acked.lock().unwrap().insert(name, (uid, rv));
                    }
                    Ok(r) => panic!("unexpected status {} while the hub was up", r.status()),
                    // The hub died under us: this write was never acknowledged.
                    Err(_) => break,
                }
                i += 1;
            }
        }));
    }
    // Let writes flow, then kill the hub in the middle of them.
    // (Killed after 20 s whatever: the count is asserted below.)
    let _ = bramble_tests::try_eventually(Duration::from_secs(20), || {
        acked.lock().unwrap().len() >= 300
    });
    hub.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} writes acknowledged before the kill",
        acked.len()
    );

    let hub = HubProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        dir.path(),
    );
    let client = hub.client();
    let (code, list) =
        client.get("/api/v1/namespaces/default/configmaps?labelSelector=crash%3Dtest");
    assert_eq!(code, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    let stored: HashMap<String, &Value> = items
        .iter()
        .map(|o| (o["metadata"]["name"].as_str().unwrap().to_string(), o))
        .collect();
    for (name, (uid, rv)) in &acked {
        let o = stored
            .get(name)
            .unwrap_or_else(|| panic!("acknowledged {name} lost"));
        assert_eq!(
            o["metadata"]["uid"].as_str(),
            Some(uid.as_str()),
            "{name} uid changed"
        );
        assert_eq!(
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
            *rv
        );
    }
    // Consistency: revisions are unique and none exceeds the list's revision.
    let list_rev: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut revs: Vec<u64> = items
        .iter()
        .map(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    revs.sort_unstable();
    revs.dedup();
    assert_eq!(
        revs.len(),
        items.len(),
        "duplicate resourceVersions after recovery"
    );
    assert!(revs.last().copied().unwrap_or(0) <= list_rev);
    // The recovered hub keeps working and continues the revision sequence.
    let (code, created) = client.post(
        "/api/v1/namespaces/default/configmaps",
        &cm("after-crash", 0),
    );
    assert_eq!(code, 201, "{created}");
    let rv: u64 = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rv, list_rev + 1);
}

#[test]
fn sigterm_shuts_down_cleanly_and_idle_hub_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = HubProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        dir.path(),
    );
    let client = hub.client();
    assert_eq!(
        client
            .post("/api/v1/namespaces/default/configmaps", &cm("one", 1))
            .0,
        201
    );
    let db = dir.path().join("state.redb");
    let before = std::fs::read(&db).unwrap();
    let mtime = std::fs::metadata(&db).unwrap().modified().unwrap();
    // Reads and an idle period must not touch the file.
    for _ in 0..20 {
        assert_eq!(client.get("/api/v1/namespaces/default/configmaps").0, 200);
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(std::fs::metadata(&db).unwrap().modified().unwrap(), mtime);
    assert!(
        std::fs::read(&db).unwrap() == before,
        "idle hub changed its database"
    );
    let status = hub.terminate();
    assert!(status.success(), "hub exited with {status}");
}
