//! A pod's namespaces with persistent paths, the way `ip netns add` makes
//! one: a short-lived thread `unshare(CLONE_NEWNET | CLONE_NEWIPC |
//! CLONE_NEWUTS)`s, brings `lo` up inside the new network namespace (a
//! `SIOCSIFFLAGS` ioctl on a socket opened there), sets the pod's hostname in
//! the new UTS namespace and bind-mounts `/proc/thread-self/ns/{net,ipc,uts}`
//! onto empty files: `<dir>/<name>` (network), `<dir>/<name>:ipc` and
//! `<dir>/<name>:uts` (`:` never occurs in a pod id). The namespaces live as
//! long as those bind mounts; every container of the pod joins all three
//! through the paths (the OCI spec's namespace `path`), so they share
//! localhost, System V IPC / POSIX message queues, and the hostname, as in a
//! Kubernetes pod. [`PodNetns::remove`] unmounts and unlinks the files,
//! leaving nothing behind. [`in_network`] runs a function (a probe's or a
//! port-forward's connect) on a short-lived thread inside a pod's network
//! namespace; a socket made there stays in that namespace.

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::mount::{UnmountFlags, mount_bind, unmount};

/// Why a network namespace could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("pod namespace {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "pod namespace {path}: already exists (a pod of this name is running, or its namespaces were left behind: unmount and remove the file)"
    )]
    Exists { path: PathBuf },
    #[error("pod namespace {path}: the thread working inside it panicked")]
    Panicked { path: PathBuf },
}

/// A pod's network, IPC and UTS namespaces, pinned by bind mounts at
/// [`PodNetns::path`], [`PodNetns::ipc_path`] and [`PodNetns::uts_path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetns {
    path: PathBuf,
}

/// The file of the namespace of kind `kind` next to the network one.
fn sibling(net: &Path, kind: &str) -> PathBuf {
    let mut name = net.file_name().unwrap_or_default().to_os_string();
    name.push(":");
    name.push(kind);
    net.with_file_name(name)
}

