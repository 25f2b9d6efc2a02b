//! No pod waits for another (root, real containers): while a pod that
//! ignores SIGTERM spends its grace period stopping, while one pod's
//! runtime call hangs, while one pod's image is still coming, while one
//! pod's probe takes its time, another pod starts and runs. Each is shown by
//! an outcome: the second pod is Running while the first one's process (its
//! runtime call, its image fetch, its probe) is still under way.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bramble_agent::node::{Node, NodeDirs, NodeEvent, Waker};
use bramble_agent::pod::{ImageSource, PodInputs, PodOptions};
use bramble_agent::runtime::{OciBinaryOptions, OciBinaryRuntime, Runtime};
use bramble_api::objects::pod::Pod;
use bramble_api::objects::pod_status::PodStatus;
use common::{Backend, PodEnv, fixture_images, process_exists};

const WAIT: Duration = Duration::from_secs(60);

fn pod(name: &str, grace: u32, script: &str) -> Pod {
    serde_yaml_ng::from_str(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, uid: u-{name}}}
spec:
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "{script}"]
"#
    ))
    .expect("pod yaml")
}

/// Stops the node's pods on drop, also after a failed assertion.
struct NodeGuard(Node);

impl Drop for NodeGuard {
    fn drop(&mut self) {
        for e in self.0.stop_all() {
            if let NodeEvent::StopFailed { pod, error } = e {
                eprintln!("cleanup: stopping {pod}: {error}");
            }
        }
    }
}

fn open(env: &PodEnv, runtime: Arc<dyn Runtime>) -> NodeGuard {
    let dirs = NodeDirs {
        pods: env.dirs.clone(),
        records: env.path().join("run/pods"),
        cgroup_parent: env.cgroup_parent.clone(),
        volumes: env.path().join("volumes"),
    };
    let (node, _) = Node::open(
        runtime,
        Arc::new(fixture_images()),
        dirs,
        PodOptions::default(),
        Waker::none(),
    )
    .expect("opening the node");
    NodeGuard(node)
}

fn running(s: &PodStatus) -> bool {
    s.phase.as_deref() == Some("Running")
        && s.container_statuses
            .iter()
            .all(|c| c.state.as_ref().is_some_and(|st| st.running.is_some()))
}

/// Ticks until the pod `id` is Running; returns the events seen meanwhile.
fn until_running(node: &mut Node, id: &str, seen: &mut BTreeMap<String, PodStatus>) {
    let mut events = Vec::new();
    bramble_tests::eventually(format!("{id} running"), WAIT, || {
        let (statuses, ev) = node.tick(Instant::now());
        events.extend(ev);
        seen.extend(statuses);
        match seen.get(id) {
            Some(s) if running(s) => Ok(()),
            other => Err(format!("status {other:?}, events {events:?}")),
        }
    });
}

/// The host pid of the pod's container, from its record.
fn container_pid(env: &PodEnv, id: &str) -> i32 {
    let path = env.path().join(format!("run/pods/{id}.json"));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("pod record")).expect("record json");
    record["containers"][0]["handle"]["pid"]
        .as_i64()
        .expect("a pid") as i32
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
}

#[test]
fn a_pod_starts_while_another_spends_its_grace_period() {
    let env = PodEnv::new("nostall", Backend::Libcontainer);
    let mut node = open(&env, env.runtime.clone());
    let mut seen = BTreeMap::new();
    let stubborn = pod("stubborn", 30, "trap '' TERM; while true; do sleep 1; done");
    node.0.apply(&[stubborn], &PodInputs::default());
    until_running(&mut node.0, "default_stubborn", &mut seen);
    let pid = container_pid(&env, "default_stubborn");

    // Deleted and replaced at the same moment: the stop (SIGTERM ignored,
    // 30 s of grace) runs while the new pod starts.
    let fresh = pod("fresh", 1, "exec sleep 1000");
    let events = node.0.apply(&[fresh], &PodInputs::default());
    assert!(events.is_empty(), "{events:?}");
    until_running(&mut node.0, "default_fresh", &mut seen);
    assert!(
        alive(pid),
        "the fresh pod ran only after the stubborn one was gone"
    );
    assert_eq!(node.0.pod_ids(), ["default_fresh"]);

    // The stubborn pod's stop ends when its process does.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    bramble_tests::eventually("the stubborn pod stopped", WAIT, || {
        let (_, events) = node.0.tick(Instant::now());
        events
            .iter()
            .any(|e| matches!(e, NodeEvent::Stopped { pod } if pod == "default_stubborn"))
            .then_some(())
    });
    assert!(!process_exists(pid) || !alive(pid));
}

/// What a hung runtime call of this test process is: `sleep` with this
/// argument.
fn hang_mark() -> String {
    format!("86400.{}", std::process::id())
}

