//! The README's flow with the real binaries: a `bramble-hub` process, and the
//! `bramble` CLI applying `examples/` as a Kubernetes user would.

use std::path::Path;
use std::process::{Command, Output};

use bramble_tests::{HubProcess, bin, workspace_root};

fn bramble(hub: &HubProcess, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("bramble"))
        .args(args)
        .env("BRAMBLE_HUB", &hub.url)
        .env("BRAMBLE_DATA_DIR", data_dir)
        .env_remove("BRAMBLE_TOKEN")
        .env("XDG_CONFIG_HOME", data_dir.join("no-config"))
        .output()
        .expect("running bramble")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn apply_examples_created_then_unchanged_then_configured() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(&bin("bramble-hub"), dir.path());
    let examples = workspace_root().join("examples");
    let examples = examples.to_str().unwrap();

    let first = bramble(&hub, dir.path(), &["apply", "-f", examples]);
    assert!(first.status.success(), "{first:?}");
    let out = stdout(&first);
    for line in [
        "configmap/web-content created",
        "secret/web-credentials created",
        "deployment.apps/web created",
        "service/web created",
        "ingress.networking.k8s.io/web created",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    let second = bramble(&hub, dir.path(), &["apply", "-f", examples]);
    assert!(second.status.success(), "{second:?}");
    let out = stdout(&second);
    assert_eq!(out.matches(" unchanged").count(), 5, "{out}");
    assert!(
        !out.contains("created") && !out.contains("configured"),
        "{out}"
    );

    // An edit of one file reports `configured` for that object only.
    let edited = dir.path().join("edited");
    std::fs::create_dir(&edited).unwrap();
    for entry in std::fs::read_dir(workspace_root().join("examples")).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            edited.join(p.file_name().unwrap()),
            text.replace("replicas: 2", "replicas: 3"),
        )
        .unwrap();
    }
    let third = bramble(&hub, dir.path(), &["apply", "-f", edited.to_str().unwrap()]);
    let out = stdout(&third);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert_eq!(out.matches(" unchanged").count(), 4, "{out}");

    // What was stored is what a Kubernetes user expects back.
    let get = bramble(&hub, dir.path(), &["get", "deploy", "web", "-o", "json"]);
    let deploy: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert_eq!(deploy["metadata"]["generation"], 2);
    assert_eq!(deploy["spec"]["strategy"]["type"], "RollingUpdate");
    let get = bramble(
        &hub,
        dir.path(),
        &["get", "secret", "web-credentials", "-o", "json"],
    );
    let secret: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(
        secret["data"]["api-token"], "Y2hhbmdlLW1l",
        "stringData is encoded into data"
    );
    assert!(secret.get("stringData").is_none());
}

#[test]
fn unsupported_field_is_refused_with_its_path_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(&bin("bramble-hub"), dir.path());
    let manifest = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(workspace_root().join("examples/web-deployment.yaml"))
        .unwrap()
        .replace(
            "          ports:\n",
            "          lifecycle:\n            preStop: {}\n          ports:\n",
        );
    std::fs::write(&manifest, text).unwrap();
    let out = bramble(
        &hub,
        dir.path(),
        &["apply", "-f", manifest.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "spec.template.spec.containers[0].lifecycle: Unsupported value: Bramble does not implement this field"
        ),
        "{err}"
    );
    let list = bramble(&hub, dir.path(), &["get", "deploy", "-o", "name"]);
    assert_eq!(stdout(&list).trim(), "");
}
