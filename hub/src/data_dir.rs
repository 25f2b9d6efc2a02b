//! `DATA_DIR` is private to the hub's user: the directory 0700, every file
//! directly in it 0600 (`state.redb` holds the cluster's objects, `token`,
//! `node-token`, `hub-key`, `ca.key` and `secrets.key` are secrets) and every directory in
//! it 0700 (the registry's blobs). The hub creates it so, and tightens an
//! existing one at every start, saying what it changed: a data directory
//! restored from a backup or made by an older release must not stay
//! readable by other users. Group and other bits are only ever removed.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode `mode` becomes: no access for group and others.
pub fn private(mode: u32) -> u32 {
    mode & !0o077
}

/// Creates `dir` (0700) if needed and tightens it and what is directly in
/// it; returns the paths it changed.
pub fn secure(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut changed = Vec::new();
    let mut tighten = |path: &Path, meta: &std::fs::Metadata| -> std::io::Result<()> {
        let mode = meta.permissions().mode() & 0o7777;
        if private(mode) != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(private(mode)))?;
            changed.push(format!(
                "{} ({:o} -> {:o})",
                path.display(),
                mode,
                private(mode)
            ));
        }
        Ok(())
    };
    tighten(dir, &std::fs::metadata(dir)?)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() || meta.is_dir() {
            tighten(&entry.path(), &meta)?;
        }
    }
    Ok(changed)
}

/// Replaces `path` with `bytes`, mode 0600, atomically: a temporary file in
/// the same directory, synced, renamed over it, the directory synced. A crash
/// leaves the old file or the new one, never a mix.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_open_data_dir_is_closed_and_says_what_changed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("state.redb"), b"x").unwrap();
        std::fs::set_permissions(
            dir.join("state.redb"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::create_dir(dir.join("registry")).unwrap();
        std::fs::set_permissions(dir.join("registry"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let changed = secure(&dir).unwrap();
        assert_eq!(changed.len(), 3, "{changed:?}");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("state.redb")), 0o600);
        assert_eq!(mode(&dir.join("registry")), 0o700);
        assert!(secure(&dir).unwrap().is_empty(), "nothing left to change");
        // A new one is private from the start.
        let fresh = root.path().join("fresh");
        secure(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
    }

    #[test]
    fn only_group_and_other_bits_go() {
        assert_eq!(private(0o644), 0o600);
        assert_eq!(private(0o755), 0o700);
        assert_eq!(private(0o400), 0o400);
        assert_eq!(private(0o1777), 0o1700);
    }
}
