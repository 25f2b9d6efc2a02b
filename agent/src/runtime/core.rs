//! The runtime core: the one [`Runtime`] implementation, over a backend
//! [`Driver`] that does only what differs between backends.
//!
//! Layout (the driver's state root is its own: libcontainer's state
//! directory, or a binary's `--root`):
//!
//! ```text
//! STATE_ROOT/<id>/              the backend's state of the container
//! BUNDLES/<id>/config.json      the OCI spec ([`build_spec`])
//! ```
//!
//! and the cgroup `<cgroup_parent>/<id>` in every hierarchy.
//!
//! What the core does the same way for every backend:
//!
//! - the [`Table`] of containers, each with its lifecycle [`Status`];
//! - create: checks, reserving the id, the bundle and the output files; a
//!   failed create is cleaned up (backend state, cgroup, bundle);
//! - exits: the init is a child of this process, a **child subreaper**
//!   ([`Core::with_driver`] makes it one), so it is reaped with `waitpid`
//!   and its exit remembered; an adopted one through a pidfd;
//! - delete: kill and reap a live init, read the OOM counter from the
//!   cgroup *before* the backend removes the cgroup, then the backend's
//!   delete and a cleanup that leaves nothing behind;
//! - stats from the cgroup, adoption, leftovers, and exec: the process
//!   description ([`ProcessFile`]), its pipes and the collection of its
//!   output ([`collect`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit};
use oci_spec::runtime::Spec;

use super::adopted::Adopted;
use super::backend_error::BackendError;
use super::cgroup::{CgroupFiles, CgroupLayout};
use super::driver::{Driver, Output};
use super::exec::{self, OutputPipes, ProcessFile, collect, read_available};
use super::spec::build_spec;
use super::status::Status;
use super::table::{Entry, Init, Reaped, Table};
use super::{
    ContainerConfig, ContainerHandle, ContainerState, ContainerStats, DeleteReport, ExecOutput,
    ExecStdio, ExitStatus, Result, Runtime, RuntimeError, Signal,
};

/// How long `delete` (and `remove_leftover`) wait for SIGKILLed processes.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// The runtime over driver `D`. Cheap to share (`Arc`); all methods take
/// `&self`; no lock is held while the backend works.
pub struct Core<D: Driver> {
    driver: D,
    bundles: PathBuf,
    cgroup_parent: String,
    cgroups: CgroupLayout,
    /// This process's `RLIMIT_NOFILE` hard limit: containers get no more.
    nofile_hard: u64,
    table: Table,
}

impl<D: Driver> std::fmt::Debug for Core<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("driver", &self.driver)
            .field("bundles", &self.bundles)
            .field("cgroup_parent", &self.cgroup_parent)
            .finish_non_exhaustive()
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

impl<D: Driver> Core<D> {
    /// The runtime over `driver`, bundles under `bundles`, cgroups under
    /// `cgroup_parent`: creates the directories, reads the host's cgroup
    /// layout and makes this process a child subreaper (see the module
    /// docs).
    pub fn with_driver(driver: D, bundles: PathBuf, cgroup_parent: &str) -> Result<Core<D>> {
        for d in [driver.state_root(), &bundles] {
            std::fs::create_dir_all(d).map_err(RuntimeError::io(format!(
                "creating runtime directory {}",
                d.display()
            )))?;
        }
        let cgroups =
            CgroupLayout::detect().map_err(RuntimeError::io("reading the host's cgroup layout"))?;
        // Container inits are children of a helper or a runtime binary that
        // exits: have them reparented here rather than to PID 1.
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| RuntimeError::Sys {
            id: String::new(),
            op: "becoming a child subreaper",
            source: e,
        })?;
        Ok(Core {
            driver,
            bundles,
            cgroup_parent: format!("/{}", cgroup_parent.trim_matches('/')),
            cgroups,
            nofile_hard: nofile_hard(),
            table: Table::default(),
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

    /// The backend's state directory of container `id`.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.driver.state_root().join(id)
    }

    /// The bundle directory (holding `config.json`) of container `id`.
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.bundles.join(id)
    }

    /// A new bundle and the output files, then the backend's create; the
    /// init's pid.
    fn create_in_backend(&self, config: &ContainerConfig, cgroup: &CgroupFiles) -> Result<i32> {
        let id = &config.id;
        let bundle = Bundle::write(
            config,
            self.bundle_dir(id),
            &self.cgroup_path(id),
            self.nofile_hard,
        )?;
        let t = Instant::now();
        let pid = self
            .driver
            .create(id, &bundle.dir, bundle.spec, bundle.output, cgroup)?;
        tracing::debug!(id = %id, pid, elapsed_us = t.elapsed().as_micros() as u64,
            "backend created the container");
        Ok(pid)
    }

