//! Supervised pods on the libcontainer backend with real containers (root):
//! CrashLoopBackOff with growing delays, restart policies and the pod phase,
//! a failing liveness probe restarting its container, readiness probes
//! (run inside the pod's network namespace) driving `ready` and the pod's
//! `Ready` condition. Every test cleans up also after a failed assertion.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bramble_agent::lifecycle::backoff::Backoff;
use bramble_agent::pod::{PodDirs, PodEvent, PodInputs, PodOptions, RunningPod};
use bramble_agent::runtime::Runtime;
use bramble_agent::runtime::cgroup::CgroupFiles;
use bramble_agent::runtime::libcontainer::{LibcontainerOptions, LibcontainerRuntime};
use bramble_api::objects::pod::Pod;
use bramble_api::objects::pod_status::{ContainerStatus, PodStatus};

/// One test at a time: libcontainer forks from this process (FINDINGS.md).
static SERIAL: Mutex<()> = Mutex::new(());

/// A test's directories and runtime; removes leftover cgroups on drop.
struct Env {
    tmp: tempfile::TempDir,
    cgroup_parent: String,
    runtime: LibcontainerRuntime,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Env {
    fn new(name: &str) -> Env {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let pid = std::process::id();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("bramble-sup-{name}-"))
            .tempdir()
            .unwrap();
        let cgroup_parent = format!("/bramble-test-sup-{name}-{pid}");
        let runtime = LibcontainerRuntime::new(LibcontainerOptions {
            root: tmp.path().join("run/runtime"),
            cgroup_parent: cgroup_parent.clone(),
        })
        .unwrap();
        Env {
            tmp,
            cgroup_parent,
            runtime,
            _serial: serial,
        }
    }

    fn dirs(&self) -> PodDirs {
        PodDirs {
            data: self.tmp.path().join("data"),
            logs: self.tmp.path().join("logs"),
            netns: self.tmp.path().join("run/netns"),
        }
    }

    fn start(&self, yaml: &str) -> Guard<'_> {
        let pod: Pod = serde_yaml_ng::from_str(yaml).unwrap();
        let options = PodOptions {
            backoff: Backoff::new(
                Duration::from_millis(200),
                Duration::from_secs(5),
                Duration::from_secs(600),
            ),
            ..Default::default()
        };
        let running = RunningPod::start(
            &self.runtime,
            &pod,
            &PodInputs::default(),
            &common::fixture_images(),
            &self.dirs(),
            &options,
        )
        .expect("start pod");
        Guard(Some(running))
    }

    fn mounts(&self) -> Vec<String> {
        let d = self.tmp.path().to_str().unwrap();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(d))
            .map(String::from)
            .collect()
    }

    fn container_cgroups(&self) -> Vec<PathBuf> {
        let cg = CgroupFiles::detect(Path::new(&self.cgroup_parent)).unwrap();
        cg.existing_dirs()
            .into_iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()
    }

    /// Stops the pod and checks that nothing is left.
    fn stop_and_check(&self, mut pod: Guard<'_>) {
        let p = pod.0.take().unwrap();
        let dir = p.dir().to_path_buf();
        let netns = p.netns_path().unwrap().to_path_buf();
        p.stop(Duration::from_secs(1)).expect("stop pod");
        assert!(!dir.exists(), "{} left", dir.display());
        assert!(!netns.exists(), "{} left", netns.display());
        assert_eq!(self.mounts(), Vec::<String>::new());
        assert_eq!(self.container_cgroups(), Vec::<PathBuf>::new());
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for m in self.mounts() {
            if let Some(p) = m.split(' ').nth(4) {
                let _ = rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH);
            }
        }
        if let Ok(cg) = CgroupFiles::detect(Path::new(&self.cgroup_parent)) {
            for (d, e) in cg.remove_leftovers() {
                eprintln!("cleanup: removing {}: {e}", d.display());
            }
        }
    }
}

/// Stops the pod on drop (after a failed assertion).
struct Guard<'r>(Option<RunningPod<'r>>);

