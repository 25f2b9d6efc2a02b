//! A small DNS server on std threads (UDP and TCP on one port): cluster names
//! from the current [`Zone`], everything else relayed to upstream resolvers.
//! The zone is swapped whole with [`DnsServer::set_zone`]. Agents bind it
//! to their pod gateway address with `IP_FREEBIND` (the address appears
//! with the first pod), the hub to `--dns-listen`.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::answer::{Reply, answer};
use crate::zone::Zone;

/// How long an upstream gets to answer a relayed query.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Relayed queries in flight at once; more are answered SERVFAIL.
const MAX_FORWARDS: usize = 64;
/// How often the server threads look at the stop flag.
const POLL: Duration = Duration::from_millis(250);

/// Where to listen and where to relay.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    pub listen: SocketAddr,
    pub upstreams: Vec<SocketAddr>,
    /// Bind even if the address is not (yet) on an interface.
    pub freebind: bool,
}

struct Shared {
    zone: RwLock<Arc<Zone>>,
    upstreams: Vec<SocketAddr>,
    stop: AtomicBool,
    forwards: AtomicUsize,
}

/// A running DNS server; stops on [`DnsServer::stop`] or drop.
pub struct DnsServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn socket(addr: SocketAddr, ty: Type, freebind: bool) -> io::Result<Socket> {
    let proto = if ty == Type::DGRAM {
        Protocol::UDP
    } else {
        Protocol::TCP
    };
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if freebind {
        if addr.is_ipv4() {
            s.set_freebind_v4(true)?;
        } else {
            s.set_freebind_v6(true)?;
        }
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

impl DnsServer {
    /// Binds UDP and TCP on `opts.listen` (port 0: one free port for both)
    /// and starts serving `zone`.
    pub fn start(opts: DnsOptions, zone: Zone) -> io::Result<DnsServer> {
        let err = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("DNS on {} ({what}): {e}", opts.listen))
        };
        // Port 0: the UDP port the kernel picks may be taken for TCP by
        // another socket; pick again rather than fail (a few tries).
        let tries = if opts.listen.port() == 0 { 16 } else { 1 };
        let mut attempt = 0;
        let (udp, addr, tcp) = loop {
            attempt += 1;
            let udp: UdpSocket = socket(opts.listen, Type::DGRAM, opts.freebind)
                .map_err(|e| err("UDP", e))?
                .into();
            let addr = udp.local_addr()?;
            match socket(addr, Type::STREAM, opts.freebind) {
                Ok(tcp) => break (udp, addr, tcp),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < tries => continue,
                Err(e) => return Err(err("TCP", e)),
            }
        };
        tcp.listen(64).map_err(|e| err("TCP listen", e))?;
        // Linux applies SO_RCVTIMEO to accept(): a blocking accept that
        // wakes every POLL to look at the stop flag, with no added latency.
        tcp.set_read_timeout(Some(POLL))?;
        let tcp: TcpListener = tcp.into();
        udp.set_read_timeout(Some(POLL))?;
        let shared = Arc::new(Shared {
            zone: RwLock::new(Arc::new(zone)),
            upstreams: opts.upstreams,
            stop: AtomicBool::new(false),
            forwards: AtomicUsize::new(0),
        });
        let threads = vec![
            spawn("dns-udp", {
                let shared = shared.clone();
                move || serve_udp(&shared, &udp)
            })?,
            spawn("dns-tcp", {
                let shared = shared.clone();
                move || serve_tcp(&shared, &tcp)
            })?,
        ];
        tracing::info!(%addr, "DNS serving");
        Ok(DnsServer {
            shared,
            addr,
            threads,
        })
    }

    /// The bound address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the names served.
    pub fn set_zone(&self, zone: Zone) {
        if let Ok(mut z) = self.shared.zone.write() {
            *z = Arc::new(zone);
        }
    }

    /// Stops both listeners and waits for them.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.halt();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).spawn(f)
}

