//! Ports for test servers that cannot take a bound listener: the one place
//! that says why a test probes a port.
//!
//! A server in a test gets a listener bound to port 0 (passed to it, as the
//! registries and backends of the tests are, or bound by the server itself
//! and asked for its address, as `Hub::start` does for its API, DNS and
//! ingress and [`crate::HubProcess`] reads from the hub's log): nothing
//! else can take that port in between. Some servers cannot work that way:
//!
//! - rumqttd, the hub's embedded MQTT broker, binds its own socket from its
//!   configuration and does not tell which port a port-0 bind got (so the
//!   hub refuses `--mqtt-listen` port 0; `bramble_hub::testing::
//!   free_loopback_port` is the same probe for the in-process broker, as the
//!   hub's library cannot use this crate);
//! - a `bramble-hub` child process that is restarted on the same API and
//!   broker ports ([`crate::cluster::Hub::restart`]: its agents keep their
//!   URLs);
//! - mosquitto and nginx, whose configuration names the port.
//!
//! For those, [`probed_port`] binds port 0, reads the port and closes it.
//! Another process may bind that port before the server does; the kernel
//! hands port-0 binds out from the ephemeral range in a random order, so
//! that is rare, and it is never retried or hidden: the server's start
//! fails with "address in use" naming the port.

use std::net::TcpListener;

/// A loopback port that was free a moment ago (bound and closed), for the
/// servers listed in the [module docs](self) only.
pub fn probed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
