//! `logs` with `follow: true`: after the history, new lines of the CRI log
//! file ([`LogFollower`]: partial lines kept, rotation noticed), polled
//! every [`FollowLimits::poll`] and sent as the `output` chunks of that
//! batch — a modest rate whatever the container writes.
//!
//! The stream ends with `end`:
//! - without error once the container stopped: its pod record
//!   (`RUN_DIR/pods/{pod}.json`) is gone, names another incarnation (uid),
//!   or shows the container exited or deleted — checked every
//!   [`FollowLimits::check`], with one last read after it;
//! - with `cancelled` when a `cancel` for the request arrives;
//! - with `failed` after [`FollowLimits::idle`] without a new line (1 h): a
//!   hub that went away for good sends no `cancel`, so a quiet follow must
//!   not live forever; the user follows again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bramble_api::protocol::RpcChunk;
use bramble_api::protocol::rpc::{RpcError, RpcErrorCode, Stream, output_chunks};

use crate::logs::follow::LogFollower;
use crate::logs::format::{LogLine, Reassembler};
use crate::pod::record::PodRecord;
use crate::runtime::ContainerState;

/// Timing of a follow.
#[derive(Debug, Clone, Copy)]
pub struct FollowLimits {
    /// Between reads of the log file.
    pub poll: Duration,
    /// Between looks at the pod record.
    pub check: Duration,
    /// The longest time without a new line.
    pub idle: Duration,
}

impl Default for FollowLimits {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(100),
            check: Duration::from_secs(1),
            idle: Duration::from_secs(3600),
        }
    }
}

/// Whether the followed container still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Running,
    Stopped,
    /// The record could not be read (being replaced, say): keep going.
    Unknown,
}

/// Looks at the followed container in the pod record.
#[derive(Debug)]
pub struct RecordWatch {
    /// `RUN_DIR/pods/{pod}.json`.
    pub path: PathBuf,
    pub container: String,
    /// The incarnation followed: the request's, else the first seen.
    pub uid: Option<String>,
}

impl RecordWatch {
    pub fn check(&mut self) -> Liveness {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Liveness::Stopped,
            Err(_) => return Liveness::Unknown,
        };
        let Ok(record) = bramble_api::decode::decode_slice::<PodRecord>(&bytes) else {
            return Liveness::Unknown;
        };
        let uid = record.pod.metadata.uid.clone();
        match &self.uid {
            Some(want) if uid.as_ref() != Some(want) => return Liveness::Stopped,
            Some(_) => {}
            None => self.uid = uid,
        }
        let c = record
            .containers
            .iter()
            .find(|c| !c.init && c.name == self.container);
        match c {
            Some(c) if !c.deleted && !matches!(c.state, ContainerState::Exited(_)) => {
                Liveness::Running
            }
            _ => Liveness::Stopped,
        }
    }
}

/// Turns CRI lines into output chunks, joining `P` pieces across batches;
/// with `timestamps`, each message starts with the time of its last piece
/// and a space (as the kubelet prints `kubectl logs --timestamps`).
#[derive(Debug, Default)]
pub struct Chunker {
    re: Reassembler,
    timestamps: bool,
}

impl Chunker {
    pub fn with_timestamps(timestamps: bool) -> Chunker {
        Chunker {
            re: Reassembler::default(),
            timestamps,
        }
    }

    /// The whole messages completed by `lines` (non-CRI lines skipped).
    pub fn messages(&mut self, lines: &[String]) -> Vec<(Stream, String)> {
        let timestamps = self.timestamps;
        lines
            .iter()
            .filter_map(|l| LogLine::parse(l))
            .filter_map(|l| {
                let (s, text) = self.re.push(&l)?;
                let text = if timestamps {
                    format!("{} {text}", l.timestamp)
                } else {
                    text
                };
                Some((api_stream(s), text))
            })
            .collect()
    }

    /// [`Chunker::messages`] as chunks.
    pub fn chunks(&mut self, lines: &[String]) -> Vec<RpcChunk> {
        chunks_of(&self.messages(lines))
    }
}

pub fn api_stream(s: crate::logs::format::Stream) -> Stream {
    match s {
        crate::logs::format::Stream::Stdout => Stream::Stdout,
        crate::logs::format::Stream::Stderr => Stream::Stderr,
    }
}

/// Output chunks of `messages`, one newline after each; consecutive
/// messages of one stream share chunks (≤ 16 KiB each).
pub fn chunks_of(messages: &[(Stream, String)]) -> Vec<RpcChunk> {
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < messages.len() {
        let stream = messages[i].0;
        let mut bytes = Vec::new();
        while i < messages.len() && messages[i].0 == stream {
            bytes.extend_from_slice(messages[i].1.as_bytes());
            bytes.push(b'\n');
            i += 1;
        }
        chunks.extend(output_chunks(stream, &bytes));
    }
    chunks
}

