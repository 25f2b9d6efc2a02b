//! Paths of an image's root filesystem resolved the way a container would
//! resolve them, but by the agent on the board: every lookup is
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to a file
//! descriptor of the root, so an absolute symlink is taken from the image's
//! root and `..` stops there (an image's `/app -> /etc` reaches `ROOT/etc`,
//! never the board's `/etc`), and everything after a lookup is done with
//! `*at` calls on the directory found, never with a joined path.
//!
//! A build step's overlay (and a build context or an earlier stage) is only
//! written by the step being built, and a container's rootfs is only read
//! here, before its process exists, so nothing changes between a lookup and
//! its use; the image's own symlinks are what is hostile, and they are
//! resolved here.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, Timestamps, UTIME_NOW};
use rustix::fs::{Gid, Uid, chmodat, chownat, mkdirat, open, openat2, statat, utimensat};

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
const PATH_DIR: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);

/// An owner to give what is made (`None`: the process's, i.e. root).
pub type Owner = Option<(u32, u32)>;

/// An image (or context) root opened for lookups inside it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    /// The root's own path as the kernel names it (for [`Root::real_rel`]).
    real: PathBuf,
}

impl Root {
    /// Opens the directory `path` as a root.
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = open(path, PATH_DIR, Mode::empty())?;
        let real = fd_path(&fd)?;
        Ok(Root { fd, real })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Opens `rel` (relative to the root; `""` is the root itself) with
    /// `flags`, every symlink on the way (the last one too unless `flags`
    /// has `NOFOLLOW`) resolved inside the root.
    pub fn open_at(&self, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        Ok(openat2(
            &self.fd,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )?)
    }

    /// The directory `rel` (resolved inside the root), for `*at` calls.
    pub fn dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        self.open_at(rel, PATH_DIR)
    }

    /// The path, relative to the root and free of symlinks, of what `fd`
    /// (opened inside this root) is. `""` for the root itself.
    pub fn real_rel(&self, fd: &impl AsFd) -> io::Result<PathBuf> {
        let path = fd_path(fd)?;
        match path.strip_prefix(&self.real) {
            Ok(rel) => Ok(rel.to_path_buf()),
            Err(_) => Err(io::Error::other(format!(
                "{} resolved outside the root {}",
                path.display(),
                self.real.display()
            ))),
        }
    }

    /// Resolves `rel` inside the root, following its symlinks (the last
    /// one too, when its target exists), to the directory that holds it and
    /// its name there. `Ok(None)` for the root itself.
    pub fn slot(&self, rel: &Path) -> io::Result<Option<Slot>> {
        let real = match self.open_at(rel, OFlags::PATH) {
            Ok(fd) => self.real_rel(&fd)?,
            // Missing, or a symlink to nothing: the name itself.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let Some(name) = rel.file_name() else {
                    return Err(e);
                };
                let parent = self.dir(rel.parent().unwrap_or(Path::new("")))?;
                let parent_real = self.real_rel(&parent)?;
                return Ok(Some(Slot {
                    parent,
                    name: name.to_os_string(),
                    rel: parent_real.join(name),
                }));
            }
            Err(e) => return Err(e),
        };
        let Some(name) = real.file_name() else {
            return Ok(None);
        };
        Ok(Some(Slot {
            parent: self.dir(real.parent().unwrap_or(Path::new("")))?,
            name: name.to_os_string(),
            rel: real.clone(),
        }))
    }

    /// Makes directory `rel` and its missing parents (mode 0755, owned by
    /// `owner`, as BuildKit's `MkdirAll`), resolving existing symlinks on
    /// the way inside the root; returns the directory.
    pub fn mkdir_all(&self, rel: &Path, owner: Owner) -> io::Result<OwnedFd> {
        let mut dir = self.fd.try_clone()?;
        let mut prefix = PathBuf::new();
        for part in rel.components() {
            let Component::Normal(name) = part else {
                continue;
            };
            prefix.push(name);
            match self.dir(&prefix) {
                Ok(fd) => {
                    dir = fd;
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
            match mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => set_meta(&dir, name, owner, Some(0o755), None)?,
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            // What was made must be a directory reached inside the root.
            dir = self.dir(&prefix)?;
        }
        Ok(dir)
    }
}

/// A place for one entry: a directory and a name in it.
#[derive(Debug)]
pub struct Slot {
    pub parent: OwnedFd,
    pub name: OsString,
    /// Its path relative to the root, without symlinks.
    pub rel: PathBuf,
}

/// What `fd` is, by its path in `/proc/self/fd`.
fn fd_path(fd: &impl AsFd) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// `lstat` of `name` in `dir` (`None`: it does not exist).
pub fn lstat_at(dir: &impl AsFd, name: &OsStr) -> io::Result<Option<Stat>> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Sets owner, then mode (a chown clears setuid bits), then times of
/// `name` in `dir` without following it. `mode` is not applied to a
/// symlink (Linux has no symlink modes); `times`: (atime, mtime), `None`
/// keeps them as they are.
pub fn set_meta(
    dir: &impl AsFd,
    name: &OsStr,
    owner: Owner,
    mode: Option<u32>,
    times: Option<&Timestamps>,
) -> io::Result<()> {
    let nofollow = AtFlags::SYMLINK_NOFOLLOW;
    if let Some((uid, gid)) = owner {
        chownat(
            dir,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nofollow,
        )?;
    }
    // chmod follows symlinks (Linux has no lchmod): never on a link, whose
    // target could be anywhere.
    if let Some(mode) = mode
        && lstat_at(dir, name)?
            .is_none_or(|st| FileType::from_raw_mode(st.st_mode as _) != FileType::Symlink)
    {
        chmodat(
            dir,
            name,
            Mode::from_raw_mode(mode & 0o7777),
            AtFlags::empty(),
        )?;
    }
    if let Some(t) = times {
        utimensat(dir, name, t, nofollow)?;
    }
    Ok(())
}

/// Timestamps for "now" (both).
pub fn now() -> Timestamps {
    let now = rustix::fs::Timespec {
        tv_sec: 0,
        tv_nsec: UTIME_NOW,
    };
    Timestamps {
        last_access: now,
        last_modification: now,
    }
}

/// Makes directory `rel` (and its parents) through the mount at `root`,
/// resolving every symlink on the way as the container would, inside the
/// root, so an image's `/app -> /etc` makes `ROOT/etc/...`, never a
/// directory of the board (a `RUN`'s working directory).
pub fn make_dir_in_root(root: &Path, rel: &str) -> io::Result<()> {
    Root::open(root)?.mkdir_all(Path::new(rel), None)?;
    Ok(())
}

/// `rel` as bytes, for messages and comparisons.
pub fn display(rel: &Path) -> String {
    String::from_utf8_lossy(rel.as_os_str().as_bytes()).into_owned()
}
