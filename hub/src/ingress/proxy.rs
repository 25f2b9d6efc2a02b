//! The reverse proxy of the hub's ingress: HTTP/1.1 with keep-alive on both
//! sides (a pooled client to the pods), `X-Forwarded-*` headers, hop-by-hop
//! headers dropped, WebSocket (any `Upgrade`) tunnelled, and on a refused
//! connection the next endpoint tried. Requests without a matching rule get
//! 404, a backend without ready endpoints 503, each with a body that says
//! which.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::routes::{Backend, RouteTable};

/// A body either side can send.
pub type Body = BoxBody<Bytes, BoxError>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request bodies up to this size are buffered so a refused connection can
/// be retried on another endpoint; larger ones stream (one attempt).
pub const RETRY_BODY_LIMIT: u64 = 64 * 1024;
/// How long connecting to a pod may take before the next one is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the proxy shares across connections.
pub struct Proxy {
    pub table: RwLock<Arc<RouteTable>>,
    client: Client<HttpConnector, Body>,
    /// The listening port, for `X-Forwarded-Port`.
    pub port: u16,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("port", &self.port).finish()
    }
}

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into()).map_err(|e| match e {}).boxed()
}

fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed()
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

/// Headers that describe one connection, not the message.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    let listed: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !(keep_upgrade && n == header::UPGRADE))
        .collect();
    for n in listed {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        if !(keep_upgrade && n == "connection") {
            h.remove(n);
        }
    }
    if !keep_upgrade {
        h.remove(header::UPGRADE);
    }
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

impl Proxy {
    /// A proxy with an empty table.
    pub fn new(port: u16) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Proxy {
            table: RwLock::new(Arc::new(RouteTable::default())),
            client,
            port,
        }
    }

    fn table(&self) -> Arc<RouteTable> {
        self.table
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Answers one request from `peer`.
    pub async fn handle(
        self: Arc<Self>,
        peer: SocketAddr,
        mut req: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(req.uri().host())
            .unwrap_or("")
            .to_string();
        let hostname = host
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host.as_str(), |(h, _)| h)
            .to_string();
        let path = req.uri().path().to_string();
        let table = self.table();
        let Some(backend) = table.route(&hostname, &path) else {
            return Ok(plain(
                StatusCode::NOT_FOUND,
                format!("no Ingress rule matches host {hostname:?} and path {path:?}"),
            ));
        };
        let order = backend.order();
        if order.is_empty() {
            return Ok(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no ready endpoints for service {}/{} port {} (host {hostname:?}, path {path:?})",
                    backend.namespace, backend.service, backend.port
                ),
            ));
        }
        let upgrade = is_upgrade(&req);
        let headers = req.headers_mut();
        strip_hop_by_hop(headers, upgrade);
        add_forwarded(headers, peer, &host, self.port);
        if upgrade {
            return Ok(tunnel(req, &order, backend).await);
        }
        Ok(self.forward(req, &order, backend).await)
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        order: &[SocketAddr],
        backend: &Backend,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let small = body
            .size_hint()
            .exact()
            .is_some_and(|n| n <= RETRY_BODY_LIMIT);
        // Buffered: every attempt can send it again.
        let (buffered, mut streaming) = if small {
            match body.collect().await {
                Ok(b) => (Some(b.to_bytes()), None),
                Err(e) => {
                    return plain(
                        StatusCode::BAD_REQUEST,
                        format!("reading the request body failed: {e}"),
                    );
                }
            }
        } else {
            (None, Some(body))
        };
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut last_error = String::new();
        for ep in order {
            let body = match (&buffered, streaming.take()) {
                (Some(b), _) => full(b.clone()),
                (None, Some(s)) => s.map_err(|e| Box::new(e) as BoxError).boxed(),
                (None, None) => break,
            };
            let mut out = Request::from_parts(parts.clone(), body);
            *out.uri_mut() = match format!("http://{ep}{path_and_query}").parse() {
                Ok(u) => u,
                Err(e) => return plain(StatusCode::BAD_REQUEST, format!("bad request path: {e}")),
            };
            *out.version_mut() = hyper::Version::HTTP_11;
            match self.client.request(out).await {
                Ok(resp) => {
                    let (mut parts, body) = resp.into_parts();
                    strip_hop_by_hop(&mut parts.headers, false);
                    return Response::from_parts(
                        parts,
                        body.map_err(|e| Box::new(e) as BoxError).boxed(),
                    );
                }
                Err(e) if e.is_connect() => {
                    tracing::debug!(endpoint = %ep, error = %e, "endpoint refused; trying the next");
                    last_error = format!("{ep}: {e}");
                }
                Err(e) => {
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
}

fn add_forwarded(h: &mut HeaderMap, peer: SocketAddr, host: &str, port: u16) {
    let ip = peer.ip().to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip,
    };
    for (name, value) in [
        ("x-forwarded-for", xff),
        ("x-forwarded-host", host.to_string()),
        ("x-forwarded-proto", "http".to_string()),
        ("x-forwarded-port", port.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
}

/// An `Upgrade` request (WebSocket): a connection of its own to the first
/// endpoint that accepts, then bytes copied both ways once both sides
/// switched protocols.
async fn tunnel(
    mut req: Request<Incoming>,
    order: &[SocketAddr],
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
            return Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed());
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
