//! The hub's HTTP ingress (`--ingress-listen`): Ingress objects become a
//! [`RouteTable`] ([`routes`]) that the control loop swaps in whenever
//! Ingresses, Services or Endpoints change; [`proxy`] serves requests from
//! the LAN with it. A swap never touches open connections.

pub mod pool;
pub mod proxy;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use proxy::Proxy;
pub use routes::RouteTable;

/// Default `--ingress-listen`.
pub const DEFAULT_INGRESS_LISTEN: &str = "0.0.0.0:80";

/// A running ingress.
#[derive(Debug, Clone)]
pub struct IngressServer {
    proxy: Arc<Proxy>,
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

impl IngressServer {
    /// Binds `listen` and serves until `shutdown` turns true.
    pub async fn start(
        listen: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<IngressServer> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("ingress on {listen}: {e}")))?;
        let addr = listener.local_addr()?;
        let proxy = Arc::new(Proxy::new(addr.port()));
        spawn_pruner(Arc::downgrade(&proxy), shutdown.clone());
        let p = proxy.clone();
        tokio::spawn(async move {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let (stream, peer) = tokio::select! {
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "ingress accept failed");
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
                let p = p.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| p.clone().handle(peer, req));
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await
                    {
                        tracing::debug!(%peer, error = %e, "ingress connection ended");
                    }
                });
            }
        });
        tracing::info!(%addr, "ingress listening");
        Ok(IngressServer { proxy, addr })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Routes new requests with `table`.
    pub fn set_table(&self, table: RouteTable) {
        if let Ok(mut t) = self.proxy.table.write() {
            *t = Arc::new(table);
        }
    }
}
