//! kubectl's view of the hub's refusals: a 422 Invalid lists every failing
//! field once, all in one answer, as against Kubernetes (`* spec.replicas:
//! Invalid value: ...`), not with the field's path twice.

use std::path::Path;
use std::process::Command;

use bramble_tests::HubProcess;

#[test]
fn kubectl_prints_each_invalid_field_once() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let manifest = dir.path().join("bad.json");
    std::fs::write(
        &manifest,
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "Bad_Name"},
            "spec": {"replicas": -2,
                "selector": {"matchLabels": {"app": "bad"}},
                "template": {"metadata": {"labels": {"app": "bad"}},
                    "spec": {"containers": [{"name": "app", "image": "",
                        "resources": {"limits": {"memory": "lots"}}}]}}}
        }))
        .unwrap(),
    )
    .unwrap();
    // Validation on (kubectl's default, strict): kubectl finds fieldValidation
    // in /openapi/v3 and leaves it to the hub.
    let out = Command::new("kubectl")
        .env("KUBECONFIG", hub.data_dir.join("kubeconfig.yaml"))
        .args(["create", "-f"])
        .arg(&manifest)
        .output()
        .expect("kubectl is installed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    // Every invalid field in one answer (kubectl prints the causes under
    // the details' kind, as against Kubernetes); a value that does not even
    // decode (the quantity) does not hide the others.
    assert!(
        err.contains("The Deployment \"Bad_Name\" is invalid"),
        "{err}"
    );
    assert!(
        err.contains("metadata.name: Invalid value: \"Bad_Name\""),
        "{err}"
    );
    assert!(err.contains("spec.replicas: Invalid value: -2"), "{err}");
    assert!(
        err.contains("resources.limits.memory: Invalid value: quantity \"lots\""),
        "{err}"
    );
    for field in [
        "metadata.name",
        "spec.replicas",
        "spec.template.spec.containers[0].image",
        "spec.template.spec.containers[0].resources.limits.memory",
    ] {
        assert_eq!(err.matches(field).count(), 1, "{field} not once in:\n{err}");
    }
}
