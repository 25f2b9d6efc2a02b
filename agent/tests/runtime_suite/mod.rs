//! The runtime test suite, run against every backend with real containers
//! (tests run as root): the busybox fixture image on overlay rootfses, exit
//! codes, logs, process settings, OOM, TERM->KILL escalation, and that
//! delete leaves nothing. Each backend's test file instantiates it with
//! [`runtime_suite!`]; the sandbox serializes the tests of a process and
//! cleans up on drop, also after a failed assertion.
//!
//! Length: over 600 lines because the one behaviour suite both runtime
//! backends must pass; each test a scenario.

use crate::common;

use std::time::{Duration, Instant};

use bramble_agent::runtime::spec::{
    ALL_CAPABILITIES, DEFAULT_CAPABILITIES, capability_number, host_capabilities,
};
use bramble_agent::runtime::{
    ContainerConfig, ContainerState, DeviceKind, DeviceSpec, ExitStatus, MountSpec, RuntimeError,
    Signal,
};
use bramble_api::objects::container::Container;
use bramble_images::process_defaults;
use common::{Backend, Sandbox, image, process_exists};
use oci_spec::runtime::Capability;

const WAIT: Option<Duration> = Some(Duration::from_secs(30));

pub fn echo_hello_exits_zero_and_logs_to_file(backend: Backend) {
    let sb = Sandbox::with_backend("echo", backend);
    let cfg = sb.config("c", &["echo", "hello"]);
    let h = sb.run(&cfg);
    let status = sb.runtime.wait(&h, WAIT).unwrap().expect("exited");
    assert_eq!(status, ExitStatus::Code(0));
    // The exit is remembered.
    assert_eq!(
        sb.runtime.poll_exit(&h).unwrap(),
        ContainerState::Exited(ExitStatus::Code(0))
    );
    assert_eq!(sb.stdout(&cfg), "hello\n");
    assert_eq!(sb.stderr(&cfg), "");
    let report = sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
    assert_eq!(report.exit, Some(ExitStatus::Code(0)));
    assert!(!report.oom_killed);
}

pub fn exit_code_and_stderr_are_reported(backend: Backend) {
    let sb = Sandbox::with_backend("exit3", backend);
    let cfg = sb.config("c", &["sh", "-c", "echo oops >&2; exit 3"]);
    let h = sb.run(&cfg);
    assert_eq!(
        sb.runtime.wait(&h, WAIT).unwrap(),
        Some(ExitStatus::Code(3))
    );
    assert_eq!(sb.stderr(&cfg), "oops\n");
    assert_eq!(sb.stdout(&cfg), "");
    let report = sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
    assert_eq!(report.exit, Some(ExitStatus::Code(3)));
}

pub fn env_cwd_and_user_from_a_pod_container_are_visible(backend: Backend) {
    let sb = Sandbox::with_backend("procenv", backend);
    let container: Container = serde_json::from_value(serde_json::json!({
        "name": "app",
        "image": "busybox",
        "command": ["sh", "-c", "id -u; id -g; pwd; env | sort; hostname; touch /work/ok && echo wrote"],
        "workingDir": "/work",
        "env": [{"name": "GREETING", "value": "hello world"}],
        "securityContext": {"runAsUser": 1000, "runAsGroup": 2000},
    }))
    .unwrap();
    let env = vec![("GREETING".to_string(), "hello world".to_string())];
    let defaults = process_defaults(&image().config, &container, &env).unwrap();
    let mut cfg = sb.config("c", &["unused"]);
    cfg.argv = defaults.argv;
    cfg.env = defaults.env;
    cfg.cwd = defaults.cwd;
    let bramble_images::ProcessUser::Ids { uid, gid } = defaults.user else {
        panic!(
            "numeric runAsUser and runAsGroup give ids: {:?}",
            defaults.user
        );
    };
    (cfg.uid, cfg.gid) = (uid, gid);
    cfg.hostname = Some("app-host".into());
    cfg.mounts = vec![MountSpec::Tmpfs {
        destination: "/work".into(),
        size_bytes: Some(1 << 20),
        mode: Some(0o1777),
        read_only: false,
    }];
    let h = sb.run(&cfg);
    let status = sb.runtime.wait(&h, WAIT).unwrap();
    let out = sb.stdout(&cfg);
    assert_eq!(
        status,
        Some(ExitStatus::Code(0)),
        "stdout {out:?} stderr {:?}",
        sb.stderr(&cfg)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "2000", "{out}");
    assert_eq!(lines[2], "/work", "{out}");
    assert!(lines.contains(&"GREETING=hello world"), "{out}");
    assert!(lines.contains(&"PATH=/bin"), "{out}");
    assert!(lines.contains(&"PWD=/work"), "{out}");
    assert!(lines.contains(&"app-host"), "{out}");
    assert_eq!(lines.last(), Some(&"wrote"), "{out}");
    sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
}

