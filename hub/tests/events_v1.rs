//! `events.k8s.io/v1` against a real hub, driven by real clients: kubectl
//! finds it through discovery, lists the FailedScheduling the hub records
//! (a `core/v1` Event) with kubectl's event columns, shows it in this
//! version (`regarding`, `note`, `deprecatedCount`), selects by
//! `regarding.*`, watches, explains the kind from OpenAPI, and an Event
//! created through it is a `core/v1` Event for `kubectl get events`; the
//! official Python client's `EventsV1Api` lists, reads, watches from a
//! resourceVersion, creates, patches, replaces and deletes a collection
//! (`tests/python/events_v1.py` asserts each step).

use bramble_tests::eventually;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bramble_tests::HubProcess;
use bramble_tests::kubectl::Kubectl;
use serde_json::Value;

fn start(dir: &Path) -> HubProcess {
    HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir)
}

fn kubectl_in(hub: &HubProcess, args: &[&str], stdin: Option<&str>) -> String {
    let out = Kubectl::for_data_dir(&hub.data_dir).run(args, stdin.map(str::as_bytes));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn kubectl(hub: &HubProcess, args: &[&str]) -> String {
    kubectl_in(hub, args, None)
}

/// kubectl's stderr when it fails.
fn kubectl_fails(hub: &HubProcess, args: &[&str], stdin: Option<&str>) -> String {
    let out = Kubectl::for_data_dir(&hub.data_dir).run(args, stdin.map(str::as_bytes));
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: web, image: nginx:1.27}]\n";

const NEW_EVENT: &str = r#"
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: web.operator}
eventTime: "2026-01-01T00:00:10.123456Z"
reportingController: example.com/operator
reportingInstance: operator-0
action: Reconcile
reason: OperatorSaw
note: the operator saw web
type: Normal
regarding: {apiVersion: v1, kind: Pod, name: web, namespace: default}
"#;

