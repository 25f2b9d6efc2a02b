//! A Deployment's revisions as `apps/v1` ReplicaSets, with the real kubectl
//! against a real hub (no agents: pods stay Pending, so the Deployment uses
//! `Recreate`, which needs no ready pods to roll): `kubectl get rs` (`-o
//! wide`, `-l`, `-w`, `--field-selector`, `-o yaml` with the Deployment's
//! uid as the controller), `rollout history [--revision N]` and `rollout
//! undo --to-revision` (a JSON patch of the template and annotations) with
//! Kubernetes' renumbering, `describe deployment|rs`, `get all`; client
//! writes to ReplicaSets (`label`, `scale`, `delete`) refused; deleting the
//! Deployment deletes its ReplicaSets and pods.

use bramble_tests::eventually;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bramble_tests::HubProcess;
use bramble_tests::kubectl::Kubectl;
use serde_json::Value;

fn manifest(image: &str, cause: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: roll
  labels: {{app: roll}}
  annotations: {{kubernetes.io/change-cause: "{cause}"}}
spec:
  replicas: 2
  strategy: {{type: Recreate}}
  selector: {{matchLabels: {{app: roll}}}}
  template:
    metadata: {{labels: {{app: roll}}}}
    spec:
      containers: [{{name: app, image: "{image}"}}]
"#
    )
}

/// `kubectl get rs -l app=roll` rows: `(name, desired, current)`.
fn replica_sets(k: &Kubectl) -> Vec<(String, String, String)> {
    k.ok(&["get", "rs", "-l", "app=roll", "--no-headers"])
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[0].to_string(), c[1].to_string(), c[2].to_string())
        })
        .collect()
}

/// `rollout history` rows: `(revision, change cause)`.
fn history(k: &Kubectl) -> Vec<(String, String)> {
    k.ok(&["rollout", "history", "deployment/roll"])
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (n, cause) = l.split_once(char::is_whitespace).unwrap();
            (n.to_string(), cause.trim().to_string())
        })
        .collect()
}

