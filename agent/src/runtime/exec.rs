//! The exec plumbing of the runtime core ([`super::core`]) for every
//! backend: the exec'd process's description and the collection of its
//! output and exit (also used by the agent's streaming exec, `session/`).
//!
//! - The process is the container's own (`process` of the bundle's
//!   `config.json`: user, env, cwd, capabilities, rlimits, no new
//!   privileges) with other arguments, written to a `process.json`-style
//!   file in the bundle ([`ProcessFile`], removed on drop) that libcontainer's
//!   tenant builder (`with_process`) and `runc exec --process` both read.
//!   So an exec'd command runs exactly as the container's own process does,
//!   as `kubectl exec` and exec probes expect.
//! - Its stdout and stderr are pipes ([`OutputPipes`]) read here; its stdin
//!   is `/dev/null`. The process is a child of this process (libcontainer
//!   clones it with `CLONE_PARENT`; runc's orphan is reparented to the
//!   agent, a child subreaper), so [`collect`] reaps it with `waitpid` and
//!   kills it with SIGKILL when the timeout passes. Only that process is
//!   killed, not what it started; its output is read until it exits (plus
//!   what is already in the pipes then), so a background child holding the
//!   pipes does not hold up the caller.
//! - At most [`EXEC_OUTPUT_LIMIT`] bytes of each stream are kept; the rest
//!   is read and discarded (so the process never blocks on a full pipe) and
//!   `truncated` is set.
//! - When a backend fails to start the process, what it wrote on the
//!   process's stderr (a runtime binary's reason) is read back
//!   ([`read_available`]) and carried in the error ([`stderr_text`]).

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use super::{BackendError, ExecOutput, ExitStatus, Result, RuntimeError};

/// The most bytes of stdout (and, separately, of stderr) an exec keeps.
pub const EXEC_OUTPUT_LIMIT: usize = 64 * 1024;

/// Distinguishes the files of concurrent execs.
static EXEC_SEQ: AtomicU64 = AtomicU64::new(0);

/// The one part of a bundle's `config.json` an exec needs: the rest of
/// the spec is not parsed (nor its parser linked into 32-bit agents).
#[derive(serde::Deserialize)]
struct ProcessOnly {
    process: Option<Process>,
}

/// The exec'd process's description, written into the bundle; the file is
/// removed on drop.
#[derive(Debug)]
pub struct ProcessFile {
    pub path: PathBuf,
    /// Where a runtime writes the process's pid (`runc exec --pid-file`),
    /// also removed on drop.
    pub pid_path: PathBuf,
}

impl ProcessFile {
    /// The container's process from `bundle/config.json` with `argv` as its
    /// arguments.
    pub fn write(id: &str, bundle: &Path, argv: &[String]) -> Result<ProcessFile> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err(RuntimeError::InvalidConfig {
                id: id.to_string(),
                reason: "exec: nothing to run: the command is empty".into(),
            });
        }
        let config = bundle.join("config.json");
        let json = std::fs::read(&config).map_err(|source| {
            BackendError::ReadSpec {
                path: config.clone(),
                source,
            }
            .of(id, "exec")
        })?;
        let ProcessOnly { process } = serde_json::from_slice(&json).map_err(|source| {
            BackendError::ParseSpec {
                path: config.clone(),
                source,
            }
            .of(id, "exec")
        })?;
        let mut process = process.ok_or_else(|| {
            BackendError::NoProcess {
                path: config.clone(),
            }
            .of(id, "exec")
        })?;
        process.set_args(Some(argv.to_vec()));
        let n = EXEC_SEQ.fetch_add(1, Ordering::Relaxed);
        let file = ProcessFile {
            path: bundle.join(format!("exec-{n}.json")),
            pid_path: bundle.join(format!("exec-{n}.pid")),
        };
        let json = serde_json::to_vec(&process).map_err(|e| RuntimeError::InvalidConfig {
            id: id.to_string(),
            reason: format!("exec: serializing the process: {e}"),
        })?;
        std::fs::write(&file.path, json).map_err(RuntimeError::io(format!(
            "container {id:?}: exec: writing {}",
            file.path.display()
        )))?;
        Ok(file)
    }
}

