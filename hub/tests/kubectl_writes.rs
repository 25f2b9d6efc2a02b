//! kubectl's writes against a real hub: client-side `kubectl apply`
//! (created → unchanged → configured, a strategic merge patch computed from
//! the `last-applied-configuration` annotation), `kubectl patch
//! --type=strategic|json|merge`, `label`, `annotate`, a patch naming a stale
//! resourceVersion refused with 409, `scale`, server-side dry runs and
//! `diff`, and `cordon` / `drain` (evictions) / `uncordon`.

use std::path::Path;
use std::process::Command;

use bramble_tests::HubProcess;
use bramble_tests::kubectl::Kubectl;
use serde_json::{Value, json};

fn kubectl(hub: &HubProcess, args: &[&str]) -> (bool, String, String) {
    let out = Kubectl::for_data_dir(&hub.data_dir).run(args, None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(hub: &HubProcess, args: &[&str]) -> String {
    let (success, out, err) = kubectl(hub, args);
    assert!(success, "kubectl {args:?} failed:\n{out}{err}");
    out
}

fn deployment(env_b: &str, replicas: u32, sidecar: bool) -> String {
    let mut containers = vec![json!({"name": "app", "image": "busybox",
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": env_b}]})];
    if sidecar {
        containers.push(json!({"name": "side", "image": "busybox"}));
    }
    serde_json::to_string(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers}}}
    }))
    .unwrap()
}

fn get(hub: &HubProcess) -> Value {
    serde_json::from_str(&ok(hub, &["get", "deployment", "web", "-o", "json"])).unwrap()
}

#[test]
fn kubectl_apply_and_patch_change_only_what_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let file = dir.path().join("web.json");
    let file = file.to_str().unwrap();
    let apply = ["apply", "-f", file];

    std::fs::write(file, deployment("2", 2, true)).unwrap();
    assert!(ok(&hub, &apply).contains("deployment.apps/web created"));
    assert!(ok(&hub, &apply).contains("deployment.apps/web unchanged"));
    // Something the manifest does not manage survives the next apply.
    ok(&hub, &["label", "deployment", "web", "owner=ops"]);
    std::fs::write(file, deployment("3", 3, true)).unwrap();
    assert!(ok(&hub, &apply).contains("deployment.apps/web configured"));
    let d = get(&hub);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["labels"]["owner"], "ops");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
    );
    // A container dropped from the manifest is deleted by name.
    std::fs::write(file, deployment("3", 3, false)).unwrap();
    assert!(ok(&hub, &apply).contains("configured"));
    let names: Vec<Value> = get(&hub)["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("app")]);

    // The three patch types of `kubectl patch`.
    ok(
        &hub,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"C","value":"4"}]}]}}}}"#,
        ],
    );
    ok(
        &hub,
        &[
            "patch",
            "deployment",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
        ],
    );
    ok(
        &hub,
        &[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"metadata":{"annotations":{"note":"hi"}}}"#,
        ],
    );
    ok(&hub, &["annotate", "deployment", "web", "team=edge"]);
    let d = get(&hub);
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]),
        "a strategic patch adds to env by name"
    );
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["metadata"]["annotations"]["note"], "hi");
    assert_eq!(d["metadata"]["annotations"]["team"], "edge");

    // A JSON patch whose test fails changes nothing.
    let (success, _, err) = kubectl(
        &hub,
        &[
            "patch",
            "deployment",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/spec/replicas","value":7},{"op":"replace","path":"/spec/replicas","value":5}]"#,
        ],
    );
    assert!(!success);
    assert!(err.contains("cannot be applied"), "{err}");
    assert_eq!(get(&hub)["spec"]["replicas"], 1);

    // A strategic patch without a container's merge key says what is missing.
    let (success, _, err) = kubectl(
        &hub,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#,
        ],
    );
    assert!(!success);
    assert!(
        err.contains("does not contain declared merge key: name"),
        "{err}"
    );

    // A patch naming a stale resourceVersion is a conflict, not a silent overwrite.
    let client = hub.client();
    let path = "/apis/apps/v1/namespaces/default/deployments/web";
    let (code, _) = client.merge_patch(
        path,
        &json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 4}}),
    );
    assert_eq!(code, 409);
    assert_eq!(get(&hub)["spec"]["replicas"], 1);
    let rv = get(&hub)["metadata"]["resourceVersion"].clone();
    let (code, body) = client.merge_patch(
        path,
        &json!({"metadata": {"resourceVersion": rv}, "spec": {"replicas": 4}}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(get(&hub)["spec"]["replicas"], 4);
}

#[test]
fn kubectl_scale_writes_the_scale_subresource() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let file = dir.path().join("web.json");
    std::fs::write(&file, deployment("2", 2, false)).unwrap();
    ok(&hub, &["apply", "-f", file.to_str().unwrap()]);

    assert!(ok(&hub, &["scale", "deployment", "web", "--replicas=4"]).contains("scaled"));
    assert_eq!(get(&hub)["spec"]["replicas"], 4);
    // --current-replicas is a precondition kubectl checks on the Scale.
    let (success, _, err) = kubectl(
        &hub,
        &[
            "scale",
            "deployment",
            "web",
            "--current-replicas=3",
            "--replicas=1",
        ],
    );
    assert!(!success);
    assert!(err.contains("Expected replicas to be 3, was 4"), "{err}");
    // A stale --resource-version is a conflict.
    let (success, _, err) = kubectl(
        &hub,
        &[
            "scale",
            "deployment",
            "web",
            "--resource-version=1",
            "--replicas=1",
        ],
    );
    assert!(!success, "{err}");
    assert_eq!(get(&hub)["spec"]["replicas"], 4);

    let client = hub.client();
    let path = "/apis/apps/v1/namespaces/default/deployments/web/scale";
    let (code, scale) = client.get(path);
    assert_eq!(code, 200);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["selector"], "app=web");
    let (code, body) = client.put(path, &json!({"spec": {"replicas": -1}}));
    assert_eq!(code, 422, "{body}");
    assert_eq!(get(&hub)["spec"]["replicas"], 4);

    // Discovery lists the subresource and the `all` category.
    let t = ok(&hub, &["get", "all"]);
    assert!(t.contains("deployment.apps/web"), "{t}");
    assert!(t.contains("pod/web-"), "{t}");
}

