//! One UDP port of the load balancer. Each client address gets a session: a
//! socket connected to one ready endpoint (the next in turn), whose replies
//! go back to the client from the port, as conntrack does for a NATed UDP
//! flow. A session ends after [`IDLE`] without a reply; the client's next
//! datagram starts a new one. At most [`MAX_SESSIONS`] sessions live at
//! once (a LAN host can make up client addresses): beyond that, datagrams
//! of new clients are dropped. Datagrams while no endpoint is ready are
//! dropped. The sessions are tasks of the port's task: stopping the port
//! ends them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::{AbortHandle, JoinSet};

use super::backends::Backends;

/// A session without a reply for this long ends.
pub const IDLE: Duration = Duration::from_secs(30);
/// Sessions at once per port.
pub const MAX_SESSIONS: usize = 1024;
/// Largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;

struct Session {
    upstream: Arc<UdpSocket>,
    task: AbortHandle,
}

/// Serves `socket` until the task is aborted.
pub async fn serve(socket: UdpSocket, backends: Arc<Backends>) {
    let socket = Arc::new(socket);
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(port, error = %e, "load balancer: UDP receive failed");
                    continue;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                sessions.retain(|_, s| !s.task.is_finished());
                continue;
            }
        };
        if !backends.admits(client.ip()) {
            tracing::debug!(port, %client, "load balancer: client outside loadBalancerSourceRanges; datagram dropped");
            continue;
        }
        if sessions.get(&client).is_some_and(|s| s.task.is_finished()) {
            sessions.remove(&client);
        }
        if !sessions.contains_key(&client) {
            if sessions.len() >= MAX_SESSIONS {
                tracing::debug!(port, %client, "load balancer: UDP sessions full; datagram dropped");
                continue;
            }
            let Some(upstream) = open_session(&backends).await else {
                continue;
            };
            let upstream = Arc::new(upstream);
            let task = tasks.spawn(relay_replies(upstream.clone(), socket.clone(), client));
            sessions.insert(client, Session { upstream, task });
        }
        if let Some(s) = sessions.get(&client)
            && let Err(e) = s.upstream.send(&buf[..n]).await
        {
            tracing::debug!(port, %client, error = %e, "load balancer: UDP send to endpoint failed");
        }
    }
}

/// A socket connected to the next ready endpoint, or `None` without one.
async fn open_session(backends: &Backends) -> Option<UdpSocket> {
    let addr = *backends.order().first()?;
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    socket.connect(addr).await.ok()?;
    Some(socket)
}

/// Sends the endpoint's replies to `client` until [`IDLE`] passes without
/// one. A session holds no buffer while it waits: a reply is read into one
/// made for it, and dropped if the port's send buffer is full (UDP may).
async fn relay_replies(upstream: Arc<UdpSocket>, port: Arc<UdpSocket>, client: SocketAddr) {
    while let Ok(Ok(())) = tokio::time::timeout(IDLE, upstream.readable()).await {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        match upstream.try_recv(&mut buf) {
            Ok(n) => {
                let _ = port.try_send_to(&buf[..n], client);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // The endpoint is gone (ICMP port unreachable) or the socket failed.
            Err(_) => return,
        }
    }
}
