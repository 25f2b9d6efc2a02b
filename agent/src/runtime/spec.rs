//! [`ContainerConfig`] -> OCI runtime spec (`config.json`), the way runc's
//! and Docker's defaults shape a container:
//!
//! - namespaces: pid, mount, ipc, uts, and network (new, or the pod's joined
//!   by path);
//! - capabilities: Docker's default set (bounding/effective/permitted), no
//!   new privileges;
//! - mounts: `/proc`, `/dev` (tmpfs), `/dev/pts`, `/dev/shm`, `/dev/mqueue`,
//!   `/sys` (read-only), then the config's volumes;
//! - masked and read-only `/proc` and `/sys` paths;
//! - device cgroup: deny all first (an empty list would allow every
//!   device), then the config's devices (libcgroups adds the standard
//!   `/dev/null`, `/dev/zero`, ... itself);
//! - memory, CPU quota and pids limits; `RLIMIT_NOFILE` only.
//!
//! Pure: no file system access, so it is unit-tested directly.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceBuilder,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
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
    build(config, cgroups_path, nofile_hard_max).map_err(|e| RuntimeError::InvalidConfig {
        id: config.id.clone(),
        reason: format!("building the OCI spec: {e}"),
    })
}

fn build(
    config: &ContainerConfig,
    cgroups_path: &str,
    nofile_hard_max: u64,
) -> Result<Spec, OciSpecError> {
    let nofile_hard = NOFILE_HARD.min(nofile_hard_max);
    let caps: HashSet<Capability> = DEFAULT_CAPABILITIES.iter().copied().collect();
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
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user.build()?)
        .args(config.argv.clone())
        .env(config.env.clone())
        .cwd(config.cwd.clone())
        .capabilities(capabilities)
        .no_new_privileges(true)
        .rlimits(vec![
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(NOFILE_SOFT.min(nofile_hard))
                .hard(nofile_hard)
                .build()?,
        ])
        .build()?;

    let root = RootBuilder::default()
        .path(config.rootfs.clone())
        .readonly(config.read_only_root)
        .build()?;

    let mut namespaces = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(typ).build()?);
    }
    let mut net = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    if let Some(path) = &config.netns_path {
        net = net.path(path.clone());
    }
    namespaces.push(net.build()?);

    // Deny every device first: an empty list means "allow all".
    let mut device_rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
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

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(cgroups_path))
        .resources(resources.build()?)
        .devices(devices)
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .build()?;

    let mut mounts = default_mounts()?;
    for m in &config.mounts {
        mounts.push(volume_mount(m)?);
    }

    SpecBuilder::default()
        .version("1.0.2")
        .root(root)
        .process(process)
        .hostname(config.hostname.clone().unwrap_or_else(|| config.id.clone()))
        .mounts(mounts)
        .linux(linux)
        .build()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
}

