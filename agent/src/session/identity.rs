//! The board's identity in `DATA_DIR` (mode 0600, written atomically):
//!
//! - `identity.json`: the board's own key pair, made at its first start
//!   (the private halves never leave it), and, once it joined, the hub's
//!   public keys, pinned: from then on only frames signed by that key are
//!   believed, also while the hub is away and across restarts.
//! - `incarnation`: counts the agent's starts; each hello carries it, so
//!   the hub can refuse a replayed hello of an earlier start.

use std::path::{Path, PathBuf};

use bramble_trust::{PublicKeys, SecretKeys};
use serde::{Deserialize, Serialize};

use super::files::{WriteError, write_atomic};

/// Why the identity files could not be used; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(
        "{path} is not a valid board identity ({reason}): restore it from a backup, or remove \
         it, delete the node on the hub and rejoin with --token"
    )]
    Corrupt { path: PathBuf, reason: Corruption },
    #[error("no randomness for the board's keys: {0}")]
    Keys(#[from] bramble_trust::TrustError),
}

/// What is wrong with an identity file.
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    #[error("{0}")]
    Keys(#[source] bramble_trust::TrustError),
    #[error("{0}")]
    Incarnation(#[source] std::num::ParseIntError),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyPair {
    signing: String,
    encryption: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    keys: KeyPair,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hub: Option<KeyPair>,
}

/// The board's keys and the hub it pinned.
#[derive(Debug, Clone)]
pub struct BoardIdentity {
    pub keys: SecretKeys,
    /// `None` until the board joined.
    pub hub: Option<PublicKeys>,
}

/// The identity file under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("identity.json")
}

fn incarnation_path(data_dir: &Path) -> PathBuf {
    data_dir.join("incarnation")
}

fn save(data_dir: &Path, id: &BoardIdentity) -> Result<(), IdentityError> {
    let file = File {
        keys: KeyPair {
            signing: id.keys.signing_text(),
            encryption: id.keys.encryption_text(),
        },
        hub: id.hub.as_ref().map(|h| KeyPair {
            signing: h.signing_text(),
            encryption: h.encryption_text(),
        }),
    };
    let json = serde_json::to_vec_pretty(&file).expect("identity serializes");
    Ok(write_atomic(&path(data_dir), &json, 0o600)?)
}

/// The board's identity, made (and stored) at the first start.
pub fn load_or_create(data_dir: &Path) -> Result<BoardIdentity, IdentityError> {
    let p = path(data_dir);
    match std::fs::read(&p) {
        Ok(bytes) => {
            let bad = |reason: Corruption| IdentityError::Corrupt {
                path: p.clone(),
                reason,
            };
            let f: File = serde_json::from_slice(&bytes).map_err(|e| bad(Corruption::Json(e)))?;
            let keys = SecretKeys::from_text(&f.keys.signing, &f.keys.encryption)
                .map_err(|e| bad(Corruption::Keys(e)))?;
            let hub = f
                .hub
                .map(|h| PublicKeys::from_text(&h.signing, &h.encryption))
                .transpose()
                .map_err(|e| bad(Corruption::Keys(e)))?;
            Ok(BoardIdentity { keys, hub })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if data_dir.join("credentials.json").exists() {
                tracing::warn!(
                    "DATA_DIR/credentials.json is from protocol 1 and no longer used: this board \
                     joins again with --token and a key pair of its own"
                );
            }
            let id = BoardIdentity {
                keys: SecretKeys::generate()?,
                hub: None,
            };
            save(data_dir, &id)?;
            tracing::info!(fingerprint = %id.keys.public().fingerprint(), "board keys created");
            Ok(id)
        }
        Err(source) => Err(IdentityError::Read { path: p, source }),
    }
}

/// Stores `hub` as the pinned hub of `id`.
pub fn pin_hub(
    data_dir: &Path,
    id: &mut BoardIdentity,
    hub: PublicKeys,
) -> Result<(), IdentityError> {
    id.hub = Some(hub);
    save(data_dir, id)
}

/// Counts this start: the stored incarnation plus one, stored before it is
/// used (a start that cannot store it must not say hello).
pub fn next_incarnation(data_dir: &Path) -> Result<u64, IdentityError> {
    let p = incarnation_path(data_dir);
    let current = match std::fs::read_to_string(&p) {
        Ok(t) => t
            .trim()
            .parse::<u64>()
            .map_err(|e| IdentityError::Corrupt {
                path: p.clone(),
                reason: Corruption::Incarnation(e),
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(source) => return Err(IdentityError::Read { path: p, source }),
    };
    let next = current.saturating_add(1);
    write_atomic(&p, format!("{next}\n").as_bytes(), 0o600)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_made_once_private_and_the_hub_is_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let mut id = load_or_create(dir.path()).unwrap();
        assert!(id.hub.is_none());
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(dir.path()).unwrap();
        assert_eq!(again.keys.public(), id.keys.public());
        let hub = SecretKeys::generate().unwrap();
        pin_hub(dir.path(), &mut id, hub.public().clone()).unwrap();
        let again = load_or_create(dir.path()).unwrap();
        assert_eq!(again.hub.as_ref(), Some(hub.public()));
        assert_eq!(again.keys.public(), id.keys.public());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file left");
        std::fs::write(path(dir.path()), b"{").unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(
                e,
                IdentityError::Corrupt {
                    reason: Corruption::Json(_),
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("rejoin with --token"), "{e}");
    }

    #[test]
    fn incarnations_grow_per_start() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(next_incarnation(dir.path()).unwrap(), 1);
        assert_eq!(next_incarnation(dir.path()).unwrap(), 2);
        std::fs::write(incarnation_path(dir.path()), "x").unwrap();
        assert!(matches!(
            next_incarnation(dir.path()),
            Err(IdentityError::Corrupt {
                reason: Corruption::Incarnation(_),
                ..
            })
        ));
    }
}
