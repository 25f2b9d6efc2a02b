//! The node's `local-path` volumes: one directory per PersistentVolume
//! under `DATA_DIR/volumes/`, made when a pod first mounts it, deleted only
//! when the hub names it in a desired set's `reclaim` — never because a set
//! lacks it (an agent restarted offline restores an old set; data must
//! survive that).
//!
//! A reclaimed directory is first renamed to `.trash-<volume>` (atomic, so
//! the report that it is gone is true at once and a crash never leaves a
//! half-deleted volume under its name), then emptied on a thread of its
//! own: a large volume never holds up the node loop. Trash left by a crash
//! is removed at the next start ([`leftover_trash`]).
//!
//! [`usage`] measures what each volume holds (allocated blocks, without
//! crossing into other filesystems), for the hub to compare with the
//! claim's request: a directory has no size limit of its own, so an
//! over-full volume is reported rather than stopped.

use std::io;
use std::path::{Path, PathBuf};

use bramble_api::protocol::volumes::check_volume_name;

/// Prefix of directories being deleted.
const TRASH: &str = ".trash-";

/// Why a volume directory could not be reclaimed.
#[derive(Debug, thiserror::Error)]
pub enum ReclaimError {
    #[error("volume {volume:?}: not a volume name")]
    BadName { volume: String },
    #[error("volume {volume:?}: moving {path} aside: {source}")]
    Rename {
        volume: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The directory of volume `name` in `dir`; `None` for a name that is not
/// exactly one path component of a volume name.
pub fn path_of(dir: &Path, name: &str) -> Option<PathBuf> {
    check_volume_name("volume", name)
        .is_empty()
        .then(|| dir.join(name))
}

/// What [`reclaim`] did.
#[derive(Debug, Default)]
pub struct Reclaimed {
    /// Names whose directories are gone now, in order.
    pub gone: Vec<String>,
    /// Directories moved aside, for [`delete`].
    pub trash: Vec<PathBuf>,
    /// Volumes that could not be moved aside (not in `gone`).
    pub errors: Vec<ReclaimError>,
}

/// Moves the directories of `names` (those that exist) aside; their data is
/// deleted by [`delete`].
pub fn reclaim(dir: &Path, names: &[String]) -> Reclaimed {
    let mut gone = Vec::new();
    let mut errors = Vec::new();
    let mut moved = Vec::new();
    for name in names {
        let Some(path) = path_of(dir, name) else {
            errors.push(ReclaimError::BadName {
                volume: name.clone(),
            });
            continue;
        };
        let trash = dir.join(format!("{TRASH}{name}"));
        match std::fs::rename(&path, &trash) {
            Ok(()) => {
                tracing::info!(volume = %name, "volume reclaimed; deleting its data");
                moved.push(trash);
                gone.push(name.clone());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => gone.push(name.clone()),
            Err(source) => errors.push(ReclaimError::Rename {
                volume: name.clone(),
                path,
                source,
            }),
        }
    }
    Reclaimed {
        gone,
        trash: moved,
        errors,
    }
}

/// Bytes allocated by each volume directory in `dir` (trash left out).
pub fn usage(dir: &Path) -> std::collections::BTreeMap<String, u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Default::default();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            if name.starts_with(TRASH) || path_of(dir, &name).is_none() {
                return None;
            }
            Some((name, allocated(&e.path())))
        })
        .collect()
}

/// Allocated bytes under `root`, on `root`'s filesystem only; entries that
/// vanish while walking are skipped.
fn allocated(root: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = std::fs::symlink_metadata(root) else {
        return 0;
    };
    let mut total = top.blocks() * 512;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.dev() != top.dev() {
                continue;
            }
            total = total.saturating_add(m.blocks() * 512);
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// Trash a crashed agent left behind in `dir`.
pub fn leftover_trash(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(TRASH))
        .map(|e| e.path())
        .collect()
}

/// Deletes moved-aside directories on a thread of their own.
pub fn delete(trash: Vec<PathBuf>) {
    if trash.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("volume-delete".into())
        .spawn(move || delete_now(&trash));
    if let Err(error) = spawned {
        tracing::warn!(%error, "no thread to delete reclaimed volumes; they are deleted at the next start");
    }
}

/// Deletes moved-aside directories.
pub fn delete_now(trash: &[PathBuf]) {
    for path in trash {
        if let Err(error) = std::fs::remove_dir_all(path)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), %error, "deleting a reclaimed volume");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_what_each_volume_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("pvc-a/sub")).unwrap();
        std::fs::write(dir.join("pvc-a/sub/f"), vec![1u8; 1 << 20]).unwrap();
        std::fs::create_dir_all(dir.join("pvc-b")).unwrap();
        std::fs::create_dir_all(dir.join(".trash-pvc-c")).unwrap();
        let u = usage(dir);
        assert_eq!(u.keys().collect::<Vec<_>>(), ["pvc-a", "pvc-b"]);
        assert!(u["pvc-a"] >= 1 << 20, "{u:?}");
        assert!(u["pvc-b"] < 1 << 20, "{u:?}");
    }

    #[test]
    fn only_named_volumes_go_and_names_never_leave_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("volumes");
        for v in ["pvc-a", "pvc-b"] {
            std::fs::create_dir_all(dir.join(v)).unwrap();
            std::fs::write(dir.join(v).join("data"), v).unwrap();
        }
        std::fs::write(tmp.path().join("outside"), "x").unwrap();
        let r = reclaim(
            &dir,
            &[
                "pvc-a".into(),
                "pvc-never".into(),
                "..".into(),
                "../outside".into(),
            ],
        );
        assert_eq!(r.gone, ["pvc-a", "pvc-never"]);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(!dir.join("pvc-a").exists());
        assert_eq!(r.trash, [dir.join(".trash-pvc-a")]);
        assert_eq!(
            std::fs::read_to_string(dir.join("pvc-b/data")).unwrap(),
            "pvc-b"
        );
        assert!(tmp.path().join("outside").exists());
        // A crash between the rename and the delete: found at the next start.
        std::fs::create_dir_all(dir.join(".trash-pvc-old/deep")).unwrap();
        let mut left = leftover_trash(&dir);
        left.sort();
        assert_eq!(left, [dir.join(".trash-pvc-a"), dir.join(".trash-pvc-old")]);
        delete_now(&left);
        assert!(leftover_trash(&dir).is_empty());
        assert!(dir.join("pvc-b/data").exists());
    }
}
