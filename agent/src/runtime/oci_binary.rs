//! The second [`Runtime`] backend: an OCI runtime binary (`runc`, and by the
//! same command line `crun` or `youki`), for hosts where libcontainer does
//! not build (32-bit armv7). Runs the same spec as the libcontainer backend
//! ([`build_spec`]), so both behave alike.
//!
//! Layout:
//!
//! ```text
//! ROOT/<id>/                  the binary's state (`--root ROOT`)
//! BUNDLES/<id>/config.json    the OCI spec
//! BUNDLES/<id>/init.pid       written by `create --pid-file`
//! ```
//!
//! and the cgroup `<cgroup_parent>/<id>` in every hierarchy (cgroupfs
//! driver: `linux.cgroupsPath` is the absolute path, as for libcontainer).
//!
//! The lifecycle maps onto the binary's commands:
//!
//! - create: `BIN --root ROOT create --bundle B --pid-file P ID`, with the
//!   container's log files as the command's stdout/stderr and `/dev/null`
//!   as stdin: with `terminal: false` the binary hands its own stdio to the
//!   container's init, so the container writes straight into the files and
//!   does not depend on the agent. The binary's own error messages land
//!   there too when create fails: they are read back from the stderr file
//!   (from where it ended before the create), carried in the error, and cut
//!   off the file again.
//! - start: `BIN start ID`; kill: `BIN kill ID SIGNUM`; delete:
//!   `BIN delete --force ID` after the init was killed and reaped and the
//!   OOM counter was read from the cgroup ([`CgroupFiles`]); stats from the
//!   cgroup. Errors of these commands carry the binary's stderr.
//! - exit status: the container's init is *not* our child: `create` forks
//!   it and exits. [`OciBinaryRuntime::new`] therefore makes this process a
//!   **child subreaper** (`prctl(PR_SET_CHILD_SUBREAPER)`): when the
//!   binary's `create` process exits, the orphaned init is reparented to us
//!   (not to PID 1), so `waitpid(pid, WNOHANG)` reads its exit status
//!   exactly as in the libcontainer backend, and no `BIN state` process is
//!   spawned per poll. The subreaper attribute is process-wide and
//!   inherited by nothing (it is cleared in children); its one cost is that
//!   any other orphaned descendant of the agent is reparented to it too and
//!   stays a zombie until reaped (the binaries' helper processes are reaped
//!   by the binaries themselves, so in practice only container inits
//!   arrive). If the init is not our child after all (`ECHILD`), `BIN state`
//!   tells whether it stopped and the exit is reported as an error.
//!
//! Children are spawned with `std::process::Command`, which resets SIGPIPE
//! to its default disposition in the child, so containers do not inherit
//! the Rust runtime's ignored SIGPIPE.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::adopted::Adopted;
use super::cgroup::{CgroupFiles, CgroupLayout};
use super::exec::{OutputPipes, ProcessFile, collect, read_available, stderr_text};
use super::spec::build_spec;
use super::{
    ContainerConfig, ContainerHandle, ContainerState, ContainerStats, DeleteReport, ExecOutput,
    ExecStdio, ExitStatus, Result, Runtime, RuntimeError, Signal,
};

/// How long `delete` waits for a SIGKILLed container to be reaped.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the OCI binary backend keeps things, and which binary it drives.
#[derive(Debug, Clone)]
pub struct OciBinaryOptions {
    /// The runtime binary: `runc`, `crun`, `youki` (looked up in `PATH`) or
    /// an absolute path.
    pub binary: PathBuf,
    /// The binary's state directory (`--root`), e.g. `/run/bramble/runc`
    /// (tmpfs: nothing written to the SD card per container).
    pub root: PathBuf,
    /// Bundles (`<id>/config.json`) go under here, e.g.
    /// `/run/bramble/bundles`.
    pub bundles: PathBuf,
    /// Parent of every container's cgroup, absolute (e.g. `/bramble`).
    pub cgroup_parent: String,
}

