//! The hub's side of an exec's stdin window: what the client sent is cut
//! into `stdin` calls and queued; a call goes to the agent only while fewer
//! than [`STDIN_WINDOW_BYTES`] and [`STDIN_WINDOW_CALLS`] are
//! unacknowledged, and the client is read again only once the queue is
//! empty. So a client sending faster than the process reads waits (TCP
//! back-pressure) instead of the hub or the agent buffering, whatever the
//! size of its messages. Pure: no I/O.

use std::collections::VecDeque;

use bramble_api::protocol::RpcId;
use bramble_api::protocol::rpc::STDIN_WINDOW_BYTES;
use bramble_api::protocol::rpc_stdin::{STDIN_WINDOW_CALLS, StdinCall, stdin_calls};

/// See the module docs.
#[derive(Debug)]
pub struct StdinWindow {
    id: RpcId,
    /// Calls cut, not sent yet.
    queued: VecDeque<StdinCall>,
    /// The end offsets of the calls sent and not acknowledged.
    in_flight: VecDeque<u64>,
    /// Bytes cut into calls so far (the next call's offset).
    cut: u64,
    acked: u64,
    /// The client has not ended stdin.
    open: bool,
}

impl StdinWindow {
    /// The stdin of exec `id`; `open` when the client asked for stdin.
    pub fn new(id: RpcId, open: bool) -> StdinWindow {
        StdinWindow {
            id,
            queued: VecDeque::new(),
            in_flight: VecDeque::new(),
            cut: 0,
            acked: 0,
            open,
        }
    }

    /// Whether the client may be read: nothing waits to be sent.
    pub fn wants_input(&self) -> bool {
        self.queued.is_empty()
    }

    /// Queues `data` from the client, and the end of stdin with `eof`.
    /// Nothing once stdin ended.
    pub fn push(&mut self, data: &[u8], eof: bool) {
        if !self.open {
            return;
        }
        let calls = stdin_calls(&self.id, self.cut, data, eof);
        self.cut += data.len() as u64;
        self.queued.extend(calls);
        if eof {
            self.open = false;
        }
    }

    /// The next call to send, if the window has room.
    pub fn next_call(&mut self) -> Option<StdinCall> {
        let in_flight_bytes = self.in_flight.back().map_or(0, |end| end - self.acked);
        if self.in_flight.len() >= STDIN_WINDOW_CALLS || in_flight_bytes >= STDIN_WINDOW_BYTES {
            return None;
        }
        let call = self.queued.pop_front()?;
        let len = call.bytes().map_or(0, |b| b.len() as u64);
        self.in_flight.push_back(call.offset + len);
        Some(call)
    }

    /// The agent wrote stdin up to `offset`.
    pub fn ack(&mut self, offset: u64) {
        self.acked = self.acked.max(offset);
        // An empty call (an `eof` alone) ends where the one before did, so
        // it leaves with that one.
        while self.in_flight.front().is_some_and(|&end| end <= self.acked) {
            self.in_flight.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::rpc_stdin::MAX_STDIN_CHUNK_BYTES;

    fn window() -> StdinWindow {
        StdinWindow::new(RpcId::new("x1").unwrap(), true)
    }

    #[test]
    fn sends_at_most_the_window_then_more_as_acks_come() {
        let mut w = window();
        w.push(&vec![1u8; 1 << 20], false);
        assert!(!w.wants_input());
        let mut sent = Vec::new();
        while let Some(c) = w.next_call() {
            sent.push(c);
        }
        let bytes = sent.len() as u64 * MAX_STDIN_CHUNK_BYTES as u64;
        assert_eq!(bytes, STDIN_WINDOW_BYTES, "{} calls", sent.len());
        w.ack(sent[0].offset + MAX_STDIN_CHUNK_BYTES as u64);
        let more = w.next_call().unwrap();
        assert_eq!(more.offset, STDIN_WINDOW_BYTES);
        assert!(w.next_call().is_none());
    }

    #[test]
    fn small_messages_are_bounded_by_the_call_count() {
        let mut w = window();
        for _ in 0..100 {
            w.push(b"tiny", false);
        }
        let mut n = 0;
        while w.next_call().is_some() {
            n += 1;
        }
        assert_eq!(n, STDIN_WINDOW_CALLS);
        w.ack(4 * 3);
        assert_eq!(
            std::iter::from_fn(|| w.next_call()).count(),
            3,
            "three acknowledged, three more"
        );
    }

    #[test]
    fn eof_closes_and_goes_out_last_even_alone() {
        let mut w = window();
        w.push(b"abc", false);
        w.push(b"", true);
        assert!(!w.open);
        w.push(b"ignored", false);
        let a = w.next_call().unwrap();
        let end = w.next_call().unwrap();
        assert_eq!((a.offset, a.eof), (0, false));
        assert_eq!((end.offset, end.eof, end.data.as_str()), (3, true, ""));
        assert!(w.next_call().is_none() && w.wants_input());
        w.ack(3);
        assert!(w.in_flight.is_empty());
    }
}