pub fn read_only_root_refuses_writes(backend: Backend) {
    let sb = Sandbox::with_backend("rofs", backend);
    let mut cfg = sb.config("c", &["sh", "-c", "touch /x 2>&1; echo rc=$?"]);
    cfg.read_only_root = true;
    let h = sb.run(&cfg);
    assert_eq!(
        sb.runtime.wait(&h, WAIT).unwrap(),
        Some(ExitStatus::Code(0))
    );
    let out = sb.stdout(&cfg);
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "{out}"
    );
    sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
}

pub fn memory_limit_exceeded_is_oom_killed(backend: Backend) {
    let sb = Sandbox::with_backend("oom", backend);
    // `x=$(...)` keeps the whole output in the shell's memory.
    let mut cfg = sb.config(
        "c",
        &["sh", "-c", "x=$(yes | head -c 200000000); echo survived"],
    );
    cfg.memory_limit_bytes = Some(16 << 20);
    let h = sb.run(&cfg);
    let status = sb.runtime.wait(&h, WAIT).unwrap().expect("exited");
    assert_eq!(
        status,
        ExitStatus::Signal(9),
        "stdout {:?}",
        sb.stdout(&cfg)
    );
    assert_eq!(status.code(), 137);
    assert!(!sb.stdout(&cfg).contains("survived"));
    let report = sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
    assert!(report.oom_killed, "{report:?}");
    assert_eq!(report.exit, Some(ExitStatus::Signal(9)));
}

pub fn a_clean_exit_is_not_an_oom(backend: Backend) {
    let sb = Sandbox::with_backend("nooom", backend);
    let mut cfg = sb.config("c", &["sh", "-c", "x=$(yes | head -c 1000000); echo ok"]);
    cfg.memory_limit_bytes = Some(64 << 20);
    let h = sb.run(&cfg);
    assert_eq!(
        sb.runtime.wait(&h, WAIT).unwrap(),
        Some(ExitStatus::Code(0))
    );
    let report = sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
    assert!(!report.oom_killed);
}

pub fn sigterm_ignoring_init_is_killed_after_grace(backend: Backend) {
    let sb = Sandbox::with_backend("stop", backend);
    let cfg = sb.config("c", &["sleep", "1000"]);
    let h = sb.run(&cfg);
    assert_eq!(sb.runtime.poll_exit(&h).unwrap(), ContainerState::Running);
    let t = Instant::now();
    let status = sb.runtime.stop(&h, Duration::from_secs(1)).unwrap();
    let took = t.elapsed();
    assert_eq!(status, ExitStatus::Signal(9));
    assert!(took >= Duration::from_secs(1), "stopped after {took:?}");
    let report = sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
    assert!(!report.oom_killed);
}

pub fn sigterm_with_a_handler_stops_within_grace(backend: Backend) {
    let sb = Sandbox::with_backend("term", backend);
    let cfg = sb.config(
        "c",
        &[
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.05; done",
        ],
    );
    let h = sb.run(&cfg);
    wait_for_stdout(&sb, &cfg, "ready", Duration::from_secs(10));
    // Exit code 0 is the handler's: the SIGKILL after the grace would show as a signal.
    let status = sb.runtime.stop(&h, Duration::from_secs(10)).unwrap();
    assert_eq!(status, ExitStatus::Code(0));
    assert!(sb.stdout(&cfg).contains("bye"));
    sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
}

pub fn stats_report_memory_and_cpu(backend: Backend) {
    let sb = Sandbox::with_backend("stats", backend);
    let cfg = sb.config(
        "c",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done; sleep 1000",
        ],
    );
    let h = sb.run(&cfg);
    wait_for_stdout(&sb, &cfg, "done", Duration::from_secs(20));
    let stats = sb.runtime.stats(&h).unwrap();
    assert!(stats.memory_bytes > 0, "{stats:?}");
    assert!(stats.cpu_usage_ns > 1_000_000, "{stats:?}");
    sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
}

