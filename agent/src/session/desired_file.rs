//! `RUN_DIR/desired.json`: the last desired set the agent accepted, so an
//! agent restarted while the hub is away restores its pods (offline
//! autonomy). RUN_DIR is a tmpfs because the set carries Secret values; the
//! file is written only when the set changes, atomically, mode 0600.

use std::path::{Path, PathBuf};

use bramble_api::protocol::{Desired, Freshness, Generation};

use super::files::{WriteError, write_atomic};

/// Why the stored set could not be read back or stored.
#[derive(Debug, thiserror::Error)]
pub enum DesiredFileError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a desired set (`reason`: the decoder's message).
    #[error("{path}: {reason}")]
    Decode { path: PathBuf, reason: String },
    /// Stored before generations were bounded: it would make every later
    /// set look older.
    #[error("{path}: generation {generation} is above the largest one; ignored")]
    Implausible {
        path: PathBuf,
        generation: Generation,
    },
    #[error("encoding the desired set: {0}")]
    Encode(#[source] serde_json::Error),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The desired file under `run_dir`.
pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join("desired.json")
}

/// Whether `new` should be applied over the set applied so far: only a newer
/// generation (a redelivery or a stale retained copy is ignored).
pub fn accepts(current: Option<&Desired>, new: &Desired) -> bool {
    new.generation.freshness(current.map(|d| d.generation)) == Freshness::Newer
}

/// The stored set, `None` when there is none. An unreadable file is
/// reported (the caller logs it and starts empty).
pub fn load(run_dir: &Path) -> Result<Option<Desired>, DesiredFileError> {
    let p = path(run_dir);
    match std::fs::read(&p) {
        Ok(bytes) => {
            let d: Desired = bramble_api::decode::decode_slice(&bytes).map_err(|reason| {
                DesiredFileError::Decode {
                    path: p.clone(),
                    reason,
                }
            })?;
            if !d.generation.plausible() {
                return Err(DesiredFileError::Implausible {
                    path: p,
                    generation: d.generation,
                });
            }
            Ok(Some(d))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DesiredFileError::Read { path: p, source }),
    }
}

/// Stores `desired` unless the file already holds exactly it.
pub fn save(run_dir: &Path, desired: &Desired) -> Result<bool, DesiredFileError> {
    let json = serde_json::to_vec(desired).map_err(DesiredFileError::Encode)?;
    if std::fs::read(path(run_dir)).is_ok_and(|old| old == json) {
        return Ok(false);
    }
    write_atomic(&path(run_dir), &json, 0o600)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(generation: u64) -> Desired {
        Desired {
            generation: Generation(generation),
            ..Desired::default()
        }
    }

    #[test]
    fn only_newer_generations_are_accepted() {
        assert!(accepts(None, &set(1)));
        assert!(accepts(Some(&set(1)), &set(2)));
        assert!(!accepts(Some(&set(2)), &set(2)));
        assert!(!accepts(Some(&set(3)), &set(2)));
    }

    #[test]
    fn saved_on_change_only_and_loaded_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        assert!(save(dir.path(), &set(4)).unwrap());
        assert!(!save(dir.path(), &set(4)).unwrap());
        assert_eq!(load(dir.path()).unwrap(), Some(set(4)));
        assert!(save(dir.path(), &set(5)).unwrap());
        assert_eq!(load(dir.path()).unwrap().unwrap().generation, Generation(5));
        std::fs::write(path(dir.path()), b"garbage").unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(DesiredFileError::Decode { .. })
        ));
        save(dir.path(), &set(u64::MAX)).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, DesiredFileError::Implausible { .. }), "{e}");
        assert!(e.to_string().contains("above the largest"), "{e}");
    }
}
