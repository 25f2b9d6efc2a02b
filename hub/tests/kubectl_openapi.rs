//! The real kubectl (the machine's 1.32) against a real hub, with only
//! `KUBECONFIG` set: client-side apply with validation on (kubectl finds
//! `fieldValidation` in `/openapi/v3` and leaves validation to the hub),
//! `--validate=strict|warn|false` with Kubernetes' wording, `explain` from
//! the OpenAPI documents, and `api-resources` from discovery. A `kind: List`
//! is validated by kubectl itself against `/openapi/v2` (the gnostic
//! protobuf), since no v3 document lists `v1/List`.

use std::path::{Path, PathBuf};
use std::process::Output;

use bramble_tests::kubectl::Kubectl;
use bramble_tests::{HubProcess, workspace_root};

fn start(dir: &Path) -> HubProcess {
    HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir)
}

fn kubectl(hub: &HubProcess, args: &[&str]) -> Output {
    Kubectl::for_data_dir(&hub.data_dir).run(args, None)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A Deployment with extra lines in its pod's container.
fn deployment(dir: &Path, name: &str, spec_extra: &str, container_extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let yaml = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n{spec_extra}  \
         selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      \
         labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: app\n        \
         image: busybox:1\n{container_extra}"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

fn exists(hub: &HubProcess, what: &str) -> bool {
    kubectl(hub, &["get", what, "-o", "name"]).status.success()
}

#[test]
fn apply_of_the_examples_validates_and_creates_them() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path());
    let examples = workspace_root().join("examples");
    let out = kubectl(&hub, &["apply", "-f", examples.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for created in [
        "configmap/web-content created",
        "deployment.apps/web created",
        "ingress.networking.k8s.io/web created",
        "secret/web-credentials created",
        "service/web created",
    ] {
        assert!(stdout.contains(created), "{created} not in:\n{stdout}");
    }
    assert!(exists(&hub, "deployment/web"));
    assert!(exists(&hub, "service/web"));
}

#[test]
fn strict_names_every_unknown_field_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path());
    let m = deployment(
        dir.path(),
        "typo",
        "  foo: 1\n",
        "        imagePullPolcy: Always\n",
    );
    let out = kubectl(
        &hub,
        &["apply", "--validate=strict", "-f", m.to_str().unwrap()],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("Error from server (BadRequest)"), "{err}");
    assert!(err.contains("unknown field \"spec.foo\""), "{err}");
    assert!(
        err.contains("unknown field \"spec.template.spec.containers[0].imagePullPolcy\""),
        "{err}"
    );
    assert!(!exists(&hub, "deployment/typo"));
}

#[test]
fn warn_creates_without_the_unknown_field_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path());
    let m = deployment(dir.path(), "warned", "  foo: 1\n", "");
    let out = kubectl(
        &hub,
        &["apply", "--validate=warn", "-f", m.to_str().unwrap()],
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(text(&out.stdout).contains("deployment.apps/warned created"));
    assert!(err.contains("Warning: unknown field \"spec.foo\""), "{err}");
    let spec = kubectl(
        &hub,
        &["get", "deployment/warned", "-o", "jsonpath={.spec}"],
    );
    let spec: serde_json::Value = serde_json::from_slice(&spec.stdout).unwrap();
    assert_eq!(spec["replicas"], 1);
    assert!(spec.get("foo").is_none(), "{spec}");
}

#[test]
fn a_kubernetes_field_bramble_does_not_implement_is_refused_even_unvalidated() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path());
    let m = deployment(
        dir.path(),
        "selinux",
        "",
        "        securityContext:\n          runAsUser: 1000\n          seLinuxOptions: {level: \"s0:c1,c2\"}\n",
    );
    let out = kubectl(
        &hub,
        &["apply", "--validate=false", "-f", m.to_str().unwrap()],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(
            "spec.template.spec.containers[0].securityContext.seLinuxOptions: \
             Unsupported value: Bramble does not implement this field"
        ),
        "{err}"
    );
    assert!(!exists(&hub, "deployment/selinux"));
}