pub fn delete_leaves_no_cgroup_state_bundle_or_process(backend: Backend) {
    let sb = Sandbox::with_backend("leftovers", backend);
    let mut cfg = sb.config("c", &["sleep", "1000"]);
    cfg.memory_limit_bytes = Some(32 << 20);
    cfg.pids_limit = Some(16);
    cfg.cpu_limit_millis = Some(500);
    let h = sb.run(&cfg);
    let cgroup = sb.runtime.cgroup_files(&h.id).unwrap();
    let memory_dir = cgroup.memory_dir.clone().expect("memory cgroup");
    assert!(memory_dir.exists(), "{}", memory_dir.display());
    let limit = std::fs::read_to_string(if cgroup.v2 {
        memory_dir.join("memory.max")
    } else {
        memory_dir.join("memory.limit_in_bytes")
    })
    .unwrap();
    assert_eq!(limit.trim(), (32u64 << 20).to_string());
    assert!(sb.runtime.state_dir(&h.id).exists());
    assert!(sb.runtime.bundle_dir(&h.id).join("config.json").exists());
    assert!(process_exists(h.pid));

    // Deleting a running container kills it.
    let report = sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
    assert_eq!(report.exit, Some(ExitStatus::Signal(9)));
    assert!(!process_exists(h.pid), "pid {} still exists", h.pid);
    assert_eq!(cgroup.existing_dirs(), Vec::<std::path::PathBuf>::new());
    for d in &cgroup.dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    assert!(!sb.runtime.state_dir(&h.id).exists());
    assert!(!sb.runtime.bundle_dir(&h.id).exists());
    assert!(matches!(
        sb.runtime.poll_exit(&h),
        Err(RuntimeError::NotFound { .. })
    ));
}

pub fn deleting_a_created_but_unstarted_container_cleans_up(backend: Backend) {
    let sb = Sandbox::with_backend("unstarted", backend);
    let cfg = sb.config("c", &["echo", "never"]);
    let h = sb.runtime.create(&cfg).unwrap();
    assert_eq!(sb.runtime.poll_exit(&h).unwrap(), ContainerState::Created);
    let cgroup = sb.runtime.cgroup_files(&h.id).unwrap();
    sb.runtime.delete(&h).unwrap();
    assert!(!process_exists(h.pid));
    assert!(
        cgroup.existing_dirs().is_empty(),
        "{:?}",
        cgroup.existing_dirs()
    );
    assert!(!sb.runtime.state_dir(&h.id).exists());
    assert_eq!(sb.stdout(&cfg), "");
}

pub fn failed_create_leaves_nothing_and_ids_are_unique(backend: Backend) {
    let sb = Sandbox::with_backend("failcreate", backend);
    // A rootfs that does not exist: the backend fails while creating.
    let mut cfg = sb.config("c", &["true"]);
    cfg.rootfs = sb.dir().join("no-such-rootfs");
    let err = sb.runtime.create(&cfg).unwrap_err();
    eprintln!("create error: {err}");
    assert!(err.to_string().contains(&cfg.id), "{err}");
    // The backend's own error is in `err`, not in the container's log.
    assert_eq!(sb.stderr(&cfg), "");
    assert_eq!(sb.stdout(&cfg), "");
    let cgroup = sb.runtime.cgroup_files(&cfg.id).unwrap();
    assert!(
        cgroup.existing_dirs().is_empty(),
        "{:?}",
        cgroup.existing_dirs()
    );
    assert!(!sb.runtime.state_dir(&cfg.id).exists());
    assert!(!sb.runtime.bundle_dir(&cfg.id).exists());

    // The same id works afterwards, and a second create of it is refused.
    let cfg = sb.config("d", &["true"]);
    let h = sb.run(&cfg);
    assert!(matches!(
        sb.runtime.create(&cfg),
        Err(RuntimeError::AlreadyExists { .. })
    ));
    assert_eq!(
        sb.runtime.wait(&h, WAIT).unwrap(),
        Some(ExitStatus::Code(0))
    );
}

pub fn sigpipe_is_default_inside_containers(backend: Backend) {
    let sb = Sandbox::with_backend("sigpipe", backend);
    // `yes | head -c 1` ends `yes` by SIGPIPE only when it is not ignored:
    // with SIGPIPE ignored, yes gets EPIPE and busybox exits 1.
    let cfg = sb.config(
        "c",
        &[
            "sh",
            "-c",
            "yes | head -c 1 >/dev/null; grep SigIgn /proc/self/status",
        ],
    );
    let h = sb.run(&cfg);
    assert_eq!(
        sb.runtime.wait(&h, WAIT).unwrap(),
        Some(ExitStatus::Code(0))
    );
    let out = sb.stdout(&cfg);
    let mask = out
        .trim()
        .strip_prefix("SigIgn:")
        .expect("SigIgn line")
        .trim();
    let mask = u64::from_str_radix(mask, 16).unwrap();
    assert_eq!(
        mask & (1 << (Signal::SIGPIPE as u64 - 1)),
        0,
        "SIGPIPE ignored: {out}"
    );
}

