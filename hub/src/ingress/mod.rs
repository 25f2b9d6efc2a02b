//! The hub's HTTP ingress (`--ingress-listen`) and its TLS listener
//! (`--ingress-tls-listen`): Ingress objects become a [`RouteTable`]
//! ([`routes`]) and their `spec.tls` a certificate table ([`tls`]) that the
//! control loop swaps in together whenever Ingresses, Services, Endpoints or
//! Secrets change; [`proxy`] serves requests from the LAN with them, on both
//! listeners. A swap never touches open connections. The listeners have the
//! API port's limits: a request's headers within 10 s, at most
//! `--max-connections` connections and `--max-connections-per-client` from
//! one address (their own pool), 429/503 past them. On shutdown each
//! listener closes its port, its connections finish their request, and
//! [`IngressServer::join`] waits for all that (its accept loop owns the
//! connections' tasks).

pub mod pool;
pub mod proxy;
pub mod routes;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bramble_api::objects::{Ingress, Secret};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
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
#[derive(Debug)]
pub struct IngressServer {
    state: IngressState,
    addr: SocketAddr,
    /// The accept loop; it owns the tasks of its connections.
    task: JoinHandle<()>,
}

/// Accepts connections until shutdown; each one within the caps is handed
/// to `serve` with its slot and the shutdown flag and runs as a task of
/// this loop, the others get their 429/503 (after the TLS handshake when
/// `acceptor` is set) and are closed. Prunes the proxy's idle connections
/// to pods meanwhile. On shutdown, closes the port, then waits for its
/// connections (ending the returned task ends them).
fn spawn_accept<F>(
    listener: TcpListener,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    limits: Arc<ConnLimits>,
    acceptor: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    serve: impl Fn(TcpStream, SocketAddr, Admitted, watch::Receiver<bool>) -> F + Send + 'static,
) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        let mut prune = tokio::time::interval(pool::IDLE_TIMEOUT / 3);
        loop {
            let (stream, peer) = tokio::select! {
                _ = crate::listener::stopped(&mut shutdown) => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(listener = what, error = %e, "ingress accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = prune.tick() => {
                    proxy.prune_idle();
                    continue;
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let _ = stream.set_nodelay(true);
            match limits.admit(peer.ip()) {
                Ok(slot) => {
                    connections.spawn(serve(stream, peer, slot, shutdown.clone()));
                }
                Err(refusal) => {
                    crate::listener::refuse(stream, peer, refusal, acceptor.clone(), &limits)
                }
            }
        }
        drop(listener);
        while connections.join_next().await.is_some() {}
    })
}

/// Serves HTTP/1 requests on one client connection with the proxy until
/// the client closes it or the hub stops (the request in flight finishes).
async fn serve_connection<I>(
    io: I,
    proxy: Arc<Proxy>,
    via: Arc<Via>,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| proxy.clone().handle(via.clone(), peer, req));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(crate::listener::HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = crate::listener::stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
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
    /// An empty route table and no certificates; no listener yet.
    pub fn new(shutdown: watch::Receiver<bool>) -> IngressState {
        IngressState {
            proxy: Arc::new(Proxy::new()),
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
        let task = spawn_accept(
            listener,
            "http",
            self.shutdown.clone(),
            self.limits.clone(),
            None,
            self.proxy.clone(),
            move |stream, peer, slot, shutdown| {
                let (proxy, via) = (proxy.clone(), via.clone());
                async move {
                    let _slot = slot;
                    serve_connection(stream, proxy, via, peer, shutdown).await
                }
            },
        );
        tracing::info!(%addr, "ingress listening");
        Ok(IngressServer {
            state: self.clone(),
            addr,
            task,
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
        let task = spawn_accept(
            listener,
            "https",
            self.shutdown.clone(),
            self.limits.clone(),
            Some(acceptor.clone()),
            self.proxy.clone(),
            move |stream, peer, slot, shutdown| {
                let (acceptor, proxy, via) = (acceptor.clone(), proxy.clone(), via.clone());
                async move {
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
                    serve_connection(stream, proxy, via, peer, shutdown).await;
                }
            },
        );
        tracing::info!(%addr, "ingress TLS listening");
        Ok(IngressServer {
            state: self.clone(),
            addr,
            task,
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

    /// Once the shutdown flag is set: waits until the port is closed and
    /// every connection finished its request, ending those still open after
    /// `grace`. Returns whether all finished within `grace`.
    pub async fn join(self, grace: Duration) -> bool {
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_ok() {
            return true;
        }
        // Dropping the accept loop's JoinSet aborts its connections.
        task.abort();
        let _ = task.await;
        false
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
