//! A pod's network namespace with a persistent path, the way `ip netns add`
//! makes one: a short-lived thread `unshare(CLONE_NEWNET)`s, brings `lo` up
//! inside the new namespace (a `SIOCSIFFLAGS` ioctl on a socket opened
//! there) and bind-mounts `/proc/thread-self/ns/net` onto an empty file. The
//! namespace lives as long as that bind mount; containers join it through
//! the path (the OCI spec's namespace `path`). [`PodNetns::remove`] unmounts
//! and unlinks the file, leaving nothing behind.

use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::{UnmountFlags, mount_bind, unmount};

/// Why a network namespace could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("network namespace {path}: already exists")]
    Exists { path: PathBuf },
}

/// A named network namespace pinned by a bind mount at [`PodNetns::path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetns {
    path: PathBuf,
}

impl PodNetns {
    /// Creates the namespace at `dir/name` (`dir` is created if missing),
    /// with `lo` up. On error nothing is left behind.
    pub fn create(dir: &Path, name: &str) -> Result<PodNetns, NetnsError> {
        let path = dir.join(name);
        let err = |op: &'static str| {
            let path = path.clone();
            move |source: io::Error| NetnsError::Io { path, op, source }
        };
        std::fs::create_dir_all(dir).map_err(err("create the directory"))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    NetnsError::Exists { path: path.clone() }
                } else {
                    err("create the mount point")(e)
                }
            })?;
        let target = path.clone();
        let made = std::thread::Builder::new()
            .name("netns-create".into())
            .spawn(move || -> Result<(), (&'static str, io::Error)> {
                unshare_net_and_lo_up()?;
                mount_bind("/proc/thread-self/ns/net", &target)
                    .map_err(|e| ("bind-mount the namespace", e.into()))
            })
            .map_err(err("spawn a thread"))?
            .join()
            .unwrap_or_else(|_| Err(("thread panicked", io::Error::other("panic"))));
        if let Err((op, source)) = made {
            let _ = unmount(&path, UnmountFlags::DETACH);
            let _ = std::fs::remove_file(&path);
            return Err(NetnsError::Io { path, op, source });
        }
        Ok(PodNetns { path })
    }

    /// An existing namespace at `path` (e.g. found after an agent restart).
    pub fn existing(path: impl Into<PathBuf>) -> PodNetns {
        PodNetns { path: path.into() }
    }

    /// The path containers join.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts and unlinks the namespace file. Missing pieces are fine
    /// (idempotent); the kernel frees the namespace once no process is in it.
    pub fn remove(&self) -> Result<(), NetnsError> {
        match unmount(&self.path, UnmountFlags::DETACH) {
            Ok(()) => {}
            // EINVAL: not a mount point; ENOENT: already gone.
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => {}
            Err(e) => {
                return Err(NetnsError::Io {
                    path: self.path.clone(),
                    op: "unmount",
                    source: e.into(),
                });
            }
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetnsError::Io {
                path: self.path.clone(),
                op: "remove the file",
                source: e,
            }),
        }
    }
}

/// Moves the calling thread into a new network namespace and sets `lo` up
/// there. Only for a thread that exits afterwards (it stays in the namespace).
#[allow(unsafe_code)]
fn unshare_net_and_lo_up() -> Result<(), (&'static str, io::Error)> {
    // SAFETY: unshare(CLONE_NEWNET) only changes this thread's network
    // namespace; no file descriptor table or memory is affected.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(("unshare(CLONE_NEWNET)", io::Error::last_os_error()));
    }
    // SAFETY: plain socket(2); the fd is owned and closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(("open a socket in the namespace", io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh, valid descriptor we own.
    let sock: std::os::fd::OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&sock);
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read/write the ifreq we pass, which
    // lives for the duration of the calls; the union member is ifru_flags.
    unsafe {
        if libc::ioctl(raw, libc::SIOCGIFFLAGS as _, &mut req) != 0 {
            return Err(("read the flags of lo", io::Error::last_os_error()));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(raw, libc::SIOCSIFFLAGS as _, &req) != 0 {
            return Err(("set lo up", io::Error::last_os_error()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn mounted(path: &Path) -> bool {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let p = path.to_str().unwrap();
        info.lines().any(|l| l.split(' ').nth(4) == Some(p))
    }

    #[test]
    fn create_has_lo_up_and_remove_leaves_nothing() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let name = format!("netns-test-{}", std::process::id());
        let ns = PodNetns::create(dir.path(), &name).unwrap();
        assert!(mounted(ns.path()));
        // A second create of the same name is refused, the first untouched.
        assert!(matches!(
            PodNetns::create(dir.path(), &name),
            Err(NetnsError::Exists { .. })
        ));
        assert!(mounted(ns.path()));
        // Inside (a thread that joins it): only lo, and lo carries traffic.
        let p = ns.path().to_path_buf();
        let (dev, connected) = std::thread::spawn(move || {
            let f = std::fs::File::open(&p).unwrap();
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&f),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
            let connected = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| std::net::TcpStream::connect(l.local_addr()?))
                .is_ok();
            (dev, connected)
        })
        .join()
        .unwrap();
        let ifaces: Vec<&str> = dev
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(str::trim)
            .collect();
        assert_eq!(ifaces, vec!["lo"]);
        assert!(connected, "lo is not up in the new namespace");
        ns.remove().unwrap();
        assert!(!mounted(ns.path()));
        assert!(!ns.path().exists());
        // Idempotent.
        ns.remove().unwrap();
    }
}