/// The `CapEff`, `CapPrm` and `CapBnd` masks of the container's process.
fn cap_masks(out: &str) -> (u64, u64, u64) {
    let mask = |name: &str| {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} line in {out:?}"));
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    (mask("CapEff:"), mask("CapPrm:"), mask("CapBnd:"))
}

fn mask_of(caps: impl IntoIterator<Item = Capability>) -> u64 {
    caps.into_iter()
        .map(|c| 1u64 << capability_number(c))
        .fold(0, |a, b| a | b)
}

/// Runs `script` in a container made from `cfg`; returns its stdout after
/// checking it exited 0.
fn run_script(sb: &Sandbox, cfg: &ContainerConfig) -> String {
    let h = sb.run(cfg);
    let status = sb.runtime.wait(&h, WAIT).unwrap();
    let out = sb.stdout(cfg);
    assert_eq!(
        status,
        Some(ExitStatus::Code(0)),
        "stdout {out:?} stderr {:?}",
        sb.stderr(cfg)
    );
    sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
    out
}

pub fn capabilities_added_and_dropped_show_in_cap_eff(backend: Backend) {
    let sb = Sandbox::with_backend("caps", backend);
    let mut cfg = sb.config("c", &["grep", "^Cap", "/proc/self/status"]);
    cfg.capabilities_add = vec!["NET_ADMIN".into(), "CAP_SYS_TIME".into()];
    cfg.capabilities_drop = vec!["CHOWN".into()];
    let (eff, prm, bnd) = cap_masks(&run_script(&sb, &cfg));
    let want = mask_of(
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| *c != Capability::Chown)
            .chain([Capability::NetAdmin, Capability::SysTime]),
    );
    assert_eq!(eff, want, "CapEff {eff:x} want {want:x}");
    assert_eq!(prm, want);
    assert_eq!(bnd, want);
    assert_ne!(eff & (1 << 12), 0, "NET_ADMIN missing");
    assert_eq!(eff & 1, 0, "CHOWN still there");

    // And the capability works: NET_ADMIN may add an address, which the
    // default set may not.
    let mut cfg = sb.config(
        "d",
        &[
            "sh",
            "-c",
            "ip addr add 10.9.9.9/32 dev lo && echo admin-ok",
        ],
    );
    cfg.capabilities_add = vec!["NET_ADMIN".into()];
    assert!(run_script(&sb, &cfg).contains("admin-ok"));
    let cfg = sb.config(
        "e",
        &[
            "sh",
            "-c",
            "ip addr add 10.9.9.9/32 dev lo 2>&1; echo rc=$?",
        ],
    );
    let out = run_script(&sb, &cfg);
    assert!(out.contains("rc=1") || out.contains("rc=2"), "{out}");
}

pub fn drop_all_leaves_no_capabilities(backend: Backend) {
    let sb = Sandbox::with_backend("capsnone", backend);
    let mut cfg = sb.config(
        "c",
        &[
            "sh",
            "-c",
            "grep ^Cap /proc/self/status; chown 1:1 /bin 2>&1; echo rc=$?",
        ],
    );
    cfg.capabilities_drop = vec!["ALL".into()];
    let out = run_script(&sb, &cfg);
    assert_eq!(cap_masks(&out), (0, 0, 0), "{out}");
    assert!(
        out.contains("Operation not permitted") && out.contains("rc=1"),
        "chown worked without CAP_CHOWN: {out}"
    );
}

pub fn unknown_capability_is_refused_before_anything_runs(backend: Backend) {
    let sb = Sandbox::with_backend("capsbad", backend);
    let mut cfg = sb.config("c", &["true"]);
    cfg.capabilities_add = vec!["NET_ADMINN".into()];
    let err = sb.runtime.create(&cfg).unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidConfig { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("NET_ADMINN") && msg.contains(&cfg.id), "{msg}");
    assert!(!sb.runtime.state_dir(&cfg.id).exists());
    assert!(!sb.runtime.bundle_dir(&cfg.id).exists());
}

