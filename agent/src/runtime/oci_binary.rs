//! The OCI runtime binary backend: a [`Driver`] that runs an OCI runtime
//! binary (`runc`, and by the same command line `crun` or `youki`), for
//! hosts where libcontainer does not build (32-bit armv7). The runtime core
//! ([`Core`]) gives it the same spec ([`super::spec::build_spec`]) and does
//! everything else as for libcontainer, so both behave alike.
//!
//! Layout:
//!
//! ```text
//! ROOT/<id>/                  the binary's state (`--root ROOT`)
//! BUNDLES/<id>/config.json    the OCI spec (written by the core)
//! BUNDLES/<id>/init.pid       written by `create --pid-file`
//! ```
//!
//! and the cgroup `<cgroup_parent>/<id>` in every hierarchy (cgroupfs
//! driver: `linux.cgroupsPath` is the absolute path, as for libcontainer).
//!
//! The driver's steps map onto the binary's commands:
//!
//! - create: `BIN --root ROOT create --bundle B --pid-file P ID`, with the
//!   container's log files as the command's stdout/stderr and `/dev/null`
//!   as stdin: with `terminal: false` the binary hands its own stdio to the
//!   container's init, so the container writes straight into the files and
//!   does not depend on the agent. The binary's own error messages land
//!   there too when create fails: they are read back from the stderr file
//!   (from where it ended before the create), carried in the error, and cut
//!   off the file again.
//! - start: `BIN start ID`, then a short wait until the init has exec'd
//!   the container's process; kill: `BIN kill ID SIGNUM`; delete and a
//!   forced cleanup: `BIN delete --force ID`; the recorded state:
//!   `BIN state ID`; exec: `BIN exec --detach --pid-file P --process F ID`.
//!   Errors of these commands carry the binary's stderr.
//! - exit status: the container's init is *not* our child: `create` forks
//!   it and exits. The core makes this process a **child subreaper**, so
//!   the orphaned init is reparented to us (not to PID 1) and reaped with
//!   `waitpid` as in the libcontainer backend; no `BIN state` process is
//!   spawned per poll. The subreaper attribute is process-wide and
//!   inherited by nothing (it is cleared in children); its one cost is that
//!   any other orphaned descendant of the agent is reparented to it too and
//!   stays a zombie until reaped (the binaries' helper processes are reaped
//!   by the binaries themselves, so in practice only container inits and
//!   exec'd processes arrive).
//!
//! Children are spawned with `std::process::Command`, which resets SIGPIPE
//! to its default disposition in the child, so containers do not inherit
//! the Rust runtime's ignored SIGPIPE.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;

use super::backend_error::BackendError;
use super::cgroup::CgroupFiles;
use super::core::Core;
use super::driver::{self, Driver};
use super::exec::{ProcessFile, stderr_text};
use super::{ContainerState, ExecStdio, ExitStatus, Result, RuntimeError, Signal};

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

/// The driver of an OCI runtime binary.
#[derive(Debug)]
pub struct OciBinary {
    binary: PathBuf,
    name: &'static str,
    root: PathBuf,
}

/// The OCI runtime binary backend: the runtime core over [`OciBinary`].
pub type OciBinaryRuntime = Core<OciBinary>;

/// The backend driving `runc` (the same type drives `crun` and `youki`).
pub type RuncRuntime = OciBinaryRuntime;

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

/// Reads the pid a binary wrote into `path` (`--pid-file`).
fn read_pid(id: &str, op: &'static str, path: &Path) -> Result<i32> {
    std::fs::read_to_string(path)
        .map_err(RuntimeError::io(format!(
            "container {id:?}: {op}: reading {}",
            path.display()
        )))?
        .trim()
        .parse::<i32>()
        .map_err(|e| BackendError::PidFile(e).of(id, op))
}

impl Core<OciBinary> {
    /// Checks that the binary runs (`BIN --version`), then opens (creating)
    /// the runtime's directories and makes this process a child subreaper
    /// ([`Core::with_driver`]).
    pub fn new(options: OciBinaryOptions) -> Result<OciBinaryRuntime> {
        let driver = OciBinary::new(options.binary, options.root)?;
        Core::with_driver(driver, options.bundles, &options.cgroup_parent)
    }
}

impl OciBinary {
    /// The driver of `binary` with its state under `root`, once
    /// `BIN --version` ran.
    pub fn new(binary: PathBuf, root: PathBuf) -> Result<OciBinary> {
        let version = Command::new(&binary)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(RuntimeError::io(format!(
                "running the OCI runtime {}",
                binary.display()
            )))?;
        if !version.status.success() {
            return Err(BackendError::Command {
                command: format!("{} --version", binary.display()),
                status: version.status,
                stderr: stderr_text(&version.stderr),
            }
            .of("", "version check"));
        }
        tracing::debug!(binary = %binary.display(),
            version = %String::from_utf8_lossy(&version.stdout).lines().next().unwrap_or(""),
            "OCI runtime binary backend ready");
        Ok(OciBinary {
            name: name_of(&binary),
            binary,
            root,
        })
    }