#[test]
fn kubectl_server_dry_runs_and_diff_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let file = dir.path().join("web.json");
    let file = file.to_str().unwrap();
    std::fs::write(file, deployment("2", 2, false)).unwrap();
    let out = ok(&hub, &["apply", "--dry-run=server", "-f", file]);
    assert!(out.contains("created (server dry run)"), "{out}");
    let (found, _, err) = kubectl(&hub, &["get", "deployment", "web"]);
    assert!(!found && err.contains("NotFound"), "{err}");

    ok(&hub, &["apply", "-f", file]);
    let before = get(&hub);
    let out = ok(&hub, &["delete", "deployment", "web", "--dry-run=server"]);
    assert!(out.contains("deleted (server dry run)"), "{out}");
    ok(
        &hub,
        &[
            "scale",
            "deployment",
            "web",
            "--replicas=7",
            "--dry-run=server",
        ],
    );
    assert_unchanged(&before, &get(&hub), "delete and scale");

    // `kubectl diff` is a server-side dry run of the apply: exit 1 with the change.
    std::fs::write(file, deployment("2", 5, false)).unwrap();
    let out = Command::new("kubectl")
        .env("KUBECONFIG", hub.data_dir.join("kubeconfig.yaml"))
        .args(["diff", "-f", file])
        .output()
        .unwrap();
    let diff = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{diff}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        diff.contains("-  replicas: 2") && diff.contains("+  replicas: 5"),
        "{diff}"
    );
    assert!(
        !diff.contains("resourceVersion"),
        "a dry run takes no new version:\n{diff}"
    );
    assert_unchanged(&before, &get(&hub), "diff");
}

/// What a dry run would change. The controllers write status (and with it
/// the resourceVersion) meanwhile, so those are not compared.
fn assert_unchanged(before: &Value, after: &Value, what: &str) {
    for field in [
        "/spec",
        "/metadata/generation",
        "/metadata/uid",
        "/metadata/labels",
        "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
    ] {
        assert_eq!(
            after.pointer(field),
            before.pointer(field),
            "the dry runs of {what} changed {field}"
        );
    }
}