pub fn privileged_has_all_capabilities_devices_and_a_writable_sys(backend: Backend) {
    let sb = Sandbox::with_backend("priv", backend);
    let script = "grep ^Cap /proc/self/status; \
        grep ' /sys ' /proc/mounts; \
        grep -c kcore /proc/mounts; \
        mknod /dev/kmsg-test c 1 11 && true </dev/kmsg-test && echo kmsg-readable";
    let mut cfg = sb.config("c", &["sh", "-c", script]);
    cfg.privileged = true;
    let out = run_script(&sb, &cfg);
    let all = mask_of(ALL_CAPABILITIES.iter().copied()) & host_capabilities();
    let (eff, prm, bnd) = cap_masks(&out);
    assert_eq!((eff, prm, bnd), (all, all, all), "{out}");
    let sys = out.lines().find(|l| l.contains(" /sys ")).unwrap();
    assert!(sys.contains(" rw,"), "{sys}");
    assert!(
        out.lines().any(|l| l == "0"),
        "/proc/kcore is masked: {out}"
    );
    assert!(out.contains("kmsg-readable"), "{out}");

    // The same without privileged: /sys read-only, kcore masked, kmsg denied.
    let cfg = sb.config("d", &["sh", "-c", script]);
    let h = sb.run(&cfg);
    sb.runtime.wait(&h, WAIT).unwrap();
    let out = sb.stdout(&cfg);
    let sys = out.lines().find(|l| l.contains(" /sys ")).unwrap();
    assert!(sys.contains(" ro,"), "{sys}");
    assert!(!out.contains("kmsg-readable"), "{out}");
    assert!(
        sb.stderr(&cfg).contains("Operation not permitted"),
        "{:?}",
        sb.stderr(&cfg)
    );
}

/// Removes the pod namespaces on drop (after a failed assertion too).
struct NsGuard(bramble_agent::pod::PodNetns);

impl Drop for NsGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.remove() {
            eprintln!("cleanup: removing the pod namespaces: {e}");
        }
    }
}

pub fn joins_the_pods_ipc_uts_and_net_namespaces(backend: Backend) {
    use std::os::unix::fs::MetadataExt;
    let sb = Sandbox::with_backend("joinns", backend);
    let ns = NsGuard(
        bramble_agent::pod::PodNetns::create(&sb.dir().join("netns"), "pod", "pod-host").unwrap(),
    );
    let script = "echo $(readlink /proc/self/ns/ipc) $(readlink /proc/self/ns/uts) \
        $(readlink /proc/self/ns/net) $(hostname)";
    let mut cfg = sb.config("c", &["sh", "-c", script]);
    cfg.hostname = Some("ignored".into());
    cfg.netns_path = Some(ns.0.path().to_path_buf());
    cfg.ipc_path = Some(ns.0.ipc_path());
    cfg.uts_path = Some(ns.0.uts_path());
    let out = run_script(&sb, &cfg);
    let ino = |p: &std::path::Path| std::fs::metadata(p).unwrap().ino();
    let want = format!(
        "ipc:[{}] uts:[{}] net:[{}] pod-host\n",
        ino(&ns.0.ipc_path()),
        ino(&ns.0.uts_path()),
        ino(ns.0.path())
    );
    assert_eq!(out, want);
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

pub fn exec_runs_in_the_container_as_its_process(backend: Backend) {
    let sb = Sandbox::with_backend("exec", backend);
    let mut cfg = sb.config("c", &["sleep", "1000"]);
    cfg.env.push("GREETING=hello".into());
    cfg.cwd = "/bin".into();
    cfg.uid = 1000;
    cfg.gid = 2000;
    cfg.hostname = Some("exec-host".into());
    let h = sb.run(&cfg);
    let t = Instant::now();
    let out = sb
        .runtime
        .exec(&h, &argv(&["echo", "hi"]), Duration::from_secs(10))
        .unwrap();
    eprintln!("exec took {:?}", t.elapsed());
    assert_eq!(out.status, ExitStatus::Code(0));
    assert_eq!(out.exit_code(), 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert!(out.stderr.is_empty() && !out.timed_out && !out.truncated);

    let script = "echo $GREETING; pwd; id -u; id -g; hostname; \
        [ $(readlink /proc/1/ns/pid) = $(readlink /proc/self/ns/pid) ] && echo same-pidns; \
        echo oops >&2; exit 3";
    let out = sb
        .runtime
        .exec(&h, &argv(&["sh", "-c", script]), Duration::from_secs(10))
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n/bin\n1000\n2000\nexec-host\nsame-pidns\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    // Nothing of the execs is left in the bundle or the state dir.
    for dir in [sb.runtime.bundle_dir(&h.id), sb.runtime.state_dir(&h.id)] {
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("exec-") || n.starts_with("tenant-"))
            .collect();
        assert!(names.is_empty(), "{}: {names:?}", dir.display());
    }
    // The container's own log got none of it.
    assert_eq!(sb.stdout(&cfg), "");
    assert_eq!(sb.runtime.poll_exit(&h).unwrap(), ContainerState::Running);
}

pub fn exec_is_killed_after_its_timeout(backend: Backend) {
    let sb = Sandbox::with_backend("exectime", backend);
    let cfg = sb.config("c", &["sleep", "1000"]);
    let h = sb.run(&cfg);
    let t = Instant::now();
    let out = sb
        .runtime
        .exec(
            &h,
            &argv(&["sh", "-c", "echo started; exec sleep 100"]),
            Duration::from_millis(500),
        )
        .unwrap();
    let took = t.elapsed();
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.status, ExitStatus::Signal(9));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    // The killed process is gone from the container; the container runs on.
    let ps = sb
        .runtime
        .exec(&h, &argv(&["ps", "-o", "args"]), Duration::from_secs(10))
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(!ps.lines().any(|l| l.trim() == "sleep 100"), "{ps}");
    assert!(ps.lines().any(|l| l.trim() == "sleep 1000"), "{ps}");
    assert_eq!(sb.runtime.poll_exit(&h).unwrap(), ContainerState::Running);
}

