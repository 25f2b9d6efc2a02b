//! The default backend: youki's libcontainer, linked into the agent, as a
//! [`Driver`] of the runtime core ([`Core`]), which does everything that
//! is not libcontainer's.
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
//! can hang the child); everything else (start, signals, state, delete)
//! runs in the agent, as `youki start` / `delete` would: the container is
//! loaded from its state directory for each step. The container's init, a
//! child of the helper, is reparented to the agent (a child subreaper, see
//! [`Core`]) when the helper exits. stdout/stderr are files or the log
//! pump's FIFOs opened by the core and handed over as fds: no pipe ties a
//! container to the agent's lifetime.
//!
//! Traps handled (see FINDINGS.md): SIGPIPE is reset to the default in the
//! helper (an ignored disposition would survive `exec`); creates and execs
//! are serialized; a container whose init was reaped is deleted as
//! `Stopped` (libcontainer would take a reused pid for its init, still
//! running, and signal it).
//!
//! On a cgroup v2 host libcgroups (without its `cgroupsv2_devices` feature)
//! ignores the device rules, so after libcontainer's create, while the
//! init still waits to exec, the eBPF device filter of [`devices_bpf`] is
//! attached to the container's cgroup; a failure fails the create.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use libcontainer::container::{Container, ContainerStatus};
use nix::errno::Errno;
use nix::sys::signal;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use super::backend_error::BackendError;
use super::cgroup::CgroupFiles;
use super::clone_helper;
use super::core::Core;
use super::devices_bpf;
use super::driver::{Driver, Output};
use super::exec::ProcessFile;
use super::{ContainerState, ExecStdio, ExitStatus, Result, RuntimeError, Signal};

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

/// The libcontainer driver.
#[derive(Debug)]
pub struct Libcontainer {
    state_root: PathBuf,
    helper: PathBuf,
}

/// The libcontainer backend: the runtime core over [`Libcontainer`].
pub type LibcontainerRuntime = Core<Libcontainer>;

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

impl Core<Libcontainer> {
    /// Checks the clone helper, then opens (creating) the runtime's
    /// directories and makes this process a child subreaper
    /// ([`Core::with_driver`]).
    pub fn new(options: LibcontainerOptions) -> Result<LibcontainerRuntime> {
        if !options.helper.is_file() {
            return Err(RuntimeError::Io {
                context: format!(
                    "the libcontainer clone helper {} (the bramble-agent binary)",
                    options.helper.display()
                ),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let driver = Libcontainer {
            state_root: options.root.join("state"),
            helper: options.helper,
        };
        Core::with_driver(driver, options.root.join("bundles"), &options.cgroup_parent)
    }
}

impl Libcontainer {
    /// The container as libcontainer's state directory records it.
    fn load(&self, id: &str, op: &'static str) -> Result<Container> {
        Container::load(self.state_root.join(id)).map_err(backend(id, op))
    }

    /// cgroup v2: attaches the eBPF device filter built from the spec's
    /// device rules (plus the standard devices) to the container's cgroup.
    fn attach_device_filter(&self, id: &str, spec: &Spec, cgroup: &CgroupFiles) -> Result<()> {
        const OP: &str = "create (device filter)";
        let dir = cgroup
            .dirs
            .first()
            .ok_or_else(|| BackendError::NoCgroupDir.of(id, OP))?;
        let rules = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.devices().clone())
            .unwrap_or_default();
        let t = Instant::now();
        devices_bpf::apply(dir, &devices_bpf::container_rules(&rules)).map_err(|e| {
            RuntimeError::Backend {
                id: id.to_string(),
                op: OP,
                source: Box::new(e),
            }
        })?;
        tracing::debug!(id, dir = %dir.display(), elapsed_us = t.elapsed().as_micros() as u64,
            "device filter attached");
        Ok(())
    }
}

impl Driver for Libcontainer {
    fn name(&self) -> &'static str {
        "libcontainer"
    }

    fn state_root(&self) -> &Path {
        &self.state_root
    }

    fn create(
        &self,
        id: &str,
        bundle: &Path,
        spec: Spec,
        output: Output,
        cgroup: &CgroupFiles,
    ) -> Result<i32> {
        let stdin = clone_helper::dev_null().map_err(RuntimeError::io("opening /dev/null"))?;
        let _serial = CREATE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        clone_helper::run(
            &self.helper,
            &self.state_root,
            id,
            clone_helper::Op::Create { bundle },
            [
                stdin,
                OwnedFd::from(output.stdout),
                OwnedFd::from(output.stderr),
            ],
            &bundle.join("helper-result"),
        )?;
        let container = self.load(id, "create")?;
        if cgroup.v2 {
            // The init waits in its exec fifo: restrict devices before
            // `start` runs anything (libcgroups ignores the rules on v2).
            self.attach_device_filter(id, &spec, cgroup)?;
        }
        container
            .pid()
            .map(Pid::as_raw)
            .ok_or_else(|| BackendError::NoInitPid.of(id, "create"))
    }

    fn start(&self, id: &str, _pid: i32) -> Result<()> {
        self.load(id, "start")?
            .start()
            .map_err(backend(id, "start"))
    }

    /// Not reaped yet, so the pid is still the init's (at worst a zombie).
    fn kill(&self, id: &str, pid: i32, sig: Signal) -> Result<()> {
        match signal::kill(Pid::from_raw(pid), sig) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(RuntimeError::Sys {
                id: id.to_string(),
                op: "kill",
                source: e,
            }),
        }
    }

    /// As `Stopped`: the init was reaped, and a process that got its pid
    /// since is not the container's.
    fn delete(&self, id: &str) -> Result<()> {
        let mut container = self.load(id, "delete")?;
        container.set_status(ContainerStatus::Stopped);
        container.delete(true).map_err(backend(id, "delete"))
    }

    fn force_delete(&self, id: &str) -> Result<()> {
        self.load(id, "delete")?
            .delete(true)
            .map_err(backend(id, "delete"))
    }

    fn state(&self, id: &str) -> Result<ContainerState> {
        Ok(match self.load(id, "state")?.status() {
            ContainerStatus::Creating | ContainerStatus::Created => ContainerState::Created,
            ContainerStatus::Stopped => ContainerState::Exited(ExitStatus::Unknown),
            ContainerStatus::Running | ContainerStatus::Paused => ContainerState::Running,
        })
    }

    /// libcontainer's tenant builder (what `youki exec` does) with the
    /// container's own process description, under the create lock with
    /// SIGPIPE at its default (it forks from the helper like a create).
    fn exec(&self, id: &str, process: &ProcessFile, stdio: ExecStdio) -> Result<i32> {
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
        // The tenant builder leaves its notify socket behind, one per exec:
        // remove it (the process has started, nothing needs it).
        remove_tenant_sockets(&self.state_root.join(id));
        built
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
