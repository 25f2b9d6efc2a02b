//! kubectl's typed client against a real hub: `kubectl create namespace |
//! configmap | secret generic | deployment | service clusterip | ingress`
//! send protobuf bodies (`application/vnd.kubernetes.protobuf`), which the hub
//! decodes; each object is read back with `kubectl get -o json`. And what the
//! hub answers to protobuf it cannot decode, or a content type it does not take.

use std::path::Path;

use bramble_tests::kubectl::Kubectl;
use bramble_tests::{Client, HubProcess};
use serde_json::Value;

fn kubectl(hub: &HubProcess, args: &[&str]) -> String {
    Kubectl::for_data_dir(&hub.data_dir).ok(args)
}

fn get(hub: &HubProcess, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&kubectl(hub, &all)).expect("kubectl get -o json prints JSON")
}

#[test]
fn kubectl_typed_creates_are_stored_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());

    assert_eq!(
        kubectl(&hub, &["create", "namespace", "shop"]),
        "namespace/shop created\n"
    );
    let ns = get(&hub, &["namespace", "shop"]);
    assert_eq!(ns["metadata"]["name"], "shop");
    assert!(ns["metadata"]["uid"].is_string());

    kubectl(
        &hub,
        &["create", "configmap", "cfg", "-n", "shop"]
            .into_iter()
            .chain(["--from-literal=a=b", "--from-literal=c=d"])
            .collect::<Vec<_>>(),
    );
    let cm = get(&hub, &["configmap", "cfg", "-n", "shop"]);
    assert_eq!(cm["data"], serde_json::json!({"a": "b", "c": "d"}));
    assert_eq!(cm["metadata"]["namespace"], "shop");

    kubectl(
        &hub,
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=admin",
            "--from-literal=pass=s3cr3t",
        ],
    );
    let secret = get(&hub, &["secret", "creds"]);
    assert_eq!(secret["data"]["user"], "YWRtaW4=");
    assert_eq!(secret["data"]["pass"], "czNjcjN0");
    assert_eq!(secret["type"], "Opaque");

    kubectl(
        &hub,
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=2",
            "--port=80",
        ],
    );
    let d = get(&hub, &["deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["metadata"]["labels"]["app"], "web");
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app"], "web");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "busybox");
    assert_eq!(c["image"], "busybox");
    assert_eq!(c["ports"][0]["containerPort"], 80);
    assert_eq!(c["ports"][0]["protocol"], "TCP");

    kubectl(
        &hub,
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
    );
    let svc = get(&hub, &["service", "web"]);
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["selector"]["app"], "web");
    let port = &svc["spec"]["ports"][0];
    assert_eq!(port["name"], "80-8080");
    assert_eq!(
        (port["port"].as_i64(), port["targetPort"].as_i64()),
        (Some(80), Some(8080))
    );
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.43."))
    );

    kubectl(
        &hub,
        &["create", "ingress", "web", "--rule=web.local/*=web:80"],
    );
    let ing = get(&hub, &["ingress", "web"]);
    let rule = &ing["spec"]["rules"][0];
    assert_eq!(rule["host"], "web.local");
    let path = &rule["http"]["paths"][0];
    assert_eq!(path["path"], "/");
    assert_eq!(path["pathType"], "Prefix");
    assert_eq!(path["backend"]["service"]["name"], "web");
    assert_eq!(path["backend"]["service"]["port"]["number"], 80);

    // kubectl delete sends JSON DeleteOptions (its dynamic client), not protobuf.
    assert_eq!(
        kubectl(&hub, &["delete", "configmap", "cfg", "-n", "shop"]),
        "configmap \"cfg\" deleted\n"
    );
    let (code, _) = hub.client().get("/api/v1/namespaces/shop/configmaps/cfg");
    assert_eq!(code, 404);
}

fn send(c: &Client, path: &str, ct: &str, body: Vec<u8>) -> (u16, Value) {
    let req = ureq::http::Request::builder()
        .method("POST")
        .uri(format!("{}{path}", c.base))
        .header("Authorization", format!("Bearer {}", c.token))
        .header("Content-Type", ct)
        .body(body)
        .unwrap();
    let mut resp = c.agent.run(req).expect("a response");
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (resp.status().as_u16(), serde_json::from_str(&text).unwrap())
}

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

#[test]
fn protobuf_the_hub_cannot_decode_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let c = hub.client();
    // k8s\0 + runtime.Unknown {TypeMeta {v1, Namespace}, raw: Namespace
    // {metadata {name: "x"}, field 9 (not a Namespace field): ""}}.
    let mut body = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Namespace".to_vec();
    body.extend_from_slice(b"\x12\x07\x0a\x03\x0a\x01x\x4a\x00");
    let (code, status) = send(&c, "/api/v1/namespaces", PROTOBUF, body.clone());
    assert_eq!(code, 415, "{status}");
    assert_eq!(status["reason"], "UnsupportedMediaType");
    assert_eq!(
        status["message"],
        "protobuf field 9 of io.k8s.api.core.v1.Namespace is not supported by Bramble; \
         send JSON (kubectl apply -f) instead"
    );

    // Cut inside the object: 400, with where.
    body.truncate(body.len() - 3);
    let (code, status) = send(&c, "/api/v1/namespaces", PROTOBUF, body);
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["reason"], "BadRequest");

    // JSON sent as protobuf: not the envelope.
    let (code, _) = send(&c, "/api/v1/namespaces", PROTOBUF, b"{}".to_vec());
    assert_eq!(code, 400);

    let (code, status) = send(
        &c,
        "/api/v1/namespaces",
        "text/plain",
        br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}"#.to_vec(),
    );
    assert_eq!(code, 415, "{status}");
    assert_eq!(status["reason"], "UnsupportedMediaType");
    let (code, _) = c.get("/api/v1/namespaces/x");
    assert_eq!(code, 404, "nothing was created");
}
