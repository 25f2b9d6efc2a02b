//! Ports of test servers: the one place that says why a test probes a port,
//! and how a test learns the port a server bound itself.
//!
//! A server in a test gets a listener bound to port 0: passed to it (as the
//! registries and backends of the tests are), or bound by the server itself
//! and read back, as the hub does for its API, broker, DNS and ingress
//! ([`logged_addr`] reads them from the hub's log): nothing else can take
//! that port in between. A restarted `bramble-hub`
//! ([`crate::cluster::Hub::restart`]) binds the ports its first start got
//! again, so that its agents keep their URLs.
//!
//! A hub's load balancer binds the ports of its Services, which tests
//! choose: each test hub gets a loopback address of its own
//! ([`unique_loopback`]) for it.
//!
//! Some servers cannot work that way: mosquitto and nginx, whose
//! configuration names the port. For those, [`probed_port`] binds port 0,
//! reads the port and closes it. Another process may bind that port before
//! the server does; the kernel hands port-0 binds out from the ephemeral
//! range in a random order, so that is rare, and it is never retried or
//! hidden: the server's start fails with "address in use" naming the port.

use std::net::{SocketAddr, TcpListener};

/// A loopback port that was free a moment ago (bound and closed), for the
/// servers listed in the [module docs](self) only.
pub fn probed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A loopback address of this test process's own (127.A.B.C; Linux
/// answers on all of 127.0.0.0/8), for servers whose port numbers a test
/// cannot choose: a hub's load balancer listens on the ports of the
/// Services, so two tests' hubs serving the same port need different
/// addresses. A and B come from the process id, C counts up (254 per
/// process).
pub fn unique_loopback() -> std::net::Ipv4Addr {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert!(
        n < 254,
        "more than 254 unique loopback addresses in one process"
    );
    let pid = std::process::id();
    std::net::Ipv4Addr::new(
        127,
        1 + ((pid / 256) % 254) as u8,
        (pid % 256) as u8,
        1 + n as u8,
    )
}

/// The address in field `field` of the first line of `log` (tracing's
/// `key=value` format) with `message`, e.g. the hub's `hub listening addr=…`
/// or `embedded MQTT broker listening listen=…`.
pub fn logged_addr(log: &str, message: &str, field: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|l| l.contains(message))?;
    let key = format!(" {field}=");
    let value = line.split(&key).nth(1)?.split_whitespace().next()?;
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_loopbacks_differ_and_are_loopback() {
        let (a, b) = (unique_loopback(), unique_loopback());
        assert_ne!(a, b);
        assert!(a.is_loopback() && b.is_loopback());
        assert_ne!(a, std::net::Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn reads_an_address_field_of_a_logged_line() {
        let log = "2026-12-07T12:00:00Z  INFO bramble_hub::broker: embedded MQTT broker \
                   listening listen=127.0.0.1:40123 scheme=mqtts\n\
                   2026-12-07T12:00:00Z  INFO bramble_hub::server: hub listening \
                   addr=127.0.0.1:39001 url=https://127.0.0.1:39001\n";
        assert_eq!(
            logged_addr(log, "hub listening", "addr"),
            Some(([127, 0, 0, 1], 39001).into())
        );
        assert_eq!(
            logged_addr(log, "embedded MQTT broker listening", "listen"),
            Some(([127, 0, 0, 1], 40123).into())
        );
        assert_eq!(logged_addr(log, "hub listening", "nope"), None);
        assert_eq!(logged_addr(log, "ingress listening", "addr"), None);
    }
}
