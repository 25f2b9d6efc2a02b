//! The official Python `kubernetes` client (PyPI; `scripts/test` installs it
//! into `target/fixtures/pyvenv`) as a second real client of the hub: list,
//! create, watch from a resourceVersion, strategic merge and JSON patches,
//! replace, delete, and a 404 as an `ApiException`
//! (`tests/python/kubernetes_client.py` asserts each step).

use std::path::{Path, PathBuf};
use std::process::Command;

use bramble_tests::HubProcess;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BRAMBLE_PYTHON") {
        return p.into();
    }
    let venv = bramble_tests::workspace_root().join("target/fixtures/pyvenv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/test (it installs the Python kubernetes client there) \
         or set BRAMBLE_PYTHON to a python with `kubernetes` installed",
        venv.display()
    );
    venv
}

#[test]
fn the_python_kubernetes_client_lists_creates_watches_patches_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/kubernetes_client.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(hub.data_dir.join("kubeconfig.yaml"))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.lines().last() == Some("ok"), "{stdout}\n{stderr}");
    assert!(stdout.contains("read after delete: 404"), "{stdout}");
}