/// Streams new lines of `follower` into `sink` until the container stops,
/// `cancel` is set, the idle limit passes or `sink` refuses a chunk (the
/// client is gone); returns the `end` chunk to send (`None` after a
/// refused chunk).
pub fn follow(
    mut follower: LogFollower,
    watch: &mut RecordWatch,
    cancel: &AtomicBool,
    limits: FollowLimits,
    timestamps: bool,
    sink: &mut dyn FnMut(RpcChunk) -> bool,
) -> Option<RpcChunk> {
    let mut chunker = Chunker::with_timestamps(timestamps);
    let mut last_line = Instant::now();
    let mut next_check = Instant::now();
    let mut stopping = false;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Some(end(Some((RpcErrorCode::Cancelled, "cancelled".into()))));
        }
        let lines = match follower.poll() {
            Ok(l) => l,
            Err(e) => {
                let message = format!("following {}: {e}", follower.path().display());
                return Some(end(Some((RpcErrorCode::Failed, message))));
            }
        };
        if !lines.is_empty() {
            last_line = Instant::now();
        }
        for c in chunker.chunks(&lines) {
            if !sink(c) {
                return None;
            }
        }
        if stopping {
            return Some(end(None));
        }
        let now = Instant::now();
        if now.duration_since(last_line) >= limits.idle {
            let message = format!(
                "no new log lines for {}s: stopped following (follow again to resume)",
                limits.idle.as_secs()
            );
            return Some(end(Some((RpcErrorCode::Failed, message))));
        }
        if now >= next_check {
            next_check = now + limits.check;
            // One more read after the stop: the log pump may lag behind.
            stopping = watch.check() == Liveness::Stopped;
        }
        std::thread::sleep(limits.poll);
    }
}

/// The `end` chunk, with `error` if any.
pub(super) fn end(error: Option<(RpcErrorCode, String)>) -> RpcChunk {
    RpcChunk::End {
        exit_code: None,
        error: error.map(|(code, message)| RpcError { code, message }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::follow::Start;
    use crate::logs::format::Stream as LogStream;
    use crate::logs::writer::{LogConfig, LogWriter};
    use std::path::Path;
    use std::sync::Arc;
    use std::time::SystemTime;

    fn text(chunks: &[RpcChunk]) -> String {
        chunks
            .iter()
            .filter_map(|c| c.output_bytes())
            .map(|b| String::from_utf8(b).unwrap())
            .collect()
    }

    #[test]
    fn partial_pieces_join_across_batches_and_streams_split_chunks() {
        let mut c = Chunker::default();
        let first = c.chunks(&[
            "2026-11-27T23:00:00Z stdout P hel".into(),
            "2026-11-27T23:00:00Z stderr F oops".into(),
            "garbage".into(),
        ]);
        assert_eq!(text(&first), "oops\n");
        let second = c.chunks(&[
            "2026-11-27T23:00:01Z stdout F lo".into(),
            "2026-11-27T23:00:01Z stdout F again".into(),
        ]);
        assert_eq!(second.len(), 1, "one stream, one chunk");
        assert_eq!(text(&second), "hello\nagain\n");
        let big = vec![format!(
            "2026-11-27T23:00:01Z stdout F {}",
            "x".repeat(20_000)
        )];
        assert_eq!(c.chunks(&big).len(), 2, "at most 16 KiB per chunk");
    }

    /// A record being replaced, unreadable for now.
    fn unreadable_record(dir: &Path) {
        std::fs::write(dir.join("default_web.json"), b"{\"version\": 1, ").unwrap();
    }

    #[test]
    fn follows_new_lines_across_rotation_until_cancelled_or_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("main.log");
        let cfg = LogConfig {
            max_size: 200,
            max_files: 3,
            max_line: 64,
        };
        let mut w = LogWriter::open(&log, cfg).unwrap();
        w.write(LogStream::Stdout, b"before\n", SystemTime::now())
            .unwrap();
        let follower = LogFollower::open(&log, Start::End).unwrap();
        assert_eq!(follower.history().unwrap().len(), 1);
        let cancel = Arc::new(AtomicBool::new(false));
        let limits = FollowLimits {
            poll: Duration::from_millis(10),
            check: Duration::from_millis(10),
            idle: Duration::from_secs(30),
        };
        // An unreadable record: keep following.
        unreadable_record(dir.path());
        let mut watch = RecordWatch {
            path: dir.path().join("default_web.json"),
            container: "main".into(),
            uid: None,
        };
        let writer = std::thread::spawn({
            let cancel = cancel.clone();
            move || {
                for i in 0..20 {
                    w.write(
                        LogStream::Stdout,
                        format!("line {i}\n").as_bytes(),
                        SystemTime::now(),
                    )
                    .unwrap();
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::thread::sleep(Duration::from_millis(100));
                cancel.store(true, Ordering::Relaxed);
            }
        });
        let mut got = Vec::new();
        let end = follow(follower, &mut watch, &cancel, limits, false, &mut |c| {
            got.push(c);
            true
        });
        writer.join().unwrap();
        let want: String = (0..20).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text(&got), want);
        assert!(
            matches!(end, Some(RpcChunk::End { error: Some(e), .. }) if e.code == RpcErrorCode::Cancelled)
        );

        // The record gone: the container stopped, the stream ends cleanly.
        std::fs::remove_file(dir.path().join("default_web.json")).unwrap();
        let follower = LogFollower::open(&log, Start::End).unwrap();
        let cancel = AtomicBool::new(false);
        let end = follow(follower, &mut watch, &cancel, limits, false, &mut |_| true);
        assert_eq!(
            end,
            Some(RpcChunk::End {
                exit_code: None,
                error: None
            })
        );

        // Idle too long: ends with an error saying so.
        unreadable_record(dir.path());
        let idle = FollowLimits {
            idle: Duration::from_millis(50),
            check: Duration::from_secs(60),
            ..limits
        };
        let follower = LogFollower::open(&log, Start::End).unwrap();
        let end = follow(follower, &mut watch, &cancel, idle, false, &mut |_| true);
        assert!(
            matches!(&end, Some(RpcChunk::End { error: Some(e), .. }) if e.message.contains("no new log lines")),
            "{end:?}"
        );
    }
}