    /// Removes everything a container may have left: the backend's state,
    /// cgroup directories, bundle. Best effort; failures are logged.
    fn cleanup(&self, id: &str, cgroup: &CgroupFiles) {
        let state = self.state_dir(id);
        if state.exists() {
            if let Err(e) = self.driver.force_delete(id) {
                tracing::warn!(id, error = %e, "cleanup: the backend's delete failed");
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

    /// The init of `handle` to signal: `None` once it has exited (and was
    /// reaped: the pid may be someone else's by now); `WrongState` while
    /// the container is still being created.
    fn live_init(&self, handle: &ContainerHandle, op: &'static str) -> Result<Option<Init>> {
        self.poll_exit(handle)?;
        self.table.update(&handle.id, |e| match e.init() {
            Some(init) => Ok(Some(init)),
            None if e.status.exit().is_some() => Ok(None),
            None => Err(e.status.refuse(op)),
        })
    }

    /// `waitpid` says the init is not our child: unless the backend says it
    /// stopped, it still runs (`state`); if it did, its exit status is lost.
    fn not_our_child(&self, id: &str, pid: i32, state: ContainerState) -> Result<ContainerState> {
        match self.driver.state(id)? {
            ContainerState::Exited(_) => Err(BackendError::NotOurChild { pid }.of(id, "wait")),
            ContainerState::Created | ContainerState::Running => Ok(state),
        }
    }
}

/// A new container's bundle: its directory with `config.json` written,
/// the spec, and the opened output files.
struct Bundle {
    dir: PathBuf,
    spec: Spec,
    output: Output,
}

impl Bundle {
    /// Builds `config`'s spec (its cgroup at `cgroup_path`), writes it into
    /// the new directory `dir` and opens the output files.
    fn write(
        config: &ContainerConfig,
        dir: PathBuf,
        cgroup_path: &str,
        nofile_hard: u64,
    ) -> Result<Bundle> {
        let id = &config.id;
        let spec = build_spec(config, cgroup_path, nofile_hard)?;
        std::fs::create_dir(&dir).map_err(RuntimeError::io(format!(
            "container {id:?}: creating bundle {}",
            dir.display()
        )))?;
        let config_json = dir.join("config.json");
        let json = serde_json::to_vec(&spec).map_err(|e| RuntimeError::InvalidConfig {
            id: id.clone(),
            reason: format!("serializing the OCI spec: {e}"),
        })?;
        std::fs::write(&config_json, json).map_err(RuntimeError::io(format!(
            "container {id:?}: writing {}",
            config_json.display()
        )))?;
        let stdout = open_output(&config.stdout_path, id)?;
        let stderr = if config.stderr_path == config.stdout_path {
            stdout.try_clone().map_err(RuntimeError::io(format!(
                "container {id:?}: duplicating the log fd"
            )))?
        } else {
            open_output(&config.stderr_path, id)?
        };
        Ok(Bundle {
            dir,
            spec,
            output: Output { stdout, stderr },
        })
    }
}

/// Whether the kernel's OOM killer killed a process of the container,
/// from its cgroup (read before the cgroup is removed). Where the cgroup
/// has no OOM kill counter (v1), a SIGKILL exit with memory allocation
/// failures counts.
fn oom_killed(id: &str, cgroup: &CgroupFiles, exit: ExitStatus) -> bool {
    match cgroup.oom_kills() {
        Ok(Some(n)) => n > 0,
        Ok(None) => exit == ExitStatus::Signal(9) && cgroup.memory_failcnt().unwrap_or(0) > 0,
        Err(e) => {
            tracing::warn!(id, error = %e, "reading the OOM counter failed");
            false
        }
    }
}

/// `error` with what a failed exec wrote on its stderr (a runtime binary's
/// reason) added to a backend's message.
fn with_stderr(error: RuntimeError, stderr: &[u8]) -> RuntimeError {
    match error {
        RuntimeError::Backend { id, op, source } if !stderr.trim_ascii().is_empty() => {
            RuntimeError::Backend {
                id,
                op,
                source: Box::new(BackendError::WithStderr {
                    source,
                    stderr: exec::stderr_text(stderr),
                }),
            }
        }
        other => other,
    }
}

impl<D: Driver> Runtime for Core<D> {
    fn name(&self) -> &'static str {
        self.driver.name()
    }

    fn create(&self, config: &ContainerConfig) -> Result<ContainerHandle> {
        config.validate()?;
        self.cgroups.check_supports(config)?;
        let id = &config.id;
        let cgroup = self.cgroup_files(id)?;
        // The backend's state of this id, left by an earlier agent, is
        // another container's.
        if self.state_dir(id).exists() {
            return Err(RuntimeError::AlreadyExists { id: id.clone() });
        }
        // Reserve the id while the backend creates (no lock held then).
        self.table.insert(id, Entry::creating(cgroup.clone()))?;
        let pid = match self.create_in_backend(config, &cgroup) {
            Ok(pid) => pid,
            Err(e) => {
                tracing::warn!(id = %id, error = %e, "create failed; cleaning up");
                self.cleanup(id, &cgroup);
                self.table.remove(id);
                return Err(e);
            }
        };
        self.table.update(id, |e| {
            e.pid = pid;
            e.status.created()
        })?;
        tracing::info!(id = %id, pid, runtime = self.driver.name(), "container created");
        Ok(ContainerHandle {
            id: id.clone(),
            pid,
        })
    }

    fn start(&self, handle: &ContainerHandle) -> Result<()> {
        let id = &handle.id;
        let pid = self.table.update(id, |e| {
            e.status.begin_start()?;
            Ok(e.pid)
        })?;
        let started = self.driver.start(id, pid);
        self.table.update(id, |e| match started {
            Ok(()) => e.status.started(),
            Err(_) => e.status.start_failed(),
        })?;
        started?;
        tracing::debug!(id = %id, pid, "container started");
        Ok(())
    }

    fn poll_exit(&self, handle: &ContainerHandle) -> Result<ContainerState> {
        let id = &handle.id;
        let (reaped, status, pid) = self.table.update(id, |e| {
            let reaped = e.reap(id);
            Ok((reaped, e.status.state(), e.pid))
        })?;
        match reaped? {
            Reaped::Nothing => {}
            Reaped::Exited(status) => tracing::info!(id = %id, ?status, "container exited"),
            Reaped::NotOurChild => return self.not_our_child(id, pid, status),
        }
        Ok(status)
    }

    fn kill(&self, handle: &ContainerHandle, signal: Signal) -> Result<()> {
        let id = &handle.id;
        let Some(init) = self.live_init(handle, "kill")? else {
            return Ok(());
        };
        let sent = match &init.adopted {
            Some(a) => a.signal(signal).map_err(RuntimeError::io(format!(
                "container {id:?}: signalling the adopted init"
            ))),
            None => self.driver.kill(id, init.pid, signal),
        };
        match sent {
            // It exited meanwhile (a binary refuses to signal a stopped
            // container, a zombie included).
            Err(_) if matches!(self.poll_exit(handle)?, ContainerState::Exited(_)) => Ok(()),
            sent => sent,
        }
    }

    fn delete(&self, handle: &ContainerHandle) -> Result<DeleteReport> {
        let id = &handle.id;
        if !matches!(self.poll_exit(handle)?, ContainerState::Exited(_)) {
            self.kill(handle, Signal::SIGKILL)?;
            if self.wait(handle, Some(KILL_TIMEOUT))?.is_none() {
                return Err(RuntimeError::WrongState {
                    id: id.clone(),
                    op: "delete",
                    state: "still running 10 s after SIGKILL",
                });
            }
        }
        let (exit, cgroup) = self
            .table
            .update(id, |e| Ok((e.status.begin_delete()?, e.cgroup.clone())))?;
        // OOM first: the backend's delete removes the cgroup and its counters.
        let oom_killed = oom_killed(id, &cgroup, exit);
        let deleted = self.driver.delete(id);
        // Whatever the backend did, leave nothing behind.
        self.cleanup(id, &cgroup);
        self.table.remove(id);
        deleted?;
        let left = cgroup.existing_dirs();
        if !left.is_empty() {
            tracing::warn!(id = %id, ?left, "cgroup directories remain after delete");
        }
        tracing::info!(id = %id, ?exit, oom_killed, "container deleted");
        Ok(DeleteReport {
            exit: Some(exit),
            oom_killed,
        })
    }

    fn stats(&self, handle: &ContainerHandle) -> Result<ContainerStats> {
        let id = &handle.id;
        let cgroup = self.table.update(id, |e| Ok(e.cgroup.clone()))?;
        cgroup.stats().map_err(RuntimeError::io(format!(
            "container {id:?}: reading cgroup stats"
        )))
    }

    fn exec(
        &self,
        handle: &ContainerHandle,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let id = &handle.id;
        let pipes = OutputPipes::new(id)?;
        let stdio = ExecStdio {
            stdin: exec::dev_null().map_err(RuntimeError::io("opening /dev/null"))?,
            stdout: pipes.stdout_write,
            stderr: pipes.stderr_write,
        };
        // The write ends go to the backend, which drops them: EOF comes
        // when the process (and whatever inherited them) is done.
        match self.spawn_exec(handle, argv, stdio) {
            Ok(pid) => collect(id, pid, pipes.stdout_read, pipes.stderr_read, timeout),
            Err(e) => Err(with_stderr(e, &read_available(pipes.stderr_read))),
        }
    }

    fn spawn_exec(
        &self,
        handle: &ContainerHandle,
        argv: &[String],
        stdio: ExecStdio,
    ) -> Result<i32> {
        let id = &handle.id;
        self.poll_exit(handle)?;
        self.table.update(id, |e| {
            if e.status.can_exec() {
                Ok(())
            } else {
                Err(e.status.refuse("exec"))
            }
        })?;
        let process = ProcessFile::write(id, &self.bundle_dir(id), argv)?;
        let t = Instant::now();
        let pid = self.driver.exec(id, &process, stdio)?;
        tracing::debug!(id = %id, pid, args = argv.len(),
            elapsed_us = t.elapsed().as_micros() as u64, "exec started");
        Ok(pid)
    }

    fn adopt(&self, handle: &ContainerHandle) -> Result<ContainerState> {
        let id = &handle.id;
        if self.table.contains(id) {
            return Err(RuntimeError::AlreadyExists { id: id.clone() });
        }
        if !self.state_dir(id).exists() {
            return Err(RuntimeError::NotFound { id: id.clone() });
        }
        let recorded = self.driver.state(id)?;
        let adopted = Adopted::open(handle.pid, &self.cgroup_path(id)).map(Arc::new);
        let alive = adopted.is_some();
        let status = Status::adopted(recorded, alive);
        let entry = Entry {
            status,
            pid: handle.pid,
            cgroup: self.cgroup_files(id)?,
            adopted,
        };
        self.table.insert(id, entry)?;
        tracing::info!(id = %id, pid = handle.pid, alive, "container adopted");
        Ok(status.state())
    }

    fn list(&self) -> Result<Vec<String>> {
        list_dirs(&[self.driver.state_root(), &self.bundles])
    }

    fn remove_leftover(&self, id: &str) -> Result<()> {
        if self.table.contains(id) {
            return Err(RuntimeError::WrongState {
                id: id.to_string(),
                op: "remove as a leftover",
                state: "managed by this agent",
            });
        }
        let cgroup = self.cgroup_files(id)?;
        cgroup
            .kill_all(KILL_TIMEOUT)
            .map_err(RuntimeError::io(format!(
                "container {id:?}: killing leftover processes"
            )))?;
        self.cleanup(id, &cgroup);
        check_removed(id, &cgroup, &[self.state_dir(id), self.bundle_dir(id)])
    }
}

/// Opens a container's stdout/stderr target: a FIFO (the agent's log pump,
/// see `crate::logs::pump`) is opened **read-write**, so the container
/// never gets `SIGPIPE` while no agent reads it; anything else is a plain
/// file, created if missing and appended to (its directory too).
pub(crate) fn open_output(path: &Path, id: &str) -> Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let ctx = |what: &str| RuntimeError::io(format!("container {id:?}: {what} {}", path.display()));
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    if is_fifo {
        return std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(ctx("opening output FIFO"));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(ctx("creating the log dir of"))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o640)
        .open(path)
        .map_err(ctx("opening log"))
}

/// The names of the entries of `dirs` (missing dirs count as empty),
/// sorted and without duplicates.
fn list_dirs(dirs: &[&Path]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for d in dirs {
        let entries = match std::fs::read_dir(d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(RuntimeError::Io {
                    context: format!("listing {}", d.display()),
                    source,
                });
            }
        };
        for e in entries.flatten() {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// After removing leftover container `id`: an error naming whatever of its
/// cgroup directories and `paths` still exist.
fn check_removed(id: &str, cgroup: &CgroupFiles, paths: &[PathBuf]) -> Result<()> {
    let mut left: Vec<String> = cgroup
        .existing_dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    left.extend(
        paths
            .iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string()),
    );
    if left.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::Io {
            context: format!("container {id:?}: removing the leftover"),
            source: std::io::Error::other(format!("still there: {}", left.join(", "))),
        })
    }
}