    /// `BIN --root ROOT`, stdin from `/dev/null`.
    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root).stdin(Stdio::null());
        c
    }

    /// Runs `BIN --root ROOT args...`; a failure carries its stderr.
    fn run(&self, id: &str, op: &'static str, args: &[&str]) -> Result<Output> {
        let out = self
            .command()
            .args(args)
            .output()
            .map_err(RuntimeError::io(format!(
                "container {id:?}: running {} {op}",
                self.binary.display()
            )))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(BackendError::Command {
                command: format!("{} {}", self.name, args.join(" ")),
                status: out.status,
                stderr: stderr_text(&out.stderr),
            }
            .of(id, op))
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

impl Driver for OciBinary {
    fn name(&self) -> &'static str {
        self.name
    }

    fn state_root(&self) -> &Path {
        &self.root
    }

    fn create(
        &self,
        id: &str,
        bundle: &Path,
        _spec: Spec,
        output: driver::Output,
        _cgroup: &CgroupFiles,
    ) -> Result<i32> {
        let mut stderr = output.stderr;
        let stderr_start = stderr
            .metadata()
            .map_err(RuntimeError::io(format!(
                "container {id:?}: stat of the stderr log"
            )))?
            .len();
        let stderr_for_child = stderr.try_clone().map_err(RuntimeError::io(format!(
            "container {id:?}: duplicating the log fd"
        )))?;
        let pid_file = bundle.join("init.pid");
        let status = self
            .command()
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .stdout(output.stdout)
            .stderr(stderr_for_child)
            .status()
            .map_err(RuntimeError::io(format!(
                "container {id:?}: running {} create",
                self.binary.display()
            )))?;
        if !status.success() {
            // The binary wrote its error into the container's stderr log:
            // take it back out of there and into the error.
            let msg = take_tail(&mut stderr, stderr_start);
            return Err(BackendError::Command {
                command: format!("{} create", self.name),
                status,
                stderr: stderr_text(&msg),
            }
            .of(id, "create"));
        }
        read_pid(id, "create", &pid_file)
    }

    fn start(&self, id: &str, pid: i32) -> Result<()> {
        // `runc init` (a Go program) is still the init until it execs the
        // container's process: a signal arriving before that ends it with
        // Go's exit code 2 instead of the signal. Wait (briefly) for the exec.
        let exe = |pid: i32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let before = exe(pid);
        self.run(id, "start", &["start", id])?;
        let deadline = Instant::now() + Duration::from_secs(1);
        while before.is_some() && exe(pid) == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn kill(&self, id: &str, _pid: i32, signal: Signal) -> Result<()> {
        let signum = (signal as i32).to_string();
        self.run(id, "kill", &["kill", id, &signum]).map(drop)
    }

    fn delete(&self, id: &str) -> Result<()> {
        self.run(id, "delete", &["delete", "--force", id]).map(drop)
    }

    /// `--force` kills what still runs.
    fn force_delete(&self, id: &str) -> Result<()> {
        self.delete(id)
    }

    /// From `BIN state ID`: `created`, `running`, `stopped`, `paused`.
    fn state(&self, id: &str) -> Result<ContainerState> {
        let out = self.run(id, "state", &["state", id])?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|source| {
            BackendError::State {
                command: format!("{} state", self.name),
                source,
            }
            .of(id, "state")
        })?;
        Ok(match v["status"].as_str() {
            Some("creating" | "created") => ContainerState::Created,
            Some("stopped") => ContainerState::Exited(ExitStatus::Unknown),
            _ => ContainerState::Running,
        })
    }

    /// The binary starts the process with `stdio`, which it inherits, and
    /// exits; the process, orphaned, is reparented to this process (a child
    /// subreaper), which reaps it. The command holds the stdio and is
    /// dropped with this statement: only the process has them afterwards.
    fn exec(&self, id: &str, process: &ProcessFile, stdio: ExecStdio) -> Result<i32> {
        let status = self
            .command()
            .arg("exec")
            .arg("--detach")
            .arg("--pid-file")
            .arg(&process.pid_path)
            .arg("--process")
            .arg(&process.path)
            .arg(id)
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr)
            .status()
            .map_err(RuntimeError::io(format!(
                "container {id:?}: running {} exec",
                self.binary.display()
            )))?;
        if !status.success() {
            return Err(BackendError::Exec {
                command: format!("{} exec", self.name),
                status,
            }
            .of(id, "exec"));
        }
        read_pid(id, "exec", &process.pid_path)
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
        let mut f = crate::runtime::core::open_output(&path, "c").unwrap();
        use std::io::Write;
        f.write_all(b"runc: boom\n").unwrap();
        assert_eq!(take_tail(&mut f, 5), b"runc: boom\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine\n");
    }
}
