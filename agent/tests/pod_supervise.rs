//! Supervised pods on each backend (libcontainer, runc) with real
//! containers (root): init containers run in order without blocking `start`,
//! a failed one fails the pod under `Never` and is retried with back-off
//! under `OnFailure`/`Always`; CrashLoopBackOff with growing delays, restart
//! policies and the pod phase, a failing liveness probe restarting its
//! container, readiness probes (run inside the pod's network namespace)
//! driving `ready` and the pod's `Ready` condition. Every test cleans up
//! also after a failed assertion ([`common::PodEnv`], [`common::PodGuard`]).
//!
//! Length: over 600 lines because one suite (pod supervision: restarts,
//! probes, lifecycle hooks); each test a scenario.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bramble_agent::lifecycle::backoff::Backoff;
use bramble_agent::pod::{PodEvent, PodInputs, PodOptions, PodRecord, RunPhase, RunningPod};
use bramble_api::objects::pod_status::{ContainerStatus, PodStatus};
use common::{Backend, PodEnv, PodGuard, process_exists};

/// Back-off of 200 ms doubling to 5 s.
fn options() -> PodOptions {
    PodOptions {
        backoff: Backoff::new(
            Duration::from_millis(200),
            Duration::from_secs(5),
            Duration::from_secs(600),
        ),
        ..Default::default()
    }
}

/// The host directory of the pod's `shared` emptyDir.
fn shared_of(pod: &RunningPod) -> PathBuf {
    pod.volumes()
        .unwrap()
        .host_path("shared")
        .unwrap()
        .to_path_buf()
}

fn shared_dir(pod: &mut PodGuard) -> PathBuf {
    shared_of(pod.pod())
}

fn start(env: &PodEnv, yaml: &str) -> PodGuard {
    PodGuard(Some(
        env.start_with(yaml, &PodInputs::default(), &options())
            .expect("start pod"),
    ))
}

/// Stops the pod and checks that nothing is left (the run tmpfs aside).
fn stop_and_check(env: &PodEnv, mut pod: PodGuard) {
    let p = pod.0.take().unwrap();
    let dir = p.dir().to_path_buf();
    let netns = p.netns_path().unwrap().to_path_buf();
    p.stop(Duration::from_secs(1)).expect("stop pod");
    assert!(!dir.exists(), "{} left", dir.display());
    assert!(!netns.exists(), "{} left", netns.display());
    let run = env
        .dirs
        .netns
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mounts: Vec<String> = env.mounts().into_iter().filter(|m| *m != run).collect();
    assert_eq!(mounts, Vec::<String>::new());
    assert_eq!(env.container_cgroups(), Vec::<PathBuf>::new());
}

fn init<'s>(s: &'s PodStatus, name: &str) -> &'s ContainerStatus {
    s.init_container_statuses
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no init status for {name}: {s:#?}"))
}

/// `running`, `waiting:<reason>` or `terminated:<reason>`.
fn state(c: &ContainerStatus) -> String {
    let st = c.state.as_ref().expect("a state");
    if st.running.is_some() {
        "running".into()
    } else if let Some(w) = &st.waiting {
        format!("waiting:{}", w.reason.as_deref().unwrap_or(""))
    } else if let Some(t) = &st.terminated {
        format!("terminated:{}", t.reason.as_deref().unwrap_or(""))
    } else {
        "none".into()
    }
}

/// The `Initialized` condition: (status, reason).
fn initialized(s: &PodStatus) -> (String, Option<String>) {
    let c = s
        .conditions
        .iter()
        .find(|c| c.type_ == "Initialized")
        .unwrap_or_else(|| panic!("no Initialized condition: {s:#?}"));
    (c.status.clone(), c.reason.clone())
}

/// The first time `container` had an event matching `what`.
fn event_time(events: &[(Instant, PodEvent)], what: impl Fn(&PodEvent) -> bool) -> Option<Instant> {
    events.iter().find(|(_, e)| what(e)).map(|(t, _)| *t)
}