impl<'r> Guard<'r> {
    fn pod(&mut self) -> &mut RunningPod<'r> {
        self.0.as_mut().unwrap()
    }

    /// Ticks every 20 ms until `done` holds for the status and events so
    /// far, or `timeout`; returns all events with the time they came.
    fn tick_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&PodStatus, &[(Instant, PodEvent)]) -> bool,
    ) -> (PodStatus, Vec<(Instant, PodEvent)>) {
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        loop {
            let now = Instant::now();
            let evs = self.pod().tick(now).expect("tick");
            events.extend(evs.into_iter().map(|e| (now, e)));
            let status = self.pod().status(SystemTime::now());
            if done(&status, &events) {
                return (status, events);
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .pod()
                    .containers()
                    .iter()
                    .map(|c| {
                        let log = std::fs::read_to_string(&c.log_path).unwrap_or_default();
                        format!("{}:\n{log}", c.name)
                    })
                    .collect();
                panic!("timed out; status {status:#?}\nevents {events:#?}\nlogs {logs:#?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = p.stop(Duration::ZERO)
        {
            eprintln!("cleanup: stopping the pod: {e}");
        }
    }
}

fn container<'s>(s: &'s PodStatus, name: &str) -> &'s ContainerStatus {
    s.container_statuses
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no status for {name}: {s:#?}"))
}

fn condition<'s>(s: &'s PodStatus, t: &str) -> &'s str {
    &s.conditions
        .iter()
        .find(|c| c.type_ == t)
        .unwrap_or_else(|| panic!("no {t} condition: {s:#?}"))
        .status
}

fn restarts(events: &[(Instant, PodEvent)]) -> Vec<Instant> {
    events
        .iter()
        .filter(|(_, e)| matches!(e, PodEvent::Restarted { .. }))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn crashing_container_backs_off_with_growing_delays() {
    let env = Env::new("crash");
    let pid = std::process::id();
    let mut pod = env.start(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: crash-{pid}}}
spec:
  restartPolicy: Always
  containers:
  - {{name: app, image: busybox, command: [sh, -c, "exit 1"]}}
"#
    ));
    // Seen between restarts: CrashLoopBackOff with lastState exit 1 Error.
    let mut waiting_seen = 0;
    let mut last_count = 0;
    let (status, events) = pod.tick_until(Duration::from_secs(20), |s, ev| {
        let c = container(s, "app");
        assert!(c.restart_count >= last_count, "restartCount went down");
        last_count = c.restart_count;
        if let Some(w) = c.state.as_ref().and_then(|st| st.waiting.as_ref()) {
            assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
            let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
            assert_eq!(last.exit_code, 1);
            assert_eq!(last.reason.as_deref(), Some("Error"));
            assert!(!c.ready);
            assert_eq!(s.phase.as_deref(), Some("Running"));
            waiting_seen += 1;
        }
        restarts(ev).len() >= 4
    });
    assert!(waiting_seen > 0);
    assert!(container(&status, "app").restart_count >= 4);
    let delays: Vec<Duration> = events
        .iter()
        .filter_map(|(_, e)| match e {
            PodEvent::BackOff { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect();
    assert_eq!(
        delays[..4],
        [200, 400, 800, 1600].map(Duration::from_millis),
        "{delays:?}"
    );
    let times = restarts(&events);
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("gaps between restarts: {gaps:?}");
    // Each restart waited at least its back-off delay (lower bounds only: how
    // long a container takes to start and crash varies with the host's load).
    for (i, gap) in gaps.iter().enumerate().take(3) {
        assert!(
            *gap >= delays[i + 1],
            "gap {i} shorter than its back-off: {gaps:?} vs {delays:?}"
        );
    }
    env.stop_and_check(pod);
}

#[test]
fn restart_policy_never_and_on_failure_end_the_pod() {
    let env = Env::new("policy");
    let pid = std::process::id();
    let mut never = env.start(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: never-{pid}}}
spec:
  restartPolicy: Never
  containers:
  - {{name: app, image: busybox, command: [sh, -c, "exit 3"]}}
"#
    ));
    let (status, _) = never.tick_until(Duration::from_secs(10), |s, _| {
        s.phase.as_deref() == Some("Failed")
    });
    let c = container(&status, "app");
    let t = c.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
    assert_eq!(c.restart_count, 0);
    // It stays that way: no restart.
    std::thread::sleep(Duration::from_millis(500));
    let events = never.pod().tick(Instant::now()).unwrap();
    assert!(events.is_empty(), "{events:?}");
    let status = never.pod().status(SystemTime::now());
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    assert!(
        container(&status, "app")
            .state
            .as_ref()
            .unwrap()
            .terminated
            .is_some()
    );
    env.stop_and_check(never);

    let mut on_failure = env.start(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: onfail-{pid}}}
