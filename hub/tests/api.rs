//! The HTTP API against an in-process hub on a real redb file.

use std::io::{BufRead, BufReader, Write};

use bramble_hub::testing::TestHub;
use bramble_tests::Client;
use serde_json::{Value, json};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn cm(name: &str, v: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "labels": {"app": "demo", "name": name}},
           "data": {"key": v}})
}

async fn hub() -> (TestHub, Client) {
    let hub = TestHub::start().await.unwrap();
    let c = Client::with_ca(&hub.url(), hub.token(), hub.ca_pem().as_bytes());
    (hub, c)
}

/// Runs blocking client calls off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_required_except_health_and_version() {
    let (hub, c) = hub().await;
    blocking(move || {
        assert_eq!(c.get_noauth("/healthz"), (200, Value::String("ok".into())));
        let (code, v) = c.get_noauth("/version");
        assert_eq!(code, 200);
        assert_eq!(v["major"], "1");
        let (code, v) = c.get_noauth(CMS);
        assert_eq!(code, 401);
        assert_eq!(v["kind"], "Status");
        assert_eq!(c.get_noauth("/metrics").0, 401);
        let wrong = Client::with_ca(&c.base, "not-the-token", &c.ca);
        assert_eq!(wrong.get(CMS).0, 401);
        assert_eq!(c.get(CMS).0, 200);
    })
    .await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_round_trip_with_kubernetes_errors() {
    let (hub, c) = hub().await;
    blocking(move || {
        let (code, a) = c.post(CMS, &cm("a", "1"));
        assert_eq!(code, 201, "{a}");
        assert_eq!(a["metadata"]["namespace"], "default");
        let (code, dup) = c.post(CMS, &cm("a", "1"));
        assert_eq!((code, dup["reason"].as_str()), (409, Some("AlreadyExists")));

        let (code, got) = c.get(&format!("{CMS}/a"));
        assert_eq!((code, &got), (200, &a));
        let (code, missing) = c.get(&format!("{CMS}/nope"));
        assert_eq!(code, 404);
        assert_eq!(missing["message"], "configmaps \"nope\" not found");

        // PUT that changes nothing keeps the resourceVersion.
        let (code, same) = c.put(&format!("{CMS}/a"), &cm("a", "1"));
        assert_eq!(code, 200);
        assert_eq!(
            same["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        let (code, b) = c.put(&format!("{CMS}/a"), &cm("a", "2"));
        assert_eq!(code, 200);
        assert_ne!(
            b["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );

        // A stale resourceVersion is a 409 Conflict.
        let mut stale = cm("a", "3");
        stale["metadata"]["resourceVersion"] = a["metadata"]["resourceVersion"].clone();
        let (code, conflict) = c.put(&format!("{CMS}/a"), &stale);
        assert_eq!((code, conflict["reason"].as_str()), (409, Some("Conflict")));

        let (code, patched) = c.merge_patch(&format!("{CMS}/a"), &json!({"data": {"extra": "x"}}));
        assert_eq!(code, 200, "{patched}");
        assert_eq!(patched["data"], json!({"key": "2", "extra": "x"}));

        c.post(CMS, &cm("b", "1"));
        let (_, list) = c.get(&format!("{CMS}?labelSelector=name%3Db"));
        assert_eq!(list["kind"], "ConfigMapList");
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        let (code, bad) = c.get(&format!("{CMS}?labelSelector=a%20in%20x"));
        assert_eq!(code, 400, "{bad}");

        let (code, gone) = c.delete(&format!("{CMS}/a"));
        assert_eq!((code, gone["metadata"]["name"].as_str()), (200, Some("a")));
        assert_eq!(c.get(&format!("{CMS}/a")).0, 404);
        assert_eq!(c.delete(&format!("{CMS}/a")).0, 404);
    })
    .await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_statuses() {
    let (hub, c) = hub().await;
    blocking(move || {
        // A field Kubernetes does not know either: Strict names it (400).
        let mut bad = cm("x", "1");
        bad["metadata"]["lifecycle"] = json!({});
        let (code, s) = c.post(&format!("{CMS}?fieldValidation=Strict"), &bad);
        assert_eq!(code, 400, "{s}");
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .contains("strict decoding error: unknown field \"metadata.lifecycle\""),
            "{s}"
        );
        // A key given twice: named like an unknown field (the last value wins).
        let (code, s) = c.post_raw(
            &format!("{CMS}?fieldValidation=Strict"),
            br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"},
                "data": {"a": "1", "a": "2"}}"#,
        );
        assert_eq!(code, 400, "{s}");
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .contains("strict decoding error: duplicate field \"data.a\""),
            "{s}"
        );
        // A Kubernetes field Bramble does not implement: 422 in every mode.
        let mut bad = cm("x", "1");
        bad["metadata"]["finalizers"] = json!(["a/b"]);
        let (code, s) = c.post(&format!("{CMS}?fieldValidation=Ignore"), &bad);
        assert_eq!(code, 422, "{s}");
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.finalizers");
        assert!(
            s["message"].as_str().unwrap().contains(
                "metadata.finalizers: Unsupported value: Bramble does not implement this field"
            ),
            "{s}"
        );

        let (code, s) = c.post(CMS, &cm("Bad_Name", "1"));
        assert_eq!(code, 422, "{s}");
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");

        let (code, s) = c.post_raw(CMS, b"{\n  \"apiVersion\": \"v1\",\n  \"kind\": ");
        assert_eq!(code, 400);
        assert!(s["message"].as_str().unwrap().contains("line 3"), "{s}");

        let (code, s) = c.post(
            CMS,
            &json!({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}),
        );
        assert_eq!(code, 404, "{s}");
        // As against Kubernetes, the URL names the kind a body leaves out.
        let (code, s) = c.post(
            CMS,
            &json!({"kind": "ConfigMap", "metadata": {"name": "w"}}),
        );
        assert_eq!((code, s["apiVersion"].as_str()), (201, Some("v1")), "{s}");
        let (code, s) = c.post("/api/v1/namespaces/default/secrets", &cm("mismatch", "1"));
        assert_eq!(code, 400, "{s}");
        assert_eq!(c.get("/api/v1/widgets").0, 404);
        let (code, s) = c.post("/api/v1/namespaces/missing/configmaps", &cm("m", "1"));
        assert_eq!(
            (code, s["message"].as_str()),
            (404, Some("namespaces \"missing\" not found"))
        );

        // An oversize body is refused from its Content-Length, before it is read.
        let addr = c.authority().to_string();
        let mut tcp = c.raw();
        write!(
            tcp,
            "POST {CMS} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{",
            c.token,
            4 * 1024 * 1024
        )
        .unwrap();
        let mut status = String::new();
        BufReader::new(&mut tcp).read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 413"), "{status}");
        // Nothing of the above was stored but the defaulted "w".
        let (_, list) = c.get(CMS);
        let names: Vec<&Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| &o["metadata"]["name"])
            .collect();
        assert_eq!(names, [&json!("w")]);
    })
    .await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_every_kind() {
    let (hub, c) = hub().await;
    blocking(move || {
        assert_eq!(c.get("/api").1["versions"], json!(["v1"]));
        let (_, groups) = c.get("/apis");
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "apps",
                "autoscaling",
                "networking.k8s.io",
                "storage.k8s.io",
                "batch",
                "bramble.dev",
                "events.k8s.io",
                "metrics.k8s.io"
            ]
        );
        let (_, core) = c.get("/api/v1");
        let pods = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["shortNames"], json!(["po"]));
        let (_, apps) = c.get("/apis/apps/v1");
        assert_eq!(apps["groupVersion"], "apps/v1");
        assert_eq!(c.get("/apis/apps/v9").0, 404);
        let (code, metrics) = c.get("/metrics");
        assert_eq!(code, 200);
        assert!(metrics.as_str().unwrap().contains("bramble_store_revision"));
    })
    .await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_events_and_resumes_from_a_revision() {
    let (hub, c) = hub().await;
    blocking(move || {
        let (_, a) = c.post(CMS, &cm("a", "1"));
        let rv = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let resp = c
            .agent
            .get(format!(
                "{}{CMS}?watch=true&labelSelector=app%3Ddemo",
                c.base
            ))
            .header("Authorization", format!("Bearer {}", c.token))
            .call()
            .unwrap();
        let mut lines = BufReader::new(resp.into_body().into_reader()).lines();
        let mut next =
            move || -> Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
        let first = next();
        assert_eq!(
            (
                first["type"].as_str(),
                first["object"]["metadata"]["name"].as_str()
            ),
            (Some("ADDED"), Some("a"))
        );
        c.put(&format!("{CMS}/a"), &cm("a", "2"));
        c.delete(&format!("{CMS}/a"));
        let m = next();
        assert_eq!(
            (m["type"].as_str(), m["object"]["data"]["key"].as_str()),
            (Some("MODIFIED"), Some("2"))
        );
        assert_eq!(next()["type"], "DELETED");

        // Resume from a known revision: only later events.
        let resp = c
            .agent
            .get(format!(
                "{}{CMS}?watch=1&resourceVersion={rv}&timeoutSeconds=2",
                c.base
            ))
            .header("Authorization", format!("Bearer {}", c.token))
            .call()
            .unwrap();
        let body = resp.into_body().read_to_string().unwrap();
        let types: Vec<String> = body
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(types, ["MODIFIED", "DELETED"]);
    })
    .await;
    hub.stop().await.unwrap();
}

