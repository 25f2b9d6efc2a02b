//! `kubectl port-forward` over WebSocket: SPDY/3.1 tunnelled in binary
//! messages (subprotocol [`PROTOCOL`]), each forwarded connection a pair of
//! SPDY streams, each pair one `portForward` call to the pod's agent.
//!
//! For every local connection kubectl opens two streams with headers
//! `streamType: error|data`, `port` and `requestID`; the hub answers each
//! `SYN_STREAM` with a `SYN_REPLY` and, once both of a request are there,
//! starts the call ([`forward`]):
//! - the data stream's bytes go to the agent as `stdin` calls through a
//!   [`StdinWindow`] (a connection is read only while its window has room),
//!   its `FIN` as the end of stdin (the agent shuts down its side of the TCP
//!   connection and keeps reading); the agent's output comes back as data
//!   frames;
//! - the call's end closes the data stream (`FIN`), then the error stream,
//!   carrying the message first if the call failed (nothing listening, the
//!   pod gone), as the kubelet does;
//! - kubectl resetting the data stream, or the socket closing, drops the
//!   call, which cancels it on the agent.
//!
//! One task serves the socket: it reads frames, answers `PING`s, routes data
//! to the calls' queues and writes what the calls send, compressing header
//! blocks in order. A call's full queue stops the reading (TCP back-pressure
//! for the whole socket: SPDY/3.1 flow control is not spoken, as kubectl's
//! spdystream does not either) but never the writing, so calls always make
//! progress. At most [`MAX_CONNECTIONS`] connections at once per socket.

use bramble_api::ObjectKey;
use std::collections::{HashMap, VecDeque};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bramble_api::Status;
use bramble_api::protocol::rpc::{PodRef, PortForwardCall, RpcErrorCode};
use bramble_api::protocol::{RpcCall, RpcChunk};
use tokio::sync::mpsc;

use super::super::AppState;
use super::super::error::ApiError;
use super::super::pod_rpc::start;
use super::super::spdy::frame::{self, Decoder, Frame};
use super::super::spdy::headers::{self, HeaderCodec};
use super::stdin::StdinWindow;

/// The subprotocol kubectl asks for (`SPDY/3.1+` and the port-forward
/// protocol it tunnels).
pub const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Forwarded connections at once on one socket.
pub const MAX_CONNECTIONS: usize = 64;

/// Data frames queued per connection before the socket is no longer read.
const CLIENT_QUEUE: usize = 8;

/// What a connection's call gets from the client.
#[derive(Debug)]
enum FromClient {
    Data(Vec<u8>),
    /// The client will send nothing more.
    Fin,
}

/// What the calls ask the socket task to send.
#[derive(Debug)]
enum Out {
    Data {
        stream_id: u32,
        fin: bool,
        data: Vec<u8>,
    },
}

/// One half of a request: a stream kubectl opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Half {
    stream_id: u32,
    port: u16,
}

/// Streams of a request seen so far.
#[derive(Debug, Default)]
struct Pending {
    error: Option<Half>,
    data: Option<Half>,
}

/// Client messages a call's full queue could not take yet.
type Stalled = (mpsc::Sender<FromClient>, VecDeque<FromClient>);