spec:
  restartPolicy: OnFailure
  containers:
  - {{name: app, image: busybox, command: [sh, -c, "exit 0"]}}
"#
    ));
    let (status, _) = on_failure.tick_until(Duration::from_secs(10), |s, _| {
        s.phase.as_deref() == Some("Succeeded")
    });
    let c = container(&status, "app");
    let t = c.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(c.restart_count, 0);
    env.stop_and_check(on_failure);
}

#[test]
fn failing_liveness_probe_restarts_the_container() {
    let env = Env::new("live");
    let pid = std::process::id();
    let mut pod = env.start(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: live-{pid}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sleep, "1000"]
    livenessProbe:
      httpGet: {{path: /healthz, port: 9999}}
      periodSeconds: 1
      failureThreshold: 1
      timeoutSeconds: 1
"#
    ));
    let (status, events) = pod.tick_until(Duration::from_secs(20), |s, _| {
        container(s, "app").restart_count > 0
    });
    assert!(
        events
            .iter()
            .any(|(_, e)| matches!(e, PodEvent::Killing { .. })),
        "{events:?}"
    );
    let c = container(&status, "app");
    let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    // sleep as PID 1 ignores SIGTERM: SIGKILL after the grace period.
    assert_eq!(last.exit_code, 137, "{last:?}");
    env.stop_and_check(pod);
}

#[test]
fn readiness_probes_drive_ready_and_the_pod_condition() {
    let env = Env::new("ready");
    let pid = std::process::id();
    let mut pod = env.start(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: ready-{pid}}}
spec:
  containers:
  - name: web
    image: busybox
    command: [sh, -c, "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe:
      httpGet: {{path: /index.html, port: http}}
      periodSeconds: 1
  - name: closed
    image: busybox
    command: [sleep, "1000"]
    readinessProbe:
      tcpSocket: {{port: 9090}}
      periodSeconds: 1
      failureThreshold: 1
"#
    ));
    let (status, _) = pod.tick_until(Duration::from_secs(20), |s, ev| {
        let closed_failed = ev.iter().any(
            |(_, e)| matches!(e, PodEvent::Unhealthy { container, .. } if container == "closed"),
        );
        container(s, "web").ready && closed_failed
    });
    assert!(container(&status, "web").ready);
    assert!(!container(&status, "closed").ready);
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&status, "Ready"), "False");
    assert_eq!(condition(&status, "ContainersReady"), "False");
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready.message.as_deref().unwrap_or("").contains("closed"),
        "{ready:?}"
    );
    assert_eq!(container(&status, "closed").restart_count, 0);
    env.stop_and_check(pod);
}

