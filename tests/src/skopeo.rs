//! `skopeo inspect` and `skopeo copy` of an image in a test cluster's
//! registry: a real registry client reads what the hub's registry serves.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::cluster::Cluster;

/// `skopeo inspect [--config] docker://HUB/image` with the hub's CA (written
/// under `dir/certs`) and token; the JSON it prints. `config`: the image's
/// config blob (`config.Cmd`, `config.Env`, …) instead of skopeo's summary.
pub fn inspect(c: &Cluster, dir: &Path, image: &str, config: bool) -> Value {
    let (certs, host) = certs(c, dir);
    let mut cmd = Command::new("skopeo");
    cmd.arg("inspect");
    if config {
        cmd.arg("--config");
    }
    let out = cmd
        .arg("--cert-dir")
        .arg(&certs)
        .args(["--creds", &format!("bramble:{}", c.hub.token)])
        .arg(format!("docker://{host}/{image}"))
        .output()
        .expect("skopeo is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The hub's CA as skopeo reads it (a directory with `ca.crt`, under
/// `dir`) and the registry's `host:port`.
fn certs(c: &Cluster, dir: &Path) -> (std::path::PathBuf, String) {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), c.hub.ca_pem()).unwrap();
    (certs, c.hub.url.trim_start_matches("https://").to_string())
}

/// The entries of the top layer of `image`, one per line as `tar -t`
/// lists them (copied out with `skopeo copy` into `dir`).
pub fn top_layer_entries(c: &Cluster, dir: &Path, image: &str) -> String {
    let (certs, host) = certs(c, dir);
    let out_dir = dir.join(format!("image-{}", image.replace(['/', ':'], "-")));
    let out = Command::new("skopeo")
        .arg("copy")
        .arg("--src-cert-dir")
        .arg(&certs)
        .args(["--src-creds", &format!("bramble:{}", c.hub.token)])
        .arg(format!("docker://{host}/{image}"))
        .arg(format!("dir:{}", out_dir.display()))
        .output()
        .expect("skopeo is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    let top = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let listed = Command::new("tar")
        .arg("-tzf")
        .arg(out_dir.join(&top))
        .output()
        .unwrap();
    assert!(listed.status.success());
    String::from_utf8(listed.stdout).unwrap()
}
