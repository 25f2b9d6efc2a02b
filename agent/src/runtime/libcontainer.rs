//! The default [`Runtime`]: youki's libcontainer, linked into the agent.
//!
//! Layout under the runtime's root directory:
//!
//! ```text
//! ROOT/state/<id>/          libcontainer's state (state.json, exec fifo)
//! ROOT/bundles/<id>/config.json   the OCI spec (libcontainer reads only files)
//! ```
//!
//! and the cgroup `<cgroup_parent>/<id>` in every hierarchy.
//!
//! The clones of a create or an exec run in a short-lived single-threaded
//! helper process ([`clone_helper`]: cloning from the multi-threaded agent
//! can hang the child); everything else (start, signals, state, delete,
//! stats) runs in the agent. This process is a **child subreaper**, so the
//! container's init, a child of the helper, is reparented to it when the
//! helper exits, and its exit is read with `waitpid(pid, WNOHANG)` and
//! remembered. stdout/stderr are files or the log pump's FIFOs opened here
//! and handed over as fds: no pipe ties a container to the agent's
//! lifetime.
//!
//! Traps handled (see FINDINGS.md): SIGPIPE is reset to the default in the
//! helper (an ignored disposition would survive `exec`); the OOM counter is
//! read from the cgroup before `delete` removes it; a failed create is
//! cleaned up (state dir, cgroup, bundle). Creates are serialized.
//!
//! On a cgroup v2 host libcgroups (without its `cgroupsv2_devices` feature)
//! ignores the device rules, so after libcontainer's create, while the
//! init still waits to exec, the eBPF device filter of [`devices_bpf`] is
//! attached to the container's cgroup; a failure fails the create.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libcontainer::container::{Container, ContainerStatus};
use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit};
use nix::sys::signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::adopted::Adopted;
use super::cgroup::{CgroupFiles, CgroupLayout};
use super::clone_helper;
use super::devices_bpf;
use super::exec::{OutputPipes, ProcessFile, collect};
use super::spec::build_spec;
use super::{
    ContainerConfig, ContainerHandle, ContainerState, ContainerStats, DeleteReport, ExecOutput,
    ExecStdio, ExitStatus, Result, Runtime, RuntimeError, Signal,
};

/// How long `delete` waits for a SIGKILLed container to be reaped.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Serializes creates and execs process-wide.
static CREATE_LOCK: Mutex<()> = Mutex::new(());

/// Where the libcontainer backend keeps things.
#[derive(Debug, Clone)]
pub struct LibcontainerOptions {
    /// State and bundles go under here (e.g. `/run/bramble/runtime`: tmpfs,
    /// so nothing is written to the SD card per container).
    pub root: PathBuf,
    /// Parent of every container's cgroup, absolute (e.g. `/bramble`).
    pub cgroup_parent: String,
    /// The `bramble-agent` binary, run as the clone helper (see
    /// [`clone_helper`]); the agent passes its own executable.
    pub helper: PathBuf,
}

struct Entry {
    container: Container,
    started: bool,
    exit: Option<ExitStatus>,
    cgroup: CgroupFiles,
    /// Set for a container created by an earlier agent process.
    adopted: Option<Adopted>,
}

/// The libcontainer backend. Cheap to share (`Arc`); all methods take `&self`.
pub struct LibcontainerRuntime {
    state_root: PathBuf,
    bundles: PathBuf,
    cgroup_parent: String,
    cgroups: CgroupLayout,
    /// This process's `RLIMIT_NOFILE` hard limit: containers get no more.
    nofile_hard: u64,
    helper: PathBuf,
    containers: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for LibcontainerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibcontainerRuntime")
            .field("state_root", &self.state_root)
            .field("bundles", &self.bundles)
            .field("cgroup_parent", &self.cgroup_parent)
            .finish_non_exhaustive()
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let context = context.into();
    move |source| RuntimeError::Io { context, source }
}

