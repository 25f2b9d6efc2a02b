//! [`ContainerConfig`] -> OCI runtime spec (`config.json`), the way runc's
//! and Docker's defaults shape a container:
//!
//! - namespaces: pid and mount (new); ipc, uts and network (new, or the
//!   pod's joined by path: then the hostname is the pod's, not set here);
//! - capabilities: Docker's default set minus the config's drops plus its
//!   adds (Kubernetes' `securityContext.capabilities`, `ALL` allowed in
//!   both) as bounding/effective/permitted, no new privileges;
//! - mounts: `/proc`, `/dev` (tmpfs), `/dev/pts`, `/dev/shm`, `/dev/mqueue`,
//!   `/sys` (read-only), then the config's volumes;
//! - masked and read-only `/proc` and `/sys` paths;
//! - device cgroup: deny all first (an empty list would allow every
//!   device), then the config's devices (the standard `/dev/null`,
//!   `/dev/zero`, ... are added by libcgroups on cgroup v1 and by
//!   `devices_bpf::container_rules` for the eBPF filter on v2);
//! - memory, CPU quota and pids limits; `RLIMIT_NOFILE` only;
//! - seccomp (`linux.seccomp`): Docker's default profile for the
//!   container's capabilities unless the config says otherwise
//!   (`runtime::seccomp`).
//!
//! `privileged` (as Docker and containerd do it): every capability, every
//! device allowed in the device cgroup, no masked or read-only paths, `/sys`
//! read-write, new privileges allowed, no seccomp filter. Host device nodes are not added to
//! `/dev` (only the config's devices are).
//!
//! Pure except for one cached read of the agent's own bounding set
//! (`/proc/self/status`: capabilities the host cannot give are left out of
//! `ALL`), so it is unit-tested directly.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Capability, Linux, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDevice,
    LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResources, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::{ContainerConfig, DeviceKind, MountSpec, RuntimeError};

/// The CFS period CPU limits are expressed over (100 ms, as Kubernetes).
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel accepts (1 ms).
pub const MIN_CPU_QUOTA_US: i64 = 1_000;
/// `RLIMIT_NOFILE` soft limit of container processes.
pub const NOFILE_SOFT: u64 = 1024;
/// `RLIMIT_NOFILE` hard limit of container processes, when the agent's own
/// hard limit allows it (raising a hard limit needs `CAP_SYS_RESOURCE`,
/// which some hosts withhold even from root).
pub const NOFILE_HARD: u64 = 524_288;

/// Docker's (and containerd's) default capability set.
pub const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability, in the kernel's numbering (`CAP_CHOWN` is 0,
/// `CAP_CHECKPOINT_RESTORE` 40): bit `i` of `/proc/<pid>/status`'s `CapEff`
/// is `ALL_CAPABILITIES[i]`.
pub const ALL_CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// The kernel's number of capability `cap` (its bit in `CapEff`).
pub fn capability_number(cap: Capability) -> u32 {
    ALL_CAPABILITIES
        .iter()
        .position(|c| *c == cap)
        .expect("ALL_CAPABILITIES lists every capability") as u32
}

/// The capabilities a container can be given on this host: those in the
/// agent's own bounding set (`CapBnd` of `/proc/self/status`, read once),
/// as a mask by capability number. The kernel may know fewer than
/// [`ALL_CAPABILITIES`] (`CAP_BPF` is Linux 5.8), and a host may withhold
/// some even from root (e.g. `CAP_SYS_RESOURCE`); asking for one of those
/// fails the create, so `ALL` means these.
pub fn host_capabilities() -> u64 {
    static MASK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapBnd:"))
                    .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            })
            .unwrap_or((1u64 << ALL_CAPABILITIES.len()) - 1)
    })
}

/// Parses a Kubernetes capability name: `NET_ADMIN`, `CAP_NET_ADMIN`,
/// `net_admin`. `None` for `ALL` is not handled here.
fn parse_capability(name: &str) -> Option<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    bare.parse::<Capability>().ok()
}

fn is_all(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("ALL")
}

/// Why a pod's `securityContext.capabilities` cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error(
        "unknown capability {name:?} in securityContext.capabilities.{field}; \
         use a Linux capability name such as NET_ADMIN or SYS_TIME \
         (the CAP_ prefix is optional), or ALL"
    )]
    Unknown { name: String, field: &'static str },
    #[error(
        "capability {0} in securityContext.capabilities.add is not available on \
         this node (the agent's own bounding set lacks it, so no container can have it); \
         remove it from the pod, or run the agent with it"
    )]
    Unavailable(Capability),
}

