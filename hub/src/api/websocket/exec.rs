//! `kubectl exec` over WebSocket: the query of `pods/{name}/exec`, and the
//! bridge between a `v5.channel.k8s.io` socket and the agent's exec RPC.
//!
//! The agent's `output` chunks go to channel 1 or 2 (the ones asked for);
//! channel-0 bytes go to the agent as `stdin` calls, reading the socket only
//! while fewer than [`STDIN_WINDOW_BYTES`] are unacknowledged (the agent's
//! `stdinAck`), so a fast client waits for a slow process instead of the hub
//! buffering; `[255, 0]` sends the end of stdin. The `end` chunk becomes the
//! channel-3 `Status` (the exit code, or why it failed), then a normal close.
//! The client going away drops the call, which cancels it on the agent.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bramble_api::Status;
use bramble_api::protocol::rpc::{RpcErrorCode, STDIN_WINDOW_BYTES, Stream};
use bramble_api::protocol::rpc_stdin::stdin_calls;
use bramble_api::protocol::{RpcCall, RpcChunk};

use super::super::AppState;
use super::super::error::{ApiError, ApiResult};
use super::super::pod_rpc::start;
use super::channel::{self, Incoming};
use crate::rpc::RpcStream;

/// What `kubectl exec` asks in its query: `command` (repeated),
/// `container`, and which of `stdin`, `stdout`, `stderr`, `tty`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecQuery {
    pub command: Vec<String>,
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecQuery {
    /// Parses and checks the query: a command, no terminal.
    pub fn parse(query: Option<&str>) -> ApiResult<ExecQuery> {
        let mut q = ExecQuery::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let yes = || v == "true" || v == "1";
            match &*k {
                "command" => q.command.push(v.into_owned()),
                "container" if !v.is_empty() => q.container = Some(v.into_owned()),
                "stdin" => q.stdin = yes(),
                "stdout" => q.stdout = yes(),
                "stderr" => q.stderr = yes(),
                "tty" => q.tty = yes(),
                _ => {}
            }
        }
        if q.command.first().is_none_or(String::is_empty) {
            return Err(ApiError::bad_request(
                "command: a command to run is required (kubectl exec POD -- COMMAND)",
            ));
        }
        if q.tty {
            return Err(ApiError::bad_request(
                "tty: terminals are not supported by this hub yet: run kubectl exec without -t",
            ));
        }
        Ok(q)
    }
}

/// How long a client has to answer the closing handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Sends the channel-3 `status` and closes normally, then reads (and
/// drops) what the client still sends until it answers the close: closing
/// the connection on unread stdin would reset it under the client's feet.
async fn finish(socket: &mut WebSocket, status: serde_json::Value) {
    let body = serde_json::to_vec(&status).unwrap_or_default();
    let _ = socket
        .send(Message::Binary(
            channel::frame(channel::ERROR, &body).into(),
        ))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
    let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, socket.recv()).await {
        if matches!(m, Message::Close(_)) {
            break;
        }
    }
}

fn failure(code: RpcErrorCode, message: String) -> Status {
    match code {
        RpcErrorCode::NotFound => Status::failure(404, "NotFound", message),
        RpcErrorCode::Invalid => Status::bad_request(message),
        _ => Status::internal(message),
    }
}

