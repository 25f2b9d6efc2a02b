//! `subPath` mounts without a check-then-use race (CVE-2017-1002101, fixed
//! the same way as the kubelet): the subPath is opened as an `O_PATH` file
//! descriptor with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` from
//! the volume's directory, so no symlink can lead it out of the volume,
//! and that very file is bind-mounted (through `/proc/self/fd/N`) at a
//! path only the agent writes, `POD_DIR/volume-subpaths/<volume>/<container>/<index>`.
//! The runtime mounts that path into the container: swapping a component of
//! the subPath for a symlink to `/` after the check changes nothing, as the
//! inode was pinned when it was opened. Missing directories of a writable
//! volume are created one component at a time below an already opened one.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, fstat, mkdirat, open, openat2};
use rustix::io::Errno;
use rustix::mount::{UnmountFlags, mount_bind, unmount};

/// The directory of the pinned subPath mounts inside a pod's directory.
pub const SUBPATHS_DIR: &str = "volume-subpaths";

/// Why a subPath cannot be mounted.
#[derive(Debug, thiserror::Error)]
pub enum SubPathError {
    #[error("subPath {sub:?} leaves the volume (through a symlink)")]
    Escapes { sub: String },
    #[error("subPath {sub:?} does not exist")]
    Missing { sub: String },
    #[error("subPath {sub:?}: {op}: {source}")]
    Io {
        sub: String,
        op: &'static str,
        source: io::Error,
    },
}

fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS
}

fn path_flags() -> OFlags {
    OFlags::PATH | OFlags::CLOEXEC
}

/// Opens `sub` (relative, no `..`) below the directory `volume` as an
/// `O_PATH` descriptor; with `create`, missing directories are made first.
pub fn open_beneath(volume: &Path, sub: &str, create: bool) -> Result<OwnedFd, SubPathError> {
    let io_err = |op: &'static str| {
        let sub = sub.to_string();
        move |e: Errno| SubPathError::Io {
            sub,
            op,
            source: e.into(),
        }
    };
    let classify = |e: Errno, op: &'static str| match e {
        Errno::XDEV | Errno::LOOP => SubPathError::Escapes { sub: sub.into() },
        Errno::NOENT => SubPathError::Missing { sub: sub.into() },
        e => io_err(op)(e),
    };
    let root = open(volume, path_flags() | OFlags::DIRECTORY, Mode::empty())
        .map_err(io_err("opening the volume"))?;
    match openat2(&root, sub, path_flags(), Mode::empty(), beneath()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) if create => {}
        Err(e) => return Err(classify(e, "opening")),
    }
    // Make the missing directories, each below an opened parent.
    let mut dir = root.try_clone().map_err(|e| SubPathError::Io {
        sub: sub.into(),
        op: "duplicating the volume descriptor",
        source: e,
    })?;
    for c in Path::new(sub).components() {
        let Component::Normal(name) = c else {
            return Err(SubPathError::Escapes { sub: sub.into() });
        };
        let next = path_flags() | OFlags::DIRECTORY;
        dir = match openat2(&dir, name, next, Mode::empty(), beneath()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_err("creating a directory")(e)),
                }
                openat2(&dir, name, next, Mode::empty(), beneath())
                    .map_err(|e| classify(e, "opening a created directory"))?
            }
            Err(e) => return Err(classify(e, "opening a directory")),
        };
    }
    openat2(&root, sub, path_flags(), Mode::empty(), beneath()).map_err(|e| classify(e, "opening"))
}

/// Bind-mounts the file or directory `fd` refers to at `target` (created
/// as an empty directory or file to match), replacing what an earlier call
/// mounted there.
pub fn bind(fd: &OwnedFd, target: &Path) -> io::Result<()> {
    let is_dir = FileType::from_raw_mode(fstat(fd)?.st_mode) == FileType::Directory;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = unmount(target, UnmountFlags::DETACH);
    let made = if is_dir {
        std::fs::create_dir(target)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
            .map(drop)
    };
    match made {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    mount_bind(&source, target)?;
    Ok(())
}

/// Where volumeMount `index` of `container` on `volume` is pinned.
pub fn target(pod_dir: &Path, volume: &str, container: &str, index: usize) -> PathBuf {
    pod_dir
        .join(SUBPATHS_DIR)
        .join(volume)
        .join(container)
        .join(index.to_string())
}

/// Unmounts and removes every pinned subPath under `pod_dir`. Never
/// recursive into a mount: an entry still mounted makes it fail.
pub fn remove_all(pod_dir: &Path) -> io::Result<()> {
    let dir = pod_dir.join(SUBPATHS_DIR);
    let entries = |d: &Path| -> io::Result<Vec<PathBuf>> {
        match std::fs::read_dir(d) {
            Ok(rd) => rd.map(|e| e.map(|e| e.path())).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(e),
        }
    };
    for volume in entries(&dir)? {
        for container in entries(&volume)? {
            for pinned in entries(&container)? {
                match unmount(&pinned, UnmountFlags::DETACH) {
                    Ok(()) | Err(Errno::INVAL) => {}
                    Err(e) => return Err(e.into()),
                }
                // An empty directory or file now; `remove_dir` never
                // descends, so a mount that survived makes this fail.
                std::fs::remove_dir(&pinned).or_else(|_| std::fs::remove_file(&pinned))?;
            }
            std::fs::remove_dir(&container)?;
        }
        std::fs::remove_dir(&volume)?;
    }
    match std::fs::remove_dir(&dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
