//! Watch bookmarks and `resourceVersionMatch` as Kubernetes serves them,
//! with curl as the client against a `bramble-hub` process: a watch that
//! allows bookmarks gets a `BOOKMARK` carrying the revision it has read up
//! to, one that does not gets none; a list
//! with `resourceVersionMatch` is checked as the API server checks it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use bramble_tests::HubProcess;
use serde_json::{Value, json};

fn curl(hub: &HubProcess, path: &str) -> Command {
    let mut c = Command::new("curl");
    c.args(["-sS", "-N", "--cacert"])
        .arg(hub.data_dir.join("ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {}", hub.token)])
        .arg(format!("{}{path}", hub.url));
    c
}

/// The events of a watch that ends by itself (`timeoutSeconds`).
fn events(hub: &HubProcess, path: &str) -> Vec<Value> {
    let out = curl(hub, path).output().expect("curl is installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn a_quiet_watch_that_allows_bookmarks_gets_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start_with_args(
        Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        dir.path(),
        "info",
        &["--watch-bookmark-interval", "1s"],
    );
    let c = hub.client();
    let (code, v) = c.post(
        "/api/v1/namespaces/default/configmaps",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}}),
    );
    assert_eq!(code, 201, "{v}");
    let (_, list) = c.get("/api/v1/namespaces/default/configmaps");
    let from: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let mut child = curl(
        &hub,
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion={from}&timeoutSeconds=60"
        ),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("curl is installed");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || -> Value {
        let line = lines.next().expect("the watch ended").unwrap();
        serde_json::from_str(&line).unwrap()
    };
    // Quiet: a bookmark at where the watch started.
    let first = next();
    assert_eq!(first["type"], "BOOKMARK", "{first}");
    assert_eq!(
        first["object"]["metadata"]["resourceVersion"],
        from.to_string()
    );
    // A change is delivered, then the bookmarks carry its revision.
    let (code, cm) = c.post(
        "/api/v1/namespaces/default/configmaps",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "second"}}),
    );
    assert_eq!(code, 201, "{cm}");
    let mut event = next();
    while event["type"] == "BOOKMARK" {
        // One more may have been due before the create.
        event = next();
    }
    assert_eq!(event["type"], "ADDED", "{event}");
    let bookmark = next();
    assert_eq!(bookmark["type"], "BOOKMARK", "{bookmark}");
    assert_eq!(
        bookmark["object"]["metadata"]["resourceVersion"],
        cm["metadata"]["resourceVersion"]
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    assert_eq!(bookmark["object"]["apiVersion"], "v1");

    // Without allowWatchBookmarks: none, whatever the wait.
    let plain = events(
        &hub,
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from}&timeoutSeconds=3"
        ),
    );
    assert!(plain.iter().all(|e| e["type"] != "BOOKMARK"), "{plain:?}");
}

#[test]
fn resource_version_match_is_checked_as_kubernetes_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let c = hub.client();
    let (_, list) = c.get("/api/v1/namespaces/default/configmaps");
    let now = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, cm) = c.post(
        "/api/v1/namespaces/default/configmaps",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}}),
    );
    assert_eq!(code, 201, "{cm}");
    let latest = cm["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let cms = "/api/v1/namespaces/default/configmaps";
    let ask = |q: &str| c.get(&format!("{cms}?{q}"));

    let (code, v) = ask(&format!(
        "resourceVersion={now}&resourceVersionMatch=NotOlderThan"
    ));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (code, v) = ask(&format!(
        "resourceVersion={latest}&resourceVersionMatch=Exact"
    ));
    assert_eq!(code, 200, "{v}");
    let (code, v) = ask(&format!("resourceVersion={now}&resourceVersionMatch=Exact"));
    assert_eq!((code, v["reason"].as_str()), (410, Some("Expired")), "{v}");
    let (code, v) = ask("resourceVersionMatch=Exact");
    assert_eq!(code, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("unless resourceVersion is provided"),
        "{v}"
    );
    let (code, v) = ask(&format!(
        "resourceVersion={now}&resourceVersionMatch=Newest"
    ));
    assert_eq!(code, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("supported values"),
        "{v}"
    );
    let (code, v) = ask("resourceVersion=999999999&resourceVersionMatch=NotOlderThan");
    assert_eq!((code, v["reason"].as_str()), (504, Some("Timeout")), "{v}");
    let (code, v) = ask(&format!(
        "watch=true&resourceVersion={now}&resourceVersionMatch=NotOlderThan"
    ));
    assert_eq!(code, 400, "{v}");
}
