//! Keep-alive connections from the ingress to the pods: per endpoint, a
//! stack of idle HTTP/1.1 connections ([`SendRequest`] handles, the most
//! recently used first). A connection is checked out for one request and
//! checked back in by the response body once the pod's answer has been read
//! to the end ([`Returning`]); an answer not read to the end drops it.
//! Connections idle for [`IDLE_TIMEOUT`] are dropped ([`Pool::prune`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

/// A connection to a pod, sending request bodies as they arrive.
pub type Sender = SendRequest<Incoming>;

/// How long connecting to a pod may take before the next one is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections older than this are dropped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

struct Idle {
    sender: Sender,
    since: Instant,
}

impl Idle {
    fn usable(&self, now: Instant) -> bool {
        !self.sender.is_closed() && now.duration_since(self.since) < IDLE_TIMEOUT
    }
}

/// Idle connections by endpoint.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
}

impl Pool {
    /// The most recently used idle connection to `ep` that is still open.
    pub fn checkout(&self, ep: SocketAddr) -> Option<Sender> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let stack = idle.get_mut(&ep)?;
        while let Some(c) = stack.pop() {
            if c.usable(now) {
                return Some(c.sender);
            }
        }
        None
    }

    /// Keeps `sender` for the next request to `ep` (unless it is closed).
    pub fn checkin(&self, ep: SocketAddr, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let idle = Idle {
            sender,
            since: Instant::now(),
        };
        let mut map = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(ep).or_default().push(idle);
    }

    /// Drops closed connections and those idle for [`IDLE_TIMEOUT`].
    pub fn prune(&self) {
        let now = Instant::now();
        let mut map = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, stack| {
            stack.retain(|c| c.usable(now));
            !stack.is_empty()
        });
    }
}

/// Why no connection to an endpoint could be opened (worth trying the next).
#[derive(Debug)]
pub struct ConnectError(pub String);

/// A new connection to `ep` (TCP_NODELAY, [`CONNECT_TIMEOUT`]), its
/// connection task spawned.
pub async fn connect(ep: SocketAddr) -> Result<Sender, ConnectError> {
    let stream =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(ep)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ConnectError(format!("connecting to {ep}: {e}"))),
            Err(_) => {
                return Err(ConnectError(format!(
                    "connecting to {ep}: timed out after {CONNECT_TIMEOUT:?}"
                )));
            }
        };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ConnectError(format!("HTTP handshake with {ep}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(endpoint = %ep, error = %e, "ingress connection to pod ended");
        }
    });
    Ok(sender)
}

/// A pod's response body that checks its connection back in once read to
/// the end.
pub struct Returning {
    body: Incoming,
    back: Option<(Arc<Pool>, SocketAddr, Sender)>,
}

impl Returning {
    /// Wraps `body`; `sender` goes back to `pool` when `body` ends.
    pub fn new(body: Incoming, pool: Arc<Pool>, ep: SocketAddr, sender: Sender) -> Returning {
        let mut r = Returning {
            body,
            back: Some((pool, ep, sender)),
        };
        if r.body.is_end_stream() {
            r.give_back();
        }
        r
    }

    fn give_back(&mut self) {
        if let Some((pool, ep, sender)) = self.back.take() {
            pool.checkin(ep, sender);
        }
    }
}

impl Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.give_back(),
            Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
