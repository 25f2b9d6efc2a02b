//! The `bramble-agent` binary with real containers, on both backends:
//! `run -f pod.yaml` brings a two-container pod up; after `kill -9` of the
//! agent the containers keep running and keep logging, and a restarted
//! agent adopts them (same pids, no second copy, restart count 0), removes
//! what a crash left of a pod it no longer has a record of, and a final
//! `reset` leaves no process, cgroup, mount, namespace file, FIFO or state
//! behind. Logs are CRI lines written through the agent's FIFO pump.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bramble_agent::runtime::cgroup::CgroupLayout;
use bramble_tests::eventually;
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_bramble-agent");
/// How long a wait for the agent may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// A value that must never be found on disk (only in tmpfs).
const SECRET: &str = "s3cr3t-9f1c2e7a";

const POD: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {token: s3cr3t-9f1c2e7a}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: server
    image: busybox
    command: [sleep, "100000"]
  - name: talker
    image: busybox
    env:
    - name: TOKEN
      valueFrom: {secretKeyRef: {name: creds, key: token}}
    command: [sh, -c, 'echo hello-from-talker; echo to-stderr >&2; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done']
"#;

const EXTRA: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: extra}
spec:
  containers:
  - name: idle
    image: busybox
    command: [sleep, "100000"]
"#;

/// One test's agent world; `reset` + forced cleanup on drop.
struct World {
    tmp: tempfile::TempDir,
    runtime: &'static str,
    cgroup_parent: String,
    children: Vec<Child>,
}

impl World {
    fn new(name: &str, runtime: &'static str) -> World {
        bramble_tests::require_root("containers");
        let tmp = tempfile::Builder::new()
            .prefix(&format!("bramble-agentproc-{name}-"))
            .tempdir()
            .unwrap();
        let archive = tmp.path().join("busybox.tar");
        bramble_tests::busybox::busybox_image()
            .expect("busybox fixture")
            .write_archive(&archive, "busybox:latest")
            .unwrap();
        std::fs::write(tmp.path().join("pod.yaml"), POD).unwrap();
        std::fs::write(tmp.path().join("extra.yaml"), EXTRA).unwrap();
        World {
            cgroup_parent: format!("/bramble-test-agent-{name}-{}", std::process::id()),
            tmp,
            runtime,
            children: Vec::new(),
        }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn run_dir(&self) -> PathBuf {
        self.dir().join("run")
    }

    fn node_args(&self, cmd: &mut Command) {
        cmd.arg("--data-dir")
            .arg(self.dir().join("data"))
            .arg("--run-dir")
            .arg(self.run_dir())
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--runtime")
            .arg(self.runtime);
    }

    /// Starts `run` with the given pod files; returns a line receiver.
    fn start(&mut self, files: &[&str]) -> mpsc::Receiver<Value> {
        self.start_with(files, &[])
    }

    fn start_with(&mut self, files: &[&str], extra: &[&str]) -> mpsc::Receiver<Value> {
        let mut cmd = Command::new(AGENT);
        cmd.arg("run").args(extra);
        self.node_args(&mut cmd);
        for f in files {
            cmd.arg("-f").arg(self.dir().join(f));
        }
        cmd.arg("--image")
            .arg(format!(
                "busybox={}",
                self.dir().join("busybox.tar").display()
            ))
            .arg("--tick-ms")
            .arg("50")
            .env("BRAMBLE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir().join("agent.log"))
                    .unwrap(),
            );
        let mut child = cmd.spawn().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        self.children.push(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(v) = serde_json::from_str(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        rx
    }

    fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir().join("agent.log")).unwrap_or_default()
    }

    fn reset(&self) -> std::process::Output {
        let mut cmd = Command::new(AGENT);
        cmd.arg("reset");
        self.node_args(&mut cmd);
        cmd.output().unwrap()
    }

    fn record(&self, pod: &str) -> Value {
        let p = self
            .run_dir()
            .join("pods")
            .join(format!("default_{pod}.json"));
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
    }

    fn cgroups(&self) -> Vec<String> {
        CgroupLayout::detect()
            .unwrap()
            .children(&self.cgroup_parent)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let out = self.reset();
        if !out.status.success() {
            eprintln!("cleanup reset: {}", String::from_utf8_lossy(&out.stderr));
        }
        let _ = rustix::mount::unmount(self.run_dir(), rustix::mount::UnmountFlags::DETACH);
        if let Ok(layout) = CgroupLayout::detect() {
            for h in &layout.hierarchies {
                let _ = std::fs::remove_dir(h.join(self.cgroup_parent.trim_start_matches('/')));
            }
        }
    }
}

/// Waits until the latest status of every pod in `pods` satisfies `ok`;
/// returns those statuses in order.
fn wait_status(
    rx: &mpsc::Receiver<Value>,
    pods: &[&str],
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut latest = std::collections::BTreeMap::new();
    loop {
        let done: Vec<Value> = pods
            .iter()
            .filter_map(|p| latest.get(*p).filter(|s| ok(s)).cloned())
            .collect();
        if done.len() == pods.len() {
            return done;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if v["status"].is_object() => {
                latest.insert(
                    v["pod"].as_str().unwrap_or("").to_string(),
                    v["status"].clone(),
                );
            }
            Ok(_) => {}
            Err(e) => panic!("no status of {pods:?} with {what}: {e}; latest: {latest:?}"),
        }
    }
}

/// The next line for which `ok` holds.
fn wait_line(rx: &mpsc::Receiver<Value>, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if ok(&v) => return v,
            Ok(_) => {}
            Err(e) => panic!("no such line: {e}"),
        }
    }
}

