//! A TCP forwarder on loopback whose replies (target → client) are held to a
//! byte rate: a slow uplink in front of the hub, so a large pull takes a
//! known least time whatever the machine. Requests pass unthrottled; TLS
//! passes through untouched (the client still talks to the hub).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running forwarder; stopped (and its threads ended) on drop.
pub struct Throttle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Throttle {
    /// Forwards `127.0.0.1:<some port>` to `target`, replies at most
    /// `bytes_per_sec`.
    pub fn start(target: SocketAddr, bytes_per_sec: u64) -> Throttle {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the throttle");
        let addr = listener.local_addr().expect("its address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let (c2, s2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || pump(client, server, None));
                std::thread::spawn(move || pump(s2, c2, Some(bytes_per_sec)));
            }
        });
        Throttle {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies `from` to `to` until either end closes, at most `rate` bytes a
/// second when given.
fn pump(mut from: TcpStream, mut to: TcpStream, rate: Option<u64>) {
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_held_to_the_rate() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut req = [0u8; 5];
            s.read_exact(&mut req).unwrap();
            assert_eq!(&req, b"hello");
            s.write_all(&vec![7u8; 200_000]).unwrap();
        });
        let t = Throttle::start(target, 1_000_000);
        let began = Instant::now();
        let mut c = TcpStream::connect(t.addr()).unwrap();
        c.write_all(b"hello").unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 200_000);
        // 200 kB at 1 MB/s: at least the time the rate allows (a lower
        // bound, which no machine can beat).
        assert!(
            began.elapsed() >= Duration::from_millis(190),
            "{:?}",
            began.elapsed()
        );
    }
}