/// A replace of a Service that leaves out the addresses the hub assigned
/// changes nothing (kubectl and `bramble apply` send the manifest as written):
/// the same resourceVersion and managers, for its own manager and another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_service_without_its_cluster_ip_changes_nothing() {
    let (hub, c) = hub().await;
    blocking(move || {
        let svcs = "/api/v1/namespaces/default/services";
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
        let (code, created) = c.post(&format!("{svcs}?fieldManager=bramble"), &svc);
        assert_eq!(code, 201, "{created}");
        assert!(created["spec"]["clusterIP"].is_string(), "{created}");
        // Managers' times are in whole seconds: replace in a later second,
        // where a change would show as a new time.
        let at = created["metadata"]["managedFields"][0]["time"].clone();
        let second = || humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        while at == second().as_str() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for manager in ["bramble", "other"] {
            let (code, same) = c.put(&format!("{svcs}/web?fieldManager={manager}"), &svc);
            assert_eq!(code, 200, "{same}");
            assert_eq!(same, created, "a replace by {manager} changed the Service");
        }
    })
    .await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pod_is_pending_from_its_create_on_as_kubernetes_starts_it() {
    let (hub, c) = hub().await;
    blocking(move || {
        let pods = "/api/v1/namespaces/default/pods";
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "fresh"},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.9"}});
        let (code, created) = c.post(pods, &pod);
        assert_eq!(code, 201, "{created}");
        // The client's status is not taken; the first status is Pending.
        assert_eq!(created["status"]["phase"], "Pending", "{created}");
        assert_eq!(created["status"]["qosClass"], "BestEffort", "{created}");
        assert!(created["status"]["podIP"].is_null(), "{created}");
        let (code, listed) = c.get(&format!("{pods}?fieldSelector=status.phase=Pending"));
        assert_eq!(code, 200, "{listed}");
        assert_eq!(listed["items"][0]["metadata"]["name"], "fresh", "{listed}");
    })
    .await;
    hub.stop().await.unwrap();
}
