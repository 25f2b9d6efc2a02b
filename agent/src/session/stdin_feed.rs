//! The stdin of an exec or the client side of a port-forward on the agent:
//! the worker queues the hub's `stdin` calls ([`StdinFeed`]); the
//! streaming loop ([`super::rpc_exec`], [`super::rpc_portforward`]) takes
//! them in order (`offset` = bytes received so far, else the call ends with
//! `invalid`), writes them to a non-blocking pipe or socket without
//! blocking, and acknowledges what was written with `stdinAck` so the hub
//! sends at most its window ahead. `eof` closes the writer once everything
//! before it is written; a reader that went away gets the rest discarded
//! (and acknowledged).

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use bramble_api::protocol::RpcChunk;
use bramble_api::protocol::rpc_stdin::StdinCall;

/// Where the bytes come from: the worker queues the hub's `stdin`
/// calls and sets `overflow` when the queue is full.
pub struct StdinFeed {
    pub calls: Receiver<StdinCall>,
    pub overflow: std::sync::Arc<AtomicBool>,
}

/// The stdin side of a streaming loop.
pub struct StdinState {
    pipe: Option<File>,
    feed: StdinFeed,
    /// Bytes received (the next call's offset).
    received: u64,
    /// Bytes written to the pipe, or discarded after it closed.
    written: u64,
    acked: u64,
    pending: Vec<u8>,
    eof: bool,
}

impl StdinState {
    /// Takes queued calls while nothing is pending.
    fn take(&mut self) -> Result<(), FeedError> {
        if self.feed.overflow.load(Ordering::Relaxed) {
            return Err(FeedError::Invalid(
                "the hub sent stdin beyond its window; the call ended".into(),
            ));
        }
        while self.pending.is_empty() && !self.eof {
            let call = match self.feed.calls.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return Ok(()),
                // The worker forgot the exec: no more stdin will come.
                Err(TryRecvError::Disconnected) => {
                    self.eof = true;
                    return Ok(());
                }
            };
            if call.offset != self.received {
                return Err(FeedError::Invalid(format!(
                    "stdin out of order: bytes at {} after {} received",
                    call.offset, self.received
                )));
            }
            let bytes = call.bytes().unwrap_or_default();
            self.received += bytes.len() as u64;
            self.pending = bytes;
            self.eof = call.eof;
        }
        Ok(())
    }

    /// Writes what the pipe takes now; closes it after `eof`.
    fn write(&mut self) {
        while !self.pending.is_empty() {
            let Some(pipe) = &mut self.pipe else {
                // Closed by the process: discard.
                self.written += self.pending.len() as u64;
                self.pending.clear();
                break;
            };
            match pipe.write(&self.pending) {
                Ok(n) => {
                    self.written += n as u64;
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // EPIPE: the process closed its stdin.
                Err(_) => self.pipe = None,
            }
        }
        if self.eof {
            self.pipe = None;
        }
    }

    /// Moves queued calls into the pipe until it is full or nothing is
    /// queued (bounded per turn, so output is read in between).
    pub fn feed_pipe(&mut self) -> Result<(), FeedError> {
        for _ in 0..64 {
            self.take()?;
            if self.pending.is_empty() {
                break;
            }
            self.write();
            if !self.pending.is_empty() {
                break;
            }
        }
        if self.eof && self.pending.is_empty() {
            self.pipe = None;
        }
        Ok(())
    }

    /// A `stdinAck` when more was written since the last.
    pub fn ack(&mut self) -> Option<RpcChunk> {
        (self.written > self.acked).then(|| {
            self.acked = self.written;
            RpcChunk::StdinAck {
                offset: self.written,
            }
        })
    }
}

/// Why the stdin side stops the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedError {
    /// The hub sent beyond its window, or out of order.
    Invalid(String),
}

impl StdinState {
    /// Fed by `feed`, writing to `pipe` (non-blocking).
    pub fn new(pipe: File, feed: StdinFeed) -> StdinState {
        StdinState {
            pipe: Some(pipe),
            feed,
            received: 0,
            written: 0,
            acked: 0,
            pending: Vec::new(),
            eof: false,
        }
    }

    /// The writer, while open.
    pub fn pipe(&self) -> Option<&File> {
        self.pipe.as_ref()
    }

    /// Whether bytes wait for the writer to take them.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether the stream ended and everything before was written (or
    /// discarded): the writer is closed.
    pub fn finished(&self) -> bool {
        self.eof && self.pending.is_empty() && self.pipe.is_none()
    }
}