/// The container's capability set (bounding = effective = permitted):
/// privileged → every capability; otherwise Docker's default set, minus
/// `drop` (`ALL` drops all), plus `add` (`ALL` adds all), so an add wins
/// over a drop of the same capability. `available` is the mask of what the
/// host can give ([`host_capabilities`]): `ALL` and the default set mean
/// those of them available; a capability added by name that is not
/// available, or an unknown name, is an error naming it.
pub fn effective_capabilities(
    add: &[String],
    drop: &[String],
    privileged: bool,
    available: u64,
) -> Result<HashSet<Capability>, CapabilityError> {
    let parse_all = |list: &[String], field: &'static str| {
        let mut all = false;
        let mut caps = Vec::new();
        for name in list {
            if is_all(name) {
                all = true;
            } else {
                caps.push(
                    parse_capability(name).ok_or_else(|| CapabilityError::Unknown {
                        name: name.clone(),
                        field,
                    })?,
                );
            }
        }
        Ok((all, caps))
    };
    let is_available = |c: &Capability| available & (1u64 << capability_number(*c)) != 0;
    let (add_all, add) = parse_all(add, "add")?;
    let (drop_all, drop) = parse_all(drop, "drop")?;
    if !privileged
        && !add_all
        && let Some(missing) = add.iter().find(|c| !is_available(c))
    {
        return Err(CapabilityError::Unavailable(*missing));
    }
    let mut set: HashSet<Capability> = if privileged || add_all {
        ALL_CAPABILITIES.iter().copied().collect()
    } else {
        let mut set: HashSet<Capability> = if drop_all {
            HashSet::new()
        } else {
            DEFAULT_CAPABILITIES.iter().copied().collect()
        };
        for c in &drop {
            set.remove(c);
        }
        set.extend(add);
        set
    };
    set.retain(is_available);
    Ok(set)
}

/// `/proc` and `/sys` paths hidden from containers (runc's list).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// `/proc` paths mounted read-only (runc's list).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The CFS quota (µs per [`CPU_PERIOD_US`]) for a limit in millicores.
pub fn cpu_quota_us(millis: u64) -> i64 {
    let quota = millis.saturating_mul(CPU_PERIOD_US) / 1000;
    i64::try_from(quota)
        .unwrap_or(i64::MAX)
        .max(MIN_CPU_QUOTA_US)
}

/// Builds the OCI spec for `config`, its cgroup at `cgroups_path` (absolute,
/// e.g. `/bramble/<id>`); `nofile_hard_max` caps the `RLIMIT_NOFILE` hard
/// limit (pass the agent's own hard limit).
pub fn build_spec(
    config: &ContainerConfig,
    cgroups_path: &str,
    nofile_hard_max: u64,
) -> Result<Spec, RuntimeError> {
    config.validate()?;
    let caps = effective_capabilities(
        &config.capabilities_add,
        &config.capabilities_drop,
        config.privileged,
        host_capabilities(),
    )
    .map_err(|e| RuntimeError::InvalidConfig {
        id: config.id.clone(),
        reason: e.to_string(),
    })?;
    build(config, caps, cgroups_path, nofile_hard_max).map_err(|e| RuntimeError::InvalidConfig {
        id: config.id.clone(),
        reason: format!("building the OCI spec: {e}"),
    })
}

fn build(
    config: &ContainerConfig,
    caps: HashSet<Capability>,
    cgroups_path: &str,
    nofile_hard_max: u64,
) -> Result<Spec, OciSpecError> {
    let seccomp = config.seccomp.section(config.privileged, &caps);
    let process = process(config, caps, nofile_hard_max)?;
    let root = RootBuilder::default()
        .path(config.rootfs.clone())
        .readonly(config.read_only_root)
        .build()?;
    let mut linux = linux(config, cgroups_path)?;
    linux.set_seccomp(seccomp);
    let mut mounts = default_mounts(config.privileged)?;
    for m in &config.mounts {
        mounts.push(volume_mount(m)?);
    }
    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(root)
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()?;
    // A joined UTS namespace keeps the hostname its owner set.
    spec.set_hostname(match config.uts_path {
        Some(_) => None,
        None => Some(config.hostname.clone().unwrap_or_else(|| config.id.clone())),
    });
    Ok(spec)
}

/// The container's process: argv, env, cwd, user, capabilities `caps`,
/// `RLIMIT_NOFILE` (its hard limit at most `nofile_hard_max`).
fn process(
    config: &ContainerConfig,
    caps: HashSet<Capability>,
    nofile_hard_max: u64,
) -> Result<Process, OciSpecError> {
    let nofile_hard = NOFILE_HARD.min(nofile_hard_max);
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()?;
    let mut user = UserBuilder::default().uid(config.uid).gid(config.gid);
    if !config.additional_gids.is_empty() {
        user = user.additional_gids(config.additional_gids.clone());
    }
    ProcessBuilder::default()
        .terminal(false)
        .user(user.build()?)
        .args(config.argv.clone())
        .env(config.env.clone())
        .cwd(config.cwd.clone())
        .capabilities(capabilities)
        // privileged implies allowPrivilegeEscalation (setuid binaries work).
        .no_new_privileges(!config.privileged)
        .rlimits(vec![
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(NOFILE_SOFT.min(nofile_hard))
                .hard(nofile_hard)
                .build()?,
        ])
        .build()
}

