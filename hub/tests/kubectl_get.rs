//! `kubectl get` against a real hub prints the tables it prints against a
//! real cluster: the hub answers kubectl's `Accept: ...;as=Table` with a
//! `meta.k8s.io/v1` `Table` (columns, `-o wide` ones, `-A`'s NAMESPACE, the
//! labels of `--show-labels`), also for a single object and for `get -w`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use bramble_tests::HubProcess;
use bramble_tests::kubectl::{Kubectl, words};

fn kubectl(hub: &HubProcess, args: &[&str]) -> String {
    Kubectl::for_data_dir(&hub.data_dir).ok(args)
}

#[test]
fn kubectl_get_prints_kubernetes_tables() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let examples = bramble_tests::workspace_root().join("examples");
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

    // Field selectors, and pages (kubectl asks 500 at a time; 1 here).
    let t = words(&kubectl(
        &hub,
        &[
            "get",
            "pods",
            "--field-selector",
            "status.phase=Pending,spec.nodeName=",
        ],
    ));
    assert_eq!(t.len(), 3, "{t:?}");
    let out = kubectl(
        &hub,
        &["get", "pods", "--field-selector", "status.phase=Running"],
    );
    assert_eq!(out, "", "no pod runs without a node");
    let err = Command::new("kubectl")
        .env("KUBECONFIG", hub.data_dir.join("kubeconfig.yaml"))
        .args(["get", "deployments", "--field-selector", "spec.replicas=2"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("field label not supported: spec.replicas"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let paged = words(&kubectl(&hub, &["get", "all", "-A", "--chunk-size=1"]));
    let unpaged = words(&kubectl(&hub, &["get", "all", "-A"]));
    let names = |t: &[Vec<String>]| -> Vec<String> {
        t.iter()
            .filter(|r| r.len() > 1 && r[0] != "NAMESPACE")
            .map(|r| r[1].clone())
            .collect()
    };
    assert_eq!(names(&paged), names(&unpaged));
    assert!(names(&paged).len() >= 4, "{paged:?}");
    let client = hub.client();
    let (code, first) = client.get("/api/v1/namespaces/default/pods?limit=1");
    assert_eq!(code, 200);
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert_eq!(first["metadata"]["remainingItemCount"], 1);
    let token = first["metadata"]["continue"].as_str().unwrap();
    let (_, second) = client.get(&format!(
        "/api/v1/namespaces/default/pods?limit=1&continue={token}"
    ));
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["metadata"]["continue"].is_null());
    assert_ne!(
        first["items"][0]["metadata"]["name"],
        second["items"][0]["metadata"]["name"]
    );
    assert_eq!(
        first["metadata"]["resourceVersion"],
        second["metadata"]["resourceVersion"]
    );

    // `kubectl top` finds the resource metrics API through discovery: with no
    // agent here there are no figures yet, which kubectl says as such
    // (without the API in discovery it says "Metrics API not available").
    let top = Command::new("kubectl")
        .env("KUBECONFIG", hub.data_dir.join("kubeconfig.yaml"))
        .args(["top", "pods", "-A"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&top.stderr);
    assert!(err.contains("metrics not available yet"), "{err}");

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

/// A selected `get -w` shows objects entering and leaving the selection as a
/// Kubernetes API server does: relabelling one in is `ADDED`, out `DELETED`.
#[test]
fn a_selected_watch_shows_objects_enter_and_leave() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let create = |name: &str, tier: &str| {
        kubectl(&hub, &["create", "configmap", name, "--from-literal=k=v"]);
        kubectl(&hub, &["label", "configmap", name, &format!("tier={tier}")]);
    };
    create("cm-0", "web");
    let mut watch = Command::new("kubectl")
        .env("KUBECONFIG", hub.data_dir.join("kubeconfig.yaml"))
        .args([
            "get",
            "configmaps",
            "-l",
            "tier=web",
            "-w",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut row = move || {
        let l = lines.next().unwrap().unwrap();
        l.split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(row(), ["EVENT", "NAME"]);
    assert_eq!(row(), ["ADDED", "cm-0"], "the list, before the watch");

    create("cm-a", "db");
    let relabel = |tier: &str| {
        kubectl(
            &hub,
            &[
                "label",
                "configmap",
                "cm-a",
                &format!("tier={tier}"),
                "--overwrite",
            ],
        )
    };
    relabel("web");
    kubectl(&hub, &["annotate", "configmap", "cm-a", "note=x"]);
    relabel("db");
    create("cm-z", "web");
    let mut seen = vec![row()];
    while seen.last().unwrap()[1] != "cm-z" {
        seen.push(row());
    }
    assert_eq!(
        seen,
        [
            ["ADDED", "cm-a"],
            ["MODIFIED", "cm-a"],
            ["DELETED", "cm-a"],
            ["ADDED", "cm-z"],
        ]
    );
    watch.kill().unwrap();
    watch.wait().unwrap();
}

#[test]
fn kubectl_shows_claims_volumes_and_classes_as_kubernetes_does() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let manifest = dir.path().join("storage.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\n\
         spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n\
         ---\napiVersion: v1\nkind: PersistentVolume\nmetadata: {name: disk}\n\
         spec:\n  capacity: {storage: 5Gi}\n  accessModes: [ReadWriteOnce, ReadOnlyMany]\n\
         \x20 storageClassName: manual\n  local: {path: /srv/disk}\n\
         \x20 nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [pi-1]}]}]}}\n",
    )
    .unwrap();
    kubectl(&hub, &["apply", "-f", manifest.to_str().unwrap()]);

    // The hub made the built-in class, marked default as k3s' is.
    let t = words(&kubectl(&hub, &["get", "storageclass"]));
    assert_eq!(
        t[0],
        [
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE"
        ]
    );
    assert_eq!(
        t[1][..6],
        [
            "local-path",
            "(default)",
            "bramble.dev/local-path",
            "Delete",
            "WaitForFirstConsumer",
            "false"
        ]
    );

    let t = words(&kubectl(&hub, &["get", "pvc", "-o", "wide"]));
    assert_eq!(
        t[0],
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE",
            "VOLUMEMODE"
        ]
    );
    // Waiting for its first consumer: no volume, no capacity yet.
    assert_eq!(
        [&t[1][0], &t[1][1], &t[1][2], &t[1][3], &t[1][5]],
        ["data", "Pending", "local-path", "<unset>", "Filesystem"]
    );

    let t = words(&kubectl(&hub, &["get", "pv"]));
    assert_eq!(
        t[0],
        [
            "NAME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "RECLAIM",
            "POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ]
    );
    assert_eq!(
        t[1][..6],
        ["disk", "5Gi", "RWO,ROX", "Retain", "Available", "manual"]
    );

    // Applied again unchanged: the class the hub filled in stays.
    let out = kubectl(&hub, &["apply", "-f", manifest.to_str().unwrap()]);
    assert!(
        out.contains("persistentvolumeclaim/data unchanged"),
        "{out}"
    );
    // A claim's spec is immutable but for its requests.
    let k = Kubectl::for_data_dir(&hub.data_dir);
    let out = k.run(
        &[
            "patch",
            "pvc",
            "data",
            "--type=merge",
            "-p",
            r#"{"spec":{"accessModes":["ReadWriteMany"]}}"#,
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec is immutable after creation except resources.requests"),
        "{err}"
    );
    kubectl(
        &hub,
        &[
            "patch",
            "pvc",
            "data",
            "--type=merge",
            "-p",
            r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#,
        ],
    );
}