/// Serves one port-forward socket for `pod` on `node`.
pub async fn session(st: AppState, node: String, pod: PodRef, mut socket: WebSocket) {
    let mut decoder = Decoder::default();
    let mut codec = HeaderCodec::default();
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(64);
    let mut pending: HashMap<String, Pending> = HashMap::new();
    // Data stream id → the queue of its call.
    let mut routes: HashMap<u32, mpsc::Sender<FromClient>> = HashMap::new();
    let mut stalled: Option<Stalled> = None;
    let mut last_stream = 0u32;
    let failure = loop {
        let stalled_tx = stalled.as_ref().map(|(tx, _)| tx.clone());
        tokio::select! {
            permit = async move {
                match stalled_tx {
                    Some(tx) => tx.reserve_owned().await,
                    None => std::future::pending().await,
                }
            }, if stalled.is_some() => {
                let (tx, mut queue) = stalled.take().expect("stalled");
                // An error: the call ended meanwhile, its data is dropped.
                if let (Ok(p), Some(item)) = (permit, queue.pop_front()) {
                    p.send(item);
                    if !queue.is_empty() {
                        stalled = Some((tx, queue));
                    }
                }
            }
            out = out_rx.recv() => {
                let Some(Out::Data { stream_id, fin, data }) = out else { continue };
                let f = Frame::Data { stream_id, fin, data };
                if socket.send(Message::Binary(f.encode().into())).await.is_err() {
                    return;
                }
                continue;
            }
            msg = socket.recv(), if stalled.is_none() => {
                match msg {
                    Some(Ok(Message::Binary(b))) => decoder.push(&b),
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    // Pings are answered by the socket; text means nothing.
                    Some(Ok(_)) => continue,
                }
            }
        }
        if stalled.is_some() {
            continue;
        }
        // Every whole frame that arrived, until a call's queue is full.
        let mut replies = Vec::new();
        let failure = loop {
            let f = match decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            };
            match f {
                Frame::SynStream {
                    stream_id,
                    headers: block,
                    ..
                } => {
                    // Every block is decoded, in order: the zlib state is
                    // the connection's.
                    let reply = codec
                        .decode(&block)
                        .and_then(|h| Ok((h, codec.encode(&[])?)));
                    let (h, reply) = match reply {
                        Ok(r) => r,
                        Err(e) => break Some(e.to_string()),
                    };
                    last_stream = last_stream.max(stream_id);
                    replies.push(Frame::SynReply {
                        stream_id,
                        fin: false,
                        headers: reply,
                    });
                    routes.retain(|_, tx| !tx.is_closed());
                    match open_stream(&h, stream_id, &mut pending, routes.len()) {
                        Ok(Some((error, data))) => {
                            let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
                            routes.insert(data.stream_id, tx);
                            let call = PortForwardCall {
                                pod: pod.clone(),
                                port: data.port,
                            };
                            let ids = (error.stream_id, data.stream_id);
                            let (st, node, out) = (st.clone(), node.clone(), out_tx.clone());
                            tokio::spawn(forward(st, node, call, ids, rx, out));
                        }
                        Ok(None) => {}
                        // Refused: say why on the stream, and close it.
                        Err(why) => replies.push(Frame::Data {
                            stream_id,
                            fin: true,
                            data: why.into_bytes(),
                        }),
                    }
                }
                Frame::Data {
                    stream_id,
                    fin,
                    data,
                } => {
                    // None: an error stream's FIN, or a stream already done.
                    let Some(tx) = routes.get(&stream_id).cloned() else {
                        continue;
                    };
                    if fin {
                        routes.remove(&stream_id);
                    }
                    let mut items: VecDeque<FromClient> = VecDeque::new();
                    if !data.is_empty() {
                        items.push_back(FromClient::Data(data));
                    }
                    if fin {
                        items.push_back(FromClient::Fin);
                    }
                    while let Some(item) = items.pop_front() {
                        match tx.try_send(item) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(item)) => {
                                items.push_front(item);
                                break;
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => items.clear(),
                        }
                    }
                    if !items.is_empty() {
                        stalled = Some((tx, items));
                        break None;
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    // kubectl resets the data stream once the answer came,
                    // or when its side failed: dropping the queue ends the
                    // call (cancelled on the agent if still running).
                    routes.remove(&stream_id);
                }
                Frame::Ping { id } => replies.push(Frame::Ping { id }),
                Frame::GoAway { .. } => break Some(String::new()),
                Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Ignored => {}
            }
        };
        for f in replies {
            if socket
                .send(Message::Binary(f.encode().into()))
                .await
                .is_err()
            {
                return;
            }
        }
        if let Some(why) = failure {
            break why;
        }
    };
    // GOAWAY from kubectl (empty), or a protocol error: close; the calls
    // end with their queues.
    if !failure.is_empty() {
        tracing::debug!(error = %failure, "port-forward: not SPDY/3 as kubectl speaks it");
    }
    let goaway = Frame::GoAway {
        last_good_stream_id: last_stream,
        status: if failure.is_empty() {
            0
        } else {
            frame::GOAWAY_PROTOCOL_ERROR
        },
    };
    let _ = socket.send(Message::Binary(goaway.encode().into())).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
}

/// Records the stream kubectl opened with headers `h`; both halves of its
/// request once complete, or why the stream is refused.
fn open_stream(
    h: &headers::HeaderList,
    stream_id: u32,
    pending: &mut HashMap<String, Pending>,
    open: usize,
) -> Result<Option<(Half, Half)>, String> {
    let port = headers::get(h, "port").unwrap_or("");
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(format!(
                "invalid port {port:?}: the port header must be a number from 1 to 65535"
            ));
        }
    };
    let request = headers::get(h, "requestid")
        .ok_or("the requestID header is missing (kubectl 1.8 or newer sends it)")?
        .to_string();
    let half = Half { stream_id, port };
    if !pending.contains_key(&request) && pending.len() + open >= MAX_CONNECTIONS {
        return Err(format!(
            "more than {MAX_CONNECTIONS} forwarded connections at once on one port-forward"
        ));
    }
    let p = pending.entry(request.clone()).or_default();
    match headers::get(h, "streamtype") {
        Some("error") => p.error = Some(half),
        Some("data") => p.data = Some(half),
        other => return Err(format!("unknown streamType {other:?} (error or data)")),
    }
    match (p.error, p.data) {
        (Some(e), Some(d)) => {
            pending.remove(&request);
            if e.port != d.port {
                return Err(format!(
                    "request {request}: the error stream names port {} and the data stream port {}",
                    e.port, d.port
                ));
            }
            Ok(Some((e, d)))
        }
        _ => Ok(None),
    }
}

