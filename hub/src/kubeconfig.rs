//! `DATA_DIR/kubeconfig.yaml` (0600), as k3s writes `k3s.yaml`: the hub's
//! URL as seen from this machine, the cluster CA and the admin token, so
//! `KUBECONFIG=DATA_DIR/kubeconfig.yaml kubectl ...` works on the hub with
//! nothing to copy. Rewritten at every start (the port or the token may
//! have changed), atomically: a reader never sees half a file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::tls::ClusterCa;

/// File name of the kubeconfig inside the data directory.
pub const KUBECONFIG_FILE: &str = "kubeconfig.yaml";

/// Writes `bramble_api::kubeconfig::render` to `DATA_DIR/kubeconfig.yaml`.
pub fn write(data_dir: &Path, server: &str, ca: &ClusterCa, token: &str) -> std::io::Result<()> {
    let path = data_dir.join(KUBECONFIG_FILE);
    let tmp = data_dir.join(format!(".{KUBECONFIG_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bramble_api::kubeconfig::render(server, ca.pem(), token, None).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn holds_the_server_the_ca_and_the_token_privately() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::load_or_create(dir.path()).unwrap();
        write(dir.path(), "https://127.0.0.1:7480", &ca, "t0ken").unwrap();
        let p = dir.path().join(KUBECONFIG_FILE);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:7480"
        );
        assert_eq!(v["users"][0]["user"]["token"], "t0ken");
        assert_eq!(v["current-context"], "bramble");
        let ca_data = v["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        use base64::Engine;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(ca_data)
            .unwrap();
        assert_eq!(pem, ca.pem().as_bytes());
        // Rewritten in place.
        write(dir.path(), "https://127.0.0.1:9999", &ca, "t0ken").unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().contains(":9999"));
    }
}
