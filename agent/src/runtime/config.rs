//! What one container is to be ([`ContainerConfig`]): process, rootfs,
//! namespaces to join, mounts ([`MountSpec`]), devices ([`DeviceSpec`]),
//! limits and security settings, checked by [`ContainerConfig::validate`]
//! before any backend sees it. Plain data, serialised into the pod record.

use std::path::PathBuf;

use super::{RuntimeError, seccomp};

/// Everything a backend needs to run one container. The rootfs is already
/// prepared (see `bramble_images::Rootfs`); process settings are already
/// merged with the image config (see `bramble_images::process_defaults`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerConfig {
    /// Unique on the node; `[A-Za-z0-9_.-]`, at most [`MAX_ID_LEN`] bytes.
    pub id: String,
    /// The mounted root filesystem (absolute).
    pub rootfs: PathBuf,
    /// Executable and arguments; never empty.
    pub argv: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    /// Absolute working directory inside the container.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    /// Extra groups of the process.
    pub additional_gids: Vec<u32>,
    /// Set in a new UTS namespace; `None` keeps the id.
    pub hostname: Option<String>,
    /// Memory limit (cgroup `memory.limit_in_bytes` / `memory.max`).
    pub memory_limit_bytes: Option<u64>,
    /// CPU limit in millicores (CFS quota over a 100 ms period).
    pub cpu_limit_millis: Option<u64>,
    /// Maximum number of processes (cgroup pids controller).
    pub pids_limit: Option<u64>,
    /// Mount the root filesystem read-only.
    pub read_only_root: bool,
    /// File the container's stdout goes to (appended; created if missing).
    pub stdout_path: PathBuf,
    /// File the container's stderr goes to; may equal `stdout_path`.
    pub stderr_path: PathBuf,
    /// Join this network namespace (e.g. `/run/netns/pod-x`, the pod's);
    /// `None` gives the container a new, empty one.
    pub netns_path: Option<PathBuf>,
    /// Join this IPC namespace (the pod's); `None` gives the container a
    /// new one.
    pub ipc_path: Option<PathBuf>,
    /// Join this UTS namespace (the pod's, its hostname already set there:
    /// `hostname` is then not applied); `None` gives the container a new
    /// one with `hostname`.
    pub uts_path: Option<PathBuf>,
    /// Extra mounts (volumes), in order.
    pub mounts: Vec<MountSpec>,
    /// Host devices made visible and allowed in the device cgroup; every
    /// other device except the standard ones (`/dev/null`, ...) is denied.
    pub devices: Vec<DeviceSpec>,
    /// Capabilities added to Docker's default set (Kubernetes names such as
    /// `NET_ADMIN`, with or without `CAP_`; `ALL` adds every one).
    pub capabilities_add: Vec<String>,
    /// Capabilities removed from Docker's default set before the additions
    /// (`ALL` removes every one).
    pub capabilities_drop: Vec<String>,
    /// Kubernetes' `privileged`: every capability, every device allowed in
    /// the device cgroup, no masked or read-only paths, `/sys` read-write.
    pub privileged: bool,
    /// The seccomp filter (ignored when `privileged`: unconfined).
    #[serde(default)]
    pub seccomp: seccomp::SeccompPolicy,
}

/// The longest container id accepted (it names cgroups and directories).
pub const MAX_ID_LEN: usize = 128;

impl ContainerConfig {
    /// A config with the usual defaults: root, `/`, no limits, writable root,
    /// new network namespace, no mounts or devices.
    pub fn new(
        id: impl Into<String>,
        rootfs: impl Into<PathBuf>,
        argv: Vec<String>,
        stdout_path: impl Into<PathBuf>,
        stderr_path: impl Into<PathBuf>,
    ) -> ContainerConfig {
        ContainerConfig {
            id: id.into(),
            rootfs: rootfs.into(),
            argv,
            env: vec![format!("PATH={}", DEFAULT_PATH)],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            hostname: None,
            memory_limit_bytes: None,
            cpu_limit_millis: None,
            pids_limit: None,
            read_only_root: false,
            stdout_path: stdout_path.into(),
            stderr_path: stderr_path.into(),
            netns_path: None,
            ipc_path: None,
            uts_path: None,
            mounts: Vec::new(),
            devices: Vec::new(),
            capabilities_add: Vec::new(),
            capabilities_drop: Vec::new(),
            privileged: false,
            seccomp: seccomp::SeccompPolicy::RuntimeDefault,
        }
    }

