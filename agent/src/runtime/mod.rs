//! The container runtime seam: what the agent asks of a backend, and the
//! types it speaks.
//!
//! A [`Runtime`] runs one OCI container per [`ContainerConfig`] through the
//! lifecycle `create -> start -> (poll_exit | wait) -> [kill | stop] -> delete`.
//! The default backend is `libcontainer::LibcontainerRuntime` (youki's
//! libcontainer, in-process; 64-bit builds only); [`oci_binary::OciBinaryRuntime`]
//! drives an OCI runtime binary (runc; crun/youki by the same command line)
//! with the same spec, for armv7 where libcontainer does not build.
//! [`select`] maps the agent's `--runtime` flag onto one of them.
//!
//! Both are one implementation, the runtime [`core`] (the [`table`] of
//! containers and their lifecycle [`status`], reaping, delete with the OOM
//! counter, stats, adoption, leftovers, exec), over a [`driver::Driver`]
//! that does only what differs between them: create, start, kill and
//! delete a container, and read its recorded state.
//!
//! The calls are synchronous and short (a create is ~15 ms, the rest are
//! file reads and syscalls); [`Runtime::wait`] and [`Runtime::stop`] block up
//! to their timeout. The agent has no async runtime: `main.rs` owns one
//! backend as an `Arc<dyn Runtime>`, the node loop calls it on the main
//! thread and the session's exec RPC threads call it too (`spawn_exec`),
//! which is why the trait is object-safe and `Send + Sync`.
//!
//! A failed call is a [`RuntimeError`] naming the container; what a backend
//! found wrong itself (a runtime binary's exit and stderr, a lost exit
//! status) is its [`backend_error::BackendError`] source.
//!
//! Containers write their stdout/stderr into files or into the log pump's
//! FIFOs, opened read-write so a FIFO always has a reader (`crate::logs::pump`),
//! never into pipes only the agent holds, so they outlive an agent restart.

pub mod adopted;
pub mod backend_error;
pub mod cgroup;
pub mod config;
pub mod core;
pub mod driver;
pub mod exec;
// libcontainer 0.7 (and so the in-process backend, its clone helper and the
// v2 device filter only it applies) does not compile for 32-bit targets.
#[cfg(target_pointer_width = "64")]
pub mod clone_helper;
#[cfg(target_pointer_width = "64")]
pub mod devices_bpf;
#[cfg(target_pointer_width = "64")]
pub mod libcontainer;
pub mod oci_binary;
pub mod seccomp;
pub mod select;
pub mod spec;
pub mod status;
pub mod table;

use std::time::{Duration, Instant};

pub use backend_error::BackendError;
pub use config::{ContainerConfig, DeviceKind, DeviceSpec, MAX_ID_LEN, MountSpec};
pub use nix::sys::signal::Signal;
pub use oci_binary::{OciBinaryOptions, OciBinaryRuntime, RuncRuntime};

/// What a backend returns from [`Runtime::create`]: enough to address the
/// container in later calls. Plain data (the backend keeps its own state).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerHandle {
    pub id: String,
    /// Host pid of the container's init process.
    pub pid: i32,
}

/// How a container's init process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExitStatus {
    /// `exit(code)`.
    Code(i32),
    /// Killed by a signal (number).
    Signal(i32),
    /// It ended while this process was not its parent (an agent restarted
    /// since it was created), so nobody could read its exit status.
    Unknown,
}

impl ExitStatus {
    /// The exit code as Kubernetes and shells report it (`128 + signal` for
    /// a signal, e.g. 137 for SIGKILL).
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
            ExitStatus::Unknown => 137,
        }
    }

    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

/// A container's state as [`Runtime::poll_exit`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ContainerState {
    /// Created, waiting for [`Runtime::start`].
    Created,
    Running,
    Exited(ExitStatus),
}

/// What [`Runtime::delete`] found before removing the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteReport {
    /// The exit status, if the container had exited (deleting a running
    /// container kills it first; that exit is reported too).
    pub exit: Option<ExitStatus>,
    /// The kernel's OOM killer killed a process of the container (read from
    /// the cgroup before it was removed).
    pub oom_killed: bool,
}

