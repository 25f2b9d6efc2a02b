//! Container root filesystems stacked from cached layers with overlayfs.
//!
//! A container gets a directory `DIR` holding
//!
//! ```text
//! DIR/rootfs   the overlay mount point (what the container sees)
//! DIR/upper    its writable layer      (absent when read-only)
//! DIR/work     overlayfs' work dir     (absent when read-only)
//! DIR/empty    an empty bottom layer, used only when fewer than two lower
//!              layers would be mounted without an upper layer
//! ```
//!
//! The layers are the unpacked layer directories of [`crate::layers`], given
//! **bottom first** (the order of the image config's `rootfs.diff_ids`);
//! overlayfs wants `lowerdir=top:…:bottom`, which this module builds. Nothing
//! is copied: preparing a rootfs is one mount. Whiteouts in the layers are
//! already in overlayfs form (see [`crate::unpack`]). A writable rootfs is
//! mounted with `redirect_dir=off,metacopy=off` whatever the kernel's
//! defaults, so its upper directory holds every change in full (a renamed
//! directory copied up, a chmodded file's data too): a build step's upper
//! directory is its layer ([`crate::layer_diff`]).
//!
//! The options of a classic `mount(2)` must fit in one page; when many or
//! long layer paths do not, the layers are passed one by one through the new
//! mount API (`fsopen` + `fsconfig("lowerdir+")`, Linux 6.8+).
//!
//! A [`Rootfs`] does not unmount when dropped: a container's rootfs outlives
//! the value (and the agent process). Unmount with [`Rootfs::unmount`] or
//! [`Rootfs::remove`], or after a restart with [`cleanup`].

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, StatxAttributes, StatxFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

/// Longest option string passed to a classic `mount(2)` (one page, with room).
const MAX_MOUNT_DATA: usize = 4000;

/// Rootfs errors, each naming the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(
        "overlayfs is not available on this kernel (\"overlay\" is not in /proc/filesystems); \
         container root filesystems need it"
    )]
    OverlayUnavailable,
    #[error("layer directory {0} does not exist or is not a directory")]
    MissingLayer(PathBuf),
    #[error("{0} is already a mount point")]
    AlreadyMounted(PathBuf),
    #[error("mounting overlayfs at {target} ({layers} lower layers, {method}): {source}{hint}")]
    Mount {
        target: PathBuf,
        layers: usize,
        method: &'static str,
        hint: &'static str,
        source: io::Error,
    },
    #[error("unmounting {target}: {source}")]
    Unmount { target: PathBuf, source: io::Error },
    #[error("rootfs I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether the running kernel has overlayfs (built in or loaded).
pub fn overlay_available() -> bool {
    fs::read_to_string("/proc/filesystems").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
    })
}

/// Whether `path` is the root of a mount.
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    match rustix::fs::statx(
        CWD,
        path,
        AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::empty(),
    ) {
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            return Ok(st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT));
        }
        Ok(_) | Err(Errno::NOSYS) => {}
        Err(e) => return Err(e.into()),
    }
    // Older kernels: a different device than the parent directory.
    use std::os::unix::fs::MetadataExt;
    let me = fs::symlink_metadata(path)?;
    let parent = fs::metadata(path.join(".."))?;
    Ok(me.dev() != parent.dev() || me.ino() == parent.ino())
}

/// Escapes a path for the overlayfs option string (`\`, `:` and `,`).
fn escape_option(p: &Path) -> String {
    let mut out = String::new();
    for ch in p.to_string_lossy().chars() {
        if matches!(ch, '\\' | ':' | ',') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The classic overlayfs option string:
/// `lowerdir=top:…:bottom[,upperdir=…,workdir=…,redirect_dir=off,metacopy=off]`.
/// `lowers` are given top first.
pub fn overlay_options(lowers: &[PathBuf], upper_work: Option<(&Path, &Path)>) -> String {
    let mut s = String::from("lowerdir=");
    for (i, l) in lowers.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&escape_option(l));
    }
    if let Some((upper, work)) = upper_work {
        s.push_str(",upperdir=");
        s.push_str(&escape_option(upper));
        s.push_str(",workdir=");
        s.push_str(&escape_option(work));
        for (k, v) in SELF_CONTAINED_UPPER {
            s.push_str(&format!(",{k}={v}"));
        }
    }
    s
}