impl OciBinaryOptions {
    /// `runc` from `PATH`, its state in `DIR/state`, bundles in
    /// `DIR/bundles`.
    pub fn runc(dir: impl AsRef<Path>, cgroup_parent: impl Into<String>) -> OciBinaryOptions {
        let dir = dir.as_ref();
        OciBinaryOptions {
            binary: PathBuf::from("runc"),
            root: dir.join("state"),
            bundles: dir.join("bundles"),
            cgroup_parent: cgroup_parent.into(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    pid: i32,
    started: bool,
    exit: Option<ExitStatus>,
    cgroup: CgroupFiles,
    /// Set for a container created by an earlier agent process.
    adopted: Option<Adopted>,
}

/// The OCI runtime binary backend. Cheap to share (`Arc`); all methods take
/// `&self`; no lock is held while the binary runs.
pub struct OciBinaryRuntime {
    binary: PathBuf,
    name: &'static str,
    root: PathBuf,
    bundles: PathBuf,
    cgroup_parent: String,
    cgroups: CgroupLayout,
    /// This process's `RLIMIT_NOFILE` hard limit: containers get no more.
    nofile_hard: u64,
    containers: Mutex<HashMap<String, Entry>>,
}

/// The backend driving `runc` (the same type drives `crun` and `youki`).
pub type RuncRuntime = OciBinaryRuntime;

impl std::fmt::Debug for OciBinaryRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciBinaryRuntime")
            .field("binary", &self.binary)
            .field("root", &self.root)
            .field("bundles", &self.bundles)
            .field("cgroup_parent", &self.cgroup_parent)
            .finish_non_exhaustive()
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let context = context.into();
    move |source| RuntimeError::Io { context, source }
}

fn backend_msg(id: &str, op: &'static str, msg: String) -> RuntimeError {
    RuntimeError::Backend {
        id: id.to_string(),
        op,
        source: msg.into(),
    }
}

/// `runc`, `crun` or `youki` from the binary's file name (for logs); else
/// `oci-binary`.
fn name_of(binary: &Path) -> &'static str {
    match binary.file_name().and_then(|n| n.to_str()) {
        Some(n) if n.starts_with("runc") => "runc",
        Some(n) if n.starts_with("crun") => "crun",
        Some(n) if n.starts_with("youki") => "youki",
        _ => "oci-binary",
    }
}

/// This process's `RLIMIT_NOFILE` hard limit (1024 if unreadable).
// `rlim_t` is u32 on 32-bit glibc targets, u64 elsewhere.
#[allow(clippy::useless_conversion)]
fn nofile_hard() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| u64::from(hard))
        .unwrap_or(1024)
}

