//! The agent's run dir must be memory-backed: pod records and the
//! runtime's state hold each container's env, Secret values included, and
//! Secrets never touch the SD card. [`ensure`] mounts a tmpfs there unless
//! the directory already is on one (as `/run` is on a normal system).

// statfs field types differ between libcs and architectures.
#![allow(clippy::unnecessary_cast)]

use std::io;
use std::path::Path;

use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};

/// Size cap of the tmpfs [`ensure`] mounts.
const SIZE: &str = "64m";

fn on_tmpfs(dir: &Path) -> io::Result<bool> {
    let fs = rustix::fs::statfs(dir)?;
    Ok(fs.f_type as i64 == libc::TMPFS_MAGIC as i64)
}

/// Creates `dir` and mounts a tmpfs (mode 0700) on it if it is not on one;
/// returns whether it mounted.
pub fn ensure(dir: &Path) -> io::Result<bool> {
    let ctx = |what: &str| {
        let msg = format!("{what} {}", dir.display());
        move |e: io::Error| io::Error::new(e.kind(), format!("{msg}: {e}"))
    };
    std::fs::create_dir_all(dir).map_err(ctx("creating"))?;
    if on_tmpfs(dir).map_err(ctx("statfs of"))? {
        return Ok(false);
    }
    let data = std::ffi::CString::new(format!("mode=0700,size={SIZE}")).expect("no NUL");
    mount(
        "tmpfs",
        dir,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        data.as_c_str(),
    )
    .map_err(|e| ctx("mounting a tmpfs (Secrets must not reach the disk) on")(e.into()))?;
    tracing::info!(dir = %dir.display(), size = SIZE, "mounted a tmpfs for the agent's run dir");
    Ok(true)
}

/// Unmounts the tmpfs on `dir` if `dir` itself is a tmpfs mount point.
pub fn release(dir: &Path) -> io::Result<()> {
    if !dir.exists() || !bramble_images::rootfs::is_mount_point(dir)? || !on_tmpfs(dir)? {
        return Ok(());
    }
    unmount(dir, UnmountFlags::DETACH).map_err(io::Error::from)
}
