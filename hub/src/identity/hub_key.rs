//! `DATA_DIR/hub-key`: the hub's private keys (mode 0600), created at first
//! start. Its signing key is the cluster's identity: join tokens name its
//! fingerprint, and every agent pins it at join, so replacing the file makes
//! every node rejoin.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use bramble_trust::SecretKeys;
use serde::{Deserialize, Serialize};

use super::IdentityError;

/// File name of the hub's keys inside the data directory.
pub const HUB_KEY_FILE: &str = "hub-key";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyFile {
    signing: String,
    encryption: String,
}

/// Reads the hub's keys, creating them if the file does not exist.
pub fn load_or_create(data_dir: &Path) -> Result<SecretKeys, IdentityError> {
    let path = data_dir.join(HUB_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bad = |reason: String| IdentityError::BadKeyFile {
                path: path.clone(),
                reason,
            };
            let f: KeyFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
            SecretKeys::from_text(&f.signing, &f.encryption).map_err(|e| bad(e.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keys = SecretKeys::generate()?;
            let json = serde_json::to_vec_pretty(&KeyFile {
                signing: keys.signing_text(),
                encryption: keys.encryption_text(),
            })
            .expect("key text serializes");
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                f.write_all(&json)?;
                f.sync_all()
            };
            write().map_err(|source| IdentityError::Write {
                path: path.clone(),
                source,
            })?;
            tracing::info!(path = %path.display(), fingerprint = %keys.public().fingerprint(), "hub keys created");
            Ok(keys)
        }
        Err(source) => Err(IdentityError::Read { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_private_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let p = dir.path().join(HUB_KEY_FILE);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        std::fs::write(&p, b"{}").unwrap();
        let e = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a valid hub key file"), "{e}");
    }
}
