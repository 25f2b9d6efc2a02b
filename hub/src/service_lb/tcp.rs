//! One TCP port of the load balancer: accepts connections from the LAN
//! (within the load balancer's connection caps: at most so many in total and
//! from one address, the others closed at once), connects each to a ready
//! endpoint of its Service (the next one in turn; one that does not answer
//! within [`CONNECT_TIMEOUT`] or refuses is skipped) and copies bytes both
//! ways until either side closes. With no endpoint answering, the client's
//! connection is closed. The connections are tasks of the port's task:
//! stopping the port ends them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::backends::Backends;
use crate::conn_limits::ConnLimits;

/// Bytes buffered per direction of a connection (tokio's default is 8 KiB;
/// 32 KiB moves bulk data several times faster at 64 KiB per connection:
/// `service_lb_bench`).
pub const COPY_BUFFER: usize = 32 * 1024;
/// How long connecting to one endpoint may take before the next is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, backends: Arc<Backends>, limits: Arc<ConnLimits>) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (client, peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and the like: wait instead of spinning.
                        tracing::warn!(port, error = %e, "load balancer: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if !backends.admits(peer.ip()) {
                    tracing::debug!(port, %peer, "load balancer: client outside loadBalancerSourceRanges; closed");
                    continue;
                }
                let Ok(slot) = limits.admit(peer.ip()) else {
                    tracing::debug!(port, %peer, "load balancer: connection over the caps closed");
                    continue;
                };
                let backends = backends.clone();
                connections.spawn(async move {
                    let _slot = slot;
                    forward(client, peer, port, &backends).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Connects `client` to an endpoint and copies until either side closes.
async fn forward(mut client: TcpStream, peer: SocketAddr, port: u16, backends: &Backends) {
    let Some(mut upstream) = connect_any(backends).await else {
        tracing::debug!(port, %peer, "load balancer: no endpoint answered; connection closed");
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if let Err(e) = tokio::io::copy_bidirectional_with_sizes(
        &mut client,
        &mut upstream,
        COPY_BUFFER,
        COPY_BUFFER,
    )
    .await
    {
        tracing::debug!(port, %peer, error = %e, "load balancer: connection ended");
    }
}

/// The first endpoint, in turn, that accepts a connection.
async fn connect_any(backends: &Backends) -> Option<TcpStream> {
    for addr in backends.order() {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Some(s),
            Ok(Err(e)) => tracing::debug!(%addr, error = %e, "load balancer: endpoint refused"),
            Err(_) => tracing::debug!(%addr, "load balancer: endpoint did not answer"),
        }
    }
    None
}