#[test]
fn kubectl_drain_evicts_the_pods_of_a_cordoned_node() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let file = dir.path().join("node.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Node\nmetadata: {name: pi-9}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: bare}\n\
         spec: {nodeName: pi-9, containers: [{name: a, image: busybox}]}\n",
    )
    .unwrap();
    ok(&hub, &["apply", "-f", file.to_str().unwrap()]);

    assert!(ok(&hub, &["cordon", "pi-9"]).contains("cordoned"));
    let node: Value =
        serde_json::from_str(&ok(&hub, &["get", "node", "pi-9", "-o", "json"])).unwrap();
    assert_eq!(node["spec"]["unschedulable"], true);
    // A pod without a controller needs --force, as against Kubernetes.
    let (success, _, err) = kubectl(&hub, &["drain", "pi-9", "--ignore-daemonsets"]);
    assert!(!success);
    assert!(err.contains("declare no controller"), "{err}");
    let out = ok(&hub, &["drain", "pi-9", "--ignore-daemonsets", "--force"]);
    assert!(out.contains("pod/bare evicted"), "{out}");
    assert!(out.contains("node/pi-9 drained"), "{out}");
    let (found, _, _) = kubectl(&hub, &["get", "pod", "bare"]);
    assert!(!found, "the evicted pod is gone");
    ok(&hub, &["uncordon", "pi-9"]);
    let node: Value =
        serde_json::from_str(&ok(&hub, &["get", "node", "pi-9", "-o", "json"])).unwrap();
    assert!(node["spec"]["unschedulable"].is_null(), "{node}");

    // An eviction naming another pod than its URL is refused.
    let (code, _) = hub.client().post(
        "/api/v1/namespaces/default/pods/bare/eviction",
        &json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}}),
    );
    assert_eq!(code, 400);
}

#[test]
fn kubectl_server_side_apply_owns_fields_and_reports_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let file = dir.path().join("web.json");
    let file = file.to_str().unwrap();
    let ssa = ["apply", "--server-side", "-f", file];

    std::fs::write(file, deployment("2", 2, true)).unwrap();
    assert!(ok(&hub, &ssa).contains("deployment.apps/web serverside-applied"));
    let d = get(&hub);
    assert_eq!(d["spec"]["replicas"], 2);
    let managers: Vec<(String, String)> = serde_json::from_str::<Value>(&ok(
        &hub,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    ))
    .unwrap()["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap().to_string(),
                m["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(managers, [("kubectl".to_string(), "Apply".to_string())]);

    // Another writer changes replicas: the next apply of another value conflicts.
    ok(&hub, &["scale", "deployment", "web", "--replicas=5"]);
    std::fs::write(file, deployment("2", 3, true)).unwrap();
    let (success, _, err) = kubectl(&hub, &ssa);
    assert!(!success, "the apply overwrote another manager's field");
    assert!(err.contains("conflict with"), "{err}");
    assert!(err.contains(".spec.replicas"), "{err}");
    assert_eq!(get(&hub)["spec"]["replicas"], 5);
    // A second field manager setting another image conflicts with kubectl's.
    let other = dir.path().join("other.json");
    std::fs::write(
        &other,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "busybox:2"}]}}}})
        .to_string(),
    )
    .unwrap();
    let (success, _, err) = kubectl(
        &hub,
        &[
            "apply",
            "--server-side",
            "--field-manager=ci",
            "-f",
            other.to_str().unwrap(),
        ],
    );
    assert!(!success);
    assert!(err.contains("conflict with \"kubectl\""), "{err}");
    assert!(
        err.contains(r#".spec.template.spec.containers[name="app"].image"#),
        "{err}"
    );

    // Forced: the apply takes replicas over.
    ok(
        &hub,
        &["apply", "--server-side", "--force-conflicts", "-f", file],
    );
    assert_eq!(get(&hub)["spec"]["replicas"], 3);
    // What the manager stops setting goes: the sidecar and env B.
    let d = deployment("2", 3, false).replace(r#",{"name":"B","value":"2"}"#, "");
    std::fs::write(file, &d).unwrap();
    ok(&hub, &ssa);
    let containers = get(&hub)["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(containers.as_array().unwrap().len(), 1, "{containers}");
    assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "1"}]));
}
