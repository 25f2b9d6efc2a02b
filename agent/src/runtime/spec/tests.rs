//! Unit tests of the spec builder: each setting of a [`ContainerConfig`]
//! and its effect in the OCI spec.

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

fn caps(
    add: &[&str],
    drop: &[&str],
    privileged: bool,
) -> Result<HashSet<Capability>, CapabilityError> {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    effective_capabilities(&v(add), &v(drop), privileged, u64::MAX)
}

fn default_set() -> HashSet<Capability> {
    DEFAULT_CAPABILITIES.iter().copied().collect()
}

#[test]
fn capabilities_added_and_dropped_by_kubernetes_name() {
    let set = caps(
        &["NET_ADMIN", "CAP_SYS_TIME", "sys_ptrace"],
        &["CHOWN"],
        false,
    )
    .unwrap();
    let mut want = default_set();
    want.remove(&Capability::Chown);
    want.extend([
        Capability::NetAdmin,
        Capability::SysTime,
        Capability::SysPtrace,
    ]);
    assert_eq!(set, want);
    assert_eq!(caps(&[], &[], false).unwrap(), default_set());
}

#[test]
fn drop_all_then_add_and_add_all() {
    assert!(caps(&[], &["ALL"], false).unwrap().is_empty());
    assert_eq!(
        caps(&["NET_BIND_SERVICE"], &["all"], false).unwrap(),
        HashSet::from([Capability::NetBindService])
    );
    // An add wins over a drop of the same capability.
    assert!(
        caps(&["KILL"], &["KILL"], false)
            .unwrap()
            .contains(&Capability::Kill)
    );
    let all = caps(&["ALL"], &[], false).unwrap();
    assert_eq!(all.len(), 41);
    assert_eq!(caps(&["ALL"], &["ALL"], false).unwrap(), all);
}

#[test]
fn capabilities_the_host_lacks_are_left_out_of_all_and_refused_by_name() {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Linux 5.4 (up to AUDIT_READ, 37) without SYS_RESOURCE (24).
    let available = ((1u64 << 38) - 1) & !(1 << 24);
    let set = effective_capabilities(&v(&["ALL"]), &[], false, available).unwrap();
    assert_eq!(set.len(), 37);
    assert!(!set.contains(&Capability::Bpf));
    assert!(!set.contains(&Capability::SysResource));
    assert!(set.contains(&Capability::AuditRead));
    let privileged = effective_capabilities(&[], &[], true, available).unwrap();
    assert_eq!(privileged, set);
    let err = effective_capabilities(&v(&["SYS_RESOURCE"]), &[], false, available)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SYS_RESOURCE") && err.contains("not available"),
        "{err}"
    );
    // Only the available part of the default set.
    let none = effective_capabilities(&[], &[], false, 1 << 27).unwrap();
    assert_eq!(none, HashSet::from([Capability::Mknod]));
}

#[test]
fn capability_numbers_follow_the_kernel() {
    assert_eq!(capability_number(Capability::Chown), 0);
    assert_eq!(capability_number(Capability::NetAdmin), 12);
    assert_eq!(capability_number(Capability::SysAdmin), 21);
    assert_eq!(capability_number(Capability::Mknod), 27);
    assert_eq!(capability_number(Capability::CheckpointRestore), 40);
    let distinct: HashSet<_> = ALL_CAPABILITIES.iter().collect();
    assert_eq!(distinct.len(), ALL_CAPABILITIES.len());
}

#[test]
fn unknown_capability_is_an_error_naming_it_and_the_fix() {
    let err = caps(&["NET_ADMINN"], &[], false).unwrap_err().to_string();
    assert!(
        err.contains("\"NET_ADMINN\"") && err.contains("capabilities.add"),
        "{err}"
    );
    assert!(err.contains("such as NET_ADMIN"), "{err}");
    let mut c = config();
    c.capabilities_drop = vec!["FOO".into()];
    let err = build_spec(&c, "/b/c1", u64::MAX).unwrap_err().to_string();
    assert!(
        err.contains("\"c1\"") && err.contains("\"FOO\"") && err.contains("capabilities.drop"),
        "{err}"
    );
}

#[test]
fn capabilities_reach_the_spec() {
    let mut c = config();
    c.capabilities_add = vec!["NET_ADMIN".into()];
    c.capabilities_drop = vec!["CHOWN".into()];
    let spec = build_spec(&c, "/b/c1", u64::MAX).unwrap();
    let p = spec.process().as_ref().unwrap();
    let got = p.capabilities().clone().unwrap();
    for set in [got.bounding(), got.effective(), got.permitted()] {
        let set = set.as_ref().unwrap();
        assert!(set.contains(&Capability::NetAdmin) && !set.contains(&Capability::Chown));
    }
    assert!(got.inheritable().as_ref().unwrap().is_empty());
    assert_eq!(p.no_new_privileges(), Some(true));
}

#[test]
fn privileged_gets_everything() {
    let mut c = config();
    c.privileged = true;
    c.capabilities_drop = vec!["ALL".into()];
    let spec = build_spec(&c, "/b/c1", u64::MAX).unwrap();
    let p = spec.process().as_ref().unwrap();
    let got = p.capabilities().clone().unwrap();
    let want = effective_capabilities(&["ALL".into()], &[], false, host_capabilities()).unwrap();
    assert_eq!(got.effective().as_ref().unwrap(), &want);
    assert_eq!(got.bounding().as_ref().unwrap(), &want);
    assert!(want.contains(&Capability::SysAdmin));
    assert_eq!(p.no_new_privileges(), Some(false));
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.masked_paths().as_ref().unwrap().is_empty());
    assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
    let rules = linux
        .resources()
        .clone()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow());
    assert_eq!(rules[0].typ(), None);
    assert_eq!(rules[0].access().as_deref(), Some("rwm"));
    let sys = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/sys"))
        .unwrap();
    let opts = sys.options().as_ref().unwrap();
    assert!(opts.contains(&"rw".to_string()) && !opts.contains(&"ro".to_string()));
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
    assert!(
        ns.iter()
            .filter(|n| n.typ() != LinuxNamespaceType::Network)
            .all(|n| n.path().is_none())
    );
}

#[test]
fn ipc_and_uts_join_the_pods_without_setting_the_hostname() {
    let mut c = config();
    c.hostname = Some("web".into());
    c.netns_path = Some("/run/b/netns/p".into());
    c.ipc_path = Some("/run/b/netns/p:ipc".into());
    c.uts_path = Some("/run/b/netns/p:uts".into());
    let spec = build_spec(&c, "/b/c1", u64::MAX).unwrap();
    let ns = namespaces(&spec);
    let path = |t: LinuxNamespaceType| {
        ns.iter()
            .find(|n| n.typ() == t)
            .unwrap()
            .path()
            .as_ref()
            .map(|p| p.to_str().unwrap().to_string())
    };
    assert_eq!(
        path(LinuxNamespaceType::Ipc).as_deref(),
        Some("/run/b/netns/p:ipc")
    );
    assert_eq!(
        path(LinuxNamespaceType::Uts).as_deref(),
        Some("/run/b/netns/p:uts")
    );
    assert_eq!(path(LinuxNamespaceType::Pid), None);
    assert_eq!(path(LinuxNamespaceType::Mount), None);
    assert_eq!(spec.hostname(), &None);
    let v = serde_json::to_value(&spec).unwrap();
    assert!(v.get("hostname").is_none(), "{v}");
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
