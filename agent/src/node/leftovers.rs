//! Cleaning up what a crashed agent left behind, at agent start after the
//! recorded pods were adopted: anything of Bramble's on the node that no
//! adopted pod owns goes — runtime containers (processes, state, bundles,
//! cgroups), cgroups under the agent's parent without a container, mounts
//! (overlay rootfses, volume tmpfses) and directories of unknown pods,
//! namespace files, log FIFOs. Logs are kept. What could not be removed is
//! a [`LeftoverError`] each.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::mount::{UnmountFlags, unmount};

use crate::logs::LogPump;
use crate::runtime::cgroup::CgroupLayout;
use crate::runtime::{Runtime, RuntimeError};

/// One leftover that could not be removed (the others still are).
#[derive(Debug, thiserror::Error)]
pub enum LeftoverError {
    /// Listing the runtime's containers, or removing one.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("reading the cgroup layout: {0}")]
    CgroupLayout(#[source] std::io::Error),
    #[error("cgroup {path}: {source}")]
    KillCgroup {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("removing cgroup {path}: {source}")]
    RemoveCgroup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unmounting {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: rustix::io::Errno,
    },
    #[error("removing {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("listing log FIFOs: {0}")]
    ListFifos(#[source] std::io::Error),
    #[error("log FIFOs {key}: {source}")]
    DetachFifos {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

/// What belongs to the adopted pods.
#[derive(Debug, Default)]
pub struct Owned {
    /// Pod ids (data directories, namespace files `<id>`, `<id>:ipc`, ...).
    pub pods: BTreeSet<String>,
    /// Runtime container ids that exist in the runtime.
    pub containers: BTreeSet<String>,
}

/// Where the agent keeps things.
#[derive(Debug)]
pub struct Places<'a> {
    pub data: &'a Path,
    pub netns: &'a Path,
    pub cgroup_parent: &'a str,
}

/// Removes everything not in `owned`; returns what was removed (for the
/// log) and what could not be (errors).
pub fn clean(
    runtime: &dyn Runtime,
    pump: Option<&LogPump>,
    places: &Places<'_>,
    owned: &Owned,
) -> (Vec<String>, Vec<LeftoverError>) {
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    match runtime.list() {
        Ok(ids) => {
            for id in ids.into_iter().filter(|i| !owned.containers.contains(i)) {
                match runtime.remove_leftover(&id) {
                    Ok(()) => removed.push(format!("container {id}")),
                    Err(e) => errors.push(e.into()),
                }
            }
        }
        Err(e) => errors.push(e.into()),
    }
    match CgroupLayout::detect() {
        Ok(layout) => {
            for name in layout.children(places.cgroup_parent) {
                if owned.containers.contains(&name) {
                    continue;
                }
                let path = format!("/{}/{name}", places.cgroup_parent.trim_matches('/'));
                let files = layout.files(Path::new(&path));
                if let Err(source) = files.kill_all(Duration::from_secs(10)) {
                    errors.push(LeftoverError::KillCgroup { path, source });
                    continue;
                }
                let failed = files.remove_leftovers();
                if failed.is_empty() {
                    removed.push(format!("cgroup {path}"));
                }
                for (path, source) in failed {
                    errors.push(LeftoverError::RemoveCgroup { path, source });
                }
            }
        }
        Err(e) => errors.push(LeftoverError::CgroupLayout(e)),
    }
    let mounts = mount_points();
    clean_pod_dirs(places.data, &mounts, owned, &mut removed, &mut errors);
    clean_netns(places.netns, &mounts, owned, &mut removed, &mut errors);
    if let Some(pump) = pump {
        match pump.fifo_keys() {
            Ok(keys) => {
                for key in keys {
                    let pod = key.rsplit_once('_').map_or(key.as_str(), |(p, _)| p);
                    if owned.pods.contains(pod) {
                        continue;
                    }
                    match pump.detach(&key) {
                        Ok(()) => removed.push(format!("log FIFOs {key}")),
                        Err(source) => errors.push(LeftoverError::DetachFifos { key, source }),
                    }
                }
            }
            Err(e) => errors.push(LeftoverError::ListFifos(e)),
        }
    }
    (removed, errors)
}

/// Mount points from `/proc/self/mountinfo` (field 5, octal escapes decoded).
fn mount_points() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(n);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts everything at or under `dir`, deepest first.
fn unmount_under(dir: &Path, mounts: &[PathBuf], errors: &mut Vec<LeftoverError>) -> bool {
    let mut under: Vec<&PathBuf> = mounts.iter().filter(|m| m.starts_with(dir)).collect();
    under.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    under.dedup();
    let mut ok = true;
    for m in under {
        match unmount(m.as_path(), UnmountFlags::DETACH) {
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => {
                ok = false;
                errors.push(LeftoverError::Unmount {
                    path: m.clone(),
                    source: e,
                });
            }
        }
    }
    ok
}

fn clean_pod_dirs(
    data: &Path,
    mounts: &[PathBuf],
    owned: &Owned,
    removed: &mut Vec<String>,
    errors: &mut Vec<LeftoverError>,
) {
    let Ok(entries) = std::fs::read_dir(data) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if owned.pods.contains(&name) {
            continue;
        }
        let dir = e.path();
        // Never remove into a mount that stayed: it could be a bind of
        // something else.
        if !unmount_under(&dir, mounts, errors) {
            continue;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => removed.push(format!("pod dir {}", dir.display())),
            Err(source) => errors.push(LeftoverError::Remove { path: dir, source }),
        }
    }
}

fn clean_netns(
    netns: &Path,
    mounts: &[PathBuf],
    owned: &Owned,
    removed: &mut Vec<String>,
    errors: &mut Vec<LeftoverError>,
) {
    let Ok(entries) = std::fs::read_dir(netns) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pod = name.split(':').next().unwrap_or(&name);
        if owned.pods.contains(pod) {
            continue;
        }
        let path = e.path();
        if !unmount_under(&path, mounts, errors) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(format!("namespace {}", path.display())),
            Err(source) => errors.push(LeftoverError::Remove { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(r"/a\040b/c"), "/a b/c");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/x\"), "/x\\");
    }
}
