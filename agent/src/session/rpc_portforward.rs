//! `portForward` (`kubectl port-forward`): one TCP connection from the hub's
//! client to a port of a pod, carried by the RPC.
//!
//! As the kubelet does, the agent connects to `127.0.0.1:PORT` (then
//! `[::1]:PORT`) *inside the pod's network namespace* (a short-lived thread
//! enters it to make the socket, see [`crate::pod::netns::in_network`]), so
//! a server listening on the pod's loopback only is reachable; a
//! `hostNetwork` pod's port is the node's loopback. Then one thread
//! polls the socket:
//! - an empty `output` chunk first, once connected, so the hub knows at
//!   once that the connection stands (most servers wait for the client);
//! - what the pod sends goes out as `stdout` output chunks;
//! - the client's bytes arrive as `stdin` calls, are written to the socket
//!   and acknowledged ([`super::stdin_feed`]); their `eof` shuts down the
//!   socket's sending side, and the answer still comes back;
//! - the pod closing the connection ends the call with exit code 0;
//!   `cancel` (the client went away) or stdin out of order end it with that
//!   error. There is no time limit: the client's connection decides.
//!
//! A connection that cannot be made ([`ConnectError`]) ends the call with
//! an error naming the port and the pod.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bramble_api::protocol::RpcChunk;
use bramble_api::protocol::rpc::{PortForwardCall, RpcError, RpcErrorCode, Stream};

use super::rpc_exec::{poll, read_some};
use super::stdin_feed::{FeedError, StdinFeed, StdinState};
use crate::pod::netns::{NetnsError, in_network};

/// How long connecting to the pod's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn end_error(code: RpcErrorCode, message: String) -> RpcChunk {
    RpcChunk::End {
        exit_code: None,
        error: Some(RpcError { code, message }),
    }
}

/// Why the connection to the pod's port could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Neither loopback address answered.
    #[error("IPv4 {v4}: {e4}; IPv6 {v6}: {e6}")]
    Dial {
        v4: SocketAddr,
        e4: io::Error,
        v6: SocketAddr,
        e6: io::Error,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// Setting up the connected socket.
    #[error(transparent)]
    Socket(#[from] io::Error),
}

/// Connects to `port` on the loopback of the namespace at `netns` (the
/// agent's own if `None`), IPv4 first.
fn connect(netns: Option<&Path>, port: u16) -> Result<TcpStream, ConnectError> {
    let dial = || {
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT).or_else(|e4| {
            TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT).map_err(|e6| ConnectError::Dial {
                v4,
                e4,
                v6,
                e6,
            })
        })
    };
    match netns {
        None => dial(),
        Some(path) => in_network(path, dial)?,
    }
}

