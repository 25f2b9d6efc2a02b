//! Pod Security admission on a `bramble-hub` process: namespaces are
//! `baseline` unless labelled, refusals are Kubernetes' 403 with its exact
//! message, the warn level comes back as `Warning` headers (as kubectl
//! prints them), workloads are refused like their pods, host devices and
//! host paths are allowed per namespace and per hub, `kube-system` is
//! exempt, and a level raised later stops the controllers' new pods.

use bramble_tests::eventually;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bramble_tests::{Client, HubProcess};
use serde_json::{Value, json};

fn hub_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_bramble-hub"))
}

fn pods(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods")
}

/// `(code, body, Warning headers)` of a request with a JSON body.
fn send(c: &Client, method: &str, path: &str, ct: &str, body: &Value) -> (u16, Value, Vec<String>) {
    let uri = format!("{}{path}", c.base);
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("Authorization", format!("Bearer {}", c.token))
        .header("Content-Type", ct)
        .body(serde_json::to_vec(body).unwrap())
        .unwrap();
    let mut resp = c.agent.run(req).expect("a response");
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (resp.status().as_u16(), v, warnings)
}

fn post(c: &Client, path: &str, body: &Value) -> (u16, Value, Vec<String>) {
    send(c, "POST", path, "application/json", body)
}

fn patch(c: &Client, path: &str, body: &Value) -> (u16, Value, Vec<String>) {
    send(c, "PATCH", path, "application/merge-patch+json", body)
}

/// The `Warning` header Kubernetes sends for `text`.
fn warning(text: &str) -> String {
    format!(
        "299 - \"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

fn namespace(c: &Client, name: &str, labels: Value, annotations: Value) {
    let (code, v, _) = post(
        c,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels, "annotations": annotations}}),
    );
    assert_eq!(code, 201, "{v}");
}

/// A pod mounting the host's `/` and running privileged.
fn root_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox:1",
            "securityContext": {"privileged": true},
            "volumeMounts": [{"name": "host", "mountPath": "/host"}]}],
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}]}})
}

fn plain_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox:1"}]}})
}

const ROOT_VIOLATIONS: &str = "hostPath volumes (volume \"host\"), privileged (container \"app\" must not set securityContext.privileged=true)";

fn assert_forbidden(code: u16, v: &Value, message: &str) {
    assert_eq!(code, 403, "{v}");
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["status"], "Failure", "{v}");
    assert_eq!(v["reason"], "Forbidden", "{v}");
    assert_eq!(v["code"], 403, "{v}");
    assert_eq!(v["message"], message, "{v}");
}

