//! The hub's HTTP ingress (`--ingress-listen`) and its TLS listener
//! (`--ingress-tls-listen`): Ingress objects become a [`RouteTable`]
//! ([`routes`]) and their `spec.tls` a certificate table ([`tls`]) that the
//! control loop swaps in together whenever Ingresses, Services, Endpoints or
//! Secrets change; [`proxy`] serves requests from the LAN with them, on both
//! listeners. A swap never touches open connections. The listeners have the
//! API port's limits: a request's headers within 10 s, at most
//! `--max-connections` connections and `--max-connections-per-client` from
//! one address (their own pool), 429/503 past them.

pub mod pool;
pub mod proxy;
pub mod routes;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bramble_api::objects::{Ingress, Secret};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::conn_limits::{Admitted, ConnLimits};
use hyper_util::rt::TokioTimer;

pub use proxy::{Proxy, Via};
pub use routes::RouteTable;
pub use tls::Certificates;

/// Default `--ingress-listen`.
pub const DEFAULT_INGRESS_LISTEN: &str = "0.0.0.0:80";

/// Default `--ingress-tls-listen`.
pub const DEFAULT_INGRESS_TLS_LISTEN: &str = "0.0.0.0:443";

/// What the ingress's listeners share: the proxy (route table, idle
/// connections to the pods) and the certificates.
#[derive(Debug, Clone)]
pub struct IngressState {
    proxy: Arc<Proxy>,
    certs: Arc<Certificates>,
    /// Whether a TLS listener runs (certificates are loaded only then).
    tls: Arc<AtomicBool>,
    shutdown: watch::Receiver<bool>,
    /// Connection caps of both listeners.
    limits: Arc<ConnLimits>,
}

/// One running ingress listener (plain or TLS).
#[derive(Debug, Clone)]
pub struct IngressServer {
    state: IngressState,
    addr: SocketAddr,
}

/// Drops the proxy's idle connections to pods that closed or idled past
/// [`pool::IDLE_TIMEOUT`], until shutdown or the proxy is gone.
fn spawn_pruner(proxy: std::sync::Weak<Proxy>, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(pool::IDLE_TIMEOUT / 3);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
            match proxy.upgrade() {
                Some(p) => p.prune_idle(),
                None => return,
            }
        }
    });
}

/// Accepts connections on `listener` until shutdown, handing each to
/// `serve` (which must spawn: the loop never waits for a connection).
/// Accepts connections until shutdown; each one within the caps is
/// handed to `serve` with its slot, the others get their 429/503
/// (after the TLS handshake when `acceptor` is set) and are closed.
fn spawn_accept(
    listener: TcpListener,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    limits: Arc<ConnLimits>,
    acceptor: Option<TlsAcceptor>,
    serve: impl Fn(TcpStream, SocketAddr, Admitted) + Send + 'static,
) {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(listener = what, error = %e, "ingress accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                r = shutdown.changed() => {
                    if r.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            match limits.admit(peer.ip()) {
                Ok(slot) => serve(stream, peer, slot),
                Err(refusal) => {
                    crate::listener::refuse(stream, peer, refusal, acceptor.clone(), &limits)
                }
            }
        }
    });
}

/// Serves HTTP/1 requests on one client connection with the proxy.
async fn serve_connection<I>(io: I, proxy: Arc<Proxy>, via: Arc<Via>, peer: SocketAddr)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| proxy.clone().handle(via.clone(), peer, req));
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(crate::listener::HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
        .await
    {
        tracing::debug!(%peer, error = %e, "ingress connection ended");
    }
}

async fn bind(listen: SocketAddr, what: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("{what} on {listen}: {e}")))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

impl IngressState {
    /// An empty route table and no certificates; no listener yet. Must run
    /// inside the runtime (it spawns the idle-connection pruner).
    pub fn new(shutdown: watch::Receiver<bool>) -> IngressState {
        let proxy = Arc::new(Proxy::new());
        spawn_pruner(Arc::downgrade(&proxy), shutdown.clone());
        IngressState {
            proxy,
            certs: Arc::new(Certificates::new()),
            tls: Arc::default(),
            shutdown,
            limits: ConnLimits::new(
                crate::conn_limits::DEFAULT_TOTAL,
                crate::conn_limits::DEFAULT_PER_CLIENT,
            ),
        }
    }