/// The standard mounts every container gets.
fn default_mounts() -> Result<Vec<Mount>, OciSpecError> {
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
            &["nosuid", "noexec", "nodev", "ro"],
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
mod tests {
    use super::*;
    use crate::runtime::DeviceSpec;
    use oci_spec::runtime::LinuxNamespace;
    use std::path::Path;

    fn config() -> ContainerConfig {
        ContainerConfig::new(
            "c1",
            "/var/lib/bramble/c1/rootfs",
            vec!["sh".into(), "-c".into(), "echo hi".into()],
            "/logs/out",
            "/logs/err",
        )
    }

    fn namespaces(spec: &Spec) -> Vec<LinuxNamespace> {
        spec.linux().as_ref().unwrap().namespaces().clone().unwrap()
    }

    #[test]
    fn process_and_root_come_from_the_config() {
        let mut c = config();
        c.env = vec!["PATH=/bin".into(), "A=b".into()];
        c.cwd = "/work".into();
        c.uid = 1000;
        c.gid = 100;
        c.additional_gids = vec![5];
        c.read_only_root = true;
        c.hostname = Some("web".into());
        let spec = build_spec(&c, "/bramble/c1", u64::MAX).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &c.argv);
        assert_eq!(p.env().as_ref().unwrap(), &c.env);
        assert_eq!(p.cwd(), Path::new("/work"));
        assert_eq!(p.user().uid(), 1000);
        assert_eq!(p.user().gid(), 100);
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &vec![5]);
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.no_new_privileges(), Some(true));
        let rl = p.rlimits().as_ref().unwrap();
        assert_eq!(rl.len(), 1);
        assert_eq!(rl[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((rl[0].soft(), rl[0].hard()), (NOFILE_SOFT, NOFILE_HARD));
        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path(), Path::new("/var/lib/bramble/c1/rootfs"));
        assert_eq!(root.readonly(), Some(true));
        assert_eq!(spec.hostname().as_deref(), Some("web"));
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/bramble/c1"))
        );
    }

    #[test]
    fn nofile_hard_limit_never_exceeds_the_agents() {
        let spec = build_spec(&config(), "/b/c1", 20_000).unwrap();
        let rl = &spec.process().as_ref().unwrap().rlimits().clone().unwrap()[0];
        assert_eq!((rl.soft(), rl.hard()), (1024, 20_000));
        let spec = build_spec(&config(), "/b/c1", 512).unwrap();
        let rl = &spec.process().as_ref().unwrap().rlimits().clone().unwrap()[0];
        assert_eq!((rl.soft(), rl.hard()), (512, 512));
    }

    #[test]
    fn hostname_defaults_to_the_id() {
        let spec = build_spec(&config(), "/bramble/c1", u64::MAX).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("c1"));
    }

    #[test]
    fn capabilities_are_dockers_default_set() {
        let spec = build_spec(&config(), "/b/c1", u64::MAX).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        let want: HashSet<Capability> = DEFAULT_CAPABILITIES.iter().copied().collect();
        assert_eq!(caps.bounding().as_ref().unwrap(), &want);
        assert_eq!(caps.effective().as_ref().unwrap(), &want);
        assert_eq!(caps.permitted().as_ref().unwrap(), &want);
        assert!(caps.ambient().as_ref().unwrap().is_empty());
        assert!(!want.contains(&Capability::SysAdmin));
        assert!(!want.contains(&Capability::NetAdmin));
        assert_eq!(want.len(), 14);
    }

    #[test]
    fn new_namespaces_or_join_the_pods_netns() {
        let spec = build_spec(&config(), "/b/c1", u64::MAX).unwrap();
        let ns = namespaces(&spec);
        let types: Vec<_> = ns.iter().map(|n| n.typ()).collect();
        assert_eq!(
            types,
            vec![
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Network
            ]
        );
        assert!(ns.iter().all(|n| n.path().is_none()));

        let mut c = config();
        c.netns_path = Some("/run/netns/pod-a".into());
        let ns = namespaces(&build_spec(&c, "/b/c1", u64::MAX).unwrap());
        let net = ns
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(net.path().as_deref(), Some(Path::new("/run/netns/pod-a")));
    }

    #[test]
    fn standard_mounts_then_volumes() {
        let mut c = config();
        c.mounts = vec![
            MountSpec::Tmpfs {
                destination: "/secrets".into(),
                size_bytes: Some(1 << 20),
                mode: Some(0o700),
                read_only: true,
            },
            MountSpec::Bind {
                source: "/srv/data".into(),
                destination: "/data".into(),
                read_only: false,
            },
        ];
        let spec = build_spec(&c, "/b/c1", u64::MAX).unwrap();
        let mounts = spec.mounts().as_ref().unwrap();
        let dests: Vec<_> = mounts
            .iter()
            .map(|m| m.destination().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/secrets",
                "/data"
            ]
        );
        let sys = &mounts[5];
        assert!(sys.options().as_ref().unwrap().contains(&"ro".to_string()));
        let secrets = &mounts[6];
        assert_eq!(secrets.typ().as_deref(), Some("tmpfs"));
        assert_eq!(
            secrets.options().as_ref().unwrap(),
            &["nosuid", "nodev", "size=1048576", "mode=700", "ro"]
        );
        let data = &mounts[7];
        assert_eq!(data.typ().as_deref(), Some("bind"));
        assert_eq!(data.source().as_deref(), Some(Path::new("/srv/data")));
        assert_eq!(
            data.options().as_ref().unwrap(),
            &["rbind", "rprivate", "rw"]
        );
    }

    #[test]
    fn masked_and_readonly_paths() {
        let spec = build_spec(&config(), "/b/c1", u64::MAX).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let masked = linux.masked_paths().as_ref().unwrap();
        assert!(masked.contains(&"/proc/kcore".to_string()));
        assert!(masked.contains(&"/sys/firmware".to_string()));
        let ro = linux.readonly_paths().as_ref().unwrap();
        assert!(ro.contains(&"/proc/sys".to_string()));
        assert!(ro.contains(&"/proc/sysrq-trigger".to_string()));
    }

    #[test]
    fn devices_deny_all_first_then_allowed() {
        let spec = build_spec(&config(), "/b/c1", u64::MAX).unwrap();
        let res = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        let rules = res.devices().clone().unwrap();
        assert_eq!(rules.len(), 1);
        assert!(!rules[0].allow());
        assert_eq!(rules[0].access().as_deref(), Some("rwm"));
        assert_eq!(rules[0].typ(), None);

        let mut c = config();
        c.devices = vec![DeviceSpec {
            path: "/dev/i2c-1".into(),
            kind: DeviceKind::Char,
            major: 89,
            minor: 1,
            file_mode: 0o660,
            access: "rw".into(),
        }];
        let spec = build_spec(&c, "/b/c1", u64::MAX).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let rules = linux
            .resources()
            .clone()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert_eq!(rules.len(), 2);
        assert!(!rules[0].allow());
        assert!(rules[1].allow());
        assert_eq!(rules[1].typ(), Some(LinuxDeviceType::C));
        assert_eq!((rules[1].major(), rules[1].minor()), (Some(89), Some(1)));
        assert_eq!(rules[1].access().as_deref(), Some("rw"));
        let nodes = linux.devices().clone().unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].path(), Path::new("/dev/i2c-1"));
        assert_eq!(nodes[0].file_mode(), Some(0o660));
    }

    #[test]
    fn resource_limits() {
        let spec = build_spec(&config(), "/b/c1", u64::MAX).unwrap();
        let res = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        assert!(res.memory().is_none() && res.cpu().is_none() && res.pids().is_none());

        let mut c = config();
        c.memory_limit_bytes = Some(16 << 20);
        c.cpu_limit_millis = Some(250);
        c.pids_limit = Some(64);
        let spec = build_spec(&c, "/b/c1", u64::MAX).unwrap();
        let res = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        assert_eq!(res.memory().unwrap().limit(), Some(16 << 20));
        let cpu = res.cpu().clone().unwrap();
        assert_eq!(cpu.quota(), Some(25_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(res.pids().unwrap().limit(), 64);
    }

    #[test]
    fn cpu_quota_has_a_floor_and_no_overflow() {
        assert_eq!(cpu_quota_us(1000), 100_000);
        assert_eq!(cpu_quota_us(1500), 150_000);
        assert_eq!(cpu_quota_us(1), MIN_CPU_QUOTA_US);
        assert_eq!(cpu_quota_us(u64::MAX), (u64::MAX / 1000) as i64);
    }

    #[test]
    fn invalid_config_is_an_error_naming_the_container() {
        let mut c = config();
        c.argv.clear();
        let err = build_spec(&c, "/b/c1", u64::MAX).unwrap_err().to_string();
        assert!(err.contains("\"c1\"") && err.contains("argv"), "{err}");
    }

    #[test]
    fn spec_serializes_to_oci_json() {
        let spec = build_spec(&config(), "/b/c1", u64::MAX).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["linux"]["resources"]["devices"][0]["allow"], false);
        assert_eq!(v["linux"]["cgroupsPath"], "/b/c1");
        assert_eq!(v["process"]["args"][0], "sh");
    }
}
