//! `DATA_DIR/credentials.json`: the per-node MQTT credentials the hub issued
//! on the first join (mode 0600). Present → the agent connects and says
//! hello with them; absent → with the join token.

use std::path::{Path, PathBuf};

use bramble_api::protocol::NodeCredentials;

use super::files::write_atomic;

/// The credentials file under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("credentials.json")
}

/// The stored credentials, `None` when the file does not exist.
pub fn load(data_dir: &Path) -> Result<Option<NodeCredentials>, String> {
    let p = path(data_dir);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e} (remove it and rejoin with --token)", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", p.display())),
    }
}

/// Stores `creds` (mode 0600, atomically).
pub fn save(data_dir: &Path, creds: &NodeCredentials) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(creds).map_err(|e| e.to_string())?;
    write_atomic(&path(data_dir), &json, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn saved_with_mode_0600_and_loaded_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let c = NodeCredentials {
            username: "pi-1".into(),
            password: "p4ss".into(),
        };
        save(dir.path(), &c).unwrap();
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(dir.path()).unwrap(), Some(c.clone()));
        // Overwriting keeps the mode and leaves no temp file behind.
        save(dir.path(), &c).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        std::fs::write(path(dir.path()), b"{").unwrap();
        assert!(
            load(dir.path())
                .unwrap_err()
                .contains("rejoin with --token")
        );
    }
}
