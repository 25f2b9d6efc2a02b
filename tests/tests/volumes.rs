//! Persistent volumes end to end: a real hub and agent, real containers, the
//! built-in `local-path` class. A claim's data survives its pod's deletion,
//! `kill -9` of the agent and of the hub; deleting the claim deletes the
//! directory with reclaim policy `Delete` and keeps it with `Retain`; a pod
//! whose volume is on a node that is gone stays Pending and says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, IDLE, deployment, unique};
use bramble_tests::eventually;
use serde_json::{Value, json};

/// One cluster at a time: a hub and an agent on 2 cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const CLAIMS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn claim(name: &str, class: Option<&str>) -> Value {
    let mut c = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}});
    if let Some(class) = class {
        c["spec"]["storageClassName"] = class.into();
    }
    c
}

/// A Deployment of one busybox pod mounting `claim` at /data and running `script`.
fn with_claim(name: &str, claim: &str, script: &str) -> Value {
    let mut d = deployment(name, 1, "busybox:e2e", script);
    let spec = &mut d["spec"]["template"]["spec"];
    spec["volumes"] = json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]);
    spec["containers"][0]["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    d
}

fn get(c: &Cluster, path: &str) -> Option<Value> {
    let (code, v) = c.client().get(path);
    (code == 200).then_some(v)
}

/// The claim's volume once it is Bound.
fn bound_volume(c: &Cluster, claim: &str) -> String {
    eventually(
        format!("claim {claim} Bound"),
        Duration::from_secs(60),
        || {
            let v = get(c, &format!("{CLAIMS}/{claim}"))?;
            (v["status"]["phase"] == "Bound")
                .then(|| v["spec"]["volumeName"].as_str().map(str::to_string))
                .flatten()
                .ok_or_else(|| v["status"].to_string())
                .ok()
        },
    )
}

