//! The hub's load balancer against a LAN client that opens more connections
//! than its share: past its per-client cap, its new connections are closed
//! at once (they never reach an endpoint), while another address still gets
//! through, and a closed connection gives its slot back. A port of a
//! Service with `loadBalancerSourceRanges` closes connections from
//! clients outside them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bramble_hub::conn_limits::ConnLimits;
use bramble_hub::service_lb::ServiceLb;
use bramble_hub::service_lb::backends::Target;
use bramble_hub::service_lb::plan::{PortKey, Protocol};
use bramble_tests::eventually_async;
use bramble_tests::ports::unique_loopback;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// An endpoint echoing what it reads, on 127.0.0.1.
async fn echo_endpoint() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Connects from `source` to `to`, sends a byte and returns what came back
/// (`None`: closed without an answer) with the stream.
async fn echo_through(source: IpAddr, to: SocketAddr) -> (Option<u8>, TcpStream) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let mut s = socket.connect(to).await.expect("the kernel accepts");
    let _ = s.write_all(b"x").await;
    let mut buf = [0u8; 1];
    let answer = match s.read(&mut buf).await {
        Ok(1) => Some(buf[0]),
        _ => None,
    };
    (answer, s)
}

#[tokio::test]
async fn a_client_past_its_connection_cap_is_closed_and_others_get_through() {
    let lb_ip = IpAddr::from(unique_loopback());
    let lb = ServiceLb::new(lb_ip, vec![lb_ip], ConnLimits::new(64, 2));
    let key = PortKey {
        protocol: Protocol::Tcp,
        port: 18090,
    };
    let target = Target {
        endpoints: vec![echo_endpoint().await],
        sources: Vec::new(),
    };
    lb.set(BTreeMap::from([(key, target)]));
    assert!(lb.failures().is_empty(), "{:?}", lb.failures());
    let port = SocketAddr::new(lb_ip, 18090);
    let attacker = IpAddr::from(unique_loopback());
    let other = IpAddr::from(unique_loopback());

    let (a1, first) = echo_through(attacker, port).await;
    let (a2, _second) = echo_through(attacker, port).await;
    assert_eq!((a1, a2), (Some(b'x'), Some(b'x')));
    let (a3, _) = echo_through(attacker, port).await;
    assert_eq!(a3, None, "a third connection from one address got through");
    let (b1, _) = echo_through(other, port).await;
    assert_eq!(b1, Some(b'x'), "another address was refused");

    // A connection that ends gives its slot back.
    drop(first);
    eventually_async(
        "the closed connection's slot back",
        Duration::from_secs(10),
        async || (echo_through(attacker, port).await.0 == Some(b'x')).then_some(()),
    )
    .await;
    lb.close().await;
}

#[tokio::test]
async fn only_clients_in_the_source_ranges_get_through() {
    let lb_ip = IpAddr::from(unique_loopback());
    let lb = ServiceLb::new(lb_ip, vec![lb_ip], ConnLimits::new(64, 8));
    let key = PortKey {
        protocol: Protocol::Tcp,
        port: 18091,
    };
    let (inside, outside) = (
        IpAddr::from(unique_loopback()),
        IpAddr::from(unique_loopback()),
    );
    let target = Target {
        endpoints: vec![echo_endpoint().await],
        sources: vec![format!("{inside}/32").parse().unwrap()],
    };
    lb.set(BTreeMap::from([(key, target)]));
    assert!(lb.failures().is_empty(), "{:?}", lb.failures());
    let port = SocketAddr::new(lb_ip, 18091);
    assert_eq!(echo_through(inside, port).await.0, Some(b'x'));
    assert_eq!(
        echo_through(outside, port).await.0,
        None,
        "a client outside loadBalancerSourceRanges got through"
    );
    lb.close().await;
}
