//! `DATA_DIR/secrets.key`: the key ring that seals Secrets and join tokens in
//! `state.redb` (see `store::sealing`). Created at first start, mode 0600,
//! replaced atomically by a key rotation. Text, one key per line:
//!
//! ```text
//! active 1a2b3c4d
//! key 1a2b3c4d <32 bytes, base64>
//! ```

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::store::sealing::KEY_LEN;
use crate::store::{Keyring, Store, StoreError};

/// File name inside the data directory.
pub const SECRETS_KEY_FILE: &str = "secrets.key";

const HEADER: &str = "# Bramble: the keys sealing Secrets and join tokens in state.redb.\n\
# Back it up together with state.redb, but store the copies apart: either alone reveals nothing,\n\
# and state.redb's Secrets cannot be read without it.\n";

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsKeyError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} line {line}: {what} (expected `active ID` and `key ID BASE64` lines; restore the file from a backup)"
    )]
    Parse {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error("{path}: {what} (restore the file from a backup)")]
    Invalid { path: PathBuf, what: String },
    #[error("no OS randomness for a new key: {0}")]
    Random(getrandom::Error),
}

/// Reads the key ring at `path`, creating one with a fresh key if the file
/// is missing. Returns whether it was created.
pub fn load_or_create(path: &Path) -> Result<(Keyring, bool), SecretsKeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((parse(path, &text)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let ring = Keyring::generate().map_err(SecretsKeyError::Random)?;
            save(path, &ring)?;
            tracing::info!(path = %path.display(), "secrets encryption key created");
            Ok((ring, true))
        }
        Err(source) => Err(SecretsKeyError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `ring` to `path` atomically, mode 0600.
pub fn save(path: &Path, ring: &Keyring) -> Result<(), SecretsKeyError> {
    crate::data_dir::write_private(path, render(ring).as_bytes()).map_err(|source| {
        SecretsKeyError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn render(ring: &Keyring) -> String {
    let mut s = String::from(HEADER);
    s.push_str(&format!("active {:08x}\n", ring.active));
    for (id, key) in &ring.keys {
        s.push_str(&format!("key {id:08x} {}\n", STANDARD.encode(key)));
    }
    s
}

fn parse(path: &Path, text: &str) -> Result<Keyring, SecretsKeyError> {
    let err = |line: usize, what: String| SecretsKeyError::Parse {
        path: path.to_path_buf(),
        line,
        what,
    };
    let id = |line: usize, s: &str| {
        u32::from_str_radix(s, 16)
            .map_err(|_| err(line, format!("{s:?} is not a key id (8 hex digits)")))
    };
    let mut active = None;
    let mut keys = std::collections::BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        match words.as_slice() {
            ["active", a] => active = Some(id(line, a)?),
            ["key", k, b64] => {
                let bytes = STANDARD
                    .decode(b64)
                    .map_err(|e| err(line, format!("key {k} is not base64: {e}")))?;
                let key: [u8; KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
                    err(
                        line,
                        format!("key {k} has {} bytes, a key has {KEY_LEN}", b.len()),
                    )
                })?;
                if keys.insert(id(line, k)?, key).is_some() {
                    return Err(err(line, format!("key {k} appears twice")));
                }
            }
            _ => return Err(err(line, format!("unexpected line {l:?}"))),
        }
    }
    let invalid = |what: String| SecretsKeyError::Invalid {
        path: path.to_path_buf(),
        what,
    };
    let active = active.ok_or_else(|| invalid("no `active` line".into()))?;
    if !keys.contains_key(&active) {
        return Err(invalid(format!(
            "the active key {active:08x} is not among the keys"
        )));
    }
    Ok(Keyring { active, keys })
}

/// The key file of a running hub, and the lock that keeps rotations one at a time.
#[derive(Debug)]
pub struct SecretsKey {
    path: PathBuf,
    rotating: tokio::sync::Mutex<()>,
}

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// The new active key.
    pub active: u32,
    /// Values sealed again under it.
    pub resealed: usize,
    /// Keys dropped from the file.
    pub retired: usize,
}

/// Why a rotation failed. The file and the store stay usable: values are
/// only ever sealed under a key already written to the file.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("this hub's store seals nothing (it was opened without a key ring)")]
    NotSealing,
    #[error(transparent)]
    File(#[from] SecretsKeyError),
    #[error("sealing the stored values again: {0}")]
    Store(#[from] StoreError),
}

impl SecretsKey {
    pub fn new(path: PathBuf) -> SecretsKey {
        SecretsKey {
            path,
            rotating: tokio::sync::Mutex::new(()),
        }
    }

    /// Rotates the key: a fresh key is written to the file as the active one
    /// next to the old, every sealed value is sealed again under it, then
    /// the old keys leave the file. A crash in between leaves both keys in
    /// the file; the next start seals what is left and retires them.
    pub async fn rotate(&self, store: &Store) -> Result<Rotation, RotateError> {
        let _one = self.rotating.lock().await;
        let sealer = store.sealer().ok_or(RotateError::NotSealing)?;
        let mut ring = sealer.keyring();
        let active = ring.add_active().map_err(SecretsKeyError::Random)?;
        save(&self.path, &ring)?;
        sealer.set_keyring(ring.clone());
        let resealed = store.reseal().await?;
        let retired = ring.retire_inactive();
        save(&self.path, &ring)?;
        sealer.set_keyring(ring);
        tracing::info!(
            active = format_args!("{active:08x}"),
            resealed,
            retired,
            "secrets encryption key rotated"
        );
        Ok(Rotation {
            active,
            resealed,
            retired,
        })
    }

    /// Drops keys no stored value uses any more (after the store's open
    /// sealed everything under the active key).
    pub fn retire_unused(&self, store: &Store) -> Result<usize, SecretsKeyError> {
        let Some(sealer) = store.sealer() else {
            return Ok(0);
        };
        let mut ring = sealer.keyring();
        let retired = ring.retire_inactive();
        if retired > 0 {
            save(&self.path, &ring)?;
            sealer.set_keyring(ring);
        }
        Ok(retired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_private_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(SECRETS_KEY_FILE);
        let (a, created) = load_or_create(&p).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (b, created) = load_or_create(&p).unwrap();
        assert!(!created);
        assert_eq!(a, b);
    }

    #[test]
    fn a_rotated_ring_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(SECRETS_KEY_FILE);
        let mut ring = Keyring::generate().unwrap();
        ring.add_active().unwrap();
        save(&p, &ring).unwrap();
        assert_eq!(load_or_create(&p).unwrap().0, ring);
        assert!(!dir.path().join("secrets.key.tmp").exists());
    }

    #[test]
    fn a_damaged_file_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(SECRETS_KEY_FILE);
        std::fs::write(&p, "active 0000000a\nkey 0000000a c2hvcnQ=\n").unwrap();
        let e = load_or_create(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("has 5 bytes"), "{e}");
        std::fs::write(&p, "active 0000000b\n").unwrap();
        let e = load_or_create(&p).unwrap_err().to_string();
        assert!(
            e.contains("active key 0000000b is not among the keys"),
            "{e}"
        );
        // Nothing was replaced.
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "active 0000000b\n");
    }
}

#[cfg(test)]
mod rotation_tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::{Sealer, StoreOptions};
    use serde_json::json;

    fn secrets() -> &'static bramble_api::ResourceInfo {
        bramble_api::resource::by_plural("", "v1", "secrets").unwrap()
    }

    fn raw_file_holds(path: &Path, needle: &[u8]) -> bool {
        std::fs::read(path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
    }

    #[tokio::test]
    async fn plain_secrets_are_sealed_at_open_and_survive_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.redb");
        let key_path = dir.path().join(SECRETS_KEY_FILE);
        // A store written before sealing existed.
        let store = Store::open(&db, StoreOptions::default()).unwrap();
        let ns = bramble_api::resource::by_plural("", "v1", "namespaces").unwrap();
        store
            .create(
                ns,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
            )
            .await
            .unwrap();
        store
            .create(
                secrets(),
                json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "s", "namespace": "default"},
                       "stringData": {"pw": "plain-before-sealing"}}),
            )
            .await
            .unwrap();
        store.shutdown().await;
        assert!(raw_file_holds(&db, b"plain-before-sealing"));

        let (ring, _) = load_or_create(&key_path).unwrap();
        let open = |ring| {
            let sealer = Arc::new(Sealer::new(vec!["secrets"], ring));
            Store::open(
                &db,
                StoreOptions {
                    sealer: Some(sealer),
                    ..StoreOptions::default()
                },
            )
            .unwrap()
        };
        let store = open(ring);
        assert!(!raw_file_holds(&db, b"plain-before-sealing"));
        let read = |store: &Store| {
            store.get(secrets(), Some("default"), "s").unwrap().unwrap()["stringData"]["pw"].clone()
        };
        assert_eq!(read(&store), "plain-before-sealing");

        let key = SecretsKey::new(key_path.clone());
        let before = store.sealer().unwrap().keyring().active;
        let r = key.rotate(&store).await.unwrap();
        assert_ne!(r.active, before);
        assert_eq!((r.resealed, r.retired), (1, 1));
        assert_eq!(read(&store), "plain-before-sealing");
        store.shutdown().await;

        // The file now holds only the new key, and it opens the store.
        let (ring, _) = load_or_create(&key_path).unwrap();
        assert_eq!(
            ring.keys.keys().copied().collect::<Vec<_>>(),
            vec![r.active]
        );
        let store = open(ring);
        assert_eq!(read(&store), "plain-before-sealing");
        store.shutdown().await;

        // A key file that is not this store's is refused, naming the key.
        let other = Keyring::generate().unwrap();
        let sealer = Arc::new(Sealer::new(vec!["secrets"], other));
        let e = Store::open(
            &db,
            StoreOptions {
                sealer: Some(sealer),
                ..StoreOptions::default()
            },
        )
        .err()
        .expect("a foreign key ring is refused");
        assert!(
            matches!(e, StoreError::Sealed { source: crate::store::SealError::UnknownKey { id }, .. } if id == r.active),
            "{e}"
        );
    }
}