/// Runs one forwarded connection: the call, and the bytes both ways.
async fn forward(
    st: AppState,
    node: String,
    call: PortForwardCall,
    (error_id, data_id): (u32, u32),
    mut from_client: mpsc::Receiver<FromClient>,
    out: mpsc::Sender<Out>,
) {
    let port = call.port;
    let pod = ObjectKey::new(&call.pod.namespace, &call.pod.name).to_string();
    let close = |error: Option<String>| {
        let out = out.clone();
        async move {
            let _ = out
                .send(Out::Data {
                    stream_id: data_id,
                    fin: true,
                    data: Vec::new(),
                })
                .await;
            let message = error
                .map(|e| format!("error forwarding port {port} to pod {pod}: {e}"))
                .unwrap_or_default();
            let _ = out
                .send(Out::Data {
                    stream_id: error_id,
                    fin: true,
                    data: message.into_bytes(),
                })
                .await;
        }
    };
    let (mut stream, first) = match start(&st, &node, RpcCall::PortForward(call)).await {
        Ok(s) => s,
        Err(ApiError(status)) => {
            close(Some(status.message)).await;
            return;
        }
    };
    let mut window = StdinWindow::new(stream.id().clone(), true);
    let mut next = Some(first);
    loop {
        while let Some(c) = window.next_call() {
            if let Err(e) = stream.send_stdin(c).await {
                close(Some(format!("sending to the agent: {e}"))).await;
                return;
            }
        }
        let chunk = match next.take() {
            Some(c) => c,
            None => tokio::select! {
                m = from_client.recv(), if window.wants_input() => {
                    match m {
                        Some(FromClient::Data(d)) => window.push(&d, false),
                        Some(FromClient::Fin) => window.push(b"", true),
                        // Reset by kubectl, or the socket closed: dropping
                        // the stream cancels the call.
                        None => {
                            drop(stream);
                            close(None).await;
                            return;
                        }
                    }
                    continue;
                }
                c = stream.next() => match c {
                    Some(c) => c,
                    None => {
                        let s = Status::internal(format!(
                            "node {node:?} stopped answering (its agent disconnected?)"
                        ));
                        close(Some(s.message)).await;
                        return;
                    }
                },
            },
        };
        match chunk {
            RpcChunk::Output { .. } => {
                let data = chunk.output_bytes().unwrap_or_default();
                if data.is_empty() {
                    continue;
                }
                let sent = out
                    .send(Out::Data {
                        stream_id: data_id,
                        fin: false,
                        data,
                    })
                    .await;
                if sent.is_err() {
                    return;
                }
            }
            RpcChunk::StdinAck { offset } => window.ack(offset),
            RpcChunk::End {
                exit_code: Some(_), ..
            } => {
                close(None).await;
                return;
            }
            RpcChunk::End { error, .. } => {
                let e = error.unwrap_or_default();
                let message = match e.code {
                    RpcErrorCode::Cancelled => None,
                    _ => Some(e.message),
                };
                close(message).await;
                return;
            }
            RpcChunk::Image { .. } | RpcChunk::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> headers::HeaderList {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_request_pairs_its_error_and_data_streams() {
        let mut pending = HashMap::new();
        let e = h(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]);
        let d = h(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]);
        assert_eq!(open_stream(&e, 1, &mut pending, 0), Ok(None));
        let (err, data) = open_stream(&d, 3, &mut pending, 0).unwrap().unwrap();
        assert_eq!((err.stream_id, data.stream_id, data.port), (1, 3, 80));
        assert!(pending.is_empty());
    }

    #[test]
    fn bad_streams_are_refused_with_a_reason() {
        let mut pending = HashMap::new();
        for (headers, want) in [
            (
                vec![("streamtype", "data"), ("port", "0"), ("requestid", "1")],
                "invalid port \"0\"",
            ),
            (
                vec![("streamtype", "data"), ("port", "http"), ("requestid", "1")],
                "invalid port",
            ),
            (vec![("streamtype", "data"), ("port", "80")], "requestID"),
            (
                vec![("streamtype", "x"), ("port", "80"), ("requestid", "1")],
                "unknown streamType",
            ),
        ] {
            let e = open_stream(&h(&headers), 1, &mut pending, 0).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let full = open_stream(
            &h(&[("streamtype", "error"), ("port", "80"), ("requestid", "9")]),
            1,
            &mut HashMap::new(),
            MAX_CONNECTIONS,
        )
        .unwrap_err();
        assert!(full.contains("more than 64"), "{full}");
        let mut pending = HashMap::new();
        open_stream(
            &h(&[("streamtype", "error"), ("port", "80"), ("requestid", "2")]),
            1,
            &mut pending,
            0,
        )
        .unwrap();
        let e = open_stream(
            &h(&[("streamtype", "data"), ("port", "81"), ("requestid", "2")]),
            3,
            &mut pending,
            0,
        )
        .unwrap_err();
        assert!(e.contains("port 80 and the data stream port 81"), "{e}");
    }
}