/// An exec of a command the image lacks fails, and leaves nothing that keeps
/// the container from exiting: a process of the container's PID namespace
/// left unreaped (libcontainer's failed attempt, orphaned to the agent)
/// kept the init from ever finishing its exit, so a stop hung forever.
pub fn a_failed_exec_does_not_keep_the_container_from_exiting(backend: Backend) {
    let sb = Sandbox::with_backend("execfail", backend);
    let cfg = sb.config(
        "c",
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; echo ready; while true; do sleep 0.05; done",
        ],
    );
    let h = sb.run(&cfg);
    wait_for_stdout(&sb, &cfg, "ready", Duration::from_secs(10));
    for _ in 0..2 {
        let err = sb
            .runtime
            .exec(&h, &argv(&["no-such-command"]), Duration::from_secs(10))
            .unwrap_err();
        assert!(err.to_string().contains("no-such-command"), "{err}");
    }
    sb.runtime.kill(&h, Signal::SIGTERM).unwrap();
    // The trap exits at once; WAIT only keeps a regression from hanging.
    let status = sb.runtime.wait(&h, WAIT).unwrap();
    assert_eq!(
        status,
        Some(ExitStatus::Code(0)),
        "the container did not finish exiting after a failed exec"
    );
    sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
}

pub fn exec_needs_a_running_container(backend: Backend) {
    let sb = Sandbox::with_backend("execstate", backend);
    let cfg = sb.config("c", &["true"]);
    let h = sb.run(&cfg);
    sb.runtime.wait(&h, WAIT).unwrap();
    let err = sb
        .runtime
        .exec(&h, &argv(&["true"]), Duration::from_secs(5))
        .unwrap_err();
    assert!(matches!(err, RuntimeError::WrongState { .. }), "{err}");
    assert!(err.to_string().contains(&h.id), "{err}");
}

/// `mknod` of a device node at `path` (mode 0666).
fn mknod(path: &std::path::Path, kind: DeviceKind, major: u32, minor: u32) {
    let typ = match kind {
        DeviceKind::Char => rustix::fs::FileType::CharacterDevice,
        DeviceKind::Block => rustix::fs::FileType::BlockDevice,
    };
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        typ,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
}