/// Forwards the connection `call` asks for in the pod whose network
/// namespace is at `netns` (`None`: the node's, for `hostNetwork`).
pub fn forward(
    netns: Option<&Path>,
    call: &PortForwardCall,
    stdin: Option<StdinFeed>,
    cancel: &AtomicBool,
    sink: &mut dyn FnMut(RpcChunk) -> bool,
) {
    let (ns, name, port) = (&call.pod.namespace, &call.pod.name, call.port);
    let Some(feed) = stdin else {
        sink(end_error(
            RpcErrorCode::Failed,
            "port-forward without its stdin queue (an agent bug)".into(),
        ));
        return;
    };
    let socket = connect(netns, port).and_then(|s| {
        s.set_nonblocking(true)?;
        let writer = s.try_clone()?;
        Ok((s, File::from(OwnedFd::from(writer))))
    });
    let (mut socket, writer) = match socket {
        Ok(s) => s,
        Err(e) => {
            sink(end_error(
                RpcErrorCode::Failed,
                format!("connecting to port {port} in pod {ns}/{name}: {e}"),
            ));
            return;
        }
    };
    if !sink(RpcChunk::output(Stream::Stdout, b"")) {
        return;
    }
    let mut client = StdinState::new(writer, feed);
    let mut shut = false;
    let mut chunks = Vec::new();
    let end = loop {
        if cancel.load(Ordering::Relaxed) {
            break end_error(RpcErrorCode::Cancelled, "port-forward cancelled".into());
        }
        let open = read_some(&mut socket, Stream::Stdout, &mut chunks);
        match client.feed_pipe() {
            Ok(()) => chunks.extend(client.ack()),
            Err(FeedError::Invalid(why)) => break end_error(RpcErrorCode::Invalid, why),
        }
        if client.finished() && !shut {
            // The client sent everything: tell the pod, keep reading.
            shut = true;
            if let Err(e) = socket.shutdown(Shutdown::Write)
                && e.kind() != ErrorKind::NotConnected
            {
                break end_error(RpcErrorCode::Failed, format!("shutting down: {e}"));
            }
        }
        for c in chunks.drain(..) {
            if !sink(c) {
                return;
            }
        }
        if !open {
            break RpcChunk::End {
                exit_code: Some(0),
                error: None,
            };
        }
        let mut fds = vec![libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if client.has_pending() {
            fds[0].events |= libc::POLLOUT;
        }
        // Client bytes arrive on a channel poll cannot watch: 10 ms.
        poll(&mut fds, 10);
    };
    sink(end);
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::mpsc::sync_channel;

    use bramble_api::protocol::RpcId;
    use bramble_api::protocol::rpc::PodRef;
    use bramble_api::protocol::rpc_stdin::stdin_calls;

    use super::*;

    /// Forwards to `port` on this host's loopback with `input` as the
    /// client's bytes (then eof); the chunks.
    fn run(port: u16, input: &[u8]) -> Vec<RpcChunk> {
        let id = RpcId::new("pf1").unwrap();
        let (tx, rx) = sync_channel(64);
        for c in stdin_calls(&id, 0, input, true) {
            tx.send(c).unwrap();
        }
        let feed = StdinFeed {
            calls: rx,
            overflow: Arc::new(AtomicBool::new(false)),
        };
        let call = PortForwardCall {
            pod: PodRef {
                namespace: "default".into(),
                name: "web".into(),
                uid: None,
            },
            port,
        };
        let mut chunks = Vec::new();
        forward(None, &call, Some(feed), &AtomicBool::new(false), &mut |c| {
            chunks.push(c);
            true
        });
        chunks
    }

    #[test]
    fn bytes_go_both_ways_and_the_pod_closing_ends_it() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            // Until the client's shutdown: the eof must reach the pod.
            conn.read_to_end(&mut got).unwrap();
            conn.write_all(&[b"echo:".as_slice(), &got].concat())
                .unwrap();
            got
        });
        let input: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let chunks = run(port, &input);
        assert_eq!(server.join().unwrap(), input);
        let out: Vec<u8> = chunks
            .iter()
            .filter_map(RpcChunk::output_bytes)
            .flatten()
            .collect();
        assert_eq!(out, [b"echo:".as_slice(), &input].concat());
        let acked = chunks.iter().rev().find_map(|c| match c {
            RpcChunk::StdinAck { offset } => Some(*offset),
            _ => None,
        });
        assert_eq!(acked, Some(input.len() as u64));
        assert_eq!(
            chunks.last(),
            Some(&RpcChunk::End {
                exit_code: Some(0),
                error: None
            })
        );
    }

    #[test]
    fn nothing_listening_is_an_error_naming_the_port() {
        let port = {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let chunks = run(port, b"");
        let Some(RpcChunk::End {
            error: Some(e),
            exit_code: None,
        }) = chunks.last()
        else {
            panic!("{chunks:?}")
        };
        assert_eq!(e.code, RpcErrorCode::Failed);
        assert!(
            e.message
                .contains(&format!("connecting to port {port} in pod default/web")),
            "{}",
            e.message
        );
    }
}
