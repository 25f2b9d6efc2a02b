//! The runtime test suite, run against every backend with real containers
//! (tests run as root): the busybox fixture image on overlay rootfses, exit
//! codes, logs, process settings, OOM, TERM->KILL escalation, and that
//! delete leaves nothing. Each backend's test file instantiates it with
//! [`runtime_suite!`]; the sandbox serializes the tests of a process and
//! cleans up on drop, also after a failed assertion.

use crate::common;

use std::time::{Duration, Instant};

use bramble_agent::runtime::{
    ContainerConfig, ContainerState, ExitStatus, MountSpec, RuntimeError, Signal,
};
use bramble_api::objects::container::Container;
use bramble_images::process_defaults;
use common::{Backend, Sandbox, image, process_exists};

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
    cfg.uid = defaults.uid;
    cfg.gid = defaults.gid;
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
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
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
    let t = Instant::now();
    let status = sb.runtime.stop(&h, Duration::from_secs(10)).unwrap();
    assert_eq!(status, ExitStatus::Code(0));
    assert!(t.elapsed() < Duration::from_secs(5));
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
