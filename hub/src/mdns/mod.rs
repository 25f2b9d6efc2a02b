//! The hub announces itself on the LAN with mDNS (`_bramble._tcp.local`,
//! port = the API, TXT `s=https` when it speaks HTTPS, TXT `mqtts` (or
//! `mqtt` with `--insecure-mqtt`) = the embedded broker's port) so that
//! `bramble-agent --join auto` finds it with no address configured.
//! Addresses follow the host's interfaces (IPv4; loopback is never used).
//! The same responder announces annotated Services as `<name>.local`
//! ([`services`]).

pub mod services;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex;

use bramble_api::protocol::MDNS_SERVICE_TYPE;
use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};
use services::LanName;

/// Why the hub could not be announced.
#[derive(Debug, thiserror::Error)]
pub enum MdnsError {
    #[error("starting the mDNS responder: {0}")]
    Responder(#[source] mdns_sd::Error),
    #[error("mDNS service {instance}: {source}")]
    Service {
        instance: String,
        source: mdns_sd::Error,
    },
    #[error("announcing {fullname}: {source}")]
    Announce {
        fullname: String,
        source: mdns_sd::Error,
    },
}

/// The running announcement; withdrawn on drop.
pub struct Announcement {
    daemon: ServiceDaemon,
    fullname: String,
    /// Announced Services by mDNS full name, and the problems last warned.
    services: Mutex<(BTreeMap<String, LanName>, BTreeSet<String>)>,
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
    /// Starts announcing the API on `api_port` (HTTPS if `https`) and the
    /// broker's port (and whether it speaks TLS).
    pub fn start(
        instance: &str,
        api_port: u16,
        https: bool,
        mqtt_port: Option<(u16, bool)>,
    ) -> Result<Self, MdnsError> {
        let daemon = ServiceDaemon::new().map_err(MdnsError::Responder)?;
        // IPv4 only: agents connect to the first address they resolve.
        let _ = daemon.disable_interface(IfKind::IPv6);
        let mut props = vec![("v".to_string(), "1".to_string())];
        if https {
            props.push(("s".into(), "https".into()));
        }
        if let Some((p, tls)) = mqtt_port {
            let key = if tls { "mqtts" } else { "mqtt" };
            props.push((key.into(), p.to_string()));
        }
        let host = format!("{instance}.local.");
        let info = ServiceInfo::new(MDNS_SERVICE_TYPE, instance, &host, "", api_port, &props[..])
            .map_err(|source| MdnsError::Service {
                instance: instance.to_string(),
                source,
            })?
            .enable_addr_auto();
        let fullname = info.get_fullname().to_string();
        if let Err(source) = daemon.register(info) {
            return Err(MdnsError::Announce { fullname, source });
        }
        tracing::info!(service = %fullname, api_port, ?mqtt_port, "announced on mDNS");
        Ok(Announcement {
            daemon,
            fullname,
            services: Mutex::default(),
        })
    }

    /// Announces exactly `wanted` (withdrawing Services no longer wanted or
    /// changed) and warns once about each new problem.
    pub fn set_services(&self, wanted: Vec<LanName>, problems: Vec<String>) {
        let mut guard = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let (current, warned) = &mut *guard;
        let problems: BTreeSet<String> = problems.into_iter().collect();
        for p in problems.difference(warned) {
            tracing::warn!(problem = %p, "service not announced on mDNS");
        }
        *warned = problems;
        let wanted: BTreeMap<String, LanName> = wanted
            .into_iter()
            .map(|n| (format!("{}.{}", n.label, n.service_type), n))
            .collect();
        let gone: Vec<String> = current
            .iter()
            .filter(|(k, v)| wanted.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            current.remove(&k);
            if let Err(e) = self.daemon.unregister(&k) {
                tracing::warn!(service = %k, error = %e, "withdrawing an mDNS name");
            }
        }
        for (k, n) in wanted {
            if current.contains_key(&k) {
                continue;
            }
            let addrs: Vec<IpAddr> = n.addrs.iter().map(|a| IpAddr::V4(*a)).collect();
            let host = format!("{}.local.", n.label);
            let props = [("service", n.service.as_str())];
            let info = match ServiceInfo::new(
                &n.service_type,
                &n.label,
                &host,
                &addrs[..],
                n.port,
                &props[..],
            ) {
                Ok(i) => i,
                Err(e) => {
                    tracing::warn!(service = %n.service, error = %e, "mDNS name not announced");
                    continue;
                }
            };
            match self.daemon.register(info) {
                Ok(()) => {
                    tracing::info!(service = %n.service, host = %host, port = n.port, addrs = ?n.addrs, "service announced on mDNS");
                    current.insert(k, n);
                }
                Err(e) => {
                    tracing::warn!(service = %n.service, error = %e, "mDNS name not announced")
                }
            }
        }
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        let names = self.services.get_mut().map(|(c, _)| std::mem::take(c));
        for k in names.unwrap_or_default().into_keys() {
            let _ = self.daemon.unregister(&k);
        }
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}