    /// Caps on the listeners' connections (in total and per client, shared
    /// by the plain and the TLS listener) instead of the defaults.
    pub fn with_limits(mut self, limits: Arc<ConnLimits>) -> IngressState {
        self.limits = limits;
        self
    }

    /// Binds `listen` and serves plain HTTP until shutdown.
    pub async fn serve(&self, listen: SocketAddr) -> std::io::Result<IngressServer> {
        let (listener, addr) = bind(listen, "ingress").await?;
        let via = Arc::new(Via::http(addr.port()));
        let proxy = self.proxy.clone();
        spawn_accept(
            listener,
            "http",
            self.shutdown.clone(),
            self.limits.clone(),
            None,
            move |stream, peer, slot| {
                let (proxy, via) = (proxy.clone(), via.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    serve_connection(stream, proxy, via, peer).await
                });
            },
        );
        tracing::info!(%addr, "ingress listening");
        Ok(IngressServer {
            state: self.clone(),
            addr,
        })
    }

    /// Binds `listen` and serves HTTPS until shutdown: the TLS handshake
    /// (certificate by SNI, ALPN `http/1.1`, at most
    /// [`tls::HANDSHAKE_TIMEOUT`]) in each connection's own task, then the
    /// same proxy as the plain listener.
    pub async fn serve_tls(&self, listen: SocketAddr) -> std::io::Result<IngressServer> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.certs.provider().clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| std::io::Error::other(format!("ingress TLS setup: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(self.certs.clone());
        config.alpn_protocols = vec![tls::ALPN_HTTP1.to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (listener, addr) = bind(listen, "ingress TLS").await?;
        self.tls.store(true, Ordering::Release);
        let via = Arc::new(Via::https(addr.port()));
        let proxy = self.proxy.clone();
        spawn_accept(
            listener,
            "https",
            self.shutdown.clone(),
            self.limits.clone(),
            Some(acceptor.clone()),
            move |stream, peer, slot| {
                let (acceptor, proxy, via) = (acceptor.clone(), proxy.clone(), via.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    let stream = match tokio::time::timeout(
                        tls::HANDSHAKE_TIMEOUT,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "ingress TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, timeout = ?tls::HANDSHAKE_TIMEOUT, "ingress TLS handshake timed out");
                            return;
                        }
                    };
                    serve_connection(stream, proxy, via, peer).await;
                });
            },
        );
        tracing::info!(%addr, "ingress TLS listening");
        Ok(IngressServer {
            state: self.clone(),
            addr,
        })
    }

    /// Routes new requests with `table`.
    pub fn set_table(&self, table: RouteTable) {
        match self.proxy.table.write() {
            Ok(mut t) => *t = Arc::new(table),
            Err(p) => *p.into_inner() = Arc::new(table),
        }
    }

    /// Rebuilds the certificates of new TLS handshakes from the Ingresses'
    /// `spec.tls` and the Secrets (nothing while no TLS listener runs).
    pub fn set_certificates(&self, ingresses: &[Ingress], secrets: &[Secret]) {
        if self.tls.load(Ordering::Acquire) {
            self.certs.update(ingresses, secrets);
        }
    }

    /// The certificate resolver of the TLS listener.
    pub fn certificates(&self) -> &Arc<Certificates> {
        &self.certs
    }
}

impl IngressServer {
    /// Binds `listen` and serves plain HTTP until `shutdown` turns true,
    /// with a proxy of its own.
    pub async fn start(
        listen: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<IngressServer> {
        IngressState::new(shutdown).serve(listen).await
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What this listener shares with the others.
    pub fn state(&self) -> &IngressState {
        &self.state
    }

    /// Routes new requests with `table`.
    pub fn set_table(&self, table: RouteTable) {
        self.state.set_table(table);
    }
}