fn all_running(status: &Value) -> bool {
    status["phase"] == "Running"
        && status["containerStatuses"]
            .as_array()
            .is_some_and(|cs| cs.iter().all(|c| c["state"]["running"].is_object()))
}

fn pids(record: &Value) -> Vec<(String, i64)> {
    record["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["handle"]["pid"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
}

fn ticks(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" stdout F tick "))
        .count()
}

fn kill9_restart_adopts_and_reset_leaves_nothing(runtime: &'static str) {
    let mut w = World::new(runtime, runtime);
    let rx = w.start_with(&["pod.yaml", "extra.yaml"], &["--usage-every", "1"]);
    wait_status(
        &rx,
        &["default_web", "default_extra"],
        "all running",
        all_running,
    );
    // Per-pod and per-container usage from the cgroups.
    let usage = wait_line(&rx, |v| v["pod"] == "default_web" && v["usage"].is_object());
    assert!(
        usage["usage"]["memoryBytes"].as_u64().unwrap() > 0,
        "{usage}"
    );
    let names: Vec<&str> = usage["usage"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["server", "talker"], "{usage}");
    let before = pids(&w.record("web"));
    let extra = pids(&w.record("extra"));
    assert_eq!(before.len(), 2);
    for (_, pid) in before.iter().chain(&extra) {
        assert!(alive(*pid), "container pid {pid} not running");
    }
    let log = w.dir().join("data/logs/default_web/talker.log");
    eventually("the talker's first lines", WAIT, || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains(" stdout F hello-from-talker"))
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(" stderr F to-stderr"), "{text}");
    // The Secret is in the container's env, the runtime state and the pod
    // record, all on the agent's tmpfs run dir, and in no file on disk.
    assert!(
        common::is_mem_fs(&w.run_dir()),
        "the agent's run dir is not on tmpfs"
    );
    let mut hits = common::files_containing(&w.dir().join("data"), SECRET.as_bytes());
    hits.extend(common::files_containing(&w.run_dir(), SECRET.as_bytes()));
    assert!(hits.is_empty(), "secret on disk in {hits:?}");

    // kill -9: the containers do not notice.
    let mut agent = w.children.pop().unwrap();
    agent.kill().unwrap();
    agent.wait().unwrap();
    for (_, pid) in before.iter().chain(&extra) {
        assert!(alive(*pid), "container pid {pid} died with the agent");
    }
    // A crash that lost the record of `extra`: all of it is a leftover now.
    std::fs::remove_file(w.run_dir().join("pods/default_extra.json")).unwrap();
    let ticks_while_down = ticks(&log);
    std::thread::sleep(Duration::from_millis(1500));

    let rx = w.start(&["pod.yaml"]);
    let status = wait_status(&rx, &["default_web"], "all running", all_running).remove(0);
    assert_eq!(
        pids(&w.record("web")),
        before,
        "containers were not adopted"
    );
    for c in status["containerStatuses"].as_array().unwrap() {
        assert_eq!(c["restartCount"], 0, "{c}");
    }
    let log_text = w.agent_log();
    assert!(log_text.contains("pod adopted"), "{log_text}");
    // Exactly the two adopted containers exist: runtime state and cgroups.
    let mut ids: Vec<String> = ["server", "talker"]
        .iter()
        .map(|c| format!("default_web_{c}"))
        .collect();
    ids.sort();
    eventually("the extra pod's cgroups to go", WAIT, || {
        let now = w.cgroups();
        if now == ids {
            Ok(())
        } else {
            Err(format!("cgroups {now:?}"))
        }
    });
    for (_, pid) in &extra {
        eventually("the extra pod's process to end", WAIT, || !alive(*pid));
    }
    assert!(!w.dir().join("data/pods/default_extra").exists());
    assert!(common::mountinfo_mentions(&w.dir().join("data/pods/default_extra")).is_empty());
    assert!(!w.run_dir().join("netns/default_extra").exists());
    assert!(!w.run_dir().join("fifo/default_extra_idle.out").exists());
    // Output written while no agent ran, and after, reaches the log.
    eventually("ticks logged after the restart", WAIT, || {
        let n = ticks(&log);
        if n > ticks_while_down + 1 {
            Ok(())
        } else {
            Err(format!("{n} ticks, {ticks_while_down} before the restart"))
        }
    });

    // SIGTERM: the agent exits, the pods stay.
    let mut agent = w.children.pop().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(agent.wait().unwrap().success());
    for (_, pid) in &before {
        assert!(alive(*pid));
    }

    let out = w.reset();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (_, pid) in &before {
        eventually("pod processes to end", WAIT, || !alive(*pid));
    }
    assert!(w.cgroups().is_empty(), "cgroups left: {:?}", w.cgroups());
    assert!(
        common::mountinfo_mentions(w.dir()).is_empty(),
        "{:?}",
        common::mountinfo_mentions(w.dir())
    );
    let left: Vec<_> = std::fs::read_dir(w.dir().join("data/pods"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "pod dirs left: {left:?}");
    assert!(
        !bramble_images::rootfs::is_mount_point(&w.run_dir()).unwrap(),
        "reset unmounts the agent's tmpfs"
    );
    // The run dir was a tmpfs of the agent's, unmounted by reset: what
    // remains on disk under it is nothing but empty directories.
    assert!(log.exists(), "logs are kept");
}

#[test]
fn libcontainer_kill9_restart_adopts_and_reset_leaves_nothing() {
    kill9_restart_adopts_and_reset_leaves_nothing("libcontainer");
}

#[test]
fn runc_kill9_restart_adopts_and_reset_leaves_nothing() {
    kill9_restart_adopts_and_reset_leaves_nothing("runc");
}
