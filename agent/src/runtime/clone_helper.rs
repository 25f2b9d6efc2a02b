//! Where libcontainer's clones happen: a short-lived, single-threaded
//! helper process (the agent's own binary, `bramble-agent
//! libcontainer-helper ...`), never the agent itself.
//!
//! libcontainer creates a container (and an exec's process) by cloning the
//! calling process with a raw `clone3`, so no `pthread_atfork` handler runs,
//! and the child then runs Rust code (allocations, `tracing` macros) before
//! it execs. In a multi-threaded process a lock that another thread held at
//! the moment of the clone (a malloc lock — musl's malloc has one global
//! lock —, the log writer's mutex) is held forever in the child, which
//! hangs: `tests/runtime_stress.rs` reproduced this in-process within a few
//! creates. The helper has one thread, so nothing is held when it clones.
//!
//! Protocol: the agent spawns the helper (`std::process::Command`:
//! `posix_spawn`/`vfork`+`exec`, safe from a threaded process) with the
//! container's stdio as the helper's stdin/stdout/stderr; the helper resets
//! SIGPIPE to the default (the Rust runtime ignores it, and an ignored
//! disposition would survive into the container), runs libcontainer's
//! builder with its own fds 0/1/2 as the container's stdio, writes
//! `ok <pid>` or `error <message>` to the result file and exits. The
//! container's init (or exec'd process) is a child of the helper
//! (libcontainer clones it with `CLONE_PARENT` from its intermediate
//! process) and is reparented to the agent when the helper exits, because
//! the agent is a child subreaper; so `waitpid` works as before. The helper
//! never logs: its stderr is the container's.
//!
//! When the build fails (an exec of a command the image lacks), the helper
//! reaps libcontainer's intermediate and init processes of that attempt
//! before it exits ([`reap_children`]). Left behind they would become
//! zombies of the agent, which does not know their pids; and an exec's init
//! has joined the container's PID namespace, whose init, once told to
//! stop, cannot finish exiting while a process of its namespace is unreaped
//! (the kernel's `zap_pid_ns_processes` waits): the container would never
//! report its exit, and the agent waiting for it would hang.
//!
//! The helper's own failures are [`HelperError`]s (their text crosses the
//! result file); the agent sees a failed run as a [`HelperFailure`], the
//! source of the runtime's `Backend` error.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;

use super::{Result, RuntimeError};

/// The hidden subcommand of `bramble-agent` that runs the helper.
pub const SUBCOMMAND: &str = "libcontainer-helper";

/// Why a run of the helper gave no pid, as the agent sees it.
#[derive(Debug, thiserror::Error)]
pub enum HelperFailure {
    #[error("running the libcontainer helper {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("helper reported pid {pid:?}: {source}")]
    BadPid {
        pid: String,
        #[source]
        source: std::num::ParseIntError,
    },
    /// The helper's own error ([`HelperError`]), as it wrote it.
    #[error("{0}")]
    Reported(String),
    #[error(
        "the libcontainer helper {binary} exited with {status} and no result (is it the \
         bramble-agent binary of this version?)"
    )]
    NoResult { binary: PathBuf, status: ExitStatus },
}