#[test]
fn explain_describes_fields_from_the_openapi_documents() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path());
    let out = kubectl(&hub, &["explain", "deployment.spec.strategy"]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}{}", text(&out.stderr));
    assert!(s.contains("KIND:       Deployment"), "{s}");
    assert!(s.contains("FIELD: strategy <DeploymentStrategy>"), "{s}");
    assert!(
        s.contains("rollingUpdate\t<RollingUpdateDeployment>"),
        "{s}"
    );
    assert!(s.contains("type\t<string>"), "{s}");
    assert!(s.contains("Recreate"), "{s}");
    let out = kubectl(&hub, &["explain", "pod.spec.containers"]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}{}", text(&out.stderr));
    assert!(s.contains("FIELD: containers <[]Container>"), "{s}");
    assert!(s.contains("image\t<string>"), "{s}");
    assert!(s.contains("env\t<[]EnvVar>"), "{s}");
    for kind in bramble_api::RESOURCES {
        let out = kubectl(&hub, &["explain", kind.plural]);
        let s = text(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {s}{}",
            kind.plural,
            text(&out.stderr)
        );
        assert!(s.contains(&format!("KIND:       {}", kind.kind)), "{s}");
        assert!(s.contains("metadata\t<ObjectMeta>"), "{s}");
    }
}

#[test]
fn api_resources_lists_every_kind_with_its_short_names() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path());
    let out = kubectl(&hub, &["api-resources", "--no-headers"]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}{}", text(&out.stderr));
    for r in bramble_api::RESOURCES {
        let line = s
            .lines()
            .find(|l| l.split_whitespace().next() == Some(r.plural))
            .unwrap_or_else(|| panic!("{} not listed:\n{s}", r.plural));
        for short in r.short_names {
            assert!(line.split_whitespace().any(|w| w == *short), "{line}");
        }
        assert!(line.contains(r.kind), "{line}");
    }
}

/// A `kind: List` of a ConfigMap and a Deployment, with extra lines in the
/// Deployment's spec.
fn list(dir: &Path, name: &str, spec_extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let yaml = format!(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  \
         metadata:\n    name: {name}\n  data:\n    greeting: hello\n- apiVersion: apps/v1\n  \
         kind: Deployment\n  metadata:\n    name: {name}\n  spec:\n{spec_extra}    \
         selector:\n      matchLabels: {{app: {name}}}\n    template:\n      metadata:\n        \
         labels: {{app: {name}}}\n      spec:\n        containers:\n        - name: app\n          \
         image: busybox:1\n"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn a_list_is_validated_against_openapi_v2_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path());
    let m = list(dir.path(), "listed", "");
    let out = kubectl(&hub, &["apply", "-f", m.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("configmap/listed created"), "{stdout}");
    assert!(
        stdout.contains("deployment.apps/listed created"),
        "{stdout}"
    );
    assert!(exists(&hub, "configmap/listed"));
    assert!(exists(&hub, "deployment/listed"));
}

#[test]
fn a_list_with_an_unknown_field_is_refused_by_kubectl_itself() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path());
    let m = list(dir.path(), "typo", "    foo: 1\n");
    for validate in ["--validate=strict", "--validate=true"] {
        let out = kubectl(&hub, &["apply", validate, "-f", m.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{err}");
        // kubectl's client-side wording, not the hub's BadRequest.
        assert!(
            err.contains(
                "ValidationError(Deployment.spec): unknown field \"foo\" in \
                 io.k8s.api.apps.v1.DeploymentSpec"
            ),
            "{validate}: {err}"
        );
        assert!(!err.contains("Error from server"), "{err}");
    }
    assert!(!exists(&hub, "configmap/typo"));
    assert!(!exists(&hub, "deployment/typo"));
}