#[test]
fn namespaces_are_baseline_unless_labelled_and_kube_system_is_exempt() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(hub_bin(), dir.path());
    let c = hub.client();

    // default: refused with Kubernetes' message, and nothing stored.
    let (code, v, _) = post(&c, &pods("default"), &root_pod("root"));
    assert_forbidden(
        code,
        &v,
        &format!(
            "pods \"root\" is forbidden: violates PodSecurity \"baseline:latest\": {ROOT_VIOLATIONS}"
        ),
    );
    assert_eq!(v["details"]["kind"], "pods", "{v}");
    assert_eq!(c.get(&format!("{}/root", pods("default"))).0, 404);
    let (code, v, _) = post(
        &c,
        &pods("default"),
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "priv"},
            "spec": {"containers": [{"name": "app", "image": "busybox:1",
                "securityContext": {"privileged": true}}]}}),
    );
    assert_forbidden(
        code,
        &v,
        "pods \"priv\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"app\" must not set securityContext.privileged=true)",
    );
    // A namespace that does not exist is a 404 first, as in Kubernetes.
    let (code, v, _) = post(&c, &pods("nowhere"), &root_pod("root"));
    assert_eq!((code, v["reason"].as_str()), (404, Some("NotFound")), "{v}");
    // A plain pod passes, without a warning.
    let (code, v, warnings) = post(&c, &pods("default"), &plain_pod("plain"));
    assert_eq!(code, 201, "{v}");
    assert!(warnings.is_empty(), "{warnings:?}");

    // enforce=privileged admits the same pod; the default warn level
    // (baseline) still says what it would violate.
    namespace(
        &c,
        "lab",
        json!({"pod-security.kubernetes.io/enforce": "privileged"}),
        json!({}),
    );
    let (code, v, warnings) = post(&c, &pods("lab"), &root_pod("root"));
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        warnings,
        [warning(&format!(
            "would violate PodSecurity \"baseline:latest\": {ROOT_VIOLATIONS}"
        ))]
    );
    // All modes privileged: not a word.
    namespace(
        &c,
        "open",
        json!({"pod-security.kubernetes.io/enforce": "privileged",
            "pod-security.kubernetes.io/warn": "privileged",
            "pod-security.kubernetes.io/audit": "privileged"}),
        json!({}),
    );
    let (code, v, warnings) = post(&c, &pods("open"), &root_pod("root"));
    assert_eq!(code, 201, "{v}");
    assert!(warnings.is_empty(), "{warnings:?}");

    // kube-system is exempt, whatever its labels say (and says so).
    let (code, v, warnings) = post(
        &c,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system",
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        warnings,
        [warning(
            "namespace \"kube-system\" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored"
        )]
    );
    let (code, v, warnings) = post(&c, &pods("kube-system"), &root_pod("root"));
    assert_eq!(code, 201, "{v}");
    assert!(warnings.is_empty(), "{warnings:?}");

    // An invalid level is refused on the Namespace itself.
    let (code, v, _) = post(
        &c,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "typo",
            "labels": {"pod-security.kubernetes.io/enforce": "strict"}}}),
    );
    assert_eq!(code, 422, "{v}");
    assert_eq!(
        v["message"],
        "Namespace \"typo\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted",
        "{v}"
    );

    // Raising lab to baseline is admitted with a warning naming the pod
    // that breaks it; the pod stays, takes metadata changes, and a spec
    // change is then checked.
    let (code, v, warnings) = patch(
        &c,
        "/api/v1/namespaces/lab",
        &json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        warnings,
        [
            warning(
                "existing pods in namespace \"lab\" violate the new PodSecurity enforce level \"baseline:latest\""
            ),
            warning("root: hostPath volumes, privileged"),
        ]
    );
    let root = format!("{}/root", pods("lab"));
    let (code, v, _) = patch(&c, &root, &json!({"metadata": {"labels": {"seen": "yes"}}}));
    assert_eq!(code, 200, "{v}");
    let (code, v, _) = patch(
        &c,
        &root,
        &json!({"spec": {"containers": [{"name": "app", "image": "busybox:2",
            "securityContext": {"privileged": true},
            "volumeMounts": [{"name": "host", "mountPath": "/host"}]}]}}),
    );
    assert_forbidden(
        code,
        &v,
        &format!(
            "pods \"root\" is forbidden: violates PodSecurity \"baseline:latest\": {ROOT_VIOLATIONS}"
        ),
    );
}

#[test]
fn restricted_refuses_and_warn_admits_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(hub_bin(), dir.path());
    let c = hub.client();
    const RESTRICTED_VIOLATIONS: &str = "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), \
        unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), \
        runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), \
        seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";

    namespace(
        &c,
        "secure",
        json!({"pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "v1.30"}),
        json!({}),
    );
    let (code, v, _) = post(&c, &pods("secure"), &plain_pod("plain"));
    assert_forbidden(
        code,
        &v,
        &format!(
            "pods \"plain\" is forbidden: violates PodSecurity \"restricted:v1.30\": {RESTRICTED_VIOLATIONS}"
        ),
    );
    let hardened = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hardened"},
        "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "busybox:1",
                "securityContext": {"allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "tmp", "emptyDir": {}}]}});
    let (code, v, warnings) = post(&c, &pods("secure"), &hardened);
    assert_eq!(code, 201, "{v}");
    assert!(warnings.is_empty(), "{warnings:?}");

    // warn=restricted on a baseline namespace: admitted, with the warning.
    namespace(
        &c,
        "heads-up",
        json!({"pod-security.kubernetes.io/warn": "restricted"}),
        json!({}),
    );
    let (code, v, warnings) = post(&c, &pods("heads-up"), &plain_pod("plain"));
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        warnings,
        [warning(&format!(
            "would violate PodSecurity \"restricted:latest\": {RESTRICTED_VIOLATIONS}"
        ))]
    );
    // audit=restricted: admitted silently, and the hub logs it.
    namespace(
        &c,
        "audited",
        json!({"pod-security.kubernetes.io/audit": "restricted"}),
        json!({}),
    );
    let (code, v, warnings) = post(&c, &pods("audited"), &plain_pod("audit-me"));
    assert_eq!(code, 201, "{v}");
    assert!(warnings.is_empty(), "{warnings:?}");
    let line = eventually("the audit log line", Duration::from_secs(10), || {
        hub.log()
            .lines()
            .find(|l| l.contains("pod security audit") && l.contains("audit-me"))
            .map(str::to_string)
    });
    assert!(
        line.contains("would violate PodSecurity")
            && line.contains("restricted:latest")
            && line.contains("allowPrivilegeEscalation != false"),
        "{line}"
    );
}

fn deployment(name: &str, container: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]}}}})
}