/// The one Running pod of `app`, other than the one with uid `not`:
/// `(name, uid)` (a replacement may get the name of the pod it replaces).
fn running_pod(c: &Cluster, app: &str, not: Option<&str>) -> (String, String) {
    eventually(
        format!("a Running {app} pod"),
        Duration::from_secs(90),
        || {
            c.pods(&format!("app={app}"))
                .iter()
                .find(|p| {
                    p["status"]["phase"] == "Running"
                        && p["metadata"]["deletionTimestamp"].is_null()
                        && p["metadata"]["uid"].as_str() != not
                })
                .map(|p| {
                    let s = |k: &str| p["metadata"][k].as_str().unwrap_or("").to_string();
                    (s("name"), s("uid"))
                })
        },
    )
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn a_claims_data_survives_its_pod_the_agent_and_the_hub_and_goes_with_the_claim() {
    let _one = serial();
    let mut c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    let token = unique("written");
    let (code, v) = c.client().post(CLAIMS, &claim("data", None));
    assert_eq!(code, 201, "{v}");
    // Each start records the token it found: the first start writes it.
    let script = format!(
        "[ -e /data/first ] || echo {token} > /data/first; cat /data/first >> /data/seen; {IDLE}"
    );
    let (code, v) = c
        .client()
        .post(DEPLOYMENTS, &with_claim("writer", "data", &script));
    assert_eq!(code, 201, "{v}");
    let (first_pod, first_uid) = running_pod(&c, "writer", None);
    let volume = bound_volume(&c, "data");
    let pv = get(&c, &format!("/api/v1/persistentvolumes/{volume}")).expect("the volume");
    let node = &c.agents[0].name;
    assert_eq!(pv["status"]["phase"], "Bound", "{pv}");
    assert_eq!(pv["spec"]["storageClassName"], "local-path");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"],
        json!([node])
    );
    let dir: PathBuf = c.agents[0].data_dir.join("volumes").join(&volume);
    assert_eq!(
        pv["spec"]["local"]["path"],
        dir.display().to_string(),
        "the volume's path is where the agent keeps it"
    );
    eventually("the token on the node", Duration::from_secs(30), || {
        (read(&dir.join("first")).as_deref() == Some(token.as_str())).then_some(())
    });
    let (ok, out) = c.cli(&["get", "pvc,pv,sc"]);
    assert!(ok, "{out}");
    for want in [
        format!("persistentvolumeclaim/data   Bound    {volume}"),
        format!("persistentvolume/{volume}"),
        "storageclass.storage.k8s.io/local-path (default)   bramble.dev/local-path".to_string(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }

    // kill -9 of both, then restart: the pod keeps running on the data.
    c.agents[0].proc.kill9();
    c.hub.restart();
    c.agents[0].restart();
    assert_eq!(read(&dir.join("first")).as_deref(), Some(token.as_str()));

    // A new pod of the Deployment finds the data the first one wrote.
    let (code, v) = c.client().delete(&format!("{PODS}/{first_pod}"));
    assert!(code == 200 || code == 202, "{code} {v}");
    let (_, second_uid) = running_pod(&c, "writer", Some(&first_uid));
    assert_ne!(second_uid, first_uid);
    eventually(
        "the second pod saw the token",
        Duration::from_secs(30),
        || {
            let seen = read(&dir.join("seen"))?;
            (seen.lines().filter(|l| *l == token).count() >= 2).then_some(())
        },
    );
    assert_eq!(bound_volume(&c, "data"), volume, "same claim, same volume");

    // Reclaim policy Delete: the claim goes, then its directory and volume.
    let (code, v) = c.client().delete(&format!("{DEPLOYMENTS}/writer"));
    assert_eq!(code, 200, "{v}");
    let (code, v) = c.client().delete(&format!("{CLAIMS}/data"));
    assert_eq!(code, 200, "{v}");
    eventually(
        "the volume's directory deleted",
        Duration::from_secs(90),
        || (!dir.exists()).then_some(()),
    );
    eventually("the volume object deleted", Duration::from_secs(30), || {
        get(&c, &format!("/api/v1/persistentvolumes/{volume}"))
            .is_none()
            .then_some(())
    });
}

#[test]
fn retain_keeps_the_data_and_a_volume_on_a_gone_node_keeps_its_pod_pending_saying_why() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    let (code, v) = c.client().post(
        "/apis/storage.k8s.io/v1/storageclasses",
        &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "keep"}, "provisioner": "bramble.dev/local-path",
            "reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer"}),
    );
    assert_eq!(code, 201, "{v}");
    let (code, v) = c.client().post(CLAIMS, &claim("kept", Some("keep")));
    assert_eq!(code, 201, "{v}");
    let token = unique("kept");
    let (code, v) = c.client().post(
        DEPLOYMENTS,
        &with_claim("keeper", "kept", &format!("echo {token} > /data/f; {IDLE}")),
    );
    assert_eq!(code, 201, "{v}");
    running_pod(&c, "keeper", None);
    let volume = bound_volume(&c, "kept");
    let dir = c.agents[0].data_dir.join("volumes").join(&volume);
    eventually("the file written", Duration::from_secs(30), || {
        (read(&dir.join("f")).as_deref() == Some(token.as_str())).then_some(())
    });
    assert_eq!(c.client().delete(&format!("{DEPLOYMENTS}/keeper")).0, 200);
    assert_eq!(c.client().delete(&format!("{CLAIMS}/kept")).0, 200);
    eventually("the volume Released", Duration::from_secs(60), || {
        let pv = get(&c, &format!("/api/v1/persistentvolumes/{volume}"))?;
        (pv["status"]["phase"] == "Released").then_some(())
    });
    assert_eq!(
        read(&dir.join("f")).as_deref(),
        Some(token.as_str()),
        "Retain keeps the data"
    );

    // A volume an administrator made on a node that is not (or no longer)
    // in the cluster: the pod waits, and says where its volume is.
    let (code, v) = c.client().post(
        "/api/v1/persistentvolumes",
        &json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "on-gone"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "local": {"path": "/srv/gone"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["pi-gone"]}]}]}}}}),
    );
    assert_eq!(code, 201, "{v}");
    let mut stranded = claim("stranded", Some(""));
    stranded["spec"]["volumeName"] = "on-gone".into();
    assert_eq!(c.client().post(CLAIMS, &stranded).0, 201);
    bound_volume(&c, "stranded");
    let (code, v) = c.client().post(
        PODS,
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stranded"},
            "spec": {"containers": [{"name": "c", "image": "busybox:e2e", "command": ["sh", "-c", IDLE]}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "stranded"}}]}}),
    );
    assert_eq!(code, 201, "{v}");
    let message = eventually(
        "the pod's scheduling message",
        Duration::from_secs(30),
        || {
            let p = get(&c, &format!("{PODS}/stranded"))?;
            p["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")?["message"]
                .as_str()
                .map(str::to_string)
        },
    );
    assert_eq!(
        message,
        "0/1 nodes are available: 1 node(s) had volume node affinity conflict. \
         persistentvolume \"on-gone\" of claim \"stranded\" is on node \"pi-gone\", which is not in the cluster."
    );
    assert_eq!(
        get(&c, &format!("{PODS}/stranded")).unwrap()["status"]["phase"],
        "Pending"
    );
}