/// A runc that hangs on `create` of a container whose id (its last
/// argument) holds `hang` (it becomes `sleep HANG_MARK`), and is runc for
/// everything else.
fn hanging_runc(dir: &Path) -> PathBuf {
    let runc = which("runc");
    let path = dir.join("runc-hangs");
    let script = format!(
        "#!/bin/sh\nfor id; do :; done\ncase \"$id\" in *hang*) case \" $* \" in *\" create \"*) exec sleep {} ;; esac ;; esac\nexec {} \"$@\"\n",
        hang_mark(),
        runc.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn which(binary: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{binary} not on PATH (apt install {binary})"))
}

/// Ends the hung runtime calls on drop (declared after the node, so a
/// failed assertion does not leave the node's stop waiting on them).
struct EndHungCalls;

impl Drop for EndHungCalls {
    fn drop(&mut self) {
        kill_all(&hung_calls());
    }
}

/// The pids of the hung runtime calls.
fn hung_calls() -> Vec<i32> {
    let want = format!("sleep\0{}\0", hang_mark()).into_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn a_pod_starts_while_another_pods_runtime_call_hangs() {
    let env = PodEnv::new("nostall-rt", Backend::Runc);
    let wrapper = hanging_runc(env.path());
    let mut options = OciBinaryOptions::runc(
        env.path().join("run/runtime-wrapped"),
        env.cgroup_parent.clone(),
    );
    options.binary = wrapper;
    let runtime: Arc<dyn Runtime> = Arc::new(OciBinaryRuntime::new(options).expect("runtime"));
    let mut node = open(&env, runtime);
    let _end_hung = EndHungCalls;
    let mut seen = BTreeMap::new();
    let hangs = pod("hang", 1, "exec sleep 1000");
    let fine = pod("fine", 1, "exec sleep 1000");
    node.0
        .apply(std::slice::from_ref(&hangs), &PodInputs::default());
    bramble_tests::eventually("runc create of the hanging pod to hang", WAIT, || {
        (!hung_calls().is_empty()).then_some(())
    });
    node.0.apply(&[hangs, fine], &PodInputs::default());
    until_running(&mut node.0, "default_fine", &mut seen);
    let hung = hung_calls();
    assert!(
        !hung.is_empty(),
        "the fine pod ran only after the hanging call ended"
    );
    assert!(!seen.contains_key("default_hang") || !running(&seen["default_hang"]));
    // The hung call fails when killed: that pod's start fails, alone.
    kill_all(&hung);
    bramble_tests::eventually("the hanging pod's start to fail", WAIT, || {
        let (_, events) = node.0.tick(Instant::now());
        events
            .iter()
            .any(|e| matches!(e, NodeEvent::StartFailed { pod, .. } if pod == "default_hang"))
            .then_some(())
    });
}

fn kill_all(pids: &[i32]) {
    for pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn a_pod_starts_while_another_pods_image_is_still_coming() {
    let env = PodEnv::new("nostall-image", Backend::Libcontainer);
    // The image `slow:1` arrives when the test says so; others are here.
    let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let images = {
        let (gate, asked) = (gate.clone(), asked.clone());
        let fixture = fixture_images();
        move |reference: &str| {
            if reference == "slow:1" {
                asked.store(true, std::sync::atomic::Ordering::SeqCst);
                let (open, cv) = &*gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
            }
            fixture.resolve(reference)
        }
    };
    let dirs = NodeDirs {
        pods: env.dirs.clone(),
        records: env.path().join("run/pods"),
        cgroup_parent: env.cgroup_parent.clone(),
        volumes: env.path().join("volumes"),
    };
    let (node, _) = Node::open(
        env.runtime.clone(),
        Arc::new(images),
        dirs,
        PodOptions::default(),
        Waker::none(),
    )
    .expect("opening the node");
    let mut node = NodeGuard(node);
    let open_gate = || {
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    };
    let mut slow = pod("slow", 1, "exec sleep 1000");
    slow.spec.containers[0].image = "slow:1".into();
    let cached = pod("cached", 1, "exec sleep 1000");
    node.0
        .apply(&[slow.clone(), cached.clone()], &PodInputs::default());
    let mut seen = BTreeMap::new();
    until_running(&mut node.0, "default_cached", &mut seen);
    assert!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        "the slow image was never asked for"
    );
    assert!(
        !seen.contains_key("default_slow"),
        "the slow pod has a status before its image came: {seen:?}"
    );
    open_gate();
    until_running(&mut node.0, "default_slow", &mut seen);
}

#[test]
fn a_pod_starts_while_another_pods_probe_takes_its_time() {
    let env = PodEnv::new("nostall-probe", Backend::Libcontainer);
    let mut node = open(&env, env.runtime.clone());
    let token = format!("slow-probe-{}", std::process::id());
    let probed: Pod = serde_yaml_ng::from_str(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: probed, namespace: default, uid: u-probed}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "exec sleep 1000"]
    readinessProbe:
      exec: {{command: [sh, -c, "sleep 600; : {token}"]}}
      periodSeconds: 1
      timeoutSeconds: 600
"#
    ))
    .expect("pod yaml");
    node.0
        .apply(std::slice::from_ref(&probed), &PodInputs::default());
    bramble_tests::eventually("the slow probe running", WAIT, || {
        node.0.tick(Instant::now());
        (!bramble_tests::procs::processes_with(&token).is_empty()).then_some(())
    });
    let other = pod("other", 1, "exec sleep 1000");
    node.0.apply(&[probed, other], &PodInputs::default());
    let mut seen = BTreeMap::new();
    until_running(&mut node.0, "default_other", &mut seen);
    let probes = bramble_tests::procs::processes_with(&token);
    assert!(
        !probes.is_empty(),
        "the other pod ran only after the slow probe ended"
    );
    // The probe ends when its process does; then the pod can be stopped.
    kill_all(&probes);
}