/// Why the helper could not create the container or start the process.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("resetting SIGPIPE: {0}")]
    Sigpipe(#[source] nix::Error),
    #[error("duplicating the helper's {which}: {source}")]
    Stdio {
        which: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Libcontainer(#[from] LibcontainerError),
    #[error("libcontainer reported no init pid")]
    NoInitPid,
    #[error("unknown helper operation {0:?}")]
    UnknownOp(String),
}

/// What the helper is asked to do.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Create a container from the bundle directory (`config.json`).
    Create { bundle: &'a Path },
    /// Start a process in a running container (a process JSON file).
    Exec { process: &'a Path },
}

/// Runs the helper `binary` for container `id` under libcontainer state
/// root `state_root`; the container gets `stdio`. Returns the pid of the
/// container's init (create) or of the exec'd process.
pub fn run(
    binary: &Path,
    state_root: &Path,
    id: &str,
    op: Op<'_>,
    stdio: [OwnedFd; 3],
    result_file: &Path,
) -> Result<i32> {
    let (verb, path) = match op {
        Op::Create { bundle } => ("create", bundle),
        Op::Exec { process } => ("exec", process),
    };
    let fail = |failure: HelperFailure| RuntimeError::Backend {
        id: id.to_string(),
        op: if verb == "create" { "create" } else { "exec" },
        source: Box::new(failure),
    };
    let _ = std::fs::remove_file(result_file);
    let [stdin, stdout, stderr] = stdio;
    let t = Instant::now();
    let status = Command::new(binary)
        .arg(SUBCOMMAND)
        .arg(verb)
        .arg(state_root)
        .arg(id)
        .arg(path)
        .arg(result_file)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .env_clear()
        .status()
        .map_err(|source| {
            fail(HelperFailure::Spawn {
                binary: binary.to_path_buf(),
                source,
            })
        })?;
    let result = std::fs::read_to_string(result_file).unwrap_or_default();
    let _ = std::fs::remove_file(result_file);
    tracing::debug!(id, verb, elapsed_us = t.elapsed().as_micros() as u64, %status, "libcontainer helper done");
    match result.split_once(' ') {
        Some(("ok", pid)) if status.success() => pid.trim().parse().map_err(|source| {
            fail(HelperFailure::BadPid {
                pid: pid.to_string(),
                source,
            })
        }),
        Some(("error", msg)) => Err(fail(HelperFailure::Reported(msg.trim().to_string()))),
        _ => Err(fail(HelperFailure::NoResult {
            binary: binary.to_path_buf(),
            status,
        })),
    }
}

/// The helper's side: `args` are what follows [`SUBCOMMAND`]. Returns the
/// process exit code. Call it before anything starts a thread.
pub fn main(args: &[OsString]) -> i32 {
    let [verb, state_root, id, path, result_file] = args else {
        eprintln!("usage: bramble-agent {SUBCOMMAND} create|exec STATE_ROOT ID PATH RESULT_FILE");
        return 2;
    };
    let result_file = PathBuf::from(result_file);
    let outcome = helper(
        verb.to_str().unwrap_or(""),
        Path::new(state_root),
        &id.to_string_lossy(),
        Path::new(path),
    );
    let (line, code) = match outcome {
        Ok(pid) => (format!("ok {pid}\n"), 0),
        Err(e) => {
            reap_children(REAP_WAIT);
            (format!("error {e}\n"), 1)
        }
    };
    if std::fs::write(&result_file, line).is_err() {
        return 3;
    }
    code
}

/// How long a failed attempt's processes get to exit.
const REAP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reaps every child of the helper, waiting up to `limit` for those still
/// running (a failed attempt's processes exit at once; one that does not is
/// left to the agent, as before).
fn reap_children(limit: std::time::Duration) {
    use nix::errno::Errno;
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let deadline = Instant::now() + limit;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

fn helper(verb: &str, state_root: &Path, id: &str, path: &Path) -> Result<i32, HelperError> {
    reset_sigpipe()?;
    let fd = |f: std::io::Result<OwnedFd>, which: &'static str| {
        f.map_err(|source| HelperError::Stdio { which, source })
    };
    let stdin = fd(std::io::stdin().as_fd().try_clone_to_owned(), "stdin")?;
    let stdout = fd(std::io::stdout().as_fd().try_clone_to_owned(), "stdout")?;
    let stderr = fd(std::io::stderr().as_fd().try_clone_to_owned(), "stderr")?;
    let builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(super::seccomp::executor::SeccompExecutor::default())
        .with_root_path(state_root)?
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr);
    match verb {
        "create" => {
            let container = builder
                .validate_id()?
                .as_init(path)
                .with_systemd(false)
                .with_detach(true)
                .build()?;
            container
                .pid()
                .map(|p| p.as_raw())
                .ok_or(HelperError::NoInitPid)
        }
        "exec" => builder
            .as_tenant()
            .with_process(Some(path))
            .with_detach(true)
            .build()
            .map(|p| p.as_raw())
            .map_err(HelperError::from),
        other => Err(HelperError::UnknownOp(other.to_string())),
    }
}

#[allow(unsafe_code)]
fn reset_sigpipe() -> Result<(), HelperError> {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installs SIG_DFL, not a handler function; the helper has a
    // single thread.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
        .map(|_| ())
        .map_err(HelperError::Sigpipe)
}

/// The read end of `/dev/null` as an fd for a container's stdin.
pub fn dev_null() -> std::io::Result<OwnedFd> {
    File::open("/dev/null").map(OwnedFd::from)
}
