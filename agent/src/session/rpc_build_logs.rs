//! `buildLogs`: the log of a build job this board ran
//! (`crate::build::log`), as the file holds it — its last `tailLines`
//! lines, or all of it — then, with `follow`, what is appended to it,
//! polled every [`FollowLimits::poll`], until the job ends (its `.running`
//! marker is gone; one last read after), a `cancel` arrives, or
//! [`FollowLimits::idle`] passes without new output.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bramble_api::protocol::RpcChunk;
use bramble_api::protocol::rpc::{BuildLogsCall, RpcErrorCode, Stream, output_chunks};

use super::rpc_follow::{FollowLimits, end};
use crate::build::log::{KEEP, log_path, running_marker};

/// Answers `call` from the logs in `dir` into `sink`, the `end` chunk last
/// (none once `sink` refused a chunk).
pub fn build_logs(
    dir: &Path,
    call: &BuildLogsCall,
    cancel: &AtomicBool,
    limits: FollowLimits,
    sink: &mut dyn FnMut(RpcChunk) -> bool,
) {
    let end = answer(dir, call, cancel, limits, sink);
    if let Some(end) = end {
        sink(end);
    }
}

fn answer(
    dir: &Path,
    call: &BuildLogsCall,
    cancel: &AtomicBool,
    limits: FollowLimits,
    sink: &mut dyn FnMut(RpcChunk) -> bool,
) -> Option<RpcChunk> {
    let missing = || {
        end(Some((
            RpcErrorCode::NotFound,
            format!(
                "this node has no log of build {} for {} (a board keeps the logs of its last {KEEP} builds)",
                call.uid, call.platform
            ),
        )))
    };
    let Some(path) = log_path(dir, &call.uid, &call.platform) else {
        return Some(missing());
    };
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(missing()),
        Err(e) => return Some(failed(&path, &e)),
    };
    let mut history = Vec::new();
    if let Err(e) = file.read_to_end(&mut history) {
        return Some(failed(&path, &e));
    }
    let shown = match call.tail_lines {
        Some(n) => last_lines(&history, n),
        None => &history[..],
    };
    let mut chunks = output_chunks(Stream::Stdout, shown);
    if chunks.is_empty() && call.follow {
        // The hub waits a few seconds for a first chunk: a job that has
        // not written yet must not look like an absent agent.
        chunks.push(RpcChunk::output(Stream::Stdout, b""));
    }
    for c in chunks {
        if !sink(c) {
            return None;
        }
    }
    if !call.follow {
        return Some(end(None));
    }
    let marker = running_marker(&path);
    let mut last_output = Instant::now();
    let mut stopping = false;
    let mut buf = Vec::new();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Some(end(Some((RpcErrorCode::Cancelled, "cancelled".into()))));
        }
        buf.clear();
        if let Err(e) = file.read_to_end(&mut buf) {
            return Some(failed(&path, &e));
        }
        if !buf.is_empty() {
            last_output = Instant::now();
        }
        for c in output_chunks(Stream::Stdout, &buf) {
            if !sink(c) {
                return None;
            }
        }
        if stopping {
            return Some(end(None));
        }
        if last_output.elapsed() >= limits.idle {
            let message = format!(
                "no new build output for {}s: stopped following (follow again to resume)",
                limits.idle.as_secs()
            );
            return Some(end(Some((RpcErrorCode::Failed, message))));
        }
        // A new run of the same job replaces the file: follow that one.
        if std::fs::metadata(&path).is_ok_and(|m| m.len() < position(&mut file)) {
            let _ = file.seek(SeekFrom::Start(0));
            continue;
        }
        stopping = !marker.exists();
        std::thread::sleep(limits.poll);
    }
}

fn position(file: &mut File) -> u64 {
    file.stream_position().unwrap_or(0)
}

/// The last `n` lines of `text` (a last line without its newline counts).
fn last_lines(text: &[u8], n: u64) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