impl OciBinaryRuntime {
    /// Opens (creating) the runtime's directories and makes this process a
    /// child subreaper (see the module docs). Checks that the binary runs
    /// (`BIN --version`).
    pub fn new(options: OciBinaryOptions) -> Result<OciBinaryRuntime> {
        for d in [&options.root, &options.bundles] {
            std::fs::create_dir_all(d).map_err(io_err(format!(
                "creating runtime directory {}",
                d.display()
            )))?;
        }
        let version = Command::new(&options.binary)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(io_err(format!(
                "running the OCI runtime {}",
                options.binary.display()
            )))?;
        if !version.status.success() {
            return Err(backend_msg(
                "",
                "version check",
                format!(
                    "{} --version: {}: {}",
                    options.binary.display(),
                    version.status,
                    stderr_text(&version.stderr)
                ),
            ));
        }
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| RuntimeError::Sys {
            id: String::new(),
            op: "becoming a child subreaper",
            source: e,
        })?;
        let parent = format!("/{}", options.cgroup_parent.trim_matches('/'));
        let cgroups = CgroupLayout::detect().map_err(io_err("reading the host's cgroup layout"))?;
        let name = name_of(&options.binary);
        tracing::debug!(binary = %options.binary.display(),
            version = %String::from_utf8_lossy(&version.stdout).lines().next().unwrap_or(""),
            "OCI runtime binary backend ready");
        Ok(OciBinaryRuntime {
            binary: options.binary,
            name,
            root: options.root,
            bundles: options.bundles,
            cgroup_parent: parent,
            cgroups,
            nofile_hard: nofile_hard(),
            containers: Mutex::new(HashMap::new()),
        })
    }

    /// The cgroup path of container `id`, relative to each hierarchy's root.
    pub fn cgroup_path(&self, id: &str) -> String {
        format!("{}/{id}", self.cgroup_parent)
    }

    /// The cgroup files of container `id` on this host.
    pub fn cgroup_files(&self, id: &str) -> Result<CgroupFiles> {
        Ok(self.cgroups.files(Path::new(&self.cgroup_path(id))))
    }

    /// The binary's state directory of container `id`.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The bundle directory (holding `config.json`) of container `id`.
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.bundles.join(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves plain data; keep going.
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `BIN --root ROOT`, stdin from `/dev/null`.
    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root).stdin(Stdio::null());
        c
    }

    /// Runs `BIN --root ROOT args...`; a failure carries its stderr.
    fn run(&self, id: &str, op: &'static str, args: &[&str]) -> Result<Output> {
        let out = self.command().args(args).output().map_err(io_err(format!(
            "container {id:?}: running {} {op}",
            self.binary.display()
        )))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(backend_msg(
                id,
                op,
                format!(
                    "{} {}: {}: {}",
                    self.name,
                    args.join(" "),
                    out.status,
                    stderr_text(&out.stderr)
                ),
            ))
        }
    }

    /// The binary's view of the container (`BIN state ID`): `created`,
    /// `running`, `stopped`, `paused`.
    pub fn runtime_status(&self, id: &str) -> Result<String> {
        let out = self.run(id, "state", &["state", id])?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| backend_msg(id, "state", format!("{} state: bad JSON: {e}", self.name)))?;
        Ok(v["status"].as_str().unwrap_or("unknown").to_string())
    }

    fn create_inner(&self, config: &ContainerConfig) -> Result<i32> {
        let id = &config.id;
        let spec = build_spec(config, &self.cgroup_path(id), self.nofile_hard)?;
        let bundle = self.bundle_dir(id);
        std::fs::create_dir(&bundle).map_err(io_err(format!(
            "container {id:?}: creating bundle {}",
            bundle.display()
        )))?;
        let config_json = bundle.join("config.json");
        let json = serde_json::to_vec(&spec).map_err(|e| RuntimeError::InvalidConfig {
            id: id.clone(),
            reason: format!("serializing the OCI spec: {e}"),
        })?;
        std::fs::write(&config_json, json).map_err(io_err(format!(
            "container {id:?}: writing {}",
            config_json.display()
        )))?;

        let stdout = super::open_output(&config.stdout_path, id)?;
        let mut stderr = if config.stderr_path == config.stdout_path {
            stdout
                .try_clone()
                .map_err(io_err(format!("container {id:?}: duplicating the log fd")))?
        } else {
            super::open_output(&config.stderr_path, id)?
        };
        let stderr_start = stderr
            .metadata()
            .map_err(io_err(format!("container {id:?}: stat of the stderr log")))?
            .len();
        let stderr_for_child = stderr
            .try_clone()
            .map_err(io_err(format!("container {id:?}: duplicating the log fd")))?;

        let pid_file = bundle.join("init.pid");
        let t = Instant::now();
        let status = self
            .command()
            .arg("create")
            .arg("--bundle")
            .arg(&bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .stdout(stdout)
            .stderr(stderr_for_child)
            .status()
            .map_err(io_err(format!(
                "container {id:?}: running {} create",
                self.binary.display()
            )))?;
        if !status.success() {
            // The binary wrote its error into the container's stderr log:
            // take it back out of there and into the error.
            let msg = take_tail(&mut stderr, stderr_start);
            return Err(backend_msg(
                id,
                "create",
                format!("{} create: {status}: {}", self.name, stderr_text(&msg)),
            ));
        }
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(io_err(format!(
                "container {id:?}: reading {}",
                pid_file.display()
            )))?
            .trim()
            .parse::<i32>()
            .map_err(|e| backend_msg(id, "create", format!("bad pid file: {e}")))?;
        tracing::debug!(id = %id, pid, elapsed_us = t.elapsed().as_micros() as u64,
            "container created");
        Ok(pid)
    }

    /// Removes everything a container may have left: the binary's state,
    /// cgroup directories, bundle. Best effort; failures are logged.
    fn cleanup(&self, id: &str, cgroup: &CgroupFiles) {
        let state = self.state_dir(id);
        if state.exists() {
            if let Err(e) = self.run(id, "delete", &["delete", "--force", id]) {
                tracing::warn!(id, error = %e, "cleanup: delete failed");
            }
            if state.exists()
                && let Err(e) = std::fs::remove_dir_all(&state)
            {
                tracing::warn!(id, error = %e, path = %state.display(), "cleanup: removing state dir failed");
            }
        }
        for (dir, e) in cgroup.remove_leftovers() {
            tracing::warn!(id, error = %e, path = %dir.display(), "cleanup: removing cgroup dir failed");
        }
        let bundle = self.bundle_dir(id);
        if bundle.exists()
            && let Err(e) = std::fs::remove_dir_all(&bundle)
        {
            tracing::warn!(id, error = %e, path = %bundle.display(), "cleanup: removing bundle failed");
        }
    }

    /// Reads the init's exit without blocking; `None` while it runs.
    fn try_reap(&self, id: &str, pid: i32) -> Result<Option<ExitStatus>> {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(ExitStatus::Code(code))),
            Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(ExitStatus::Signal(sig as i32))),
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => Ok(None),
            Err(Errno::ECHILD) => {
                // Not reparented to us: ask the binary.
                match self.runtime_status(id)?.as_str() {
                    "stopped" => Err(backend_msg(
                        id,
                        "wait",
                        format!(
                            "the init (pid {pid}) stopped but is not a child of this process, \
                             so its exit status is lost (was the agent a child subreaper?)"
                        ),
                    )),
                    _ => Ok(None),
                }
            }
            Err(e) => Err(RuntimeError::Sys {
                id: id.to_string(),
                op: "waitpid",
                source: e,
            }),
        }
    }
}