/// Options of a writable overlay that keep every change in its upper
/// directory (no redirects to, no metadata-only copies of, lower files).
const SELF_CONTAINED_UPPER: [(&str, &str); 2] = [("redirect_dir", "off"), ("metacopy", "off")];

/// A prepared (mounted) container root filesystem.
#[derive(Debug, Clone)]
pub struct Rootfs {
    dir: PathBuf,
    read_only: bool,
}

impl Rootfs {
    /// Mounts the layers (`layers`: unpacked layer directories, **bottom
    /// first**) at `dir/rootfs`, creating `dir`. Writable rootfs get
    /// `dir/upper` and `dir/work`; a read-only one (a pod's
    /// `readOnlyRootFilesystem`) has no upper layer and is mounted read-only.
    pub fn prepare<P: AsRef<Path>>(
        layers: &[P],
        dir: impl Into<PathBuf>,
        read_only: bool,
    ) -> Result<Rootfs, RootfsError> {
        let rootfs = Rootfs {
            dir: dir.into(),
            read_only,
        };
        let target = rootfs.path();
        // Top first, absolute (relative paths would depend on the cwd).
        let mut lowers = Vec::with_capacity(layers.len() + 1);
        for l in layers.iter().rev() {
            let l = std::path::absolute(l.as_ref()).map_err(io_err(l.as_ref()))?;
            if !fs::metadata(&l).is_ok_and(|m| m.is_dir()) {
                return Err(RootfsError::MissingLayer(l));
            }
            lowers.push(l);
        }
        fs::create_dir_all(&target).map_err(io_err(&target))?;
        if is_mount_point(&target).map_err(io_err(&target))? {
            return Err(RootfsError::AlreadyMounted(target));
        }
        let (upper, work) = (rootfs.dir.join("upper"), rootfs.dir.join("work"));
        if !read_only {
            for d in [&upper, &work] {
                fs::create_dir_all(d).map_err(io_err(d))?;
            }
        }
        // overlayfs needs two lower layers when there is no upper one, and at
        // least one in any case: pad with an empty bottom layer.
        let min = if read_only { 2 } else { 1 };
        if lowers.len() < min {
            let empty =
                std::path::absolute(rootfs.dir.join("empty")).map_err(io_err(&rootfs.dir))?;
            fs::create_dir_all(&empty).map_err(io_err(&empty))?;
            while lowers.len() < min {
                lowers.push(empty.clone());
            }
        }
        let upper_work = if read_only {
            None
        } else {
            let upper = std::path::absolute(&upper).map_err(io_err(&upper))?;
            let work = std::path::absolute(&work).map_err(io_err(&work))?;
            Some((upper, work))
        };
        mount_overlay(
            &target,
            &lowers,
            upper_work.as_ref().map(|(u, w)| (u.as_path(), w.as_path())),
            read_only,
        )?;
        Ok(rootfs)
    }

    /// A handle on a rootfs prepared earlier (e.g. before an agent restart).
    pub fn existing(dir: impl Into<PathBuf>, read_only: bool) -> Rootfs {
        Rootfs {
            dir: dir.into(),
            read_only,
        }
    }

    /// The container's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The mounted root filesystem (`dir/rootfs`).
    pub fn path(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The writable layer, if any (`dir/upper`).
    pub fn upper(&self) -> Option<PathBuf> {
        (!self.read_only).then(|| self.dir.join("upper"))
    }

    /// Whether it was mounted read-only.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Unmounts the rootfs (lazily if it is busy); fine if not mounted.
    pub fn unmount(&self) -> Result<(), RootfsError> {
        unmount(&self.path())
    }

    /// Unmounts and deletes the container's directory (its writable layer
    /// included).
    pub fn remove(self) -> Result<(), RootfsError> {
        cleanup(&self.dir)
    }
}

/// Unmounts `target` if it is mounted: `EBUSY` falls back to a lazy unmount.
fn unmount(target: &Path) -> Result<(), RootfsError> {
    let err = |source: Errno| RootfsError::Unmount {
        target: target.to_path_buf(),
        source: source.into(),
    };
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Ok(()) | Err(Errno::INVAL | Errno::NOENT) => Ok(()),
        Err(Errno::BUSY) => rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(err),
        Err(e) => Err(err(e)),
    }
}

