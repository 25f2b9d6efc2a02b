//! `skopeo inspect` of an image in a test cluster's registry: a real
//! registry client reads what the hub's registry serves.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::cluster::Cluster;

/// `skopeo inspect [--config] docker://HUB/image` with the hub's CA (written
/// under `dir/certs`) and token; the JSON it prints. `config`: the image's
/// config blob (`config.Cmd`, `config.Env`, …) instead of skopeo's summary.
pub fn inspect(c: &Cluster, dir: &Path, image: &str, config: bool) -> Value {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), c.hub.ca_pem()).unwrap();
    let host = c.hub.url.trim_start_matches("https://");
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