pub fn listed_devices_are_usable_and_others_denied(backend: Backend) {
    let sb = Sandbox::with_backend("devices", backend);
    // Host nodes made in the test's own directory: a zero-like char device
    // (1:5) and a block device outside the runtimes' default allow list
    // (loop, 7:N: opening an unbound loop device for reading is harmless).
    let host = sb.dir().join("dev");
    std::fs::create_dir(&host).unwrap();
    mknod(&host.join("ttyFAKE0"), DeviceKind::Char, 1, 5);
    mknod(&host.join("blkFAKE0"), DeviceKind::Block, 7, 6);
    let mut devices = Vec::new();
    for (name, inside) in [("ttyFAKE0", "/dev/ttyFAKE0"), ("blkFAKE0", "/dev/blkFAKE0")] {
        let mut d = DeviceSpec::from_host(host.join(name).to_str().unwrap()).unwrap();
        d.path = inside.into();
        devices.push(d);
    }
    assert_eq!(
        (devices[0].kind, devices[0].major, devices[0].minor),
        (DeviceKind::Char, 1, 5)
    );
    assert_eq!(
        (devices[1].kind, devices[1].major, devices[1].minor),
        (DeviceKind::Block, 7, 6)
    );
    let script = "ls -l /dev/ttyFAKE0 /dev/blkFAKE0; \
        head -c 4 /dev/ttyFAKE0 | od -An -tx1; \
        true </dev/blkFAKE0 && echo blk-opened; \
        mknod /dev/other-loop b 7 7 && echo mknod-ok; \
        true </dev/other-loop && echo other-loop-opened; \
        mknod /dev/mem c 1 1; true </dev/mem && echo mem-opened; \
        echo end";
    let mut cfg = sb.config("c", &["sh", "-c", script]);
    cfg.devices = devices;
    let h = sb.run(&cfg);
    let status = sb.runtime.wait(&h, WAIT).unwrap();
    let (out, err) = (sb.stdout(&cfg), sb.stderr(&cfg));
    eprintln!("stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(status, Some(ExitStatus::Code(0)));
    // (Both runtimes apply their umask to the node's mode: 0644, not 0666.)
    let line = |name: &str| out.lines().find(|l| l.ends_with(name)).unwrap_or("");
    let tty = line("/dev/ttyFAKE0");
    assert!(tty.starts_with('c') && tty.contains(" 1,   5 "), "{out}");
    let blk = line("/dev/blkFAKE0");
    assert!(blk.starts_with('b') && blk.contains(" 7,   6 "), "{out}");
    assert!(out.contains(" 00 00 00 00"), "{out}");
    assert!(out.contains("blk-opened"), "{out}\n{err}");
    // Creating nodes is allowed (as in Docker), opening unlisted ones not.
    assert!(out.contains("mknod-ok"), "{out}\n{err}");
    assert!(!out.contains("other-loop-opened"), "{out}");
    assert!(!out.contains("mem-opened"), "{out}");
    assert_eq!(
        err.matches("Operation not permitted").count(),
        2,
        "both unlisted devices denied: {err}"
    );
    assert!(out.ends_with("end\n"), "{out}");
    sb.runtime.delete(&h).unwrap();
    sb.deleted(&h);
}

/// Runs the syscall probe for each of `probes` in a container made from
/// `cfg` (the probe bind-mounted at `/probe`), plus the seccomp and
/// no_new_privs lines of `/proc/self/status`; returns the output.
fn probe_output(sb: &Sandbox, suffix: &str, adjust: impl Fn(&mut ContainerConfig)) -> String {
    let probe = bramble_tests::syscall_probe::probe().expect("the syscall probe");
    let script = "for p in keyctl unshare-user mount clone3; do /probe $p; done; \
        busybox unshare -U true 2>&1; echo busybox-unshare=$?; \
        grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status";
    let mut cfg = sb.config(suffix, &["sh", "-c", script]);
    cfg.mounts.push(MountSpec::Bind {
        source: probe,
        destination: "/probe".into(),
        read_only: true,
    });
    adjust(&mut cfg);
    run_script(sb, &cfg)
}

pub fn runtime_default_seccomp_refuses_keyrings_namespaces_and_mounts(backend: Backend) {
    let sb = Sandbox::with_backend("seccomp", backend);
    let out = probe_output(&sb, "default", |_| {});
    for want in [
        "keyctl errno=1\n",
        "unshare-user errno=1\n",
        // The kernel would say EFAULT (NULL arguments): the filter answered.
        "mount errno=1\n",
        // ENOSYS, so libcs fall back to clone, whose flags the filter sees.
        "clone3 errno=38\n",
        "busybox-unshare=1\n",
        "Seccomp:\t2\n",
        "NoNewPrivs:\t1\n",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    // The same container unconfined: the kernel answers.
    let out = probe_output(&sb, "unconfined", |c| {
        c.seccomp = bramble_agent::runtime::seccomp::SeccompPolicy::Unconfined
    });
    for want in [
        "unshare-user ok\n",
        "mount errno=14\n",
        "clone3 errno=22\n",
        "busybox-unshare=0\n",
        "Seccomp:\t0\n",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    assert!(!out.contains("keyctl errno=1\n"), "{out}");
    // CAP_SYS_ADMIN opens mount and unshare, as in Docker's profile.
    let out = probe_output(&sb, "sysadmin", |c| {
        c.capabilities_add = vec!["SYS_ADMIN".into()]
    });
    for want in ["unshare-user ok\n", "mount errno=14\n", "Seccomp:\t2\n"] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
}

/// One `#[test]` per suite case, run on `$backend` (a [`Backend`]).
macro_rules! runtime_suite {
    ($backend:expr) => {
        #[test]
        fn echo_hello_exits_zero_and_logs_to_file() {
            runtime_suite::echo_hello_exits_zero_and_logs_to_file($backend)
        }
        #[test]
        fn exit_code_and_stderr_are_reported() {
            runtime_suite::exit_code_and_stderr_are_reported($backend)
        }
        #[test]
        fn env_cwd_and_user_from_a_pod_container_are_visible() {
            runtime_suite::env_cwd_and_user_from_a_pod_container_are_visible($backend)
        }
        #[test]
        fn read_only_root_refuses_writes() {
            runtime_suite::read_only_root_refuses_writes($backend)
        }
        #[test]
        fn memory_limit_exceeded_is_oom_killed() {
            runtime_suite::memory_limit_exceeded_is_oom_killed($backend)
        }
        #[test]
        fn a_clean_exit_is_not_an_oom() {
            runtime_suite::a_clean_exit_is_not_an_oom($backend)
        }
        #[test]
        fn sigterm_ignoring_init_is_killed_after_grace() {
            runtime_suite::sigterm_ignoring_init_is_killed_after_grace($backend)
        }
        #[test]
        fn sigterm_with_a_handler_stops_within_grace() {
            runtime_suite::sigterm_with_a_handler_stops_within_grace($backend)
        }
        #[test]
        fn stats_report_memory_and_cpu() {
            runtime_suite::stats_report_memory_and_cpu($backend)
        }
        #[test]
        fn delete_leaves_no_cgroup_state_bundle_or_process() {
            runtime_suite::delete_leaves_no_cgroup_state_bundle_or_process($backend)
        }
        #[test]
        fn deleting_a_created_but_unstarted_container_cleans_up() {
            runtime_suite::deleting_a_created_but_unstarted_container_cleans_up($backend)
        }
        #[test]
        fn failed_create_leaves_nothing_and_ids_are_unique() {
            runtime_suite::failed_create_leaves_nothing_and_ids_are_unique($backend)
        }
        #[test]
        fn sigpipe_is_default_inside_containers() {
            runtime_suite::sigpipe_is_default_inside_containers($backend)
        }
        #[test]
        fn exec_runs_in_the_container_as_its_process() {
            runtime_suite::exec_runs_in_the_container_as_its_process($backend)
        }
        #[test]
        fn exec_is_killed_after_its_timeout() {
            runtime_suite::exec_is_killed_after_its_timeout($backend)
        }
        #[test]
        fn a_failed_exec_does_not_keep_the_container_from_exiting() {
            runtime_suite::a_failed_exec_does_not_keep_the_container_from_exiting($backend)
        }
        #[test]
        fn exec_needs_a_running_container() {
            runtime_suite::exec_needs_a_running_container($backend)
        }
        #[test]
        fn listed_devices_are_usable_and_others_denied() {
            runtime_suite::listed_devices_are_usable_and_others_denied($backend)
        }
        #[test]
        fn joins_the_pods_ipc_uts_and_net_namespaces() {
            runtime_suite::joins_the_pods_ipc_uts_and_net_namespaces($backend)
        }
        #[test]
        fn capabilities_added_and_dropped_show_in_cap_eff() {
            runtime_suite::capabilities_added_and_dropped_show_in_cap_eff($backend)
        }
        #[test]
        fn drop_all_leaves_no_capabilities() {
            runtime_suite::drop_all_leaves_no_capabilities($backend)
        }
        #[test]
        fn unknown_capability_is_refused_before_anything_runs() {
            runtime_suite::unknown_capability_is_refused_before_anything_runs($backend)
        }
        #[test]
        fn runtime_default_seccomp_refuses_keyrings_namespaces_and_mounts() {
            runtime_suite::runtime_default_seccomp_refuses_keyrings_namespaces_and_mounts($backend)
        }
        #[test]
        fn privileged_has_all_capabilities_devices_and_a_writable_sys() {
            runtime_suite::privileged_has_all_capabilities_devices_and_a_writable_sys($backend)
        }
    };
}
pub(crate) use runtime_suite;

/// Polls the container's stdout log until it contains `text`, failing after `limit`.
fn wait_for_stdout(sb: &Sandbox, cfg: &ContainerConfig, text: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !sb.stdout(cfg).contains(text) {
        assert!(
            Instant::now() < deadline,
            "{text:?} never appeared on stdout"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
