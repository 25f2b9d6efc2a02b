//! StatefulSets through the API, with no agents (pods stay Pending): a
//! create gets Kubernetes' defaults, an invalid one Kubernetes' 422, the
//! controller makes `NAME-0` and its claim and waits for it to be Ready
//! before `NAME-1`, recording its event; with the real kubectl: `get sts`
//! (and `-o wide`, `get all`), `rollout status` waiting and then complete,
//! `scale`, `rollout restart`, and the claims kept when the StatefulSet goes.

use std::path::Path;
use std::time::Duration;

use bramble_hub::testing::TestHub;
use bramble_tests::kubectl::Kubectl;
use bramble_tests::{Client, HubProcess, eventually};
use serde_json::{Value, json};

const STS: &str = "/apis/apps/v1/namespaces/default/statefulsets";
const PODS: &str = "/api/v1/namespaces/default/pods";
const CLAIMS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";

fn statefulset(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "busybox:1.36",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    })
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_is_defaulted_validated_and_makes_its_first_pod_and_claim() {
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let c = Client::with_ca(&hub.url(), hub.token(), hub.ca_pem().as_bytes());
    tokio::task::spawn_blocking(move || {
        let mut bad = statefulset(2);
        bad["spec"]["selector"]["matchLabels"]["app"] = "other".into();
        bad["spec"]["podManagementPolicy"] = "Sometimes".into();
        let (code, v) = c.post(STS, &bad);
        assert_eq!((code, v["reason"].as_str()), (422, Some("Invalid")), "{v}");
        let message = v["message"].as_str().unwrap();
        assert!(
            message.starts_with("StatefulSet.apps \"web\" is invalid: ")
                && message.contains("`selector` does not match template `labels`")
                && message.contains("spec.podManagementPolicy: Unsupported value"),
            "{message}"
        );

        let (code, v) = c.post(STS, &statefulset(2));
        assert_eq!(code, 201, "{v}");
        assert_eq!(v["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            v["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(v["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(
            v["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );

        // web-0 and its claim; web-1 waits for web-0 to be Ready.
        let status = eventually(
            "the first pod and the status",
            Duration::from_secs(30),
            || {
                let (_, pods) = c.get(PODS);
                let (_, claims) = c.get(CLAIMS);
                let (_, sts) = c.get(&format!("{STS}/web"));
                (names(&pods) == ["web-0"]
                    && names(&claims) == ["data-web-0"]
                    && sts["status"]["replicas"] == 1)
                    .then(|| sts["status"].clone())
            },
        );
        assert_eq!(status["readyReplicas"], 0, "{status}");
        assert_eq!(status["observedGeneration"], 1, "{status}");
        let rev = status["updateRevision"].as_str().unwrap();
        assert!(rev.starts_with("web-"), "{status}");
        let (_, pod) = c.get(&format!("{PODS}/web-0"));
        assert_eq!(pod["metadata"]["labels"]["controller-revision-hash"], rev);
        assert_eq!(
            pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
            "0"
        );
        assert_eq!(pod["spec"]["hostname"], "web-0");
        assert_eq!(pod["spec"]["subdomain"], "web");
        assert_eq!(
            pod["spec"]["volumes"][0],
            json!({"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}})
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        eventually("the StatefulSet's event", Duration::from_secs(30), || {
            let (_, events) = c.get(
                "/api/v1/namespaces/default/events?fieldSelector=involvedObject.kind%3DStatefulSet",
            );
            events["items"]
                .as_array()?
                .iter()
                .find(|e| {
                    e["reason"] == "SuccessfulCreate"
                        && e["message"] == "create Pod web-0 in StatefulSet web successful"
                        && e["source"]["component"] == "statefulset-controller"
                })
                .map(|_| ())
        });
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(names(&c.get(PODS).1), ["web-0"], "web-1 waits");
    })
    .await
    .unwrap();
    hub.stop().await.unwrap();
}

#[test]
fn kubectl_gets_statefulsets_and_follows_their_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let k = Kubectl::for_data_dir(&hub.data_dir);
    let yaml = serde_json::to_string(&statefulset(2)).unwrap();
    let out = k.run(&["apply", "-f", "-"], Some(yaml.as_bytes()));
    assert!(out.status.success(), "{out:?}");

    let out = k.ok(&["get", "sts"]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "READY", "AGE"], "{out}");
    assert_eq!(lines[1][..2], ["web", "0/2"], "{out}");
    let wide = k.ok(&["get", "statefulset", "web", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"],
        "{wide}"
    );
    let row: Vec<&str> = wide.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[3..], ["app", "busybox:1.36"], "{wide}");

    let all = k.ok(&["get", "all"]);
    assert!(all.contains("statefulset.apps/web"), "{all}");

    // No agents: the pods never get ready, so the rollout waits.
    let waiting = eventually("the status observed", Duration::from_secs(30), || {
        let out = k.ok(&["rollout", "status", "statefulset/web", "--watch=false"]);
        out.contains("Waiting for 2 pods to be ready")
            .then_some(out)
    });
    assert!(!waiting.contains("complete"), "{waiting}");

    // Scaled to 0 the rollout is complete (the pod goes, its claim stays).
    let out = k.ok(&["scale", "sts", "web", "--replicas=0"]);
    assert_eq!(out.trim(), "statefulset.apps/web scaled");
    let done = k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    assert!(
        done.contains("partitioned roll out complete: 0 new pods have been updated"),
        "{done}"
    );

    // restart stamps the template (a new revision).
    let before = k.ok(&[
        "get",
        "sts",
        "web",
        "-o",
        "jsonpath={.status.updateRevision}",
    ]);
    k.ok(&["rollout", "restart", "statefulset/web"]);
    let annotations = k.ok(&[
        "get",
        "sts",
        "web",
        "-o",
        "jsonpath={.spec.template.metadata.annotations}",
    ]);
    assert!(
        annotations.contains("kubectl.kubernetes.io/restartedAt"),
        "{annotations}"
    );
    eventually("a new update revision", Duration::from_secs(30), || {
        let now = k.ok(&[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.status.updateRevision}",
        ]);
        (!now.is_empty() && now != before).then_some(())
    });

    k.ok(&["delete", "sts", "web"]);
    let pvcs = k.ok(&["get", "pvc", "-o", "name"]);
    assert_eq!(
        pvcs.trim(),
        "persistentvolumeclaim/data-web-0",
        "claims are kept"
    );
}
