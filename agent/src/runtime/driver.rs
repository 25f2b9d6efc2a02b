//! What a container backend must provide to the runtime core
//! ([`super::core::Core`]): only the steps that differ between youki's
//! libcontainer in-process and an OCI runtime binary such as runc.
//!
//! The core does the rest the same way for both: the table of containers
//! and their lifecycle, the bundle (`config.json`) and the output files,
//! reaping the init, reading the OOM counter before a delete, stats,
//! adoption, leftovers and the exec plumbing. A driver keeps no
//! per-container state of its own: every call names the container by id
//! (and init pid), and the backend's state directory
//! (`<state_root>/<id>/`) holds the rest.
//!
//! Calls come without the core's lock held and may take a while (a binary
//! runs); the core makes sure two of them never act on one container in
//! conflicting ways (see [`super::status`]).

use std::fs::File;
use std::path::Path;

use oci_spec::runtime::Spec;

use super::cgroup::CgroupFiles;
use super::exec::ProcessFile;
use super::{ContainerState, ExecStdio, Result, Signal};

/// Where a new container's stdout and stderr go: its log files (or the log
/// pump's FIFOs), opened by the core; one file twice when both are the
/// same path.
#[derive(Debug)]
pub struct Output {
    pub stdout: File,
    pub stderr: File,
}

/// A container backend under the runtime core. See the module docs.
pub trait Driver: Send + Sync + std::fmt::Debug + 'static {
    /// A short name for logs and metrics (`libcontainer`, `runc`).
    fn name(&self) -> &'static str;

    /// The directory holding the backend's state of each container, one
    /// `<id>/` each.
    fn state_root(&self) -> &Path;

    /// Creates container `id` from `bundle` (its `config.json`, `spec`,
    /// already written; the spec is handed over, to be dropped here) with `/dev/null` as the init's stdin and `output`
    /// as its stdout and stderr; returns the init's pid, a process that is
    /// (or will be, once orphaned) a child of this process. `cgroup` is
    /// the container's cgroup, for what the backend must add to it. On an
    /// error the core removes what is left (see [`Driver::force_delete`]).
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        spec: Spec,
        output: Output,
        cgroup: &CgroupFiles,
    ) -> Result<i32>;

    /// Lets the created container's init (`pid`) exec its process.
    fn start(&self, id: &str, pid: i32) -> Result<()>;

    /// Sends `signal` to the container's init (`pid`, not reaped yet).
    fn kill(&self, id: &str, pid: i32, signal: Signal) -> Result<()>;

    /// Removes the backend's state of a container whose init has ended and
    /// was reaped.
    fn delete(&self, id: &str) -> Result<()>;

    /// Removes whatever the backend has of container `id` (a failed create,
    /// a leftover of an earlier agent), killing what still runs.
    fn force_delete(&self, id: &str) -> Result<()>;

    /// The container's state as the backend recorded it: `Created` (also
    /// while creating), `Running` (also paused) or, once stopped,
    /// `Exited(Unknown)`. For adoption, and for an init that turns out not
    /// to be a child of this process.
    fn state(&self, id: &str) -> Result<ContainerState>;

    /// Starts the process described by `process` in running container `id`
    /// with `stdio` as its fds 0, 1 and 2; returns its pid, a process that
    /// is (or will be, once orphaned) a child of this process. A backend
    /// that reports a failure on stderr writes it into `stdio.stderr`.
    fn exec(&self, id: &str, process: &ProcessFile, stdio: ExecStdio) -> Result<i32>;
}
