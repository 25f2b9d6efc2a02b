//! `kubectl get` against a real hub prints the tables it prints against a
//! real cluster: the hub answers kubectl's `Accept: ...;as=Table` with a
//! `meta.k8s.io/v1` `Table` (columns, `-o wide` ones, `-A`'s NAMESPACE, the
//! labels of `--show-labels`), also for a single object and for `get -w`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use bramble_tests::HubProcess;

fn kubectl(hub: &HubProcess, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", hub.data_dir.join("kubeconfig.yaml"))
        .args(args)
        .output()
        .expect("kubectl is installed");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{stdout}{stderr}"
    );
    stdout
}

/// The whitespace-separated words of each line.
fn words(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn kubectl_get_prints_kubernetes_tables() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let examples = bramble_tests::workspace_root().join("examples");
    // No /openapi yet (M2-3): client-side validation off.
    kubectl(
        &hub,
        &[
            "apply",
            "--validate=false",
            "-f",
            examples.to_str().unwrap(),
        ],
    );

    let t = words(&kubectl(&hub, &["get", "deployments", "-o", "wide"]));
    assert_eq!(
        t[0],
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(t[1][0], "web");
    assert_eq!(t[1][1], "0/2", "no node yet: nothing ready of 2");
    assert_eq!(t[1][7], "app=web");

    let t = words(&kubectl(&hub, &["get", "pods", "-A"]));
    assert_eq!(
        t[0],
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert_eq!(t.len(), 3, "two pods of the demo");
    assert!(
        t[1..]
            .iter()
            .all(|r| r[0] == "default" && r[3] == "Pending"),
        "{t:?}"
    );

    let t = words(&kubectl(&hub, &["get", "service", "web"]));
    assert_eq!(
        t[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert_eq!(&t[1][..2], ["web", "ClusterIP"]);
    assert_eq!(t[1][4], "80/TCP");

    let t = words(&kubectl(&hub, &["get", "ns"]));
    assert_eq!(t[0], ["NAME", "STATUS", "AGE"]);
    assert!(
        t.iter().any(|r| r[0] == "default" && r[1] == "Active"),
        "{t:?}"
    );

    let t = words(&kubectl(
        &hub,
        &["get", "configmap", "web-content", "--show-labels"],
    ));
    assert_eq!(t[0], ["NAME", "DATA", "AGE", "LABELS"]);

    // `get -w`: the current row, then a row per change.
    let mut watch = Command::new("kubectl")
        .env("KUBECONFIG", hub.data_dir.join("kubeconfig.yaml"))
        .args(["get", "deployment", "web", "-w"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    assert!(header.starts_with("NAME"), "{header}");
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("0/2"), "{first}");
    kubectl(
        &hub,
        &[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ],
    );
    let changed = lines
        .map(|l| l.unwrap())
        .find(|l| l.contains("0/3"))
        .expect("the watch shows the new replica count");
    assert!(changed.starts_with("web "), "{changed}");
    watch.kill().unwrap();
    watch.wait().unwrap();
}