fn image(k: &Kubectl) -> String {
    k.ok(&[
        "get",
        "deployment",
        "roll",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
}

fn err_of(k: &Kubectl, args: &[&str]) -> String {
    let out = k.run(args, None);
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn deployments_revisions_are_replica_sets_kubectl_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let k = Kubectl::for_data_dir(&hub.data_dir);
    let apply = |yaml: String| k.run(&["apply", "-f", "-"], Some(yaml.as_bytes()));

    // Revision 1 by apply, 2 by apply, 3 by set image + annotate.
    assert!(apply(manifest("busybox:1.35", "first")).status.success());
    eventually("the first ReplicaSet", Duration::from_secs(30), || {
        (replica_sets(&k).len() == 1).then_some(())
    });
    assert!(apply(manifest("busybox:1.36", "second")).status.success());
    eventually("the second ReplicaSet", Duration::from_secs(30), || {
        (replica_sets(&k).len() == 2).then_some(())
    });
    k.ok(&["set", "image", "deployment/roll", "app=busybox:1.37"]);
    k.ok(&[
        "annotate",
        "deployment",
        "roll",
        "--overwrite",
        "kubernetes.io/change-cause=third",
    ]);
    let rows = eventually(
        "three ReplicaSets, the old ones scaled to 0",
        Duration::from_secs(30),
        || {
            let rows = replica_sets(&k);
            let desired: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
            let mut sorted = desired.clone();
            sorted.sort();
            (rows.len() == 3 && sorted == ["0", "0", "2"] && rows.iter().all(|r| r.1 == r.2))
                .then_some(rows)
        },
    );
    assert!(rows.iter().all(|r| r.0.starts_with("roll-")), "{rows:?}");

    // The table kubectl shows for a real cluster.
    let wide = k.ok(&["get", "rs", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let current = wide
        .lines()
        .find(|l| l.contains("busybox:1.37"))
        .unwrap_or_else(|| panic!("{wide}"));
    assert!(current.contains("app=roll,pod-template-hash="), "{current}");

    // Kubernetes' field selector for them.
    let empty = k.ok(&[
        "get",
        "rs",
        "--field-selector",
        "status.replicas=0",
        "-o",
        "name",
    ]);
    assert_eq!(empty.lines().count(), 2, "{empty}");

    // Each is controlled by the Deployment, by its uid.
    let uid = k.ok(&[
        "get",
        "deployment",
        "roll",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let yaml = k.ok(&["get", "rs", "-o", "yaml"]);
    assert_eq!(yaml.matches(&format!("uid: {uid}")).count(), 3, "{yaml}");
    let list: Value = serde_json::from_str(&k.ok(&["get", "rs", "-o", "json"])).unwrap();
    for rs in list["items"].as_array().unwrap() {
        let owner = &rs["metadata"]["ownerReferences"][0];
        assert_eq!(
            (
                &owner["kind"],
                &owner["name"],
                &owner["controller"],
                owner["uid"].as_str()
            ),
            (
                &Value::from("Deployment"),
                &Value::from("roll"),
                &Value::from(true),
                Some(uid.as_str())
            )
        );
        let hash = rs["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .unwrap();
        assert_eq!(rs["metadata"]["name"], format!("roll-{hash}"));
    }
    // Pods are controlled by their ReplicaSet.
    let pods: Value =
        serde_json::from_str(&k.ok(&["get", "pods", "-l", "app=roll", "-o", "json"])).unwrap();
    let pods = pods["items"].as_array().unwrap();
    assert!(!pods.is_empty());
    for p in pods {
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicaSet");
    }

    // History and one revision's template, as kubectl reads them off the
    // ReplicaSets.
    eventually("the change causes", Duration::from_secs(30), || {
        let h = history(&k);
        (h == [
            ("1".into(), "first".into()),
            ("2".into(), "second".into()),
            ("3".into(), "third".into()),
        ])
        .then_some(())
    });
    let second = k.ok(&["rollout", "history", "deployment/roll", "--revision=2"]);
    assert!(second.contains("busybox:1.36"), "{second}");
    assert!(!second.contains("busybox:1.37"), "{second}");

    // describe: the new and old ReplicaSets, a ReplicaSet's controller, and
    // the events on each (the recorder flushes them in batches).
    let new_rs = rows
        .iter()
        .find(|r| r.1 == "2")
        .map(|r| r.0.clone())
        .unwrap();
    let described = eventually("the Deployment's events", Duration::from_secs(30), || {
        let d = k.ok(&["describe", "deployment", "roll"]);
        d.contains("ScalingReplicaSet").then_some(d)
    });
    assert!(
        described.contains(&format!("{new_rs} (2/2 replicas created)")),
        "{described}"
    );
    assert!(described.contains("NewReplicaSet:"), "{described}");
    assert!(described.contains("OldReplicaSets:"), "{described}");
    let described = eventually("the ReplicaSet's events", Duration::from_secs(30), || {
        let d = k.ok(&["describe", "rs", &new_rs]);
        d.contains("Created pod: roll-").then_some(d)
    });
    assert!(
        described.contains("Controlled By:  Deployment/roll"),
        "{described}"
    );
    let all = k.ok(&["get", "all"]);
    assert!(all.contains(&format!("replicaset.apps/{new_rs}")), "{all}");

    // Undo to revision 1: kubectl patches the template and annotations
    // back; the ReplicaSet of revision 1 becomes revision 4.
    let out = k.ok(&["rollout", "undo", "deployment/roll", "--to-revision=1"]);
    assert!(out.contains("rolled back"), "{out}");
    assert_eq!(image(&k), "busybox:1.35");
    eventually(
        "revision 1 renumbered to 4",
        Duration::from_secs(30),
        || {
            let h = history(&k);
            (h == [
                ("2".into(), "second".into()),
                ("3".into(), "third".into()),
                ("4".into(), "first".into()),
            ])
            .then_some(())
        },
    );
    let annotations = k.ok(&[
        "get",
        "deployment",
        "roll",
        "-o",
        "jsonpath={.metadata.annotations}",
    ]);
    assert!(
        annotations.contains(r#""deployment.kubernetes.io/revision":"4""#),
        "{annotations}"
    );
    assert!(
        annotations.contains(r#""kubernetes.io/change-cause":"first""#),
        "{annotations}"
    );
    eventually("the pods of revision 4", Duration::from_secs(30), || {
        let rows = replica_sets(&k);
        let current: Vec<_> = rows.iter().filter(|r| r.1 == "2").collect();
        (current.len() == 1 && rows.len() == 3 && current[0].0 == rows_name(&k, "busybox:1.35"))
            .then_some(())
    });

    // ReplicaSets are the hub's to write.
    let first = rows_name(&k, "busybox:1.35");
    let e = err_of(&k, &["label", "rs", &first, "x=y"]);
    assert!(e.contains("MethodNotAllowed"), "{e}");
    let e = err_of(&k, &["scale", "rs", &first, "--replicas=1"]);
    assert!(e.contains("written by the hub only"), "{e}");
    let e = err_of(&k, &["delete", "rs", &first]);
    assert!(
        e.contains("Forbidden") && e.contains("controlled by deployment \"roll\""),
        "{e}"
    );
    let e = err_of(&k, &["delete", "deployment", "roll", "--cascade=orphan"]);
    assert!(e.contains("Orphan is not supported"), "{e}");

    // `get rs -w -l`: a row per change.
    let mut watch = k
        .command(&["get", "rs", "-w", "-l", "app=roll"])
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
    let header = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(header.starts_with("NAME"), "{header}");
    k.ok(&["scale", "deployment", "roll", "--replicas=3"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the watch shows the ReplicaSet scaled to 3");
        let c: Vec<&str> = line.split_whitespace().collect();
        if c.first() == Some(&first.as_str()) && c.get(1) == Some(&"3") {
            break;
        }
    }
    watch.kill().unwrap();
    watch.wait().unwrap();

    // Deleting the Deployment deletes its ReplicaSets, then their pods.
    k.ok(&["delete", "deployment", "roll"]);
    eventually(
        "the ReplicaSets and pods to go",
        Duration::from_secs(30),
        || {
            let rs = k.ok(&["get", "rs", "-l", "app=roll", "-o", "name"]);
            let pods = k.ok(&["get", "pods", "-l", "app=roll", "-o", "name"]);
            (rs.trim().is_empty() && pods.trim().is_empty()).then_some(())
        },
    );
}

/// The name of the ReplicaSet running `image`.
fn rows_name(k: &Kubectl, image: &str) -> String {
    let wide = k.ok(&["get", "rs", "-l", "app=roll", "-o", "wide", "--no-headers"]);
    wide.lines()
        .find(|l| l.contains(image))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no ReplicaSet of {image}:\n{wide}"))
        .to_string()
}
