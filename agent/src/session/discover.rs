//! `--join auto`: find the hub on the LAN by mDNS (`_bramble._tcp.local`,
//! announced by `bramble-hub`) instead of a configured address. The first
//! hub that resolves to an IPv4 address wins; its TXT `mqtt` gives the
//! embedded broker's port.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bramble_api::protocol::MDNS_SERVICE_TYPE;
use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent};

/// How long `--join auto` looks before giving up with an error.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A hub found on the LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundHub {
    /// The mDNS instance name (the hub's host name).
    pub instance: String,
    /// `http://IP:PORT` of its API.
    pub url: String,
    /// `mqtt://IP:PORT` of its embedded broker, when announced.
    pub mqtt_url: Option<String>,
}

/// Looks for a hub for up to `timeout`.
pub fn discover(timeout: Duration) -> Result<FoundHub, String> {
    let daemon =
        ServiceDaemon::new().map_err(|e| format!("--join auto: starting mDNS failed: {e}"))?;
    let _ = daemon.disable_interface(IfKind::IPv6);
    let events = daemon
        .browse(MDNS_SERVICE_TYPE)
        .map_err(|e| format!("--join auto: browsing {MDNS_SERVICE_TYPE} failed: {e}"))?;
    let deadline = Instant::now() + timeout;
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break None;
        }
        match events.recv_timeout(left) {
            Ok(ServiceEvent::ServiceResolved(info)) => {
                let Some(ip) = info
                    .get_addresses_v4()
                    .into_iter()
                    .copied()
                    .filter(|ip: &Ipv4Addr| !ip.is_loopback())
                    .min()
                else {
                    continue;
                };
                let instance = info
                    .get_fullname()
                    .trim_end_matches(MDNS_SERVICE_TYPE)
                    .trim_end_matches('.')
                    .to_string();
                let mqtt_url = info
                    .get_property_val_str("mqtt")
                    .and_then(|p| p.parse::<u16>().ok())
                    .map(|p| format!("mqtt://{ip}:{p}"));
                break Some(FoundHub {
                    instance,
                    url: format!("http://{ip}:{}", info.get_port()),
                    mqtt_url,
                });
            }
            Ok(_) => {}
            Err(_) => break None,
        }
    };
    let _ = daemon.stop_browse(MDNS_SERVICE_TYPE);
    let _ = daemon.shutdown();
    found.ok_or_else(|| {
        format!(
            "--join auto: no Bramble hub answered on the LAN within {timeout:?} (mDNS \
             {MDNS_SERVICE_TYPE}); is bramble-hub running on this network without --no-mdns, \
             and does multicast reach this board? Otherwise pass --hub http://HUB:7480"
        )
    })
}