/// The `linux` section without seccomp: namespaces, cgroup and its
/// resources, devices, masked and read-only paths.
fn linux(config: &ContainerConfig, cgroups_path: &str) -> Result<Linux, OciSpecError> {
    let mut namespaces = Vec::new();
    for (typ, path) in [
        (LinuxNamespaceType::Pid, None),
        (LinuxNamespaceType::Mount, None),
        (LinuxNamespaceType::Ipc, config.ipc_path.as_ref()),
        (LinuxNamespaceType::Uts, config.uts_path.as_ref()),
        (LinuxNamespaceType::Network, config.netns_path.as_ref()),
    ] {
        let mut ns = LinuxNamespaceBuilder::default().typ(typ);
        if let Some(path) = path {
            ns = ns.path(path.clone());
        }
        namespaces.push(ns.build()?);
    }
    let (device_rules, devices) = devices(config)?;
    let (masked, readonly): (&[&str], &[&str]) = if config.privileged {
        (&[], &[])
    } else {
        (MASKED_PATHS, READONLY_PATHS)
    };
    LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(cgroups_path))
        .resources(resources(config, device_rules)?)
        .devices(devices)
        .masked_paths(masked.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .readonly_paths(readonly.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
}

/// The device cgroup rules and the device nodes of the config's devices.
fn devices(
    config: &ContainerConfig,
) -> Result<(Vec<LinuxDeviceCgroup>, Vec<LinuxDevice>), OciSpecError> {
    // Deny every device first: an empty list means "allow all". Privileged:
    // allow every device (still explicit, as containerd does).
    let mut device_rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(config.privileged)
            .access("rwm")
            .build()?,
    ];
    let mut devices = Vec::new();
    for d in &config.devices {
        let typ = match d.kind {
            DeviceKind::Char => LinuxDeviceType::C,
            DeviceKind::Block => LinuxDeviceType::B,
        };
        device_rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(typ)
                .major(d.major)
                .minor(d.minor)
                .access(d.access.clone())
                .build()?,
        );
        devices.push(
            LinuxDeviceBuilder::default()
                .path(PathBuf::from(&d.path))
                .typ(typ)
                .major(d.major)
                .minor(d.minor)
                .file_mode(d.file_mode)
                .uid(0u32)
                .gid(0u32)
                .build()?,
        );
    }
    Ok((device_rules, devices))
}

/// The cgroup resources: `device_rules` and the memory, CPU and pids limits.
fn resources(
    config: &ContainerConfig,
    device_rules: Vec<LinuxDeviceCgroup>,
) -> Result<LinuxResources, OciSpecError> {
    let mut resources = LinuxResourcesBuilder::default().devices(device_rules);
    if let Some(limit) = config.memory_limit_bytes {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        resources = resources.memory(LinuxMemoryBuilder::default().limit(limit).build()?);
    }
    if let Some(millis) = config.cpu_limit_millis {
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .quota(cpu_quota_us(millis))
                .period(CPU_PERIOD_US)
                .build()?,
        );
    }
    if let Some(pids) = config.pids_limit {
        let pids = i64::try_from(pids).unwrap_or(i64::MAX);
        resources = resources.pids(LinuxPidsBuilder::default().limit(pids).build()?);
    }
    resources.build()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
}

/// The standard mounts every container gets; `/sys` is read-only unless
/// `privileged`.
fn default_mounts(privileged: bool) -> Result<Vec<Mount>, OciSpecError> {
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &[
                "nosuid",
                "noexec",
                "nodev",
                if privileged { "rw" } else { "ro" },
            ],
        )?,
    ])
}

fn volume_mount(m: &MountSpec) -> Result<Mount, OciSpecError> {
    match m {
        MountSpec::Tmpfs {
            destination,
            size_bytes,
            mode,
            read_only,
        } => {
            let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
            if let Some(size) = size_bytes {
                options.push(format!("size={size}"));
            }
            if let Some(mode) = mode {
                options.push(format!("mode={mode:o}"));
            }
            if *read_only {
                options.push("ro".into());
            }
            MountBuilder::default()
                .destination(destination)
                .typ("tmpfs")
                .source("tmpfs")
                .options(options)
                .build()
        }
        MountSpec::Bind {
            source,
            destination,
            read_only,
        } => {
            let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
            options.push(if *read_only { "ro" } else { "rw" }.to_string());
            MountBuilder::default()
                .destination(destination)
                .typ("bind")
                .source(source.clone())
                .options(options)
                .build()
        }
    }
}

#[cfg(test)]
mod tests;