/// Runs the exec `call` on `node` for the client on `socket`.
pub async fn bridge(
    st: AppState,
    node: String,
    call: RpcCall,
    q: ExecQuery,
    mut socket: WebSocket,
) {
    let (mut stream, first) = match start(&st, &node, call).await {
        Ok(s) => s,
        Err(ApiError(status)) => {
            finish(&mut socket, channel::failure_status(&status)).await;
            return;
        }
    };
    let mut link = Link {
        q,
        sent: 0,
        acked: 0,
        stdin_open: true,
    };
    link.stdin_open = link.q.stdin;
    let mut next = Some(first);
    loop {
        let chunk = match next.take() {
            Some(c) => Some(c),
            None => {
                let may_read = !link.stdin_open || link.sent - link.acked < STDIN_WINDOW_BYTES;
                tokio::select! {
                    msg = socket.recv(), if may_read => {
                        match msg {
                            Some(Ok(m)) => {
                                if let Err(status) = link.incoming(m, &stream).await {
                                    finish(&mut socket, channel::failure_status(&status)).await;
                                    return;
                                }
                                continue;
                            }
                            // The client went away: dropping the call cancels it.
                            Some(Err(_)) | None => return,
                        }
                    }
                    c = stream.next() => c,
                }
            }
        };
        let Some(chunk) = chunk else {
            let s = Status::internal(format!(
                "node {node:?} stopped answering the exec (its agent disconnected?)"
            ));
            finish(&mut socket, channel::failure_status(&s)).await;
            return;
        };
        match chunk {
            RpcChunk::Output { stream: which, .. } => {
                let (ch, wanted) = match which {
                    Stream::Stdout => (channel::STDOUT, link.q.stdout),
                    Stream::Stderr => (channel::STDERR, link.q.stderr),
                };
                let bytes = chunk.output_bytes().unwrap_or_default();
                if wanted && !bytes.is_empty() {
                    let m = Message::Binary(channel::frame(ch, &bytes).into());
                    if socket.send(m).await.is_err() {
                        return;
                    }
                }
            }
            RpcChunk::StdinAck { offset } => link.acked = link.acked.max(offset),
            RpcChunk::End {
                exit_code: Some(code),
                ..
            } => {
                finish(&mut socket, channel::exit_status(code)).await;
                return;
            }
            RpcChunk::End { error, .. } => {
                let e = error.unwrap_or_default();
                let status = failure(e.code, e.message);
                finish(&mut socket, channel::failure_status(&status)).await;
                return;
            }
            RpcChunk::Image { .. } | RpcChunk::Unknown => {}
        }
    }
}

/// The client side of one exec.
struct Link {
    q: ExecQuery,
    /// Stdin bytes sent to the agent, and acknowledged by it.
    sent: u64,
    acked: u64,
    stdin_open: bool,
}

impl Link {
    /// Handles one client message; a `Status` ends the exec.
    async fn incoming(&mut self, m: Message, stream: &RpcStream) -> Result<(), Status> {
        let Message::Binary(bytes) = m else {
            // Pings are answered by the socket; text and pongs mean nothing.
            return Ok(());
        };
        let msg = channel::parse(&bytes).map_err(|e| Status::bad_request(e.to_string()))?;
        let (data, eof) = match msg {
            Incoming::Data {
                channel: channel::STDIN,
                data,
            } => (data, false),
            Incoming::Close {
                channel: channel::STDIN,
            } => (&[][..], true),
            // No terminal here, so nothing to resize.
            Incoming::Data {
                channel: channel::RESIZE,
                ..
            } => return Ok(()),
            // Other channels carry nothing from a client.
            _ => return Ok(()),
        };
        if !self.stdin_open {
            return Ok(());
        }
        for call in stdin_calls(stream.id(), self.sent, data, eof) {
            let n = call.bytes().map_or(0, |b| b.len() as u64);
            stream
                .send_stdin(call)
                .await
                .map_err(|e| Status::internal(format!("sending stdin: {e:#}")))?;
            self.sent += n;
        }
        if eof {
            self.stdin_open = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectls_query_parses() {
        let q = ExecQuery::parse(Some(
            "command=sh&command=-c&command=echo+out%3B+exit+3&container=main&stdin=true&stdout=true&stderr=true&tty=false",
        ))
        .unwrap();
        assert_eq!(q.command, ["sh", "-c", "echo out; exit 3"]);
        assert_eq!(q.container.as_deref(), Some("main"));
        assert!(q.stdin && q.stdout && q.stderr && !q.tty);
        let q = ExecQuery::parse(Some("command=true&stdout=true")).unwrap();
        assert!(!q.stdin && q.stdout && !q.stderr && q.container.is_none());
    }

    #[test]
    fn no_command_and_terminals_are_refused() {
        for bad in [
            None,
            Some("stdout=true"),
            Some("command=&stdout=true"),
            Some("command=sh&tty=true"),
        ] {
            assert!(ExecQuery::parse(bad).is_err(), "{bad:?}");
        }
    }
}
