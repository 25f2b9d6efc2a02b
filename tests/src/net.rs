//! Pieces shared by the lab network tests and the network bench: a web
//! server that answers its pod's hostname, its Deployment with a file-driven
//! readiness probe, a Service for it, pods pinned to a node, and a way into a
//! pod's network namespace.

use crate::eventually;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{Agent, Cluster, deployment};

/// A web server answering its pod's hostname on 8080, Ready while
/// /tmp/ready exists (created at start).
pub const WEB: &str =
    "mkdir -p /tmp; hostname > /tmp/index.html; touch /tmp/ready; exec httpd -f -p 8080 -h /tmp";

/// Like [`WEB`], but starting unready: /tmp/ready is left to the test.
pub const WEB_UNREADY: &str =
    "mkdir -p /tmp; hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp";

/// Runs `script` with `sh -c` in pod `pod`; (success, output).
pub fn exec(c: &Cluster, pod: &str, script: &str) -> (bool, String) {
    c.cli(&["exec", pod, "--", "sh", "-c", script])
}

/// A Deployment `name` of `replicas` [`WEB`] pods (image `busybox:net`),
/// port `http` = 8080, Ready while /tmp/ready exists (probed every second,
/// one failure is enough).
pub fn web_deployment(name: &str, replicas: i64) -> Value {
    web_deployment_running(name, replicas, WEB)
}

/// [`web_deployment`] with another container script (e.g. [`WEB_UNREADY`]).
pub fn web_deployment_running(name: &str, replicas: i64, script: &str) -> Value {
    let mut d = deployment(name, replicas, "busybox:net", script);
    let container = &mut d["spec"]["template"]["spec"]["containers"][0];
    container["ports"] = json!([{"name": "http", "containerPort": 8080}]);
    container["readinessProbe"] = json!({"exec": {"command": ["test", "-f", "/tmp/ready"]},
        "periodSeconds": 1, "failureThreshold": 1});
    d
}

/// A ClusterIP Service `name` selecting `app=name`, port 80 → `http`.
pub fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
}

/// A pod running `script` on `node`, labelled `app=<app>`.
pub fn pinned_pod(name: &str, app: &str, node: &str, script: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox:net", "command": ["sh", "-c", script],
                "ports": [{"name": "http", "containerPort": 8080}]}]}})
}

/// The IP of pod `name` in `default`, once it has one.
pub fn pod_ip(c: &Cluster, name: &str) -> Option<String> {
    let (code, p) = c
        .client()
        .get(&format!("/api/v1/namespaces/default/pods/{name}"));
    (code == 200)
        .then(|| p["status"]["podIP"].as_str().map(str::to_string))
        .flatten()
}

/// Waits (60 s) until pod `name` in `default` is Running with an IP; the IP.
pub fn wait_running(c: &Cluster, name: &str) -> String {
    eventually(
        format!("pod {name} running with an IP"),
        Duration::from_secs(60),
        || {
            let (_, p) = c
                .client()
                .get(&format!("/api/v1/namespaces/default/pods/{name}"));
            (p["status"]["phase"] == "Running")
                .then(|| pod_ip(c, name))
                .flatten()
        },
    )
}

/// The file pinning the network namespace of pod `pod` (namespace
/// `default`) that `agent` runs: `RUN_DIR/netns/default_<pod>` (see
/// `docs/operations.md`). Enter it with [`crate::lab::run_in_netns`].
pub fn pod_netns(agent: &Agent, pod: &str) -> PathBuf {
    agent.run_dir.join("netns").join(format!("default_{pod}"))
}