/// A pod with an emptyDir `shared` mounted at `/shared` in every container.
fn shared_pod(name: &str, policy: &str, inits: &[(&str, &str)], apps: &[(&str, &str)]) -> String {
    let list = |cs: &[(&str, &str)]| {
        cs.iter()
            .map(|(n, script)| {
                format!(
                    "  - name: {n}\n    image: busybox\n    command: [sh, -c, {script:?}]\n    \
                     volumeMounts: [{{name: shared, mountPath: /shared}}]\n"
                )
            })
            .collect::<String>()
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}-{pid}}}\nspec:\n  \
         restartPolicy: {policy}\n  terminationGracePeriodSeconds: 1\n  \
         volumes: [{{name: shared, emptyDir: {{}}}}]\n  initContainers:\n{}  containers:\n{}",
        list(inits),
        list(apps),
        pid = std::process::id(),
    )
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

fn crashing_container_backs_off_with_growing_delays(backend: Backend) {
    let env = PodEnv::new("crash", backend);
    let pid = std::process::id();
    let mut pod = start(
        &env,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: crash-{pid}}}
spec:
  restartPolicy: Always
  containers:
  - {{name: app, image: busybox, command: [sh, -c, "exit 1"]}}
"#
        ),
    );
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
    stop_and_check(&env, pod);
}

fn restart_policy_never_and_on_failure_end_the_pod(backend: Backend) {
    let env = PodEnv::new("policy", backend);
    let pid = std::process::id();
    let mut never = start(
        &env,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: never-{pid}}}
spec:
  restartPolicy: Never
  containers:
  - {{name: app, image: busybox, command: [sh, -c, "exit 3"]}}
"#
        ),
    );
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
    stop_and_check(&env, never);

    let mut on_failure = start(
        &env,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: onfail-{pid}}}
spec:
  restartPolicy: OnFailure
  containers:
  - {{name: app, image: busybox, command: [sh, -c, "exit 0"]}}
"#
        ),
    );
    let (status, _) = on_failure.tick_until(Duration::from_secs(10), |s, _| {
        s.phase.as_deref() == Some("Succeeded")
    });
    let c = container(&status, "app");
    let t = c.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(c.restart_count, 0);
    stop_and_check(&env, on_failure);
}

fn failing_liveness_probe_restarts_the_container(backend: Backend) {
    let env = PodEnv::new("live", backend);
    let pid = std::process::id();
    let mut pod = start(
        &env,
        &format!(
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
        ),
    );
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
    stop_and_check(&env, pod);
}

fn readiness_probes_drive_ready_and_the_pod_condition(backend: Backend) {
    let env = PodEnv::new("ready", backend);
    let pid = std::process::id();
    let mut pod = start(
        &env,
        &format!(
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
        ),
    );
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
    stop_and_check(&env, pod);
}

fn failing_exec_liveness_probe_restarts_the_container(backend: Backend) {
    let env = PodEnv::new("execlive", backend);
    let pid = std::process::id();
    let mut pod = start(
        &env,
        &format!(
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
      initialDelaySeconds: 1
      periodSeconds: 1
      failureThreshold: 1
      timeoutSeconds: 2
"#
        ),
    );
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
    stop_and_check(&env, pod);
}

fn exec_readiness_probes_drive_ready_and_a_timeout_fails(backend: Backend) {
    let env = PodEnv::new("execready", backend);
    let pid = std::process::id();
    let mut pod = start(
        &env,
        &format!(
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
        ),
    );
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
    stop_and_check(&env, pod);
}