impl Shared {
    fn zone(&self) -> Arc<Zone> {
        self.zone
            .read()
            .map(|z| z.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

fn serve_udp(shared: &Arc<Shared>, sock: &UdpSocket) {
    let mut buf = [0u8; 4096];
    while !shared.stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "DNS UDP receive failed");
                std::thread::sleep(POLL);
                continue;
            }
        };
        let packet = buf[..n].to_vec();
        match answer(&shared.zone(), &packet, true) {
            Some(Reply::Answer(bytes)) => {
                let _ = sock.send_to(&bytes, peer);
            }
            Some(Reply::Forward) => {
                let Ok(out) = sock.try_clone() else { continue };
                forward_async(shared, packet, move |bytes| {
                    let _ = out.send_to(&bytes, peer);
                });
            }
            None => {}
        }
    }
}

fn serve_tcp(shared: &Arc<Shared>, listener: &TcpListener) {
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = shared.clone();
                let _ = spawn("dns-tcp-conn", move || {
                    if let Err(e) = serve_conn(&shared, stream) {
                        tracing::debug!(error = %e, "DNS TCP connection ended");
                    }
                });
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                tracing::warn!(error = %e, "DNS TCP accept failed");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn serve_conn(shared: &Shared, mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return Ok(());
        }
        let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut packet)?;
        let bytes = match answer(&shared.zone(), &packet, false) {
            Some(Reply::Answer(b)) => b,
            Some(Reply::Forward) => forward(shared, &packet).unwrap_or_else(|| servfail(&packet)),
            None => return Ok(()),
        };
        let Ok(n) = u16::try_from(bytes.len()) else {
            return Ok(());
        };
        stream.write_all(&n.to_be_bytes())?;
        stream.write_all(&bytes)?;
    }
}

/// Relays on a thread of its own, then calls `reply` (SERVFAIL when every
/// upstream failed or too many relays are in flight).
fn forward_async(
    shared: &Arc<Shared>,
    packet: Vec<u8>,
    reply: impl FnOnce(Vec<u8>) + Send + 'static,
) {
    if shared.forwards.fetch_add(1, Ordering::Relaxed) >= MAX_FORWARDS {
        shared.forwards.fetch_sub(1, Ordering::Relaxed);
        reply(servfail(&packet));
        return;
    }
    let s = shared.clone();
    let spawned = spawn("dns-forward", move || {
        let bytes = forward(&s, &packet).unwrap_or_else(|| servfail(&packet));
        s.forwards.fetch_sub(1, Ordering::Relaxed);
        reply(bytes);
    });
    if spawned.is_err() {
        shared.forwards.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Asks each upstream in turn; the first answer with the query's id wins.
fn forward(shared: &Shared, packet: &[u8]) -> Option<Vec<u8>> {
    let id = packet.get(..2)?;
    for up in &shared.upstreams {
        let local: SocketAddr = if up.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(sock) = UdpSocket::bind(local) else {
            continue;
        };
        if sock.set_read_timeout(Some(UPSTREAM_TIMEOUT)).is_err()
            || sock.connect(up).is_err()
            || sock.send(packet).is_err()
        {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        match sock.recv(&mut buf) {
            Ok(n) if n >= 2 && &buf[..2] == id => {
                buf.truncate(n);
                return Some(buf);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(upstream = %up, error = %e, "upstream DNS did not answer"),
        }
    }
    None
}

fn servfail(packet: &[u8]) -> Vec<u8> {
    use hickory_proto::op::{Message, ResponseCode};
    let mut m = Message::from_vec(packet).unwrap_or_default();
    m.set_message_type(hickory_proto::op::MessageType::Response)
        .set_response_code(ResponseCode::ServFail)
        .set_recursion_available(true);
    m.take_answers();
    m.to_vec().unwrap_or_default()
}

/// The `nameserver`s of a resolv.conf text (port 53), skipping `skip`
/// (the server itself, so it never relays to itself).
pub fn upstreams_from_resolv_conf(text: &str, skip: Option<SocketAddr>) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .filter(|a| Some(*a) != skip)
        .collect()
}