impl PodNetns {
    /// Creates the namespaces at `dir/name` (network, `lo` up),
    /// `dir/name:ipc` and `dir/name:uts` (hostname `hostname`); `dir` is
    /// created if missing. On error nothing is left behind.
    pub fn create(dir: &Path, name: &str, hostname: &str) -> Result<PodNetns, NetnsError> {
        let ns = PodNetns {
            path: dir.join(name),
        };
        let err = |path: &Path, op: &'static str| {
            let path = path.to_path_buf();
            move |source: io::Error| NetnsError::Io { path, op, source }
        };
        std::fs::create_dir_all(dir).map_err(err(&ns.path, "create the directory"))?;
        let files = ns.files();
        for (i, f) in files.iter().enumerate() {
            if let Err(e) = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(f)
            {
                // Only the files made here are ours to remove.
                for made in &files[..i] {
                    let _ = std::fs::remove_file(made);
                }
                return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                    NetnsError::Exists { path: f.clone() }
                } else {
                    err(f, "create the mount point")(e)
                });
            }
        }
        let targets = files.clone();
        let hostname = hostname.to_string();
        let made = std::thread::Builder::new()
            .name("netns-create".into())
            .spawn(move || -> Result<(), (PathBuf, &'static str, io::Error)> {
                let net = targets[0].clone();
                unshare_and_lo_up(&hostname).map_err(|(op, e)| (net, op, e))?;
                for (kind, target) in ["net", "ipc", "uts"].iter().zip(&targets) {
                    mount_bind(format!("/proc/thread-self/ns/{kind}"), target)
                        .map_err(|e| (target.clone(), "bind-mount the namespace", e.into()))?;
                }
                Ok(())
            })
            .map_err(err(&ns.path, "spawn a thread"))?
            .join()
            .unwrap_or_else(|_| {
                Err((
                    ns.path.clone(),
                    "thread panicked",
                    io::Error::other("panic"),
                ))
            });
        if let Err((path, op, source)) = made {
            if let Err(e) = ns.remove() {
                tracing::warn!(error = %e, "removing the namespaces of a failed create");
            }
            return Err(NetnsError::Io { path, op, source });
        }
        Ok(ns)
    }

    /// Existing namespaces whose network one is at `path` (e.g. found after
    /// an agent restart).
    pub fn existing(path: impl Into<PathBuf>) -> PodNetns {
        PodNetns { path: path.into() }
    }

    /// The network namespace containers join.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The IPC namespace containers join.
    pub fn ipc_path(&self) -> PathBuf {
        sibling(&self.path, "ipc")
    }

    /// The UTS namespace (hostname) containers join.
    pub fn uts_path(&self) -> PathBuf {
        sibling(&self.path, "uts")
    }

    fn files(&self) -> Vec<PathBuf> {
        vec![self.path.clone(), self.ipc_path(), self.uts_path()]
    }

    /// Unmounts and unlinks the namespace files. Missing pieces are fine
    /// (idempotent); the kernel frees a namespace once no process is in it.
    /// Every file is attempted; the first error is returned.
    pub fn remove(&self) -> Result<(), NetnsError> {
        let mut first = Ok(());
        for f in self.files() {
            if let Err(e) = remove_pinned(&f)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}

/// Unmounts and unlinks one namespace file.
fn remove_pinned(path: &Path) -> Result<(), NetnsError> {
    match unmount(path, UnmountFlags::DETACH) {
        Ok(()) => {}
        // EINVAL: not a mount point; ENOENT: already gone.
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => {}
        Err(e) => {
            return Err(NetnsError::Io {
                path: path.to_path_buf(),
                op: "unmount",
                source: e.into(),
            });
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetnsError::Io {
            path: path.to_path_buf(),
            op: "remove the file",
            source: e,
        }),
    }
}

/// Moves the calling thread into new network, IPC and UTS namespaces, sets
/// `hostname` and `lo` up there. Only for a thread that exits afterwards (it
/// stays in the namespaces).
#[allow(unsafe_code)]
fn unshare_and_lo_up(hostname: &str) -> Result<(), (&'static str, io::Error)> {
    // SAFETY: unshare of these namespaces only changes this thread's
    // namespaces; no file descriptor table or memory is affected.
    if unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) } != 0 {
        return Err((
            "unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: sethostname reads `len` bytes from a live buffer.
    if unsafe { libc::sethostname(hostname.as_ptr().cast(), hostname.len()) } != 0 {
        return Err(("set the hostname", io::Error::last_os_error()));
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

/// Runs `f` on a short-lived thread moved into the network namespace at
/// `path` (the thread exits afterwards, so no other thread's namespace
/// changes); why not, if the namespace cannot be entered.
pub fn in_network<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    let io = |op, source| NetnsError::Io {
        path: path.to_path_buf(),
        op,
        source,
    };
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new()
            .name("in-netns".into())
            .spawn_scoped(s, || {
                let ns = std::fs::File::open(path).map_err(|e| io("opening", e))?;
                rustix::thread::move_into_link_name_space(
                    ns.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|e| io("entering (setns)", e.into()))?;
                Ok(f())
            })
            .map_err(|e| io("spawning a thread to enter it", e))?;
        spawned.join().map_err(|_| NetnsError::Panicked {
            path: path.to_path_buf(),
        })?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounted(path: &Path) -> bool {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let p = path.to_str().unwrap();
        info.lines().any(|l| l.split(' ').nth(4) == Some(p))
    }

    #[test]
    fn create_has_lo_up_and_hostname_and_remove_leaves_nothing() {
        bramble_tests::require_root("network, IPC and UTS namespaces");
        let dir = tempfile::tempdir().unwrap();
        let name = format!("netns-test-{}", std::process::id());
        let ns = PodNetns::create(dir.path(), &name, "pod-host").unwrap();
        for f in [ns.path().to_path_buf(), ns.ipc_path(), ns.uts_path()] {
            assert!(mounted(&f), "{} not mounted", f.display());
        }
        assert_eq!(
            ns.ipc_path(),
            dir.path().join(format!("{name}:ipc")),
            "IPC file next to the network one"
        );
        // A second create of the same name is refused, the first untouched.
        assert!(matches!(
            PodNetns::create(dir.path(), &name, "pod-host"),
            Err(NetnsError::Exists { .. })
        ));
        assert!(mounted(ns.path()) && mounted(&ns.ipc_path()) && mounted(&ns.uts_path()));
        // The UTS namespace has the pod's hostname; the IPC one is new.
        let (uts, ipc) = (ns.uts_path(), ns.ipc_path());
        let (host, ipc_ino) = std::thread::spawn(move || {
            let f = std::fs::File::open(&uts).unwrap();
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&f),
                Some(rustix::thread::LinkNameSpaceType::HostNameAndNISDomainName),
            )
            .unwrap();
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
            let ipc_ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&ipc).unwrap());
            (host, ipc_ino)
        })
        .join()
        .unwrap();
        assert_eq!(host.trim(), "pod-host");
        let own_ipc = std::fs::metadata("/proc/self/ns/ipc").unwrap();
        assert_ne!(ipc_ino, std::os::unix::fs::MetadataExt::ino(&own_ipc));
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
        for f in [ns.path().to_path_buf(), ns.ipc_path(), ns.uts_path()] {
            assert!(!mounted(&f), "{} still mounted", f.display());
            assert!(!f.exists(), "{} left", f.display());
        }
        // Idempotent.
        ns.remove().unwrap();
    }
}

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[test]
    fn a_failed_create_leaves_no_file_or_mount() {
        bramble_tests::require_root("network, IPC and UTS namespaces");
        let dir = tempfile::tempdir().unwrap();
        let name = format!("netns-fail-{}", std::process::id());
        // sethostname refuses names longer than 64 bytes.
        let err = PodNetns::create(dir.path(), &name, &"h".repeat(100)).unwrap_err();
        assert!(err.to_string().contains("hostname"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!info.contains(&name), "{info}");
    }
}
