//! The reverse proxy of the hub's ingress: HTTP/1.1 with keep-alive on both
//! sides (idle connections to the pods kept per endpoint, [`super::pool`]),
//! `X-Forwarded-*` headers, hop-by-hop headers dropped, WebSocket (any
//! `Upgrade`) tunnelled, and on a refused connection the next endpoint tried
//! (the request body is only read once a connection is open, so any request
//! can be retried; a pooled connection found closed before the request was
//! written is replaced by a new one). Requests without a matching rule get
//! 404, a backend without ready endpoints 503, each with a body that says
//! which. Per request, the request's own header map and body are forwarded
//! as they are (no copies, no buffering). The plain and the TLS listener
//! share one proxy; each tells the pod its own scheme and port ([`Via`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper::Uri;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

pub use super::pool::CONNECT_TIMEOUT;
use super::pool::{self, ConnectError, Pool, Returning, Sender};
use super::routes::{Backend, RouteTable};

/// A body the ingress answers with (or sends a pod to open a tunnel): its
/// own text, or what a pod answered. An enum, not a box: no allocation.
pub enum Body {
    /// The ingress's own answer (empty for a tunnel).
    Text(Full<Bytes>),
    /// A pod's answer on a pooled connection.
    Pod(Returning),
    /// A pod's answer on a connection of its own.
    Other(Incoming),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Body::Text(b) => Pin::new(b).poll_frame(cx).map_err(|e| match e {}),
            Body::Pod(b) => Pin::new(b).poll_frame(cx),
            Body::Other(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Text(b) => b.is_end_stream(),
            Body::Pod(b) => b.is_end_stream(),
            Body::Other(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Text(b) => b.size_hint(),
            Body::Pod(b) => b.size_hint(),
            Body::Other(b) => b.size_hint(),
        }
    }
}

/// What the proxy shares across connections (of every listener).
pub struct Proxy {
    pub table: RwLock<Arc<RouteTable>>,
    /// Idle keep-alive connections to the pods.
    pool: Arc<Pool>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").finish_non_exhaustive()
    }
}

/// The listener a request came in on, as the pod is told in
/// `X-Forwarded-Proto` and `X-Forwarded-Port`.
#[derive(Debug, Clone)]
pub struct Via {
    proto: HeaderValue,
    port: HeaderValue,
}

impl Via {
    /// The plain HTTP listener on `port`.
    pub fn http(port: u16) -> Via {
        Via {
            proto: HeaderValue::from_static("http"),
            port: HeaderValue::from(port),
        }
    }

    /// The TLS listener on `port`.
    pub fn https(port: u16) -> Via {
        Via {
            proto: HeaderValue::from_static("https"),
            port: HeaderValue::from(port),
        }
    }
}

fn full(text: impl Into<Bytes>) -> Body {
    Body::Text(Full::new(text.into()))
}

fn empty() -> Body {
    Body::Text(Full::new(Bytes::new()))
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(full(text + "\n"));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Whether `n` describes one connection, not the message.
fn is_hop_by_hop(n: &HeaderName) -> bool {
    n == header::CONNECTION
        || n == header::TE
        || n == header::TRAILER
        || n == header::TRANSFER_ENCODING
        || n == header::PROXY_AUTHENTICATE
        || n == header::PROXY_AUTHORIZATION
        || n == "keep-alive"
        || n == "proxy-connection"
}

/// Drops the hop-by-hop headers and those `Connection` lists (except
/// `Connection` and `Upgrade` themselves when `keep_upgrade`). Allocates
/// only for `Connection` tokens other than `close`, `keep-alive`, `upgrade`
/// and the standard hop-by-hop names.
fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    for n in connection_listed(h) {
        h.remove(n);
    }
    let drop = |n: &HeaderName| {
        (is_hop_by_hop(n) && !(keep_upgrade && n == header::CONNECTION))
            || (!keep_upgrade && n == header::UPGRADE)
    };
    // Usually none: scan the few headers instead of hashing every name.
    while let Some(n) = h.keys().find(|n| drop(n)).cloned() {
        h.remove(n);
    }
}

/// The extra headers `Connection` names.
fn connection_listed(h: &HeaderMap) -> Vec<HeaderName> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.eq_ignore_ascii_case("close") && !t.eq_ignore_ascii_case("upgrade"))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .filter(|n| !is_hop_by_hop(n))
        .collect()
}

fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy::new()
    }
}

impl Proxy {
    /// A proxy with an empty table.
    pub fn new() -> Proxy {
        Proxy {
            table: RwLock::new(Arc::new(RouteTable::default())),
            pool: Arc::default(),
        }
    }

    fn table(&self) -> Arc<RouteTable> {
        self.table
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Answers one request from `peer` that came in `via` a listener.
    pub async fn handle(
        self: Arc<Self>,
        via: Arc<Via>,
        peer: SocketAddr,
        mut req: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        let table = self.table();
        let host = request_host(&req);
        let hostname = strip_port(host);
        let path = req.uri().path();
        let Some(backend) = table.route(hostname, path) else {
            return Ok(plain(
                StatusCode::NOT_FOUND,
                format!("no Ingress rule matches host {hostname:?} and path {path:?}"),
            ));
        };
        if backend.endpoints.is_empty() {
            return Ok(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no ready endpoints for service {}/{} port {} (host {hostname:?}, path {path:?})",
                    backend.namespace, backend.service, backend.port
                ),
            ));
        }
        let forwarded_host = forwarded_host(&req);
        let upgrade = is_upgrade(&req);
        let headers = req.headers_mut();
        strip_hop_by_hop(headers, upgrade);
        add_forwarded(headers, peer, forwarded_host, &via);
        if upgrade {
            return Ok(tunnel(req, backend.order(), backend).await);
        }
        Ok(self.forward(req, backend.order(), backend).await)
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        order: impl Iterator<Item = SocketAddr>,
        backend: &Backend,
    ) -> Response<Body> {
        if let Err(e) = origin_form(&mut req) {
            return plain(StatusCode::BAD_REQUEST, format!("bad request path: {e}"));
        }
        *req.version_mut() = hyper::Version::HTTP_11;
        let mut last_error = String::new();
        // HTTP/1.0 clients may send none; the pod gets the endpoint then.
        let client_host = req.headers().contains_key(header::HOST);
        for ep in order {
            if !client_host && let Ok(v) = HeaderValue::from_str(&ep.to_string()) {
                req.headers_mut().insert(header::HOST, v);
            }
            match self.send(ep, req).await {
                Ok((resp, sender)) => {
                    let (mut parts, body) = resp.into_parts();
                    strip_hop_by_hop(&mut parts.headers, false);
                    let body = Returning::new(body, self.pool.clone(), ep, sender);
                    return Response::from_parts(parts, Body::Pod(body));
                }
                Err(Attempt::Refused(e, r)) => {
                    tracing::debug!(endpoint = %ep, error = %e, "endpoint refused; trying the next");
                    last_error = e;
                    req = *r;
                }
                Err(Attempt::Failed(e)) => {
                    return plain(
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "service {}/{} endpoint {ep} failed: {e}",
                            backend.namespace, backend.service
                        ),
                    );
                }
            }
        }
        plain(
            StatusCode::BAD_GATEWAY,
            format!(
                "no endpoint of service {}/{} accepted the connection (last: {last_error})",
                backend.namespace, backend.service
            ),
        )
    }

    /// Sends `req` to `ep` on an idle connection, or a new one when none
    /// is left open. A pooled connection that closed before the request was
    /// written is skipped; only a failure to connect gives the request back.
    async fn send(
        &self,
        ep: SocketAddr,
        mut req: Request<Incoming>,
    ) -> Result<(Response<Incoming>, Sender), Attempt> {
        while let Some(mut sender) = self.pool.checkout(ep) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok((resp, sender)),
                Err(mut e) => match e.take_message() {
                    Some(r) => req = r,
                    None => return Err(Attempt::Failed(e.into_error())),
                },
            }
        }
        let mut sender = match pool::connect(ep).await {
            Ok(s) => s,
            Err(ConnectError(e)) => return Err(Attempt::Refused(e, Box::new(req))),
        };
        match sender.try_send_request(req).await {
            Ok(resp) => Ok((resp, sender)),
            Err(mut e) => match e.take_message() {
                Some(r) => Err(Attempt::Refused(
                    format!("{ep} closed the new connection: {}", e.error()),
                    Box::new(r),
                )),
                None => Err(Attempt::Failed(e.into_error())),
            },
        }
    }

    /// Drops idle connections to pods that closed or idled too long.
    pub fn prune_idle(&self) {
        self.pool.prune();
    }
}

