//! Events with the real kubectl against a real hub (only `KUBECONFIG` set):
//! a Deployment whose pods cannot be scheduled (no nodes) records
//! `ScalingReplicaSet` on the Deployment, `SuccessfulCreate` on its
//! ReplicaSet and `FailedScheduling` on each pod; `kubectl describe` lists
//! them, `kubectl
//! get events` prints kubectl's table, `-w` streams a new one, field
//! selectors pick by involved object, `describe node` shows `NodeNotReady`;
//! and a burst of events from many pods
//! costs the store a few transactions, not one per event.

use bramble_tests::eventually;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bramble_tests::HubProcess;
use bramble_tests::kubectl::Kubectl;
use serde_json::Value;

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

fn events(hub: &HubProcess, selector: &str) -> Vec<Value> {
    let out = kubectl(
        hub,
        &["get", "events", "-o", "json", "--field-selector", selector],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

/// How long a wait for the hub's events may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// Waits until the hub has committed nothing for longer than the event
/// flush interval: its controllers and the recorder are done with what
/// came before (however long that takes on this machine).
fn settled(hub: &HubProcess) {
    let quiet = Duration::from_millis(1500);
    let mut last = metric(hub, "bramble_store_commits_total");
    let mut since = Instant::now();
    eventually("the hub to settle", WAIT, || {
        let now = metric(hub, "bramble_store_commits_total");
        if now != last {
            last = now;
            since = Instant::now();
        }
        (since.elapsed() > quiet).then_some(())
    });
}

/// A counter of the hub's `/metrics`.
fn metric(hub: &HubProcess, name: &str) -> u64 {
    let text = kubectl(hub, &["get", "--raw", "/metrics"]);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}")) as u64
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
"#;

#[test]
fn kubectl_describes_lists_and_watches_events() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    kubectl_in(
        &hub,
        &["apply", "--validate=false", "-f", "-"],
        Some(DEPLOYMENT),
    );

    let failed = eventually("FailedScheduling of both pods", WAIT, || {
        let e = events(&hub, "reason=FailedScheduling");
        (e.len() == 2).then_some(e)
    });
    let pod = failed[0]["involvedObject"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(failed[0]["type"], "Warning");
    assert_eq!(failed[0]["count"], 1);
    assert_eq!(failed[0]["source"]["component"], "default-scheduler");
    let created = eventually("SuccessfulCreate of both pods", WAIT, || {
        let e = events(
            &hub,
            "reason=SuccessfulCreate,involvedObject.kind=ReplicaSet",
        );
        (e.len() == 2).then_some(e)
    });
    assert_eq!(created[0]["source"]["component"], "replicaset-controller");
    let replica_set = created[0]["involvedObject"]["name"]
        .as_str()
        .unwrap()
        .to_string();

    // describe: kubectl asks for the object's events by name, namespace, kind and uid.
    let described = kubectl(&hub, &["describe", "pod", &pod]);
    let section = described
        .split("Events:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Events section:\n{described}"));
    assert!(
        section.contains("Warning  FailedScheduling") && section.contains("default-scheduler"),
        "{described}"
    );
    let described = kubectl(&hub, &["describe", "deployment", "web"]);
    let section = described.split("Events:").nth(1).unwrap_or("");
    assert!(
        section.contains("ScalingReplicaSet")
            && section.contains(&format!("Scaled up replica set {replica_set} to 2 from 0")),
        "{described}"
    );
    let described = kubectl(&hub, &["describe", "rs", &replica_set]);
    let section = described.split("Events:").nth(1).unwrap_or("");
    assert!(
        section.contains("SuccessfulCreate") && section.contains("Created pod: web-"),
        "{described}"
    );

    // get events: kubectl's columns.
    let table = kubectl(&hub, &["get", "events"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert!(
        table.lines().any(|l| l.contains("Warning")
            && l.contains("FailedScheduling")
            && l.contains(&format!("pod/{pod}"))),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("Normal") && l.contains("deployment/web")),
        "{table}"
    );

    // Field selectors, as kubectl sends them.
    let on_pods = events(&hub, "involvedObject.kind=Pod");
    assert!(on_pods.len() >= 2);
    assert!(on_pods.iter().all(|e| e["involvedObject"]["kind"] == "Pod"));

    // get -w: a new event streams in.
    let mut watch = Command::new("kubectl")
        .env("KUBECONFIG", hub.data_dir.join("kubeconfig.yaml"))
        .args(["get", "events", "-w"])
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
    // The current events first.
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the watch lists");
    kubectl(&hub, &["scale", "deployment", "web", "--replicas=3"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let streamed = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the watch shows the scaling event");
        if line.contains("ScalingReplicaSet") && line.contains("to 3 from 2") {
            break line;
        }
    };
    assert!(streamed.contains("deployment/web"), "{streamed}");
    watch.kill().unwrap();
    watch.wait().unwrap();

    // A node that never reports is found not ready; describe node shows it
    // (kubectl asks across namespaces, by the node's uid and by its name).
    kubectl_in(
        &hub,
        &["apply", "--validate=false", "-f", "-"],
        Some("apiVersion: v1\nkind: Node\nmetadata: {name: pi-1}\n"),
    );
    let described = eventually("NodeNotReady", WAIT, || {
        let d = kubectl(&hub, &["describe", "node", "pi-1"]);
        d.contains("NodeNotReady").then_some(d)
    });
    let section = described.split("Events:").nth(1).unwrap_or("");
    assert!(
        section.contains("node-controller")
            && section.contains("Node pi-1 status is now: NodeNotReady"),
        "{described}"
    );
}

#[test]
fn a_burst_of_events_is_a_few_store_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    kubectl_in(
        &hub,
        &["apply", "--validate=false", "-f", "-"],
        Some(DEPLOYMENT),
    );
    eventually("the first pods' events", WAIT, || {
        (events(&hub, "reason=FailedScheduling").len() == 2).then_some(())
    });
    settled(&hub);
    let commits = metric(&hub, "bramble_store_commits_total");
    let written = metric(&hub, "bramble_events_written_total");
    let flushes = metric(&hub, "bramble_events_flushes_total");

    const PODS: usize = 100;
    let added = PODS - 2;
    kubectl(
        &hub,
        &["scale", "deployment", "web", &format!("--replicas={PODS}")],
    );
    eventually("every pod's FailedScheduling", WAIT, || {
        (events(&hub, "reason=FailedScheduling").len() == PODS).then_some(())
    });
    // SuccessfulCreate and FailedScheduling per new pod, and the scaling.
    let want = (2 * added + 1) as u64;
    eventually("every event written", WAIT, || {
        (metric(&hub, "bramble_events_written_total") - written >= want).then_some(())
    });
    settled(&hub);
    let commits = metric(&hub, "bramble_store_commits_total") - commits;
    let written = metric(&hub, "bramble_events_written_total") - written;
    let flushes = metric(&hub, "bramble_events_flushes_total") - flushes;
    eprintln!(
        "{added} pods created and found unschedulable: {written} event writes in {flushes} flushes; \
         {commits} store transactions in all"
    );
    assert!(written >= want);
    assert!(flushes <= 15, "{flushes} flushes for one burst");
    // Each pod costs the controllers two writes of their own (create, the
    // PodScheduled condition); its events must add next to nothing.
    let own = (2 * added) as u64;
    assert!(
        commits < own + written / 4,
        "{commits} transactions for {own} controller writes and {written} event writes"
    );
}