fn init_containers_run_in_order_and_start_does_not_wait(backend: Backend) {
    let env = PodEnv::new("initorder", backend);
    let yaml = shared_pod(
        "initorder",
        "Never",
        &[
            // Held until the test creates /shared/go (at most 60 s, so
            // that a start that waited for it returns, and fails below).
            (
                "slow",
                "i=0; until [ -e /shared/go ] || [ $i -ge 60 ]; do sleep 1; i=$((i+1)); done; \
                 echo slow >> /shared/order",
            ),
            ("fast", "echo fast >> /shared/order"),
        ],
        &[(
            "app",
            "echo app >> /shared/order; [ \"$(cat /shared/order)\" = \"$(printf 'slow\\nfast\\napp')\" ]",
        )],
    );
    let mut pod = start(&env, &yaml);
    let shared = shared_dir(&mut pod);
    // Start did not wait for the slow init container: it is still held,
    // nothing is written yet.
    assert_eq!(
        std::fs::read_to_string(shared.join("order")).ok(),
        None,
        "start returned only after the slow init container wrote its line"
    );
    assert_eq!(pod.pod().phase(), RunPhase::Pending);
    let s = pod.pod().status(SystemTime::now());
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(state(init(&s, "slow")), "running");
    assert_eq!(state(init(&s, "fast")), "waiting:PodInitializing");
    assert_eq!(state(container(&s, "app")), "waiting:PodInitializing");
    assert_eq!(
        initialized(&s),
        ("False".into(), Some("ContainersNotInitialized".into()))
    );
    let msg = s.conditions[0].message.clone().unwrap_or_default();
    assert_eq!(msg, "containers with incomplete status: [slow fast]");

    let released = Instant::now();
    std::fs::write(shared.join("go"), "").unwrap();
    let (s, events) = pod.tick_until(Duration::from_secs(30), |s, _| {
        // The app container is never created before both init containers
        // completed, and the pod is Pending until then.
        let inits_done = ["slow", "fast"]
            .iter()
            .all(|n| state(init(s, n)) == "terminated:Completed");
        if !inits_done {
            assert_eq!(state(container(s, "app")), "waiting:PodInitializing");
            assert_eq!(s.phase.as_deref(), Some("Pending"));
            assert_eq!(initialized(s).0, "False");
        }
        s.phase.as_deref() == Some("Succeeded")
    });
    assert_eq!(state(container(&s, "app")), "terminated:Completed");
    for n in ["slow", "fast"] {
        assert_eq!(init(&s, n).restart_count, 0);
    }
    assert_eq!(initialized(&s).0, "True");
    let started = |name: &'static str| {
        event_time(
            &events,
            |e| matches!(e, PodEvent::Started { container } if container == name),
        )
        .unwrap_or_else(|| panic!("{name} never started: {events:?}"))
    };
    let exited = |name: &'static str| {
        event_time(
            &events,
            |e| matches!(e, PodEvent::Exited { container, .. } if container == name),
        )
        .unwrap_or_else(|| panic!("{name} never exited: {events:?}"))
    };
    assert!(exited("slow") <= started("fast"));
    assert!(exited("fast") <= started("app"));
    assert!(
        started("app") >= released,
        "app started before the slow init container was released: {events:?}"
    );
    assert_eq!(
        std::fs::read_to_string(shared.join("order")).unwrap(),
        "slow\nfast\napp\n"
    );
    stop_and_check(&env, pod);
}

fn failing_init_container_is_retried_with_back_off_until_it_succeeds(backend: Backend) {
    for policy in ["OnFailure", "Always"] {
        let env = PodEnv::new(&format!("initretry-{}", policy.to_lowercase()), backend);
        let yaml = shared_pod(
            "initretry",
            policy,
            &[("gate", "echo try >> /shared/tries; test -f /shared/go")],
            &[("app", "echo app-ran; exec sleep 1000")],
        );
        let mut pod = start(&env, &yaml);
        let shared = shared_dir(&mut pod);
        let mut backoff_seen = false;
        let (s, events) = pod.tick_until(Duration::from_secs(30), |s, ev| {
            let gate = init(s, "gate");
            if state(gate) == "waiting:CrashLoopBackOff" {
                backoff_seen = true;
                let last = gate
                    .last_state
                    .as_ref()
                    .unwrap()
                    .terminated
                    .as_ref()
                    .unwrap();
                assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
                assert_eq!(s.phase.as_deref(), Some("Pending"), "{policy}");
                assert_eq!(
                    initialized(s),
                    ("False".into(), Some("ContainersNotInitialized".into()))
                );
                assert_eq!(state(container(s, "app")), "waiting:PodInitializing");
            }
            let failures = ev
                .iter()
                .filter(
                    |(_, e)| matches!(e, PodEvent::Exited { container, .. } if container == "gate"),
                )
                .count();
            if failures == 2 && !shared.join("go").exists() {
                std::fs::write(shared.join("go"), "").unwrap();
            }
            state(container(s, "app")) == "running"
        });
        assert!(backoff_seen, "{policy}");
        let gate = init(&s, "gate");
        assert_eq!(state(gate), "terminated:Completed", "{policy}");
        assert_eq!(gate.restart_count, 2, "{policy}");
        let last = gate
            .last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap();
        assert_eq!(last.exit_code, 1);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(initialized(&s).0, "True");
        assert_eq!(container(&s, "app").restart_count, 0);
        let delays: Vec<Duration> = events
            .iter()
            .filter_map(|(_, e)| match e {
                PodEvent::BackOff { container, delay } if container == "gate" => Some(*delay),
                _ => None,
            })
            .collect();
        assert_eq!(delays, [200, 400].map(Duration::from_millis), "{policy}");
        // Each retry waited for its back-off after the failure.
        let backoffs: Vec<Instant> = events
            .iter()
            .filter(|(_, e)| matches!(e, PodEvent::BackOff { .. }))
            .map(|(t, _)| *t)
            .collect();
        let retries = restarts(&events);
        assert_eq!(retries.len(), 2, "{events:?}");
        for i in 0..2 {
            assert!(retries[i] - backoffs[i] >= delays[i], "{events:?}");
        }
        let tries = std::fs::read_to_string(shared.join("tries")).unwrap();
        assert_eq!(tries, "try\ntry\ntry\n");
        stop_and_check(&env, pod);
    }
}