#[test]
fn workloads_devices_and_allowed_host_paths() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start_with_args(
        hub_bin(),
        dir.path(),
        "info",
        &["--allowed-host-paths", "/srv/data,/var/log/apps"],
    );
    let c = hub.client();

    // A Deployment with a privileged template: refused, named as itself.
    let privileged = json!({"name": "web", "image": "busybox:1",
        "securityContext": {"privileged": true}});
    let (code, v, _) = post(
        &c,
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment("web", privileged),
    );
    assert_forbidden(
        code,
        &v,
        "deployments.apps \"web\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"web\" must not set securityContext.privileged=true)",
    );
    assert_eq!(v["details"]["group"], "apps", "{v}");
    assert_eq!(
        c.get("/apis/apps/v1/namespaces/default/deployments/web").0,
        404
    );
    let (code, v, _) = post(
        &c,
        "/apis/apps/v1/namespaces/default/daemonsets",
        &json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                    "spec": {"hostNetwork": true,
                        "containers": [{"name": "agent", "image": "busybox:1"}]}}}}),
    );
    assert_forbidden(
        code,
        &v,
        "daemonsets.apps \"agent\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true)",
    );

    // Host devices: refused in baseline, allowed where the namespace lists them.
    let serial = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": {"bramble.dev/devices": "/dev/ttyUSB0"}},
            "spec": {"containers": [{"name": "app", "image": "busybox:1"}]}})
    };
    let (code, v, _) = post(&c, &pods("default"), &serial("gps"));
    assert_forbidden(
        code,
        &v,
        "pods \"gps\" is forbidden: violates PodSecurity \"baseline:latest\": host devices (pod must not use \"/dev/ttyUSB0\" via the bramble.dev/devices annotation; allow it with the namespace annotation bramble.dev/allowed-devices)",
    );
    namespace(
        &c,
        "sensors",
        json!({}),
        json!({"bramble.dev/allowed-devices": "/dev/ttyUSB0,/dev/i2c-1"}),
    );
    let (code, v, warnings) = post(&c, &pods("sensors"), &serial("gps"));
    assert_eq!(code, 201, "{v}");
    assert!(warnings.is_empty(), "{warnings:?}");

    // --allowed-host-paths: below the allowed directories only, and never
    // at restricted.
    let host_path = |name: &str, path: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "busybox:1",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "hostPath": {"path": path}}]}})
    };
    let (code, v, _) = post(&c, &pods("default"), &host_path("data", "/srv/data/app"));
    assert_eq!(code, 201, "{v}");
    let (code, v, _) = post(&c, &pods("default"), &host_path("logs", "/var/log/apps"));
    assert_eq!(code, 201, "{v}");
    let (code, v, _) = post(&c, &pods("default"), &host_path("db", "/srv/database"));
    assert_forbidden(
        code,
        &v,
        "pods \"db\" is forbidden: violates PodSecurity \"baseline:latest\": hostPath volumes (volume \"data\")",
    );
    namespace(
        &c,
        "secure",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
        json!({}),
    );
    let (code, v, _) = post(&c, &pods("secure"), &host_path("data", "/srv/data/app"));
    assert_eq!(code, 403, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains(
            "restricted volume types (volume \"data\" uses restricted volume type \"hostPath\")"
        ),
        "{v}"
    );
}

fn replica_failure(c: &Client, ns: &str, name: &str) -> Option<Value> {
    let (_, d) = c.get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"));
    d["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ReplicaFailure")
        .cloned()
}