impl Drop for ProcessFile {
    fn drop(&mut self) {
        for p in [&self.path, &self.pid_path] {
            if let Err(e) = std::fs::remove_file(p)
                && e.kind() != ErrorKind::NotFound
            {
                tracing::warn!(path = %p.display(), error = %e, "removing an exec file");
            }
        }
    }
}

/// Pipes for an exec'd process's stdout and stderr (close-on-exec here;
/// the runtimes `dup2` the write ends onto the process's 1 and 2).
pub struct OutputPipes {
    pub stdout_read: File,
    pub stderr_read: File,
    pub stdout_write: OwnedFd,
    pub stderr_write: OwnedFd,
}

/// The read end of `/dev/null`, for an exec'd process's stdin.
pub fn dev_null() -> std::io::Result<OwnedFd> {
    File::open("/dev/null").map(OwnedFd::from)
}

/// A runtime's stderr as one trimmed, line-joined message.
pub fn stderr_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        "(no output)".to_string()
    } else {
        text.lines().collect::<Vec<_>>().join("; ")
    }
}

#[allow(unsafe_code)]
pub fn pipe(id: &str) -> Result<(File, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(RuntimeError::io(format!(
            "container {id:?}: exec: creating a pipe"
        ))(std::io::Error::last_os_error()));
    }
    // SAFETY: both fds are fresh and owned by nothing else.
    unsafe { Ok((File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

impl OutputPipes {
    pub fn new(id: &str) -> Result<OutputPipes> {
        let (stdout_read, stdout_write) = pipe(id)?;
        let (stderr_read, stderr_write) = pipe(id)?;
        Ok(OutputPipes {
            stdout_read,
            stderr_read,
            stdout_write,
            stderr_write,
        })
    }
}

/// One stream being read: kept bytes, and whether it reached EOF.
struct Stream {
    file: File,
    kept: Vec<u8>,
    eof: bool,
    truncated: bool,
}

impl Stream {
    fn new(file: File) -> Stream {
        Stream {
            file,
            kept: Vec::new(),
            eof: false,
            truncated: false,
        }
    }

    /// Reads what is there without blocking (the fd is non-blocking).
    fn drain(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        while !self.eof {
            match self.file.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    let room = EXEC_OUTPUT_LIMIT - self.kept.len();
                    if n > room {
                        self.truncated = true;
                    }
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // WouldBlock: nothing more for now. Other errors end it.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => self.eof = true,
            }
        }
    }
}

#[allow(unsafe_code)]
pub fn set_nonblocking(f: &File) -> std::io::Result<()> {
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on an fd we own, reading and setting its flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What can be read from `file` right now, up to [`EXEC_OUTPUT_LIMIT`]
/// bytes (e.g. a runtime's error message on a pipe whose writers are gone).
pub fn read_available(file: File) -> Vec<u8> {
    let mut s = Stream::new(file);
    if set_nonblocking(&s.file).is_ok() {
        s.drain();
    }
    s.kept
}

/// Waits up to `max` for one of the streams to be readable.
#[allow(unsafe_code)]
fn wait_readable(streams: &[&Stream], max: Duration) {
    let mut fds: Vec<libc::pollfd> = streams
        .iter()
        .filter(|s| !s.eof)
        .map(|s| libc::pollfd {
            fd: s.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = max.as_millis().clamp(1, 1000) as libc::c_int;
    if fds.is_empty() {
        std::thread::sleep(Duration::from_millis(ms as u64));
        return;
    }
    // SAFETY: poll reads and writes the array of `fds.len()` entries we own.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
    }
}

/// Reaps `pid` without blocking.
pub fn try_reap(id: &str, pid: Pid) -> Result<Option<ExitStatus>> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(ExitStatus::Code(code))),
        Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(ExitStatus::Signal(sig as i32))),
        Ok(_) | Err(Errno::EINTR) => Ok(None),
        Err(e) => Err(RuntimeError::Sys {
            id: id.to_string(),
            op: "exec: waitpid",
            source: e,
        }),
    }
}

/// Kills the exec'd process `pid` (SIGKILL) and reaps it.
fn kill_and_reap(id: &str, pid: Pid) -> Result<ExitStatus> {
    let sys = |op: &'static str| {
        move |source| RuntimeError::Sys {
            id: id.to_string(),
            op,
            source,
        }
    };
    match signal::kill(pid, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => return Err(sys("exec: kill after the timeout")(e)),
    }
    // SIGKILL cannot be ignored: the wait is bounded by the kernel.
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ExitStatus::Code(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(ExitStatus::Signal(sig as i32)),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(sys("exec: waitpid after the kill")(e)),
        }
    }
}