/// Reads `file` from `start` to its end, then truncates it back to `start`.
/// Nothing for a FIFO (the log pump's): what runc wrote there is logged.
fn take_tail(file: &mut File, start: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return buf;
    }
    if file.seek(SeekFrom::Start(start)).is_ok() {
        let _ = file.take(64 * 1024).read_to_end(&mut buf);
    }
    if let Err(e) = file.set_len(start) {
        tracing::warn!(error = %e, "truncating the stderr log after a failed create");
    }
    buf
}

impl Runtime for OciBinaryRuntime {
    fn name(&self) -> &'static str {
        self.name
    }

    fn create(&self, config: &ContainerConfig) -> Result<ContainerHandle> {
        config.validate()?;
        self.cgroups.check_supports(config)?;
        let id = &config.id;
        let cgroup = self.cgroup_files(id)?;
        {
            // Reserve the id while the binary runs (no lock held then).
            let mut map = self.lock();
            if map.contains_key(id) || self.state_dir(id).exists() {
                return Err(RuntimeError::AlreadyExists { id: id.clone() });
            }
            map.insert(
                id.clone(),
                Entry {
                    pid: 0,
                    started: false,
                    exit: None,
                    cgroup: cgroup.clone(),
                    adopted: None,
                },
            );
        }
        let pid = match self.create_inner(config) {
            Ok(pid) => pid,
            Err(e) => {
                tracing::warn!(id = %id, error = %e, "create failed; cleaning up");
                self.cleanup(id, &cgroup);
                self.lock().remove(id);
                return Err(e);
            }
        };
        if let Some(entry) = self.lock().get_mut(id) {
            entry.pid = pid;
        }
        tracing::info!(id = %id, pid, runtime = self.name, "container created");
        Ok(ContainerHandle {
            id: id.clone(),
            pid,
        })
    }

    fn start(&self, handle: &ContainerHandle) -> Result<()> {
        {
            let map = self.lock();
            let entry = map.get(&handle.id).ok_or_else(|| RuntimeError::NotFound {
                id: handle.id.clone(),
            })?;
            if entry.started {
                return Err(RuntimeError::WrongState {
                    id: handle.id.clone(),
                    op: "start",
                    state: "started",
                });
            }
        }
        // `runc init` (a Go program) is still the init until it execs the
        // container's process: a signal arriving before that ends it with
        // Go's exit code 2 instead of the signal. Wait (briefly) for the exec.
        let exe = |pid: i32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let before = exe(handle.pid);
        self.run(&handle.id, "start", &["start", &handle.id])?;
        let deadline = Instant::now() + Duration::from_secs(1);
        while before.is_some() && exe(handle.pid) == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(entry) = self.lock().get_mut(&handle.id) {
            entry.started = true;
        }
        tracing::debug!(id = %handle.id, pid = handle.pid, "container started");
        Ok(())
    }

    fn poll_exit(&self, handle: &ContainerHandle) -> Result<ContainerState> {
        let (pid, started, exit, adopted_exited) = {
            let map = self.lock();
            let entry = map.get(&handle.id).ok_or_else(|| RuntimeError::NotFound {
                id: handle.id.clone(),
            })?;
            let adopted_exited = entry.adopted.as_ref().map(Adopted::exited);
            (entry.pid, entry.started, entry.exit, adopted_exited)
        };
        if pid <= 0 {
            // Reserved by a create still running.
            return Ok(ContainerState::Created);
        }
        let exit = match exit {
            Some(status) => Some(status),
            None => {
                let reaped = match adopted_exited {
                    Some(true) => Some(ExitStatus::Unknown),
                    Some(false) => None,
                    None => self.try_reap(&handle.id, pid)?,
                };
                if let Some(status) = reaped {
                    if let Some(entry) = self.lock().get_mut(&handle.id) {
                        entry.exit = Some(status);
                    }
                    tracing::info!(id = %handle.id, ?status, "container exited");
                }
                reaped
            }
        };
        Ok(super::state_of(exit, started))
    }

    fn kill(&self, handle: &ContainerHandle, sig: Signal) -> Result<()> {
        // Exited and reaped: nothing to signal.
        if let ContainerState::Exited(_) = self.poll_exit(handle)? {
            return Ok(());
        }
        let signum = (sig as i32).to_string();
        match self.run(&handle.id, "kill", &["kill", &handle.id, &signum]) {
            Ok(_) => Ok(()),
            // It exited meanwhile (the binary refuses to signal a stopped
            // container, a zombie included).
            Err(_) if matches!(self.poll_exit(handle)?, ContainerState::Exited(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn delete(&self, handle: &ContainerHandle) -> Result<DeleteReport> {
        let exit = match self.poll_exit(handle)? {
            ContainerState::Exited(status) => status,
            _ => {
                self.kill(handle, Signal::SIGKILL)?;
                self.wait(handle, Some(KILL_TIMEOUT))?
                    .ok_or_else(|| RuntimeError::WrongState {
                        id: handle.id.clone(),
                        op: "delete",
                        state: "still running 10 s after SIGKILL",
                    })?
            }
        };
        let entry = self
            .lock()
            .remove(&handle.id)
            .ok_or_else(|| RuntimeError::NotFound {
                id: handle.id.clone(),
            })?;
        // OOM first: delete removes the cgroup and its counters.
        let oom_killed = match entry.cgroup.oom_kills() {
            Ok(Some(n)) => n > 0,
            Ok(None) => {
                exit == ExitStatus::Signal(9) && entry.cgroup.memory_failcnt().unwrap_or(0) > 0
            }
            Err(e) => {
                tracing::warn!(id = %handle.id, error = %e, "reading the OOM counter failed");
                false
            }
        };
        let result = self.run(&handle.id, "delete", &["delete", "--force", &handle.id]);
        // Whatever the binary did, leave nothing behind.
        self.cleanup(&handle.id, &entry.cgroup);
        result?;
        let left = entry.cgroup.existing_dirs();
        if !left.is_empty() {
            tracing::warn!(id = %handle.id, ?left, "cgroup directories remain after delete");
        }
        tracing::info!(id = %handle.id, ?exit, oom_killed, "container deleted");
        Ok(DeleteReport {
            exit: Some(exit),
            oom_killed,
        })
    }

    fn adopt(&self, handle: &ContainerHandle) -> Result<ContainerState> {
        let id = &handle.id;
        if self.lock().contains_key(id) {
            return Err(RuntimeError::AlreadyExists { id: id.clone() });
        }
        if !self.state_dir(id).exists() {
            return Err(RuntimeError::NotFound { id: id.clone() });
        }
        let status = self.runtime_status(id)?;
        let started = status != "created" && status != "creating";
        let adopted = Adopted::open(handle.pid, &self.cgroup_path(id));
        let exit = adopted.is_none().then_some(ExitStatus::Unknown);
        let cgroup = self.cgroup_files(id)?;
        self.lock().insert(
            id.clone(),
            Entry {
                pid: handle.pid,
                started,
                exit,
                cgroup,
                adopted,
            },
        );
        tracing::info!(id = %id, pid = handle.pid, alive = exit.is_none(), "container adopted");
        Ok(super::state_of(exit, started))
    }

    fn list(&self) -> Result<Vec<String>> {
        super::list_dirs(&[&self.root, &self.bundles])
    }

    fn remove_leftover(&self, id: &str) -> Result<()> {
        let managed = self.lock().contains_key(id);
        let cgroup = self.cgroup_files(id)?;
        super::remove_leftover_with(
            id,
            managed,
            &cgroup,
            KILL_TIMEOUT,
            || self.cleanup(id, &cgroup),
            &[self.state_dir(id), self.bundle_dir(id)],
        )
    }

    fn stats(&self, handle: &ContainerHandle) -> Result<ContainerStats> {
        let cgroup = {
            let map = self.lock();
            let entry = map.get(&handle.id).ok_or_else(|| RuntimeError::NotFound {
                id: handle.id.clone(),
            })?;
            entry.cgroup.clone()
        };
        cgroup.stats().map_err(io_err(format!(
            "container {:?}: reading cgroup stats",
            handle.id
        )))
    }

    /// [`OciBinaryRuntime::start_exec`] with `/dev/null` as stdin and
    /// output pipes collected here; a failure of the binary carries what it
    /// wrote on stderr.
    fn exec(
        &self,
        handle: &ContainerHandle,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let id = &handle.id;
        let pipes = OutputPipes::new(id)?;
        let started = self.start_exec(
            handle,
            argv,
            Stdio::null(),
            Stdio::from(pipes.stdout_write),
            Stdio::from(pipes.stderr_write),
        )?;
        match started {
            Ok(pid) => collect(id, pid, pipes.stdout_read, pipes.stderr_read, timeout),
            Err(status) => {
                let msg = read_available(pipes.stderr_read);
                Err(backend_msg(
                    id,
                    "exec",
                    format!("{} exec: {status}: {}", self.name, stderr_text(&msg)),
                ))
            }
        }
    }

    fn spawn_exec(
        &self,
        handle: &ContainerHandle,
        argv: &[String],
        stdio: ExecStdio,
    ) -> Result<i32> {
        let started = self.start_exec(
            handle,
            argv,
            Stdio::from(stdio.stdin),
            Stdio::from(stdio.stdout),
            Stdio::from(stdio.stderr),
        )?;
        started.map_err(|status| {
            backend_msg(
                &handle.id,
                "exec",
                format!(
                    "{} exec: {status} (its message went to the exec's stderr)",
                    self.name
                ),
            )
        })
    }
}

impl OciBinaryRuntime {
    /// `BIN exec --detach --pid-file P --process F ID` with `stdin`,
    /// `stdout` and `stderr` as its stdio, which the process inherits: the
    /// binary starts the process and exits; the process, orphaned, is
    /// reparented to this process (a child subreaper), which reaps it.
    /// `Ok(Err(status))` when the binary failed.
    fn start_exec(
        &self,
        handle: &ContainerHandle,
        argv: &[String],
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<std::result::Result<i32, std::process::ExitStatus>> {
        let id = &handle.id;
        match self.poll_exit(handle)? {
            ContainerState::Running => {}
            ContainerState::Created => {
                return Err(RuntimeError::WrongState {
                    id: id.clone(),
                    op: "exec",
                    state: "created but not started",
                });
            }
            ContainerState::Exited(_) => {
                return Err(RuntimeError::WrongState {
                    id: id.clone(),
                    op: "exec",
                    state: "exited",
                });
            }
        }
        let process = ProcessFile::write(id, &self.bundle_dir(id), argv)?;
        let t = Instant::now();
        let status = {
            // The command holds the stdio: dropped at the end of this block,
            // so only the process has them afterwards.
            let mut cmd = self.command();
            cmd.arg("exec")
                .arg("--detach")
                .arg("--pid-file")
                .arg(&process.pid_path)
                .arg("--process")
                .arg(&process.path)
                .arg(id)
                .stdin(stdin)
                .stdout(stdout)
                .stderr(stderr);
            cmd.status().map_err(io_err(format!(
                "container {id:?}: running {} exec",
                self.binary.display()
            )))?
        };
        if !status.success() {
            return Ok(Err(status));
        }
        let pid = std::fs::read_to_string(&process.pid_path)
            .map_err(io_err(format!(
                "container {id:?}: exec: reading {}",
                process.pid_path.display()
            )))?
            .trim()
            .parse::<i32>()
            .map_err(|e| backend_msg(id, "exec", format!("bad pid file: {e}")))?;
        tracing::debug!(id = %id, pid, args = argv.len(),
            elapsed_us = t.elapsed().as_micros() as u64, "exec started");
        Ok(Ok(pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_binary() {
        assert_eq!(name_of(Path::new("runc")), "runc");
        assert_eq!(name_of(Path::new("/usr/sbin/runc")), "runc");
        assert_eq!(name_of(Path::new("/usr/bin/crun")), "crun");
        assert_eq!(name_of(Path::new("youki")), "youki");
        assert_eq!(name_of(Path::new("/opt/rt")), "oci-binary");
    }

    #[test]
    fn the_tail_is_taken_out_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("err");
        std::fs::write(&path, "mine\n").unwrap();
        let mut f = crate::runtime::open_output(&path, "c").unwrap();
        use std::io::Write;
        f.write_all(b"runc: boom\n").unwrap();
        assert_eq!(take_tail(&mut f, 5), b"runc: boom\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine\n");
    }
}