fn pod_names(c: &Client, ns: &str) -> Vec<String> {
    let (_, list) = c.get(&pods(ns));
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_raised_level_stops_new_pods_of_an_admitted_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(hub_bin(), dir.path());
    let c = hub.client();
    namespace(&c, "shop", json!({}), json!({}));
    // Baseline admits a root container; restricted will not.
    let (code, v, _) = post(
        &c,
        "/apis/apps/v1/namespaces/shop/deployments",
        &deployment("web", json!({"name": "web", "image": "busybox:1"})),
    );
    assert_eq!(code, 201, "{v}");
    let first = eventually("the deployment's pod", Duration::from_secs(30), || {
        pod_names(&c, "shop").into_iter().next()
    });
    let (code, v, warnings) = patch(
        &c,
        "/api/v1/namespaces/shop",
        &json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[1].starts_with(&format!(
            "299 - \"{first}: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
        )),
        "{warnings:?}"
    );
    // Scaling leaves the template alone: admitted, with the warning.
    let (code, v, warnings) = patch(
        &c,
        "/apis/apps/v1/namespaces/shop/deployments/web",
        &json!({"spec": {"replicas": 2}}),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    // The controller creates no pod for the second replica, and says why.
    let failure = eventually(
        "a ReplicaFailure condition",
        Duration::from_secs(30),
        || replica_failure(&c, "shop", "web"),
    );
    assert_eq!(failure["status"], "True");
    assert_eq!(failure["reason"], "FailedCreate");
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.starts_with("pods \"web-")
            && message.contains(
                "\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
            ),
        "{message}"
    );
    assert_eq!(pod_names(&c, "shop"), [first]);
    // Back to baseline: the pod comes, the condition goes.
    let (code, v, _) = patch(
        &c,
        "/api/v1/namespaces/shop",
        &json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}),
    );
    assert_eq!(code, 200, "{v}");
    eventually("the second pod", Duration::from_secs(30), || {
        (pod_names(&c, "shop").len() == 2 && replica_failure(&c, "shop", "web").is_none())
            .then_some(())
    });
}

/// kubectl, with the kubeconfig the hub wrote: its refusal and warning
/// lines as users see them.
#[test]
fn kubectl_prints_the_refusal_and_the_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = HubProcess::start(hub_bin(), &data);
    let c = hub.client();
    namespace(
        &c,
        "heads-up",
        json!({"pod-security.kubernetes.io/warn": "restricted"}),
        json!({}),
    );
    let kubectl = |args: &[&str], manifest: &Value| {
        let file = dir.path().join("manifest.json");
        std::fs::write(&file, serde_json::to_vec(manifest).unwrap()).unwrap();
        let out = Command::new("kubectl")
            .args(args)
            .arg("-f")
            .arg(&file)
            .env("KUBECONFIG", data.join("kubeconfig.yaml"))
            .env("HOME", dir.path())
            .output()
            .expect("kubectl is installed");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = kubectl(&["create", "--validate=false"], &root_pod("root"));
    eprintln!("kubectl create (default):\n{stdout}{stderr}");
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "Error from server (Forbidden): error when creating \"{}\": pods \"root\" is forbidden: violates PodSecurity \"baseline:latest\": {ROOT_VIOLATIONS}",
            dir.path().join("manifest.json").display()
        )),
        "{stderr}"
    );
    let (ok, stdout, stderr) = kubectl(
        &["create", "--validate=false", "-n", "heads-up"],
        &plain_pod("plain"),
    );
    eprintln!("kubectl create (-n heads-up):\n{stdout}{stderr}");
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(
            "Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)"
        ),
        "{stderr}"
    );
    assert!(stdout.contains("pod/plain created"), "{stdout}");
    // Raising the namespace's level names the pod that breaks it.
    let out = Command::new("kubectl")
        .args([
            "label",
            "namespace",
            "heads-up",
            "pod-security.kubernetes.io/enforce=restricted",
        ])
        .env("KUBECONFIG", data.join("kubeconfig.yaml"))
        .env("HOME", dir.path())
        .output()
        .expect("kubectl is installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "kubectl label:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "Warning: existing pods in namespace \"heads-up\" violate the new PodSecurity enforce level \"restricted:latest\"\n\
             Warning: plain: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
        ),
        "{stderr}"
    );
}