/// Resource usage from the container's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerStats {
    /// Current memory usage (cgroup v1 `memory.usage_in_bytes`, v2
    /// `memory.current`).
    pub memory_bytes: u64,
    /// Total CPU time consumed, in nanoseconds.
    pub cpu_usage_ns: u64,
}

/// The fds an exec'd process gets as 0, 1 and 2 ([`Runtime::spawn_exec`]).
#[derive(Debug)]
pub struct ExecStdio {
    pub stdin: std::os::fd::OwnedFd,
    pub stdout: std::os::fd::OwnedFd,
    pub stderr: std::os::fd::OwnedFd,
}

/// How a command run by [`Runtime::exec`] ended, and what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its exit (`Signal(9)` when killed after the timeout).
    pub status: ExitStatus,
    /// The first [`exec::EXEC_OUTPUT_LIMIT`] bytes of its stdout.
    pub stdout: Vec<u8>,
    /// The first [`exec::EXEC_OUTPUT_LIMIT`] bytes of its stderr.
    pub stderr: Vec<u8>,
    /// More output than that was written (and discarded).
    pub truncated: bool,
    /// It ran past the timeout and was killed.
    pub timed_out: bool,
}

impl ExecOutput {
    /// The exit code as a shell reports it (`128 + signal`).
    pub fn exit_code(&self) -> i32 {
        self.status.code()
    }
}

/// Why a runtime call failed; every variant names the container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container {id:?}: invalid config: {reason}")]
    InvalidConfig { id: String, reason: String },
    #[error("container {id:?} already exists")]
    AlreadyExists { id: String },
    #[error("container {id:?} is not known to this runtime")]
    NotFound { id: String },
    #[error("container {id:?}: cannot {op} while {state}")]
    WrongState {
        id: String,
        op: &'static str,
        state: &'static str,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container {id:?}: {op} failed: {source}")]
    Backend {
        id: String,
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("container {id:?}: {op}: {source}")]
    Sys {
        id: String,
        op: &'static str,
        #[source]
        source: nix::Error,
    },
}

impl RuntimeError {
    /// For `map_err`: an I/O error with what was being done (`context`).
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let context = context.into();
        move |source| RuntimeError::Io { context, source }
    }
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// The seam between the agent and a container backend. See the module docs.
pub trait Runtime: Send + Sync {
    /// A short name for logs and metrics (`libcontainer`, `runc`).
    fn name(&self) -> &'static str;

    /// Creates the container (namespaces, cgroup, mounts, the init process
    /// waiting to exec). On error nothing is left behind.
    fn create(&self, config: &ContainerConfig) -> Result<ContainerHandle>;

    /// Lets a created container's init exec its process.
    fn start(&self, handle: &ContainerHandle) -> Result<()>;

    /// Non-blocking: is the container still running, or how did it end? An
    /// exit is remembered, so asking again gives the same answer.
    fn poll_exit(&self, handle: &ContainerHandle) -> Result<ContainerState>;

    /// Sends `signal` to the container's init process (which, as PID 1 of
    /// its namespace, ignores signals it has no handler for, except KILL).
    fn kill(&self, handle: &ContainerHandle, signal: Signal) -> Result<()>;

    /// Removes the container: kills it if it still runs, reads OOM from its
    /// cgroup, then removes cgroup, state and bundle.
    fn delete(&self, handle: &ContainerHandle) -> Result<DeleteReport>;

    /// Memory and CPU usage from the container's cgroup.
    fn stats(&self, handle: &ContainerHandle) -> Result<ContainerStats>;

