//! Why a backend operation failed when the failure is the agent's own
//! finding rather than a library's error ([`BackendError`]): an OCI runtime
//! binary that exited non-zero (with its stderr), an unreadable pid file or
//! state, an exec's process file, a piece the libcontainer driver lacks, a
//! lost exit status. It is the `source` of [`RuntimeError::Backend`], which
//! names the container and the operation.

use std::path::PathBuf;
use std::process::ExitStatus;

use super::RuntimeError;

/// See the module docs.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// An OCI runtime binary failed: `command` is what it was asked (e.g.
    /// `runc kill ID KILL`), `stderr` what it said (`(no output)` if
    /// nothing).
    #[error("{command}: {status}: {stderr}")]
    Command {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    /// `BIN exec` failed; its reason went to the exec's stderr, which the
    /// caller may add ([`BackendError::WithStderr`]).
    #[error("{command}: {status} (the reason went to the exec's stderr)")]
    Exec { command: String, status: ExitStatus },
    #[error("bad pid file: {0}")]
    PidFile(#[source] std::num::ParseIntError),
    /// `BIN state ID` printed no JSON.
    #[error("{command}: bad JSON: {source}")]
    State {
        command: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("reading the container's spec {path}: {source}")]
    ReadSpec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the container's spec {path}: {source}")]
    ParseSpec {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has no process")]
    NoProcess { path: PathBuf },
    #[error("no cgroup v2 directory for the container")]
    NoCgroupDir,
    #[error("libcontainer reported no init pid")]
    NoInitPid,
    #[error(
        "the init (pid {pid}) stopped but is not a child of this process, so its exit status \
         is lost (was the agent a child subreaper?)"
    )]
    NotOurChild { pid: i32 },
    /// A failed exec's error with what the exec wrote on its stderr (a
    /// runtime binary's reason).
    #[error("{source}: {stderr}")]
    WithStderr {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        stderr: String,
    },
}

impl BackendError {
    /// The [`RuntimeError::Backend`] of `op` on container `id`.
    pub fn of(self, id: &str, op: &'static str) -> RuntimeError {
        RuntimeError::Backend {
            id: id.to_string(),
            op,
            source: Box::new(self),
        }
    }
}
