//! Load balancer benchmark: prints figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-hub --bench service_lb_bench` starts, in this
//! process, three TCP endpoints (on 127.0.0.1: each echoes one byte per byte
//! read in "ping" mode, or reads everything and answers the byte count in
//! "sink" mode) and the hub's [`ServiceLb`] serving one port (on a loopback
//! address of its own) in front of them, each on its own tokio runtime
//! (threads `endpoint`, `lb`, `loadgen`; two workers each). The load
//! generator then measures, direct to an endpoint and through the load
//! balancer:
//! - bulk: one connection sending `LB_BULK_MIB` MiB (default 1024, quick 64)
//!   in 64 KiB writes: MiB/s;
//! - round trips: one connection, 1 byte each way, `LB_PINGS` times (default
//!   20,000, quick 2,000): p50 / p99;
//! - connections: `LB_CONNS` (default 8) clients opening a connection per
//!   1-byte round trip for `LB_SECONDS` s (default 5, quick 1): connections/s.
//!
//! Environment: `BENCH_QUICK=1` for the small sizes (what CI runs), and the
//! variables above.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bramble_hub::conn_limits::ConnLimits;
use bramble_hub::service_lb::ServiceLb;
use bramble_hub::service_lb::backends::Target;
use bramble_hub::service_lb::plan::{PortKey, Protocol};
use bramble_tests::bench;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const LB_PORT: u16 = 18099;

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// An endpoint: the first byte says the mode (`p`: echo every byte, `s`:
/// read to the end and answer the count as 8 bytes).
async fn endpoint() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut mode = [0u8; 1];
                if s.read_exact(&mut mode).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; 64 * 1024];
                match mode[0] {
                    b'p' => {
                        while let Ok(n) = s.read(&mut buf).await {
                            if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                    _ => {
                        let mut total = 0u64;
                        while let Ok(n) = s.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            total += n as u64;
                        }
                        let _ = s.write_all(&total.to_le_bytes()).await;
                    }
                }
            });
        }
    });
    addr
}

async fn connect(to: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(to).await.expect("connecting");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// MiB/s of one connection sending `mib` MiB to a sink.
async fn bulk(to: SocketAddr, mib: usize) -> f64 {
    let mut s = connect(to).await;
    s.write_all(b"s").await.expect("mode");
    let chunk = vec![7u8; 64 * 1024];
    let start = Instant::now();
    for _ in 0..mib * 16 {
        s.write_all(&chunk).await.expect("sending");
    }
    s.shutdown().await.expect("closing the sending side");
    let mut count = [0u8; 8];
    s.read_exact(&mut count).await.expect("the count");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(u64::from_le_bytes(count), (mib * 1024 * 1024) as u64);
    mib as f64 / secs
}

/// Sorted round-trip times of `n` 1-byte pings on one connection.
async fn pings(to: SocketAddr, n: usize) -> Vec<Duration> {
    let mut s = connect(to).await;
    s.write_all(b"p").await.expect("mode");
    let mut b = [0u8; 1];
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(b"x").await.expect("ping");
        s.read_exact(&mut b).await.expect("pong");
        times.push(t.elapsed());
    }
    times.sort();
    times
}

/// Connections per second: `clients` loops of connect, 1-byte round trip,
/// close, for `secs`.
async fn connections(to: SocketAddr, clients: usize, secs: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let mut s = connect(to).await;
                s.write_all(b"px").await.expect("ping");
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await.expect("pong");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("a client");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let mib = bench::size("LB_BULK_MIB", 1024, 64);
    let n_pings = bench::size("LB_PINGS", 20_000, 2_000);
    let clients = bench::size("LB_CONNS", 8, 8);
    let secs = bench::size("LB_SECONDS", 5, 1) as u64;

    let endpoints_rt = runtime("endpoint");
    let lb_rt = runtime("lb");
    let loadgen = runtime("loadgen");
    let endpoints: Vec<SocketAddr> =
        endpoints_rt.block_on(async { vec![endpoint().await, endpoint().await, endpoint().await] });
    let lb_ip = IpAddr::from(bramble_tests::ports::unique_loopback());
    let lb = ServiceLb::new(lb_ip, vec![lb_ip], ConnLimits::new(4096, 4096));
    let key = PortKey {
        protocol: Protocol::Tcp,
        port: LB_PORT,
    };
    lb_rt.block_on(async {
        let target = Target {
            endpoints: endpoints.clone(),
            sources: Vec::new(),
        };
        lb.set([(key, target)].into());
    });
    assert!(
        lb.failures().is_empty(),
        "the load balancer did not bind: {:?}",
        lb.failures()
    );
    let via = SocketAddr::new(lb_ip, LB_PORT);
    let direct = endpoints[0];

    println!(
        "service_lb_bench: 3 endpoints on 127.0.0.1, the load balancer on {via}; {mib} MiB bulk, {n_pings} pings, {clients} clients x {secs} s of connections"
    );
    println!(
        "{:<34} {:>14} {:>14} {:>8}",
        "figure", "direct", "via LB", "ratio"
    );
    let (d, l) = loadgen.block_on(async { (bulk(direct, mib).await, bulk(via, mib).await) });
    println!(
        "{:<34} {:>14.0} {:>14.0} {:>8.2}",
        "bulk, one connection (MiB/s)",
        d,
        l,
        l / d
    );
    let (d, l) =
        loadgen.block_on(async { (pings(direct, n_pings).await, pings(via, n_pings).await) });
    for (name, p) in [("round trip p50 (µs)", 0.5), ("round trip p99 (µs)", 0.99)] {
        let (a, b) = (pct(&d, p), pct(&l, p));
        println!("{name:<34} {a:>14.1} {b:>14.1} {:>8.2}", b / a);
    }
    let (d, l) = loadgen.block_on(async {
        (
            connections(direct, clients, secs).await,
            connections(via, clients, secs).await,
        )
    });
    println!(
        "{:<34} {:>14.0} {:>14.0} {:>8.2}",
        "new connections (/s)",
        d,
        l,
        l / d
    );
    lb_rt.block_on(lb.close());
}