fn a_pod_adopted_while_an_init_container_runs_carries_on(backend: Backend) {
    let env = PodEnv::new("initadopt", backend);
    let yaml = shared_pod(
        "initadopt",
        "OnFailure",
        &[
            ("first", "echo first >> /shared/order"),
            (
                "gate",
                "until [ -f /shared/go ]; do sleep 0.05; done; echo gate >> /shared/order",
            ),
        ],
        &[("app", "echo app >> /shared/order; exec sleep 1000")],
    );
    let mut pod = start(&env, &yaml);
    pod.tick_until(Duration::from_secs(30), |s, _| {
        state(init(s, "gate")) == "running"
    });
    // The old agent goes away (its pod is dropped, not stopped) and leaves
    // its record; a new agent adopts the pod from it.
    let json = serde_json::to_string(&pod.pod().to_record()).unwrap();
    let old = pod.0.take().unwrap();
    let shared = shared_of(&old);
    let old_gate = old.container("gate").unwrap().handle.clone();
    drop(old);
    let record: PodRecord = serde_json::from_str(&json).unwrap();
    let rt2 = env.fresh_runtime();
    let mut pod = PodGuard(Some(
        RunningPod::adopt(rt2.clone(), record, &options()).expect("adopt"),
    ));
    let s = pod.pod().status(SystemTime::now());
    assert_eq!(state(init(&s, "first")), "terminated:Completed");
    assert_eq!(state(init(&s, "gate")), "running");
    assert_eq!(state(container(&s, "app")), "waiting:PodInitializing");
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    std::fs::write(shared.join("go"), "").unwrap();
    let order = shared.join("order");
    let (s, _) = pod.tick_until(Duration::from_secs(30), |s, _| {
        state(container(s, "app")) == "running"
            && std::fs::read_to_string(&order).is_ok_and(|o| o.ends_with("app\n"))
    });
    // The gate's exit happened under the new agent, which is not its parent:
    // status unknown, so it ran again (init containers are idempotent); the
    // completed one before it did not.
    let gate = init(&s, "gate");
    assert_eq!(state(gate), "terminated:Completed");
    assert_eq!(gate.restart_count, 1);
    let last = gate
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!(last.reason.as_deref(), Some("ContainerStatusUnknown"));
    assert_eq!(init(&s, "first").restart_count, 0);
    let order = std::fs::read_to_string(&order).unwrap();
    assert_eq!(order, "first\ngate\ngate\napp\n");
    stop_and_check(&env, pod);
    // The old runtime, the gate's parent, reaps it.
    let _ = env.runtime.poll_exit(&old_gate);
    assert!(
        !process_exists(old_gate.pid),
        "process {} left",
        old_gate.pid
    );
}

both_backends!(
    init_containers_run_in_order_and_start_does_not_wait,
    failing_init_container_is_retried_with_back_off_until_it_succeeds,
    a_pod_adopted_while_an_init_container_runs_carries_on,
    crashing_container_backs_off_with_growing_delays,
    restart_policy_never_and_on_failure_end_the_pod,
    failing_liveness_probe_restarts_the_container,
    readiness_probes_drive_ready_and_the_pod_condition,
    failing_exec_liveness_probe_restarts_the_container,
    exec_readiness_probes_drive_ready_and_a_timeout_fails,
);