fn failed(path: &Path, e: &std::io::Error) -> RpcChunk {
    end(Some((
        RpcErrorCode::Failed,
        format!("reading {}: {e}", path.display()),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::log::BuildLogs;
    use std::time::Duration;

    fn call(follow: bool, tail: Option<u64>) -> BuildLogsCall {
        BuildLogsCall {
            uid: "b1".into(),
            platform: "linux/arm64".into(),
            follow,
            tail_lines: tail,
        }
    }

    fn limits() -> FollowLimits {
        FollowLimits {
            poll: Duration::from_millis(5),
            check: Duration::from_millis(5),
            idle: Duration::from_secs(60),
        }
    }

    /// The text of the output chunks, and the end's error code.
    fn collect(dir: &Path, c: &BuildLogsCall) -> (String, Option<RpcErrorCode>) {
        let mut out = Vec::new();
        build_logs(dir, c, &AtomicBool::new(false), limits(), &mut |ch| {
            out.push(ch);
            true
        });
        let text = out
            .iter()
            .filter_map(|c| c.output_bytes())
            .flatten()
            .collect();
        let end = match out.last() {
            Some(RpcChunk::End { error, .. }) => error.as_ref().map(|e| e.code),
            other => panic!("the last chunk is not an end: {other:?}"),
        };
        (String::from_utf8(text).unwrap(), end)
    }

    #[test]
    fn an_ended_log_whole_or_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = BuildLogs::open(dir.path())
            .create("b1", "linux/arm64")
            .unwrap();
        log.line("#1 [1/2] RUN echo hi");
        log.line("hi");
        log.line("#1 DONE 0.1s");
        drop(log);
        let (all, end) = collect(dir.path(), &call(false, None));
        assert_eq!(all, "#1 [1/2] RUN echo hi\nhi\n#1 DONE 0.1s\n");
        assert_eq!(end, None);
        assert_eq!(
            collect(dir.path(), &call(false, Some(2))).0,
            "hi\n#1 DONE 0.1s\n"
        );
        assert_eq!(collect(dir.path(), &call(false, Some(0))).0, "");
        assert_eq!(collect(dir.path(), &call(false, Some(9))).0, all);
        // A followed log whose job ended: the history, then the end.
        assert_eq!(collect(dir.path(), &call(true, None)), (all, None));
    }

    #[test]
    fn a_log_that_is_not_here_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let (_, end) = collect(dir.path(), &call(false, None));
        assert_eq!(end, Some(RpcErrorCode::NotFound));
        let mut bad = call(false, None);
        bad.uid = "../../etc/passwd".into();
        assert_eq!(collect(dir.path(), &bad).1, Some(RpcErrorCode::NotFound));
    }

    #[test]
    fn a_follow_streams_until_the_job_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = BuildLogs::open(dir.path())
            .create("b1", "linux/arm64")
            .unwrap();
        log.line("#1 [1/1] RUN make");
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let follower = std::thread::spawn(move || {
            build_logs(
                &path,
                &call(true, None),
                &AtomicBool::new(false),
                limits(),
                &mut |c| tx.send(c).is_ok(),
            )
        });
        let first = rx.recv().unwrap();
        assert_eq!(first.output_bytes().unwrap(), b"#1 [1/1] RUN make\n");
        log.line("compiling");
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("compiling") {
            seen.extend(rx.recv().unwrap().output_bytes().unwrap_or_default());
        }
        log.line("DONE 1.0s");
        drop(log);
        let mut rest = Vec::new();
        loop {
            match rx.recv().unwrap() {
                RpcChunk::End { error, .. } => {
                    assert!(error.is_none(), "{error:?}");
                    break;
                }
                c => rest.extend(c.output_bytes().unwrap_or_default()),
            }
        }
        follower.join().unwrap();
        assert!(String::from_utf8(rest).unwrap().ends_with("DONE 1.0s\n"));
    }

    #[test]
    fn a_cancelled_follow_ends_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let _log = BuildLogs::open(dir.path())
            .create("b1", "linux/arm64")
            .unwrap();
        let mut chunks = Vec::new();
        build_logs(
            dir.path(),
            &call(true, None),
            &AtomicBool::new(true),
            limits(),
            &mut |c| {
                chunks.push(c);
                true
            },
        );
        assert_eq!(
            chunks[0].output_bytes().unwrap(),
            b"",
            "a first, empty chunk"
        );
        let Some(RpcChunk::End { error: Some(e), .. }) = chunks.last() else {
            panic!("{chunks:?}");
        };
        assert_eq!(e.code, RpcErrorCode::Cancelled);
    }
}
