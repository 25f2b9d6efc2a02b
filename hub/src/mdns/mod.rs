//! The hub announces itself on the LAN with mDNS (`_bramble._tcp.local`,
//! port = the API, TXT `mqtt` = the embedded broker's port) so that
//! `bramble-agent --join auto` finds it with no address configured.
//! Addresses follow the host's interfaces (IPv4; loopback is never used).

use bramble_api::protocol::MDNS_SERVICE_TYPE;
use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};

/// The running announcement; withdrawn on drop.
pub struct Announcement {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Announcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcement")
            .field("fullname", &self.fullname)
            .finish()
    }
}

/// The instance name: the host's name, else `bramble-hub`.
pub fn instance_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "bramble-hub".into())
}

impl Announcement {
    /// Starts announcing the API on `api_port` (and the broker's port).
    pub fn start(instance: &str, api_port: u16, mqtt_port: Option<u16>) -> anyhow::Result<Self> {
        let daemon = ServiceDaemon::new()
            .map_err(|e| anyhow::anyhow!("starting the mDNS responder: {e}"))?;
        // IPv4 only: agents connect to the first address they resolve.
        let _ = daemon.disable_interface(IfKind::IPv6);
        let mut props = vec![("v".to_string(), "1".to_string())];
        if let Some(p) = mqtt_port {
            props.push(("mqtt".into(), p.to_string()));
        }
        let host = format!("{instance}.local.");
        let info = ServiceInfo::new(MDNS_SERVICE_TYPE, instance, &host, "", api_port, &props[..])
            .map_err(|e| anyhow::anyhow!("mDNS service {instance}: {e}"))?
            .enable_addr_auto();
        let fullname = info.get_fullname().to_string();
        daemon
            .register(info)
            .map_err(|e| anyhow::anyhow!("announcing {fullname}: {e}"))?;
        tracing::info!(service = %fullname, api_port, ?mqtt_port, "announced on mDNS");
        Ok(Announcement { daemon, fullname })
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}
