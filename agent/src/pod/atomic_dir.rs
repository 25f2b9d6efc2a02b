//! The kubelet's atomic writer for configMap and secret volumes: the files
//! of one version live in a hidden directory `..<version>`, the symlink
//! `..data` points at the current one, and every top-level entry the user
//! sees is a symlink `name -> ..data/name`. An update writes a new version
//! directory, then renames a fresh `..data` symlink over the old one — one
//! `rename(2)`, so a reader in the container sees the old files or the new
//! ones, never a mix — and finally drops stale entries and old versions.

use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The symlink naming the current version.
pub const DATA_LINK: &str = "..data";

/// One file of a version: path relative to the volume, bytes, mode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VolumeFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub mode: u32,
}

/// Whether `dir` uses the `..data` layout (volumes made by older agents
/// hold their files directly).
pub fn has_layout(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(DATA_LINK)).is_ok_and(|m| m.file_type().is_symlink())
}

/// The files of the current version, sorted; `None` without the layout.
pub fn read_current(dir: &Path) -> io::Result<Option<Vec<VolumeFile>>> {
    if !has_layout(dir) {
        return Ok(None);
    }
    let base = dir.join(DATA_LINK);
    let mut out = Vec::new();
    walk(&base, Path::new(""), &mut out)?;
    out.sort();
    Ok(Some(out))
}

fn walk(base: &Path, rel: &Path, out: &mut Vec<VolumeFile>) -> io::Result<()> {
    for e in std::fs::read_dir(base.join(rel))? {
        let e = e?;
        let rel = rel.join(e.file_name());
        let meta = e.metadata()?;
        if meta.is_dir() {
            walk(base, &rel, out)?;
        } else {
            out.push(VolumeFile {
                bytes: std::fs::read(base.join(&rel))?,
                path: rel,
                mode: meta.permissions().mode() & 0o777,
            });
        }
    }
    Ok(())
}

/// Makes `files` the current content of `dir` (see the module docs).
/// Old version directories are removed unless `keep_old` (a subPath mount
/// may still show one to a container). Errors name the path.
pub fn write_version(dir: &Path, files: &[VolumeFile], keep_old: bool) -> io::Result<()> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let version = format!("..{nanos}");
    let vdir = dir.join(&version);
    create_dir(&vdir)?;
    chmod(&vdir, 0o755)?;
    for f in files {
        let path = vdir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(ctx("creating", parent))?;
        }
        std::fs::write(&path, &f.bytes).map_err(ctx("writing", &path))?;
        chmod(&path, f.mode)?;
    }
    // The switch: one rename of a fresh symlink over `..data`.
    replace_symlink(dir, DATA_LINK, Path::new(&version))?;
    let mut top: Vec<String> = files
        .iter()
        .filter_map(|f| f.path.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    top.sort();
    top.dedup();
    for name in &top {
        let target = Path::new(DATA_LINK).join(name);
        if std::fs::read_link(dir.join(name)).ok().as_deref() != Some(&target) {
            replace_symlink(dir, name, &target)?;
        }
    }
    for e in std::fs::read_dir(dir).map_err(ctx("listing", dir))? {
        let e = e.map_err(ctx("listing", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name == DATA_LINK || name == version {
            continue;
        }
        if name.starts_with("..") {
            let old_version = e.file_type().is_ok_and(|t| t.is_dir());
            if old_version && !keep_old {
                std::fs::remove_dir_all(&path).map_err(ctx("removing", &path))?;
            }
        } else if !top.contains(&name)
            && std::fs::read_link(&path).is_ok_and(|t| t.starts_with(DATA_LINK))
        {
            std::fs::remove_file(&path).map_err(ctx("removing", &path))?;
        }
    }
    Ok(())
}

/// Points `dir/name` at `target` with one rename.
fn replace_symlink(dir: &Path, name: &str, target: &Path) -> io::Result<()> {
    let tmp = dir.join(format!("..tmp-{name}"));
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp).map_err(ctx("creating the symlink", &tmp))?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(ctx("renaming into", &path))
}

fn create_dir(p: &Path) -> io::Result<()> {
    std::fs::create_dir(p).map_err(ctx("creating", p))
}

fn chmod(p: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(ctx("chmod", p))
}

fn ctx<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, bytes: &str, mode: u32) -> VolumeFile {
        VolumeFile {
            path: path.into(),
            bytes: bytes.as_bytes().to_vec(),
            mode,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn updates_swap_the_data_link_and_clean_up() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert!(!has_layout(dir));
        assert_eq!(read_current(dir).unwrap(), None);
        let v1 = vec![file("a", "one", 0o644), file("sub/b", "two", 0o600)];
        write_version(dir, &v1, false).unwrap();
        assert!(has_layout(dir));
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).unwrap(), "two");
        assert_eq!(read_current(dir).unwrap(), Some(v1.clone()));
        // An open reader of the old version keeps its content.
        let held = std::fs::File::open(dir.join("a")).unwrap();

        let v2 = vec![file("a", "ONE", 0o400), file("c", "three", 0o644)];
        write_version(dir, &v2, false).unwrap();
        assert_eq!(read_current(dir).unwrap(), Some(v2.clone()));
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "ONE");
        assert!(!dir.join("sub").exists(), "a dropped key is gone");
        let versions: Vec<_> = names(dir)
            .into_iter()
            .filter(|n| n.starts_with("..") && n != DATA_LINK)
            .collect();
        assert_eq!(versions.len(), 1, "old versions removed: {versions:?}");
        assert_eq!(names(dir).len(), 4, "{:?}", names(dir));
        let mut old = String::new();
        std::io::Read::read_to_string(&mut &held, &mut old).unwrap();
        assert_eq!(old, "one");

        // keep_old leaves the previous version for subPath mounts.
        write_version(dir, &v1, true).unwrap();
        assert_eq!(read_current(dir).unwrap(), Some(v1));
        let versions = names(dir)
            .into_iter()
            .filter(|n| n.starts_with("..") && n != DATA_LINK)
            .count();
        assert_eq!(versions, 2);
    }

    #[test]
    fn a_reader_never_sees_a_mix() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let version = |n: usize| {
            vec![
                file("x", &format!("{n}"), 0o644),
                file("y", &format!("{n}"), 0o644),
            ]
        };
        write_version(&dir, &version(0), false).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (dir, stop) = (dir.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut checks = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Resolve `..data` once, as a reader of both files would
                    // through one directory handle.
                    let Ok(target) = std::fs::read_link(dir.join(DATA_LINK)) else {
                        continue;
                    };
                    let base = dir.join(target);
                    if let (Ok(x), Ok(y)) = (
                        std::fs::read_to_string(base.join("x")),
                        std::fs::read_to_string(base.join("y")),
                    ) {
                        assert_eq!(x, y);
                        checks += 1;
                    }
                }
                checks
            })
        };
        for n in 1..200 {
            write_version(&dir, &version(n), false).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(std::fs::read_to_string(dir.join("x")).unwrap(), "199");
    }
}
