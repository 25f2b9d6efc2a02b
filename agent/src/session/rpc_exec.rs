//! `exec` for agents with [`FEATURE_EXEC_STREAM`]: the process's output is
//! sent as it comes (no cap), and with `stdin: true` its stdin is a pipe fed
//! by the hub's `stdin` calls ([`bramble_api::protocol::rpc_stdin`]).
//!
//! One thread per exec polls the output pipes, writes queued stdin without
//! blocking, and reaps the process:
//! - an empty `output` chunk first, once the process started, so the hub
//!   knows at once that the exec runs (a `cat` waiting for stdin says
//!   nothing);
//! - stdin must arrive in order (`offset` = bytes received so far), else the
//!   exec ends with `invalid`; what is written is acknowledged with
//!   `stdinAck` so the hub sends at most its window ahead. `eof` closes the
//!   pipe once everything before it is written. A process that closed its
//!   stdin gets the rest discarded (and acknowledged);
//! - `cancel` (the client went away), a stdin queue overflow (the hub
//!   ignored its window) or [`EXEC_TIMEOUT`] kill the process (SIGKILL);
//! - after the exit, what is left in the pipes is sent, then `end` with the
//!   exit code. As in [`crate::runtime::exec`], a background child holding
//!   the pipes does not hold up the end.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bramble_api::protocol::RpcChunk;
use bramble_api::protocol::rpc::{RpcError, RpcErrorCode, Stream};
use nix::sys::signal::{self, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::rpc::EXEC_TIMEOUT;
pub use super::stdin_feed::StdinFeed;
use super::stdin_feed::{FeedError, StdinState};
use crate::runtime::exec::{OutputPipes, pipe, set_nonblocking, try_reap};
use crate::runtime::{ContainerHandle, ExecStdio, Runtime};

#[cfg(doc)]
use bramble_api::protocol::rpc::FEATURE_EXEC_STREAM;

/// Raw output bytes read (and sent) at a time.
const READ_BYTES: usize = 16 * 1024;

/// Why the loop stopped before the process exited on its own.
enum Stop {
    Cancelled,
    Invalid(String),
}

fn end_error(code: RpcErrorCode, message: String) -> RpcChunk {
    RpcChunk::End {
        exit_code: None,
        error: Some(RpcError { code, message }),
    }
}

/// Starts `argv` in `handle`'s container and streams it into `sink`.
pub fn exec_stream(
    runtime: &dyn Runtime,
    handle: &ContainerHandle,
    argv: &[String],
    stdin: Option<StdinFeed>,
    cancel: &AtomicBool,
    sink: &mut dyn FnMut(RpcChunk) -> bool,
) {
    let id = &handle.id;
    let started = (|| {
        let pipes = OutputPipes::new(id)?;
        let (stdin_fd, stdin_write) = match &stdin {
            Some(_) => {
                let (read, write) = pipe(id)?;
                (OwnedFd::from(read), Some(File::from(write)))
            }
            None => (
                File::open("/dev/null")
                    .map(OwnedFd::from)
                    .map_err(|source| crate::runtime::RuntimeError::Io {
                        context: "opening /dev/null".into(),
                        source,
                    })?,
                None,
            ),
        };
        let stdio = ExecStdio {
            stdin: stdin_fd,
            stdout: pipes.stdout_write,
            stderr: pipes.stderr_write,
        };
        let pid = runtime.spawn_exec(handle, argv, stdio)?;
        Ok::<_, crate::runtime::RuntimeError>((
            pid,
            pipes.stdout_read,
            pipes.stderr_read,
            stdin_write,
        ))
    })();
    let (pid, stdout, stderr, stdin_write) = match started {
        Ok(s) => s,
        Err(e) => {
            sink(end_error(RpcErrorCode::Failed, format!("exec: {e}")));
            return;
        }
    };
    let io = ProcessIo {
        pid: Pid::from_raw(pid),
        stdout,
        stderr,
        stdin: stdin_write.zip(stdin),
    };
    if let Some(end) = io.run(cancel, EXEC_TIMEOUT, sink) {
        sink(end);
    }
}

/// A started process's pipes. See the module docs.
pub struct ProcessIo {
    pub pid: Pid,
    pub stdout: File,
    pub stderr: File,
    /// The write end of its stdin and what feeds it.
    pub stdin: Option<(File, StdinFeed)>,
}

/// Reads what `file` (a pipe or socket) has now (non-blocking) into
/// chunks of `stream`;
/// `false` at EOF or error.
pub(super) fn read_some(file: &mut impl Read, stream: Stream, out: &mut Vec<RpcChunk>) -> bool {
    let mut buf = vec![0u8; READ_BYTES];
    // A few reads per turn, so one chatty stream cannot starve the rest.
    for _ in 0..8 {
        match file.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => out.push(RpcChunk::output(stream, &buf[..n])),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
    true
}

#[allow(unsafe_code)]
pub(super) fn poll(fds: &mut [libc::pollfd], ms: libc::c_int) {
    // SAFETY: poll reads and writes the array of `fds.len()` entries we own.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
    }
}

fn kill_and_reap(pid: Pid) -> Option<i32> {
    let _ = signal::kill(pid, Signal::SIGKILL);
    loop {
        match waitpid(pid, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => return Some(c),
            Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => return Some(128 + s as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
}

impl ProcessIo {
    /// Runs the loop; the `end` chunk to send last, `None` when the sink
    /// is gone.
    pub fn run(
        self,
        cancel: &AtomicBool,
        timeout: Duration,
        sink: &mut dyn FnMut(RpcChunk) -> bool,
    ) -> Option<RpcChunk> {
        let ProcessIo {
            pid,
            mut stdout,
            mut stderr,
            stdin,
        } = self;
        let mut stdin = stdin.map(|(pipe, feed)| StdinState::new(pipe, feed));
        for f in [&stdout, &stderr]
            .into_iter()
            .chain(stdin.as_ref().and_then(StdinState::pipe))
        {
            if let Err(e) = set_nonblocking(f) {
                kill_and_reap(pid);
                return Some(end_error(
                    RpcErrorCode::Failed,
                    format!("exec: making a pipe non-blocking: {e}"),
                ));
            }
        }
        if !sink(RpcChunk::output(Stream::Stdout, b"")) {
            kill_and_reap(pid);
            return None;
        }
        let deadline = Instant::now() + timeout;
        let (mut out_open, mut err_open) = (true, true);
        let mut chunks = Vec::new();
        let stop = loop {
            if cancel.load(Ordering::Relaxed) {
                break Some(Stop::Cancelled);
            }
            if Instant::now() >= deadline {
                kill_and_reap(pid);
                chunks.push(RpcChunk::output(
                    Stream::Stderr,
                    format!("\nkilled after {}s\n", timeout.as_secs()).as_bytes(),
                ));
                chunks.push(RpcChunk::End {
                    exit_code: Some(128 + Signal::SIGKILL as i32),
                    error: None,
                });
                break None;
            }
            if out_open {
                out_open = read_some(&mut stdout, Stream::Stdout, &mut chunks);
            }
            if err_open {
                err_open = read_some(&mut stderr, Stream::Stderr, &mut chunks);
            }
            if let Some(s) = &mut stdin {
                match s.feed_pipe() {
                    Ok(()) => chunks.extend(s.ack()),
                    Err(FeedError::Invalid(why)) => break Some(Stop::Invalid(why)),
                }
            }
            for c in chunks.drain(..) {
                if !sink(c) {
                    kill_and_reap(pid);
                    return None;
                }
            }
            match try_reap("exec", pid) {
                Ok(Some(status)) => {
                    // What it wrote before it ended (at most a pipe's worth
                    // each, unless a child it left keeps writing: bounded).
                    for _ in 0..8 {
                        let before = chunks.len();
                        let out = out_open && read_some(&mut stdout, Stream::Stdout, &mut chunks);
                        let err = err_open && read_some(&mut stderr, Stream::Stderr, &mut chunks);
                        (out_open, err_open) = (out, err);
                        if chunks.len() == before {
                            break;
                        }
                    }
                    chunks.push(RpcChunk::End {
                        exit_code: Some(status.code()),
                        error: None,
                    });
                    break None;
                }
                Ok(None) => {}
                Err(e) => {
                    chunks.push(end_error(RpcErrorCode::Failed, e.to_string()));
                    break None;
                }
            }
            let mut fds = Vec::with_capacity(3);
            for (open, f) in [(out_open, &stdout), (err_open, &stderr)] {
                if open {
                    fds.push(libc::pollfd {
                        fd: f.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                }
            }
            if let Some(p) = stdin
                .as_ref()
                .filter(|s| s.has_pending())
                .and_then(StdinState::pipe)
            {
                fds.push(libc::pollfd {
                    fd: p.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                });
            }
            // Stdin calls arrive on a channel poll cannot watch: 10 ms.
            poll(&mut fds, 10);
        };
        match stop {
            None => {}
            Some(Stop::Cancelled) => {
                kill_and_reap(pid);
                chunks.push(end_error(RpcErrorCode::Cancelled, "exec cancelled".into()));
            }
            Some(Stop::Invalid(why)) => {
                kill_and_reap(pid);
                chunks.push(end_error(RpcErrorCode::Invalid, why));
            }
        }
        let end = chunks.pop();
        for c in chunks {
            if !sink(c) {
                return None;
            }
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::sync::mpsc::sync_channel;

    use bramble_api::protocol::RpcId;
    use bramble_api::protocol::rpc_stdin::stdin_calls;

    /// Runs `sh -c script` as a runtime would, feeding `input` (in calls
    /// of the protocol's size) when given; the chunks it sent.
    fn run(script: &str, input: Option<&[u8]>, timeout: Duration) -> Vec<RpcChunk> {
        let pipes = OutputPipes::new("t").unwrap();
        let (stdin_read, stdin_write) = pipe("t").unwrap();
        let child = {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(script)
                .stdin(if input.is_some() {
                    Stdio::from(OwnedFd::from(stdin_read))
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::from(pipes.stdout_write))
                .stderr(Stdio::from(pipes.stderr_write))
                .process_group(0);
            cmd.spawn().unwrap()
        };
        let stdin = input.map(|bytes| {
            let calls = stdin_calls(&RpcId::new("x").unwrap(), 0, bytes, true);
            let (tx, rx) = sync_channel(calls.len());
            for c in calls {
                tx.send(c).unwrap();
            }
            (
                File::from(stdin_write),
                StdinFeed {
                    calls: rx,
                    overflow: Arc::new(AtomicBool::new(false)),
                },
            )
        });
        let io = ProcessIo {
            pid: Pid::from_raw(child.id() as i32),
            stdout: pipes.stdout_read,
            stderr: pipes.stderr_read,
            stdin,
        };
        let mut got = Vec::new();
        let end = io.run(&AtomicBool::new(false), timeout, &mut |c| {
            got.push(c);
            true
        });
        let _ = signal::killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        got.extend(end);
        got
    }

    fn bytes(chunks: &[RpcChunk], want: Stream) -> Vec<u8> {
        chunks
            .iter()
            .filter(|c| matches!(c, RpcChunk::Output { stream, .. } if *stream == want))
            .flat_map(|c| c.output_bytes().unwrap())
            .collect()
    }

    fn exit(chunks: &[RpcChunk]) -> Option<i32> {
        match chunks.last() {
            Some(RpcChunk::End { exit_code, .. }) => *exit_code,
            other => panic!("no end: {other:?}"),
        }
    }

    #[test]
    fn output_streams_with_the_exit_code_and_no_cap() {
        let got = run(
            "echo out; echo err >&2; head -c 300000 /dev/zero; exit 3",
            None,
            Duration::from_secs(10),
        );
        assert_eq!(got[0], RpcChunk::output(Stream::Stdout, b""));
        let out = bytes(&got, Stream::Stdout);
        assert_eq!(out.len(), 4 + 300_000);
        assert!(out.starts_with(b"out\n"));
        assert_eq!(bytes(&got, Stream::Stderr), b"err\n");
        assert_eq!(exit(&got), Some(3));
    }

    #[test]
    fn stdin_reaches_the_process_and_is_acknowledged() {
        let input: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let got = run("cat", Some(&input), Duration::from_secs(10));
        assert_eq!(bytes(&got, Stream::Stdout), input);
        let acks: Vec<u64> = got
            .iter()
            .filter_map(|c| match c {
                RpcChunk::StdinAck { offset } => Some(*offset),
                _ => None,
            })
            .collect();
        assert_eq!(acks.last(), Some(&(input.len() as u64)), "{acks:?}");
        assert!(acks.windows(2).all(|w| w[0] < w[1]), "{acks:?}");
        assert_eq!(exit(&got), Some(0));
    }

    #[test]
    fn stdin_the_process_does_not_read_is_discarded() {
        let got = run("exit 0", Some(&[7u8; 100_000]), Duration::from_secs(10));
        assert_eq!(exit(&got), Some(0));
    }

    #[test]
    fn the_timeout_kills() {
        let got = run(
            "echo started; exec sleep 100",
            None,
            Duration::from_millis(300),
        );
        assert_eq!(bytes(&got, Stream::Stdout), b"started\n");
        assert_eq!(exit(&got), Some(137));
    }
}