#[test]
fn kubectl_lists_shows_selects_watches_explains_and_creates_events_k8s_io_v1() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path());

    // Discovery: kubectl finds the group and its resource.
    let resources = kubectl(&hub, &["api-resources", "--api-group=events.k8s.io"]);
    let line = resources
        .lines()
        .find(|l| l.starts_with("events "))
        .unwrap_or_else(|| panic!("no events.k8s.io events:\n{resources}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words, ["events", "ev", "events.k8s.io/v1", "true", "Event"]);
    let wide = kubectl(
        &hub,
        &["api-resources", "--api-group=events.k8s.io", "-o", "wide"],
    );
    assert!(
        wide.contains("create,delete,deletecollection,get,list,patch,update,watch")
            || wide.contains("[create delete deletecollection get list patch update watch]"),
        "{wide}"
    );

    // The hub records FailedScheduling (a core/v1 Event) for a pod no node runs.
    kubectl_in(&hub, &["apply", "--validate=false", "-f", "-"], Some(POD));
    let items = eventually(
        "FailedScheduling through events.k8s.io/v1",
        Duration::from_secs(30),
        || {
            let out = kubectl(
                &hub,
                &[
                    "get",
                    "events.v1.events.k8s.io",
                    "-o",
                    "json",
                    "--field-selector",
                    "regarding.name=web,reason=FailedScheduling",
                ],
            );
            let v: Value = serde_json::from_str(&out).unwrap();
            let items = v["items"].as_array().cloned().unwrap_or_default();
            (!items.is_empty()).then_some(items)
        },
    );
    let e = &items[0];
    assert_eq!(e["apiVersion"], "events.k8s.io/v1");
    assert_eq!(e["regarding"]["kind"], "Pod");
    assert_eq!(e["deprecatedCount"], 1);
    assert!(
        e["note"].as_str().unwrap().contains("nodes available"),
        "{e}"
    );
    assert_eq!(e["deprecatedSource"]["component"], "default-scheduler");
    assert!(e.get("involvedObject").is_none() && e.get("message").is_none());
    let name = e["metadata"]["name"].as_str().unwrap().to_string();

    // The table: kubectl's event columns.
    let table = kubectl(&hub, &["get", "events.v1.events.k8s.io"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert!(
        table.lines().any(|l| l.contains("Warning")
            && l.contains("FailedScheduling")
            && l.contains("pod/web")),
        "{table}"
    );

    // -o yaml: this version's field names.
    let yaml = kubectl(&hub, &["get", "events.events.k8s.io", &name, "-o", "yaml"]);
    for want in [
        "apiVersion: events.k8s.io/v1",
        "regarding:",
        "note: ",
        "deprecatedCount: 1",
        "reportingController: default-scheduler",
        "eventTime:",
    ] {
        assert!(yaml.contains(want), "{want}:\n{yaml}");
    }

    // involvedObject.* is core/v1's label, not this version's (as in Kubernetes).
    let err = kubectl_fails(
        &hub,
        &[
            "get",
            "events.events.k8s.io",
            "--field-selector",
            "involvedObject.name=web",
        ],
        None,
    );
    assert!(
        err.contains(
            "field label not supported: involvedObject.name (Event.events.k8s.io knows only"
        ),
        "{err}"
    );

    // explain, from /openapi/v3/apis/events.k8s.io/v1. The group goes in
    // --api-version: kubectl resolves `explain events.events.k8s.io` to the
    // first group with `events`, core/v1, and the rest to a field path.
    let explained = kubectl(
        &hub,
        &["explain", "events", "--api-version=events.k8s.io/v1"],
    );
    for want in [
        "GROUP:      events.k8s.io",
        "KIND:       Event",
        "eventTime\t<string> -required-",
        "regarding\t<ObjectReference>",
        "note\t<string>",
        "deprecatedCount\t<integer>",
    ] {
        assert!(explained.contains(want), "{want}:\n{explained}");
    }

    // -w: an Event created through events.k8s.io/v1 streams in, and is a
    // core/v1 Event for `kubectl get events`.
    let mut watch = Kubectl::for_data_dir(&hub.data_dir)
        .command(&["get", "events.events.k8s.io", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the watch lists");
    kubectl_in(&hub, &["create", "-f", "-"], Some(NEW_EVENT));
    let deadline = Instant::now() + Duration::from_secs(20);
    let streamed = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the watch shows the new event");
        if line.contains("OperatorSaw") {
            break line;
        }
    };
    assert!(
        streamed.contains("ADDED") && streamed.contains("the operator saw web"),
        "{streamed}"
    );
    watch.kill().unwrap();
    watch.wait().unwrap();
    let core = kubectl(
        &hub,
        &["get", "events", "--field-selector", "reason=OperatorSaw"],
    );
    assert!(
        core.lines().any(|l| l.contains("Normal")
            && l.contains("pod/web")
            && l.contains("the operator saw web")),
        "{core}"
    );
    let core: Value = serde_json::from_str(&kubectl(
        &hub,
        &["get", "events", "web.operator", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "the operator saw web");
    assert_eq!(core["involvedObject"]["name"], "web");
    assert_eq!(core["reportingComponent"], "example.com/operator");
    assert_eq!(core["eventTime"], "2026-01-01T00:00:10.123456Z");

    // What events.k8s.io/v1 requires of a create.
    let incomplete = NEW_EVENT
        .replace("web.operator", "web.incomplete")
        .replace("action: Reconcile\n", "");
    let err = kubectl_fails(&hub, &["create", "-f", "-"], Some(&incomplete));
    assert!(
        err.contains("The Event \"web.incomplete\" is invalid")
            && err.contains("action: Required value"),
        "{err}"
    );

    // Deleted through events.k8s.io/v1, gone from core/v1.
    kubectl(&hub, &["delete", "events.events.k8s.io", "web.operator"]);
    let left = kubectl(
        &hub,
        &[
            "get",
            "events",
            "--field-selector",
            "reason=OperatorSaw",
            "-o",
            "name",
        ],
    );
    assert_eq!(left.trim(), "", "{left}");
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BRAMBLE_PYTHON") {
        return p.into();
    }
    let venv = bramble_tests::workspace_root().join("target/fixtures/pyvenv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/test (it installs the Python kubernetes client there) \
         or set BRAMBLE_PYTHON to a python with `kubernetes` installed",
        venv.display()
    );
    venv
}

#[test]
fn the_python_clients_events_v1_api_reads_watches_and_writes_core_events() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/events_v1.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(hub.data_dir.join("kubeconfig.yaml"))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().last(), Some("ok"), "{stdout}\n{stderr}");

    // What the Python client created through events.k8s.io/v1 is a core/v1
    // Event for kubectl.
    let table = kubectl(
        &hub,
        &["get", "events", "--field-selector", "reason=PyCreated"],
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("pod/py-pod") && l.contains("kept for kubectl")),
        "{table}"
    );
}