    /// Runs `argv` inside the running container, as its own process runs
    /// (namespaces, cgroup, user, env, cwd, capabilities), stdin from
    /// `/dev/null`, and waits for it: its exit and its output (at most
    /// [`exec::EXEC_OUTPUT_LIMIT`] bytes of each stream). After `timeout`
    /// the process is killed (SIGKILL) and `timed_out` set. For exec probes
    /// (`bramble exec` and `kubectl exec` stream through
    /// [`Runtime::spawn_exec`]). See [`exec`].
    fn exec(
        &self,
        handle: &ContainerHandle,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput>;

    /// Starts `argv` inside the running container as [`Runtime::exec`]
    /// does, with `stdio` as its fds 0, 1 and 2, and returns its pid at once:
    /// a child of this process that the caller reaps (and kills). For
    /// `kubectl exec`, which streams output and feeds stdin.
    fn spawn_exec(
        &self,
        handle: &ContainerHandle,
        argv: &[String],
        stdio: ExecStdio,
    ) -> Result<i32>;

    /// Takes over a container an earlier agent process created (from the
    /// handle it recorded): from now on it is managed like one created
    /// here. Returns `Running` (or `Created`), or `Exited(Unknown)` if it
    /// ended while no agent ran (see [`adopted`]). `NotFound` if this
    /// runtime has no state for it.
    fn adopt(&self, handle: &ContainerHandle) -> Result<ContainerState>;

    /// Ids of every container in this runtime's state directories, managed
    /// here or not (to find what a crashed agent left behind).
    fn list(&self) -> Result<Vec<String>>;

    /// Removes container `id` that this process does not manage (a leftover
    /// of a crash): kills its processes, then removes its state, cgroup and
    /// bundle. Idempotent.
    fn remove_leftover(&self, id: &str) -> Result<()>;

    /// Blocks until the container exits or `timeout` passes (`None`: wait
    /// forever); `Ok(None)` on timeout. Sleeps on a pidfd of the init (woken
    /// by its exit), else polls [`Runtime::poll_exit`] with a backoff from
    /// 1 ms to 20 ms.
    fn wait(
        &self,
        handle: &ContainerHandle,
        timeout: Option<Duration>,
    ) -> Result<Option<ExitStatus>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut pause = Duration::from_millis(1);
        // A pidfd wakes us the moment the init ends (no polling delay); if
        // it cannot be had, or says "ended" before the backend does, naps
        // with a growing pause take over.
        let mut pidfd = rustix::process::Pid::from_raw(handle.pid).and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });
        loop {
            if let ContainerState::Exited(status) = self.poll_exit(handle)? {
                return Ok(Some(status));
            }
            let now = Instant::now();
            let nap = match deadline {
                Some(d) if now >= d => return Ok(None),
                Some(d) => d - now,
                None => Duration::from_secs(3600),
            };
            match &pidfd {
                Some(fd) => {
                    let nap = nap.min(Duration::from_millis(250));
                    let ts = rustix::event::Timespec {
                        tv_sec: nap.as_secs() as _,
                        tv_nsec: nap.subsec_nanos() as _,
                    };
                    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                    if matches!(rustix::event::poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
                        && !matches!(self.poll_exit(handle)?, ContainerState::Exited(_))
                    {
                        pidfd = None;
                    }
                }
                None => {
                    std::thread::sleep(nap.min(pause));
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            }
        }
    }

    /// SIGTERM, up to `grace` for the container to exit, then SIGKILL; returns
    /// how it ended. A container that already exited is not signalled.
    fn stop(&self, handle: &ContainerHandle, grace: Duration) -> Result<ExitStatus> {
        if let ContainerState::Exited(status) = self.poll_exit(handle)? {
            return Ok(status);
        }
        self.kill(handle, Signal::SIGTERM)?;
        if let Some(status) = self.wait(handle, Some(grace))? {
            tracing::debug!(id = %handle.id, ?status, "container stopped on SIGTERM");
            return Ok(status);
        }
        tracing::info!(id = %handle.id, grace_ms = grace.as_millis() as u64,
            "container ignored SIGTERM for its grace period; sending SIGKILL");
        self.kill(handle, Signal::SIGKILL)?;
        // SIGKILL cannot be ignored; the wait is bounded only by the kernel.
        Ok(self.wait(handle, None)?.unwrap_or(ExitStatus::Signal(9)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A recording fake: ignores SIGTERM when told to, exits on SIGKILL.
    struct Fake {
        ignore_term: bool,
        state: Mutex<ContainerState>,
        signals: Mutex<Vec<Signal>>,
    }

    impl Fake {
        fn new(ignore_term: bool) -> Fake {
            Fake {
                ignore_term,
                state: Mutex::new(ContainerState::Running),
                signals: Mutex::new(Vec::new()),
            }
        }
    }

    impl Runtime for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn create(&self, c: &ContainerConfig) -> Result<ContainerHandle> {
            Ok(ContainerHandle {
                id: c.id.clone(),
                pid: 1,
            })
        }
        fn start(&self, _: &ContainerHandle) -> Result<()> {
            Ok(())
        }
        fn poll_exit(&self, _: &ContainerHandle) -> Result<ContainerState> {
            Ok(*self.state.lock().unwrap())
        }
        fn kill(&self, _: &ContainerHandle, signal: Signal) -> Result<()> {
            self.signals.lock().unwrap().push(signal);
            if signal == Signal::SIGKILL || !self.ignore_term {
                *self.state.lock().unwrap() =
                    ContainerState::Exited(ExitStatus::Signal(signal as i32));
            }
            Ok(())
        }
        fn delete(&self, _: &ContainerHandle) -> Result<DeleteReport> {
            Ok(DeleteReport {
                exit: None,
                oom_killed: false,
            })
        }
        fn stats(&self, _: &ContainerHandle) -> Result<ContainerStats> {
            Ok(ContainerStats::default())
        }
        fn exec(&self, _: &ContainerHandle, _: &[String], _: Duration) -> Result<ExecOutput> {
            Ok(ExecOutput {
                status: ExitStatus::Code(0),
                stdout: Vec::new(),
                stderr: Vec::new(),
                truncated: false,
                timed_out: false,
            })
        }
        fn spawn_exec(&self, h: &ContainerHandle, _: &[String], _: ExecStdio) -> Result<i32> {
            Err(RuntimeError::NotFound { id: h.id.clone() })
        }
        fn adopt(&self, _: &ContainerHandle) -> Result<ContainerState> {
            Ok(*self.state.lock().unwrap())
        }
        fn list(&self) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
        fn remove_leftover(&self, _: &str) -> Result<()> {
            Ok(())
        }
    }

    fn handle() -> ContainerHandle {
        ContainerHandle {
            id: "c".into(),
            pid: 1,
        }
    }

    #[test]
    fn stop_escalates_to_kill_after_grace() {
        let f = Fake::new(true);
        let t = Instant::now();
        let status = f.stop(&handle(), Duration::from_millis(50)).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(status, ExitStatus::Signal(9));
        assert_eq!(status.code(), 137);
        assert_eq!(
            *f.signals.lock().unwrap(),
            vec![Signal::SIGTERM, Signal::SIGKILL]
        );
    }

    #[test]
    fn stop_on_term_sends_no_kill() {
        let f = Fake::new(false);
        let status = f.stop(&handle(), Duration::from_secs(5)).unwrap();
        assert_eq!(status, ExitStatus::Signal(15));
        assert_eq!(*f.signals.lock().unwrap(), vec![Signal::SIGTERM]);
    }

    #[test]
    fn stop_of_exited_container_sends_nothing() {
        let f = Fake::new(false);
        *f.state.lock().unwrap() = ContainerState::Exited(ExitStatus::Code(0));
        assert_eq!(
            f.stop(&handle(), Duration::from_secs(5)).unwrap(),
            ExitStatus::Code(0)
        );
        assert!(f.signals.lock().unwrap().is_empty());
    }

    #[test]
    fn wait_times_out() {
        let f = Fake::new(true);
        assert_eq!(
            f.wait(&handle(), Some(Duration::from_millis(10))).unwrap(),
            None
        );
    }

    #[test]
    fn exit_codes_follow_kubernetes() {
        assert_eq!(ExitStatus::Code(3).code(), 3);
        assert_eq!(ExitStatus::Signal(15).code(), 143);
        assert!(ExitStatus::Code(0).success());
        assert!(!ExitStatus::Signal(9).success());
    }
}
