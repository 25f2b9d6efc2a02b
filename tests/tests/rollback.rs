//! A release that crash-loops on the boards undoes itself while nobody is
//! on site: a real hub and agent, real containers. With
//! `bramble.dev/rollback-on-failure: "true"` a Deployment whose update
//! misses `progressDeadlineSeconds` is back on the previous revision with
//! every pod Ready and the reason recorded; without it, it stays stuck and
//! reports `ProgressDeadlineExceeded`.

use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, IDLE, deployment};
use bramble_tests::eventually;
use serde_json::{Value, json};

fn release(name: &str, opt_in: bool) -> Value {
    let mut d = deployment(name, 2, "busybox:e2e", IDLE);
    d["spec"]["progressDeadlineSeconds"] = 8.into();
    if opt_in {
        d["metadata"]["annotations"] = json!({"bramble.dev/rollback-on-failure": "true"});
    }
    d
}

fn progressing(d: &Value) -> Option<(String, String)> {
    let c = d["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Progressing")?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
    ))
}

fn get(c: &Cluster, name: &str) -> Value {
    let (code, v) = c.client().get(&format!("{DEPLOYMENTS}/{name}"));
    assert_eq!(code, 200, "{v}");
    v
}

/// Waits for the rollout of `name` to complete.
fn complete(c: &Cluster, name: &str) {
    eventually(
        format!("{name} rolled out"),
        Duration::from_secs(90),
        || {
            let d = get(c, name);
            let done = progressing(&d) == Some(("True".into(), "NewReplicaSetAvailable".into()))
                && d["status"]["readyReplicas"] == 2
                && d["status"]["observedGeneration"] == d["metadata"]["generation"];
            done.then_some(()).ok_or_else(|| d["status"].to_string())
        },
    );
}

/// Waits until `name`'s current ReplicaSet counts as fully available (its
/// pods ready for 10 s).
fn proven(c: &Cluster, name: &str) {
    eventually(
        format!("{name}'s release proven"),
        Duration::from_secs(60),
        || {
            let (_, list) = c.client().get(&format!(
                "/apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3D{name}"
            ));
            let items = list["items"].as_array().cloned().unwrap_or_default();
            items
                .iter()
                .any(|rs| !rs["metadata"]["annotations"]["bramble.dev/fully-available"].is_null())
                .then_some(())
                .ok_or_else(|| list.to_string())
        },
    );
}

/// Updates `name`'s container to one that exits 1 at once.
fn break_it(c: &Cluster, name: &str) {
    let (code, v) = c.client().merge_patch(
        &format!("{DEPLOYMENTS}/{name}"),
        &json!({"spec": {"template": {"spec": {"containers": [
            {"name": "main", "image": "busybox:e2e", "command": ["sh", "-c", "exit 1"]}]}}}}),
    );
    assert_eq!(code, 200, "{v}");
}

#[test]
fn a_crash_looping_release_rolls_back_by_itself_only_when_asked_to() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    for (name, opt_in) in [("auto", true), ("manual", false)] {
        let (code, v) = c.client().post(DEPLOYMENTS, &release(name, opt_in));
        assert_eq!(code, 201, "{v}");
    }
    complete(&c, "auto");
    complete(&c, "manual");
    proven(&c, "auto");
    let first = get(&c, "auto")["spec"]["template"].clone();
    break_it(&c, "auto");
    break_it(&c, "manual");

    // Opted in: back on the first template, every pod Ready, the reason kept.
    let why = eventually("auto rolled back", Duration::from_secs(120), || {
        let d = get(&c, "auto");
        d["metadata"]["annotations"]["bramble.dev/rolled-back"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{} {}", d["metadata"]["annotations"], d["status"]))
    });
    assert!(
        why.contains("revision 2 made no progress for 8s (ProgressDeadlineExceeded:")
            && why.ends_with("rolled back to revision 1, the last fully available"),
        "{why}"
    );
    complete(&c, "auto");
    let d = get(&c, "auto");
    assert_eq!(d["spec"]["template"], first);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let pods = c.pods("app=auto");
    let ready: Vec<&Value> = pods
        .iter()
        .filter(|p| bramble_tests::cluster::is_ready(p))
        .collect();
    assert_eq!(ready.len(), 2, "{pods:?}");
    assert!(
        ready
            .iter()
            .all(|p| p["spec"]["containers"][0]["command"]
                == first["spec"]["containers"][0]["command"]),
        "{ready:?}"
    );
    let (ok, history) = c.cli(&["rollout", "history", "deployment/auto"]);
    assert!(ok, "{history}");
    assert!(
        history.contains("automatic rollback: revision 2 made no progress"),
        "{history}"
    );

    // Not opted in: stuck on the broken release, and saying so.
    eventually("manual stuck", Duration::from_secs(60), || {
        let d = get(&c, "manual");
        (progressing(&d) == Some(("False".into(), "ProgressDeadlineExceeded".into())))
            .then_some(())
            .ok_or_else(|| d["status"].to_string())
    });
    let d = get(&c, "manual");
    assert!(d["metadata"]["annotations"]["bramble.dev/rolled-back"].is_null());
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["sh", "-c", "exit 1"])
    );
}