#[test]
fn failing_exec_liveness_probe_restarts_the_container() {
    let env = Env::new("execlive");
    let pid = std::process::id();
    let mut pod = env.start(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: execlive-{pid}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "mkdir -p /tmp && touch /tmp/healthy && sleep 3 && rm /tmp/healthy && echo removed && sleep 1000"]
    livenessProbe:
      exec: {{command: [cat, /tmp/healthy]}}
      periodSeconds: 1
      failureThreshold: 1
      timeoutSeconds: 2
"#
    ));
    let started = Instant::now();
    let (status, events) = pod.tick_until(Duration::from_secs(30), |s, _| {
        container(s, "app").restart_count > 0
    });
    let unhealthy: Vec<(Instant, String)> = events
        .iter()
        .filter_map(|(t, e)| match e {
            PodEvent::Unhealthy { message, .. } => Some((*t, message.clone())),
            _ => None,
        })
        .collect();
    // The probe passed while the file was there (about 3 s), then failed.
    let (first, message) = unhealthy.first().expect("an Unhealthy event");
    assert!(
        first.duration_since(started) >= Duration::from_millis(2500),
        "failed after {:?}: {events:?}",
        first.duration_since(started)
    );
    assert!(
        message.contains("cat") && message.contains("exited with 1"),
        "{message}"
    );
    assert!(
        events
            .iter()
            .any(|(_, e)| matches!(e, PodEvent::Killing { .. })),
        "{events:?}"
    );
    let last = container(&status, "app")
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap()
        .clone();
    // sh as PID 1 ignores SIGTERM: SIGKILL after the grace period.
    assert_eq!(last.exit_code, 137, "{last:?}");
    // The new instance is healthy again (a fresh rootfs, the file re-made).
    let (status, events) = pod.tick_until(Duration::from_secs(10), |s, _| {
        container(s, "app")
            .state
            .as_ref()
            .is_some_and(|st| st.running.is_some())
    });
    assert!(
        !events
            .iter()
            .any(|(_, e)| matches!(e, PodEvent::Unhealthy { .. })),
        "{events:?}"
    );
    assert_eq!(container(&status, "app").restart_count, 1);
    env.stop_and_check(pod);
}

#[test]
fn exec_readiness_probes_drive_ready_and_a_timeout_fails() {
    let env = Env::new("execready");
    let pid = std::process::id();
    let mut pod = env.start(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: execready-{pid}}}
spec:
  containers:
  - name: late
    image: busybox
    command: [sh, -c, "mkdir -p /tmp && sleep 2 && touch /tmp/ready && sleep 1000"]
    readinessProbe:
      exec: {{command: [cat, /tmp/ready]}}
      periodSeconds: 1
      failureThreshold: 1
  - name: slow
    image: busybox
    command: [sleep, "1000"]
    readinessProbe:
      exec: {{command: [sleep, "5"]}}
      periodSeconds: 1
      timeoutSeconds: 1
      failureThreshold: 1
"#
    ));
    let (status, events) = pod.tick_until(Duration::from_secs(30), |s, ev| {
        let slow_failed = ev.iter().any(
            |(_, e)| matches!(e, PodEvent::Unhealthy { container, .. } if container == "slow"),
        );
        container(s, "late").ready && slow_failed
    });
    // `late` was not ready before its file existed.
    assert!(
        events.iter().any(
            |(_, e)| matches!(e, PodEvent::Unhealthy { container, .. } if container == "late")
        ),
        "{events:?}"
    );
    let slow_msg = events
        .iter()
        .find_map(|(_, e)| match e {
            PodEvent::Unhealthy {
                container, message, ..
            } if container == "slow" => Some(message.clone()),
            _ => None,
        })
        .unwrap();
    assert!(slow_msg.contains("timed out"), "{slow_msg}");
    assert!(container(&status, "late").ready);
    assert!(!container(&status, "slow").ready);
    assert_eq!(condition(&status, "Ready"), "False");
    // A readiness failure never restarts.
    assert_eq!(container(&status, "slow").restart_count, 0);
    // No probe process is left running in `slow` (each was killed).
    let p = pod.pod();
    let slow = p.container("slow").unwrap();
    let ps = env
        .runtime
        .exec(
            &slow.handle,
            &["ps".to_string(), "-o".into(), "args".into()],
            Duration::from_secs(5),
        )
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(!ps.lines().any(|l| l.trim() == "sleep 5"), "{ps}");
    env.stop_and_check(pod);
}