/// Reads the exec'd process `pid`'s output from `pipes`' read ends (their
/// write ends must be closed here already) until it exits, killing it with
/// SIGKILL once `timeout` has passed.
pub fn collect(
    id: &str,
    pid: i32,
    stdout: File,
    stderr: File,
    timeout: Duration,
) -> Result<ExecOutput> {
    let pid = Pid::from_raw(pid);
    let deadline = Instant::now() + timeout;
    let (mut out, mut err) = (Stream::new(stdout), Stream::new(stderr));
    for s in [&out, &err] {
        set_nonblocking(&s.file).map_err(RuntimeError::io(format!(
            "container {id:?}: exec: making the output pipe non-blocking"
        )))?;
    }
    let mut timed_out = false;
    let status = loop {
        out.drain();
        err.drain();
        if let Some(status) = try_reap(id, pid)? {
            break status;
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            tracing::info!(
                id,
                pid = pid.as_raw(),
                timeout_ms = timeout.as_millis() as u64,
                "exec timed out; killing the process"
            );
            break kill_and_reap(id, pid)?;
        }
        // Wake on output, else poll the exit every 10 ms.
        wait_readable(
            &[&out, &err],
            (deadline - now).min(Duration::from_millis(10)),
        );
    };
    // What the process wrote before it ended.
    out.drain();
    err.drain();
    Ok(ExecOutput {
        status,
        truncated: out.truncated || err.truncated,
        stdout: out.kept,
        stderr: err.kept,
        timed_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    /// Spawns `sh -c script` with the pipes as stdout/stderr, as a runtime
    /// would, and collects it.
    fn run(script: &str, timeout: Duration) -> ExecOutput {
        let pipes = OutputPipes::new("t").unwrap();
        let child = {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(script)
                .stdin(Stdio::null())
                .stdout(Stdio::from(pipes.stdout_write))
                .stderr(Stdio::from(pipes.stderr_write))
                .process_group(0);
            cmd.spawn().unwrap()
            // `cmd` (holding the write ends) is dropped here.
        };
        let out = collect(
            "t",
            child.id() as i32,
            pipes.stdout_read,
            pipes.stderr_read,
            timeout,
        );
        // Whatever the script left running (its own process group).
        let _ = signal::killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        out.unwrap()
    }

    #[test]
    fn stderr_is_joined_and_never_empty() {
        assert_eq!(stderr_text(b""), "(no output)");
        assert_eq!(stderr_text(b"a\nb\n"), "a; b");
    }

    #[test]
    fn output_and_exit_code() {
        let o = run("echo out; echo err >&2; exit 3", Duration::from_secs(10));
        assert_eq!(o.status, ExitStatus::Code(3));
        assert_eq!(
            (o.stdout.as_slice(), o.stderr.as_slice()),
            (&b"out\n"[..], &b"err\n"[..])
        );
        assert!(!o.timed_out && !o.truncated);
    }

    #[test]
    fn output_is_capped_but_fully_read() {
        let o = run(
            "head -c 1000000 /dev/zero; echo done >&2",
            Duration::from_secs(10),
        );
        assert_eq!(o.status, ExitStatus::Code(0));
        assert_eq!(o.stdout.len(), EXEC_OUTPUT_LIMIT);
        assert_eq!(o.stderr, b"done\n");
        assert!(o.truncated);
    }

    #[test]
    fn timeout_kills_the_process() {
        let t = Instant::now();
        let o = run("echo started; exec sleep 100", Duration::from_millis(300));
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        assert!(o.timed_out);
        assert_eq!(o.status, ExitStatus::Signal(9));
        assert_eq!(o.stdout, b"started\n");
    }

    #[test]
    fn a_background_child_holding_the_pipe_does_not_hold_up() {
        // Waiting for the pipe to close would run into the timeout.
        let o = run("sleep 100 & echo parent-done", Duration::from_secs(10));
        assert!(!o.timed_out, "{o:?}");
        assert_eq!(o.status, ExitStatus::Code(0));
        assert_eq!(o.stdout, b"parent-done\n");
    }
}