fn backend(
    id: &str,
    op: &'static str,
) -> impl FnOnce(libcontainer::error::LibcontainerError) -> RuntimeError {
    let id = id.to_string();
    move |e| RuntimeError::Backend {
        id,
        op,
        source: Box::new(e),
    }
}

impl LibcontainerRuntime {
    /// Opens (creating) the runtime's directories.
    pub fn new(options: LibcontainerOptions) -> Result<LibcontainerRuntime> {
        let state_root = options.root.join("state");
        let bundles = options.root.join("bundles");
        for d in [&state_root, &bundles] {
            std::fs::create_dir_all(d).map_err(io_err(format!(
                "creating runtime directory {}",
                d.display()
            )))?;
        }
        let parent = format!("/{}", options.cgroup_parent.trim_matches('/'));
        let cgroups = CgroupLayout::detect().map_err(io_err("reading the host's cgroup layout"))?;
        if !options.helper.is_file() {
            return Err(RuntimeError::Io {
                context: format!(
                    "the libcontainer clone helper {} (the bramble-agent binary)",
                    options.helper.display()
                ),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        // Container inits are children of the (exited) helper: have them
        // reparented here rather than to PID 1.
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| RuntimeError::Sys {
            id: String::new(),
            op: "becoming a child subreaper",
            source: e,
        })?;
        Ok(LibcontainerRuntime {
            state_root,
            bundles,
            cgroup_parent: parent,
            cgroups,
            nofile_hard: getrlimit(Resource::RLIMIT_NOFILE)
                .map(|(_, hard)| hard)
                .unwrap_or(1024),
            helper: options.helper,
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

    /// libcontainer's state directory of container `id`.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.state_root.join(id)
    }

    /// The bundle directory (holding `config.json`) of container `id`.
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.bundles.join(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves plain data; keep going.
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn create_inner(&self, config: &ContainerConfig, cgroup: &CgroupFiles) -> Result<Container> {
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

        let stdin = clone_helper::dev_null().map_err(io_err("opening /dev/null"))?;
        let stdout = super::open_output(&config.stdout_path, id)?;
        let stderr = if config.stderr_path == config.stdout_path {
            stdout
                .try_clone()
                .map_err(io_err(format!("container {id:?}: duplicating the log fd")))?
        } else {
            super::open_output(&config.stderr_path, id)?
        };

        let _serial = CREATE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let t = Instant::now();
        clone_helper::run(
            &self.helper,
            &self.state_root,
            id,
            clone_helper::Op::Create { bundle: &bundle },
            [stdin, OwnedFd::from(stdout), OwnedFd::from(stderr)],
            &bundle.join("helper-result"),
        )?;
        let container = Container::load(self.state_dir(id)).map_err(backend(id, "create"))?;
        if self.cgroups.v2 {
            // The init waits in its exec fifo: restrict devices before
            // `start` runs anything (libcgroups ignores the rules on v2).
            self.attach_device_filter(id, &spec, cgroup)?;
        }
        tracing::debug!(id = %id, cgroup = ?cgroup.memory_dir, elapsed_us = t.elapsed().as_micros() as u64,
            "container created");
        Ok(container)
    }

    /// cgroup v2: attaches the eBPF device filter built from the spec's
    /// device rules (plus the standard devices) to the container's cgroup.
    fn attach_device_filter(
        &self,
        id: &str,
        spec: &oci_spec::runtime::Spec,
        cgroup: &CgroupFiles,
    ) -> Result<()> {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| RuntimeError::Backend {
            id: id.to_string(),
            op: "create (device filter)",
            source,
        };
        let dir = cgroup
            .dirs
            .first()
            .ok_or_else(|| failed("no cgroup v2 directory for the container".into()))?;
        let rules = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.devices().clone())
            .unwrap_or_default();
        let t = Instant::now();
        devices_bpf::apply(dir, &devices_bpf::container_rules(&rules))
            .map_err(|e| failed(Box::new(e)))?;
        tracing::debug!(id, dir = %dir.display(), elapsed_us = t.elapsed().as_micros() as u64,
            "device filter attached");
        Ok(())
    }

    /// Removes everything a container may have left: libcontainer state,
    /// cgroup directories, bundle. Best effort; failures are logged.
    fn cleanup(&self, id: &str, cgroup: &CgroupFiles) {
        let state = self.state_dir(id);
        if state.exists() {
            match Container::load(state.clone()) {
                Ok(mut c) => {
                    if let Err(e) = c.delete(true) {
                        tracing::warn!(id, error = %e, "cleanup: libcontainer delete failed");
                    }
                }
                Err(e) => tracing::warn!(id, error = %e, "cleanup: loading container state failed"),
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
}

/// Reads the init's exit without blocking; `None` while it runs.
fn try_reap(id: &str, pid: i32) -> Result<Option<ExitStatus>> {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(ExitStatus::Code(code))),
        Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(ExitStatus::Signal(sig as i32))),
        Ok(_) => Ok(None),
        Err(Errno::EINTR) => Ok(None),
        Err(e) => Err(RuntimeError::Sys {
            id: id.to_string(),
            op: "waitpid",
            source: e,
        }),
    }
}

impl Runtime for LibcontainerRuntime {
    fn name(&self) -> &'static str {
        "libcontainer"
    }

    fn create(&self, config: &ContainerConfig) -> Result<ContainerHandle> {
        config.validate()?;
        self.cgroups.check_supports(config)?;
        let id = &config.id;
        if self.lock().contains_key(id) || self.state_dir(id).exists() {
            return Err(RuntimeError::AlreadyExists { id: id.clone() });
        }
        let cgroup = self.cgroup_files(id)?;
        let container = match self.create_inner(config, &cgroup) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(id = %id, error = %e, "create failed; cleaning up");
                self.cleanup(id, &cgroup);
                return Err(e);
            }
        };
        let Some(pid) = container.pid() else {
            self.cleanup(id, &cgroup);
            return Err(RuntimeError::Backend {
                id: id.clone(),
                op: "create",
                source: "libcontainer reported no init pid".into(),
            });
        };
        let handle = ContainerHandle {
            id: id.clone(),
            pid: pid.as_raw(),
        };
        self.lock().insert(
            id.clone(),
            Entry {
                container,
                started: false,
                exit: None,
                cgroup,
                adopted: None,
            },
        );
        tracing::info!(id = %id, pid = handle.pid, "container created");
        Ok(handle)
    }

    fn start(&self, handle: &ContainerHandle) -> Result<()> {
        let mut map = self.lock();
        let entry = map
            .get_mut(&handle.id)
            .ok_or_else(|| RuntimeError::NotFound {
                id: handle.id.clone(),
            })?;
        if entry.started {
            return Err(RuntimeError::WrongState {
                id: handle.id.clone(),
                op: "start",
                state: "started",
            });
        }
        entry
            .container
            .start()
            .map_err(backend(&handle.id, "start"))?;
        entry.started = true;
        tracing::debug!(id = %handle.id, pid = handle.pid, "container started");
        Ok(())
    }

    fn poll_exit(&self, handle: &ContainerHandle) -> Result<ContainerState> {
        let mut map = self.lock();
        let entry = map
            .get_mut(&handle.id)
            .ok_or_else(|| RuntimeError::NotFound {
                id: handle.id.clone(),
            })?;
        if entry.exit.is_none() {
            entry.exit = match &entry.adopted {
                Some(a) => a.exited().then_some(ExitStatus::Unknown),
                None => try_reap(&handle.id, handle.pid)?,
            };
            if let Some(status) = entry.exit {
                tracing::info!(id = %handle.id, ?status, "container exited");
            }
        }
        Ok(super::state_of(entry.exit, entry.started))
    }

    fn kill(&self, handle: &ContainerHandle, sig: Signal) -> Result<()> {
        // Exited and reaped: the pid may belong to someone else now.
        if let ContainerState::Exited(_) = self.poll_exit(handle)? {
            return Ok(());
        }
        if let Some(a) = self.lock().get(&handle.id).and_then(|e| e.adopted.as_ref()) {
            return a.signal(sig).map_err(io_err(format!(
                "container {:?}: signalling the adopted init",
                handle.id
            )));
        }
        // Not reaped yet, so the pid is still ours (at worst a zombie).
        match signal::kill(Pid::from_raw(handle.pid), sig) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(RuntimeError::Sys {
                id: handle.id.clone(),
                op: "kill",
                source: e,
            }),
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
        let mut entry = self
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
        entry.container.set_status(ContainerStatus::Stopped);
        let result = entry
            .container
            .delete(true)
            .map_err(backend(&handle.id, "delete"));
        // Whatever libcontainer did, leave nothing behind.
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
        let state = self.state_dir(id);
        if !state.exists() {
            return Err(RuntimeError::NotFound { id: id.clone() });
        }
        let container = Container::load(state).map_err(backend(id, "adopt"))?;
        let started = !matches!(
            container.status(),
            ContainerStatus::Creating | ContainerStatus::Created
        );
        let adopted = Adopted::open(handle.pid, &self.cgroup_path(id));
        let exit = adopted.is_none().then_some(ExitStatus::Unknown);
        let cgroup = self.cgroup_files(id)?;
        self.lock().insert(
            id.clone(),
            Entry {
                container,
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
        super::list_dirs(&[&self.state_root, &self.bundles])
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

    /// [`Runtime::spawn_exec`] with `/dev/null` as stdin and output pipes
    /// that are collected here.
    fn exec(
        &self,
        handle: &ContainerHandle,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let id = &handle.id;
        let pipes = OutputPipes::new(id)?;
        let stdin = clone_helper::dev_null().map_err(io_err("opening /dev/null"))?;
        let stdio = ExecStdio {
            stdin,
            stdout: pipes.stdout_write,
            stderr: pipes.stderr_write,
        };
        // The builder owned the write ends and has dropped them: EOF comes
        // when the process (and whatever inherited them) is done.
        let pid = self.spawn_exec(handle, argv, stdio)?;
        collect(id, pid, pipes.stdout_read, pipes.stderr_read, timeout)
    }

    /// libcontainer's tenant builder (what `youki exec` does) with the
    /// container's own process description, under the create lock with
    /// SIGPIPE at its default (it forks from here like a create).
    fn spawn_exec(
        &self,
        handle: &ContainerHandle,
        argv: &[String],
        stdio: ExecStdio,
    ) -> Result<i32> {
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
        let pid = {
            let _serial = CREATE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            let built = clone_helper::run(
                &self.helper,
                &self.state_root,
                id,
                clone_helper::Op::Exec {
                    process: &process.path,
                },
                [stdio.stdin, stdio.stdout, stdio.stderr],
                &process.path.with_extension("result"),
            );
            // The tenant builder leaves its notify socket behind, one per
            // exec: remove it (the process has started, nothing needs it).
            remove_tenant_sockets(&self.state_dir(id));
            built?
        };
        tracing::debug!(id = %id, pid, args = argv.len(),
            elapsed_us = t.elapsed().as_micros() as u64, "exec started");
        Ok(pid)
    }
}

/// Removes `tenant-notify-*.sock` files from a container's state dir.
fn remove_tenant_sockets(state: &Path) {
    let Ok(entries) = std::fs::read_dir(state) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with("tenant-notify-")
            && let Err(err) = std::fs::remove_file(e.path())
        {
            tracing::warn!(path = %e.path().display(), error = %err,
                "removing an exec notify socket");
        }
    }
}