    /// Checks what the backends rely on: a usable id, an absolute rootfs and
    /// cwd, a non-empty argv.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let bad = |reason: String| RuntimeError::InvalidConfig {
            id: self.id.clone(),
            reason,
        };
        if self.id.is_empty()
            || self.id.len() > MAX_ID_LEN
            || self.id.starts_with('.')
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return Err(bad(format!(
                "the id must be 1 to {MAX_ID_LEN} characters of [A-Za-z0-9_.-], not starting with '.'"
            )));
        }
        if self.argv.is_empty() || self.argv[0].is_empty() {
            return Err(bad("nothing to run: argv is empty".into()));
        }
        if !self.rootfs.is_absolute() {
            return Err(bad(format!(
                "rootfs {} must be an absolute path",
                self.rootfs.display()
            )));
        }
        if !self.cwd.starts_with('/') {
            return Err(bad(format!(
                "working directory {:?} must be absolute",
                self.cwd
            )));
        }
        for m in &self.mounts {
            if !m.destination().starts_with('/') {
                return Err(bad(format!(
                    "mount destination {:?} must be absolute",
                    m.destination()
                )));
            }
        }
        Ok(())
    }
}

/// `PATH` when nothing else sets it (containerd's and Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A mount inside the container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MountSpec {
    /// A fresh tmpfs (`emptyDir` with `medium: Memory`, secrets).
    Tmpfs {
        destination: String,
        size_bytes: Option<u64>,
        /// Octal permission bits of the mount's root, e.g. `0o1777`.
        mode: Option<u32>,
        read_only: bool,
    },
    /// A bind mount of a host path (`hostPath`, `emptyDir` on disk, config).
    Bind {
        source: PathBuf,
        destination: String,
        read_only: bool,
    },
}

impl MountSpec {
    /// Where the mount appears inside the container.
    pub fn destination(&self) -> &str {
        match self {
            MountSpec::Tmpfs { destination, .. } | MountSpec::Bind { destination, .. } => {
                destination
            }
        }
    }
}

/// Character or block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeviceKind {
    Char,
    Block,
}

/// A host device node given to a container (`/dev/i2c-1`, `/dev/ttyUSB0`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceSpec {
    /// Path of the node inside the container (usually the host path).
    pub path: String,
    pub kind: DeviceKind,
    pub major: i64,
    pub minor: i64,
    /// Permission bits of the node, e.g. `0o660`.
    pub file_mode: u32,
    /// Device-cgroup access: some of `r`, `w`, `m`.
    pub access: String,
}

impl DeviceSpec {
    /// Describes the host device at `path` (stat: type, major/minor, mode),
    /// allowing `rwm`, visible at the same path in the container.
    pub fn from_host(path: &str) -> Result<DeviceSpec, RuntimeError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::metadata(path).map_err(|e| RuntimeError::Io {
            context: format!("stat of device {path}"),
            source: e,
        })?;
        let ft = meta.file_type();
        let kind = if ft.is_char_device() {
            DeviceKind::Char
        } else if ft.is_block_device() {
            DeviceKind::Block
        } else {
            return Err(RuntimeError::InvalidConfig {
                id: String::new(),
                reason: format!("{path} is not a device node"),
            });
        };
        let rdev = meta.rdev();
        Ok(DeviceSpec {
            path: path.to_string(),
            kind,
            major: nix::sys::stat::major(rdev) as i64,
            minor: nix::sys::stat::minor(rdev) as i64,
            file_mode: meta.mode() & 0o7777,
            access: "rwm".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_bad_configs() {
        let ok = ContainerConfig::new("a-1_b.c", "/r", vec!["true".into()], "/l/o", "/l/e");
        ok.validate().unwrap();
        for (mutate, want) in [
            (
                Box::new(|c: &mut ContainerConfig| c.id = "a/b".into()) as Box<dyn Fn(&mut _)>,
                "id",
            ),
            (Box::new(|c: &mut ContainerConfig| c.id = ".x".into()), "id"),
            (
                Box::new(|c: &mut ContainerConfig| c.id = "x".repeat(129)),
                "id",
            ),
            (Box::new(|c: &mut ContainerConfig| c.argv.clear()), "argv"),
            (
                Box::new(|c: &mut ContainerConfig| c.rootfs = "r".into()),
                "rootfs",
            ),
            (
                Box::new(|c: &mut ContainerConfig| c.cwd = "tmp".into()),
                "working directory",
            ),
        ] {
            let mut c = ok.clone();
            mutate(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
