//! `kubectl exec` over WebSocket: the query of `pods/{name}/exec`, and the
//! bridge between a `v5.channel.k8s.io` socket and the agent's exec RPC
//! (also `kubectl attach`'s, whose call is a log follow: see
//! [`super::attach`]).
//!
//! The agent's `output` chunks go to channel 1 or 2 (the ones asked for);
//! channel-0 bytes go to the agent as `stdin` calls through the
//! [`StdinWindow`] (the socket is read only while the window has room), so
//! a fast client waits for a slow process instead of the hub buffering;
//! `[255, 0]` sends the end of stdin. The `end` chunk becomes the
//! channel-3 `Status` (the exit code, or why it failed), then a normal close.
//! The client going away drops the call, which cancels it on the agent.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bramble_api::Status;
use bramble_api::protocol::rpc::{RpcErrorCode, Stream};
use bramble_api::protocol::{RpcCall, RpcChunk};

use super::super::AppState;
use super::super::error::{ApiError, ApiResult};
use super::super::pod_rpc::start;
use super::channel::{self, Incoming};
use super::stdin::StdinWindow;

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

/// Runs the exec (or attach) `call` on `node` for the client on `socket`.
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
    let mut stdin = StdinWindow::new(stream.id().clone(), q.stdin);
    let mut next = Some(first);
    loop {
        // What the window lets through now.
        while let Some(call) = stdin.next_call() {
            if let Err(e) = stream.send_stdin(call).await {
                let s = Status::internal(format!("sending stdin: {e}"));
                finish(&mut socket, channel::failure_status(&s)).await;
                return;
            }
        }
        let chunk = match next.take() {
            Some(c) => Some(c),
            None => {
                tokio::select! {
                    msg = socket.recv(), if stdin.wants_input() => {
                        match msg {
                            Some(Ok(m)) => {
                                if let Err(e) = incoming(m, &mut stdin) {
                                    let status = Status::bad_request(e.to_string());
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
                    Stream::Stdout => (channel::STDOUT, q.stdout),
                    Stream::Stderr => (channel::STDERR, q.stderr),
                };
                let bytes = chunk.output_bytes().unwrap_or_default();
                if wanted && !bytes.is_empty() {
                    let m = Message::Binary(channel::frame(ch, &bytes).into());
                    if socket.send(m).await.is_err() {
                        return;
                    }
                }
            }
            RpcChunk::StdinAck { offset } => stdin.ack(offset),
            RpcChunk::End {
                exit_code: Some(code),
                ..
            } => {
                finish(&mut socket, channel::exit_status(code)).await;
                return;
            }
            // A call with no exit code ended well (an attach's container
            // stopped).
            RpcChunk::End {
                exit_code: None,
                error: None,
            } => {
                finish(&mut socket, channel::exit_status(0)).await;
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

/// Handles one client message; a malformed one ends the exec.
fn incoming(m: Message, stdin: &mut StdinWindow) -> Result<(), channel::FrameError> {
    let Message::Binary(bytes) = m else {
        // Pings are answered by the socket; text and pongs mean nothing.
        return Ok(());
    };
    match channel::parse(&bytes)? {
        Incoming::Data {
            channel: channel::STDIN,
            data,
        } => stdin.push(data, false),
        Incoming::Close {
            channel: channel::STDIN,
        } => stdin.push(b"", true),
        // No terminal here, so nothing to resize; other channels carry
        // nothing from a client.
        Incoming::Data {
            channel: channel::RESIZE,
            ..
        }
        | Incoming::Data { .. }
        | Incoming::Close { .. } => {}
    }
    Ok(())
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
