//! An exec's standard input, hub → agent, and its flow control.
//!
//! An `exec` call with `stdin: true` (sent only to agents announcing
//! [`FEATURE_EXEC_STREAM`]) opens a pipe to the process's stdin. The hub
//! then sends its bytes as `stdin` calls: each an `rpcRequest` of its own,
//! so signed by the hub, sealed to the node and numbered once per session
//! like every request (a board cannot feed another board's exec, the
//! broker cannot read it, a recorded one cannot be replayed). Each names
//! the exec's request `id`, the byte `offset` of its data in the stream
//! (the agent refuses a gap or an overlap) and, on the last, `eof`.
//!
//! Flow control: the agent answers `stdinAck` chunks with the offset it has
//! written to the pipe; the hub keeps at most [`STDIN_WINDOW_BYTES`] in at
//! most [`STDIN_WINDOW_CALLS`] calls sent and not acknowledged, so neither
//! side buffers more than that per exec. An agent receiving more than twice
//! the calls ends the exec with `invalid`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::rpc::RpcId;

/// The `hello.features` entry of agents that stream an exec's output as it
/// comes (no cap), take `stdin: true` and `stdin` calls, and acknowledge
/// stdin with `stdinAck` chunks.
pub const FEATURE_EXEC_STREAM: &str = "execStream";

/// Raw bytes per `stdin` call (base64 makes it 21,848 characters, well
/// under the request limit).
pub const MAX_STDIN_CHUNK_BYTES: usize = 16 * 1024;

/// Stdin bytes the hub may have sent and the agent not yet written.
pub const STDIN_WINDOW_BYTES: u64 = 256 * 1024;

/// `stdin` calls the hub may have sent and the agent not yet acknowledged
/// (small client writes make small calls); an agent queues twice as many.
pub const STDIN_WINDOW_CALLS: usize = 16;

/// Bytes for the stdin of exec `id`. Its `Debug` shows the length only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StdinCall {
    /// The exec's request id.
    pub id: RpcId,
    /// Where `data` starts in the stdin stream.
    pub offset: u64,
    /// The bytes, base64 (standard alphabet, padded); may be empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data: String,
    /// The stream ends after `data`: the agent closes the pipe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub eof: bool,
}

impl std::fmt::Debug for StdinCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdinCall")
            .field("id", &self.id)
            .field("offset", &self.offset)
            .field(
                "data",
                &format_args!("<{} base64 characters>", self.data.len()),
            )
            .field("eof", &self.eof)
            .finish()
    }
}

impl StdinCall {
    /// `bytes` (at most [`MAX_STDIN_CHUNK_BYTES`]) at `offset` of `id`'s stdin.
    pub fn new(id: RpcId, offset: u64, bytes: &[u8], eof: bool) -> Self {
        StdinCall {
            id,
            offset,
            data: STANDARD.encode(bytes),
            eof,
        }
    }

    /// The bytes; `None` when `data` is not base64.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        STANDARD.decode(&self.data).ok()
    }

    /// What is wrong with it, for `validate` (path, reason).
    pub(crate) fn problem(&self, request: &RpcId) -> Option<(&'static str, String)> {
        if &self.id == request {
            return Some((
                "call.id",
                "must name the exec, not the stdin request".into(),
            ));
        }
        match self.bytes() {
            None => Some(("call.data", "is not base64".into())),
            Some(b) if b.len() > MAX_STDIN_CHUNK_BYTES => Some((
                "call.data",
                format!("holds {} bytes, more than {MAX_STDIN_CHUNK_BYTES}", b.len()),
            )),
            Some(_) => None,
        }
    }
}

/// Cuts `bytes` into `stdin` calls of `id` from `offset` on; the last one
/// carries `eof` when asked (an empty call when `bytes` is empty).
pub fn stdin_calls(id: &RpcId, mut offset: u64, bytes: &[u8], eof: bool) -> Vec<StdinCall> {
    let mut calls: Vec<StdinCall> = bytes
        .chunks(MAX_STDIN_CHUNK_BYTES)
        .map(|piece| {
            let c = StdinCall::new(id.clone(), offset, piece, false);
            offset += piece.len() as u64;
            c
        })
        .collect();
    if eof {
        match calls.last_mut() {
            Some(last) => last.eof = true,
            None => calls.push(StdinCall::new(id.clone(), offset, b"", true)),
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rpc::{MAX_RPC_REQUEST_BYTES, RpcCall, RpcRequest};
    use crate::protocol::{decode, encode};

    fn id(s: &str) -> RpcId {
        RpcId::new(s).unwrap()
    }

    #[test]
    fn stdin_is_cut_at_the_limit_with_offsets_and_eof_last() {
        let bytes: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let calls = stdin_calls(&id("x1"), 100, &bytes, true);
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls.iter().map(|c| c.offset).collect::<Vec<_>>(),
            [100, 100 + 16_384, 100 + 32_768]
        );
        assert_eq!(
            calls.iter().map(|c| c.eof).collect::<Vec<_>>(),
            [false, false, true]
        );
        let back: Vec<u8> = calls.iter().flat_map(|c| c.bytes().unwrap()).collect();
        assert_eq!(back, bytes);
        let end = stdin_calls(&id("x1"), 7, b"", true);
        assert_eq!(end.len(), 1);
        assert!(end[0].eof && end[0].data.is_empty() && end[0].offset == 7);
        assert!(stdin_calls(&id("x1"), 7, b"", false).is_empty());
    }

    #[test]
    fn a_full_stdin_request_fits_and_round_trips_and_bad_ones_are_refused() {
        let call = StdinCall::new(id("x1"), 0, &[0xff; MAX_STDIN_CHUNK_BYTES], true);
        let req = RpcRequest {
            id: id("r2"),
            session: "s".into(),
            seq: u64::MAX,
            call: RpcCall::Stdin(call),
        };
        let bytes = encode(&req).unwrap();
        assert!(bytes.len() < MAX_RPC_REQUEST_BYTES, "{}", bytes.len());
        assert_eq!(decode::<RpcRequest>("pi-1", &bytes).unwrap(), req);
        assert!(!format!("{req:?}").contains("////"), "{req:?}");

        let mut bad = req.clone();
        bad.call = RpcCall::Stdin(StdinCall {
            data: "not base64!".into(),
            ..StdinCall::new(id("r2"), 0, b"", false)
        });
        let e = decode::<RpcRequest>("pi-1", &encode(&bad).unwrap_or_default());
        assert!(e.is_err());
        let big = StdinCall::new(id("x1"), 0, &[0; MAX_STDIN_CHUNK_BYTES + 1], false);
        assert!(big.problem(&id("r2")).is_some());
        let own = StdinCall::new(id("r2"), 0, b"", false);
        assert!(own.problem(&id("r2")).is_some());
    }
}