/// Unmounts `dir/rootfs` if mounted and deletes `dir`: after an agent restart
/// or a failed [`Rootfs::prepare`]. Refuses to delete while still mounted.
pub fn cleanup(dir: &Path) -> Result<(), RootfsError> {
    let target = dir.join("rootfs");
    if fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    if fs::symlink_metadata(&target).is_ok() {
        unmount(&target)?;
        if is_mount_point(&target).map_err(io_err(&target))? {
            return Err(RootfsError::Unmount {
                target,
                source: io::Error::other("still mounted after unmount"),
            });
        }
    }
    fs::remove_dir_all(dir).map_err(io_err(dir))
}

fn mount_error(target: &Path, layers: usize, method: &'static str, e: Errno) -> RootfsError {
    if e == Errno::NODEV && !overlay_available() {
        return RootfsError::OverlayUnavailable;
    }
    let hint = match e {
        Errno::PERM => " (mounting needs CAP_SYS_ADMIN: run the agent as root)",
        Errno::INVAL if method == "fsconfig lowerdir+" => {
            " (this kernel lacks `lowerdir+` (Linux 6.8+); use fewer or shorter layer paths)"
        }
        _ => "",
    };
    RootfsError::Mount {
        target: target.to_path_buf(),
        layers,
        method,
        hint,
        source: e.into(),
    }
}

/// Mounts overlayfs at `target`; `lowers` top first.
fn mount_overlay(
    target: &Path,
    lowers: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
    read_only: bool,
) -> Result<(), RootfsError> {
    let data = overlay_options(lowers, upper_work);
    if data.len() <= MAX_MOUNT_DATA {
        let data = CString::new(data).map_err(|e| mount_error_io(target, lowers.len(), e))?;
        let flags = if read_only {
            MountFlags::RDONLY
        } else {
            MountFlags::empty()
        };
        return rustix::mount::mount("overlay", target, "overlay", flags, data.as_c_str())
            .map_err(|e| mount_error(target, lowers.len(), "mount(2)", e));
    }
    mount_overlay_fsconfig(target, lowers, upper_work, read_only)
}

fn mount_error_io(target: &Path, layers: usize, e: impl std::error::Error) -> RootfsError {
    RootfsError::Mount {
        target: target.to_path_buf(),
        layers,
        method: "mount(2)",
        hint: "",
        source: io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
    }
}

/// The new mount API: one `lowerdir+` per layer, no page-size limit.
fn mount_overlay_fsconfig(
    target: &Path,
    lowers: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
    read_only: bool,
) -> Result<(), RootfsError> {
    use rustix::mount::{fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount};
    let n = lowers.len();
    let fs_fd = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| mount_error(target, n, "fsopen", e))?;
    fsconfig_set_string(&fs_fd, "source", "overlay")
        .map_err(|e| mount_error(target, n, "fsconfig source", e))?;
    for l in lowers {
        fsconfig_set_string(&fs_fd, "lowerdir+", l.as_os_str().as_bytes())
            .map_err(|e| mount_error(target, n, "fsconfig lowerdir+", e))?;
    }
    if let Some((upper, work)) = upper_work {
        fsconfig_set_string(&fs_fd, "upperdir", upper.as_os_str().as_bytes())
            .map_err(|e| mount_error(target, n, "fsconfig upperdir", e))?;
        fsconfig_set_string(&fs_fd, "workdir", work.as_os_str().as_bytes())
            .map_err(|e| mount_error(target, n, "fsconfig workdir", e))?;
        for (k, v) in SELF_CONTAINED_UPPER {
            fsconfig_set_string(&fs_fd, k, v)
                .map_err(|e| mount_error(target, n, "fsconfig redirect_dir/metacopy", e))?;
        }
    }
    fsconfig_create(&fs_fd).map_err(|e| mount_error(target, n, "fsconfig create", e))?;
    let attrs = if read_only {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt = fsmount(&fs_fd, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(|e| mount_error(target, n, "fsmount", e))?;
    move_mount(
        &mnt,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| mount_error(target, n, "move_mount", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_top_first_and_escaped() {
        let lowers = vec![PathBuf::from("/l/top"), PathBuf::from("/l/a:b,c")];
        assert_eq!(
            overlay_options(&lowers, None),
            r"lowerdir=/l/top:/l/a\:b\,c"
        );
        assert_eq!(
            overlay_options(&lowers[..1], Some((Path::new("/u"), Path::new("/w")))),
            "lowerdir=/l/top,upperdir=/u,workdir=/w,redirect_dir=off,metacopy=off"
        );
    }

    #[test]
    fn overlay_is_detected() {
        // Built in on the machines this project runs on (FINDINGS.md).
        assert!(overlay_available());
    }
}