/// How one attempt at an endpoint failed.
enum Attempt {
    /// No connection: the request, untouched, can go to the next endpoint.
    Refused(String, Box<Request<Incoming>>),
    /// The request was (at least partly) sent.
    Failed(hyper::Error),
}

/// Rewrites an absolute-form request target (`http://host/path`) to origin
/// form (`/path`), which is what a pod expects.
fn origin_form(req: &mut Request<Incoming>) -> Result<(), hyper::http::Error> {
    if req.uri().scheme().is_none() && req.uri().authority().is_none() {
        return Ok(());
    }
    let pq = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *req.uri_mut() = Uri::builder().path_and_query(pq).build()?;
    Ok(())
}

/// The `Host` the client asked for (the request target's when it sent no
/// `Host` header), port included.
fn request_host(req: &Request<Incoming>) -> &str {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.uri().host())
        .unwrap_or("")
}

/// `host` without a trailing `:port`.
fn strip_port(host: &str) -> &str {
    host.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// The value for `X-Forwarded-Host`: [`request_host`], shared with the
/// request's own header when it has one.
fn forwarded_host(req: &Request<Incoming>) -> HeaderValue {
    match req.headers().get(header::HOST) {
        Some(v) if v.to_str().is_ok() => v.clone(),
        _ => HeaderValue::from_str(request_host(req)).unwrap_or(HeaderValue::from_static("")),
    }
}

fn add_forwarded(h: &mut HeaderMap, peer: SocketAddr, host: HeaderValue, via: &Via) {
    let xff = HeaderName::from_static("x-forwarded-for");
    if let Some(v) = forwarded_for(h.get(&xff), peer) {
        h.insert(xff, v);
    }
    h.insert(HeaderName::from_static("x-forwarded-host"), host);
    h.insert(
        HeaderName::from_static("x-forwarded-proto"),
        via.proto.clone(),
    );
    h.insert(
        HeaderName::from_static("x-forwarded-port"),
        via.port.clone(),
    );
}

/// `X-Forwarded-For`: the client's list, if any, with `peer` appended.
fn forwarded_for(prev: Option<&HeaderValue>, peer: SocketAddr) -> Option<HeaderValue> {
    use std::fmt::Write as _;
    let prev = prev.and_then(|v| v.to_str().ok());
    // ", " and the longest IPv6 text (45 bytes).
    let mut b = BytesMut::with_capacity(prev.map_or(0, str::len) + 2 + 45);
    if let Some(p) = prev {
        b.extend_from_slice(p.as_bytes());
        b.extend_from_slice(b", ");
    }
    write!(b, "{}", peer.ip()).ok()?;
    HeaderValue::from_maybe_shared(b.freeze()).ok()
}

/// An `Upgrade` request (WebSocket): a connection of its own to the first
/// endpoint that accepts, then bytes copied both ways once both sides
/// switched protocols.
async fn tunnel(
    mut req: Request<Incoming>,
    order: impl Iterator<Item = SocketAddr>,
    backend: &Backend,
) -> Response<Body> {
    let client_side = hyper::upgrade::on(&mut req);
    let (parts, _) = req.into_parts();
    for ep in order {
        let stream =
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(ep)).await {
                Ok(Ok(s)) => s,
                _ => continue,
            };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await
        else {
            continue;
        };
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut out = Request::from_parts(parts.clone(), empty());
        *out.uri_mut() = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .unwrap_or_default();
        let mut resp = match sender.send_request(out).await {
            Ok(r) => r,
            Err(e) => {
                return plain(StatusCode::BAD_GATEWAY, format!("endpoint {ep}: {e}"));
            }
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let (parts, body) = resp.into_parts();
            return Response::from_parts(parts, Body::Other(body));
        }
        let backend_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (Ok(c), Ok(b)) = (client_side.await, backend_side.await) else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(c), &mut TokioIo::new(b)).await;
        });
        let (parts, _) = resp.into_parts();
        return Response::from_parts(parts, empty());
    }
    plain(
        StatusCode::BAD_GATEWAY,
        format!(
            "no endpoint of service {}/{} accepted the connection",
            backend.namespace, backend.service
        ),
    )
}
