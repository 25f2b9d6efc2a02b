//! The node's cluster DNS for its pods: a [`DnsServer`] on the pod gateway
//! address (port 53, bound with `IP_FREEBIND` since the address appears with
//! the first pod's veth) answering from the last desired set's service
//! table, and relaying other names to the node's own resolvers. Because it
//! answers from the persisted set, names keep resolving while the hub is
//! away.

use std::net::{IpAddr, SocketAddr};

use bramble_api::cidr::Cidr;
use bramble_api::protocol::{NetworkConfig, PodHost, ServiceEntry};
use bramble_dns::{DnsOptions, DnsServer, Zone, upstreams_from_resolv_conf};

/// What a zone is built from: the cluster domain, the service table and
/// the pods' own names.
type Served = (String, Vec<ServiceEntry>, Vec<PodHost>);

/// The node's DNS server, started with the first network config.
#[derive(Debug, Default)]
pub struct NodeDns {
    server: Option<DnsServer>,
    /// The zone last served (to skip rebuilding an unchanged one).
    served: Option<Served>,
}

/// The gateway (first address) of a pod CIDR: where pods find the DNS.
pub fn gateway(pod_cidr: &str) -> Option<IpAddr> {
    let c: Cidr = pod_cidr.parse().ok()?;
    let IpAddr::V4(net) = c.network().addr else {
        return None;
    };
    Some(IpAddr::V4(std::net::Ipv4Addr::from_bits(net.to_bits() + 1)))
}

impl NodeDns {
    /// Serves `cfg`'s names (starting or moving the server when the gateway
    /// changed); stops serving without a config.
    pub fn update(&mut self, cfg: Option<&NetworkConfig>) {
        let Some((cfg, gw)) = cfg.and_then(|c| Some((c, gateway(c.pod_cidr.as_deref()?)?))) else {
            self.server = None;
            self.served = None;
            return;
        };
        let listen = SocketAddr::new(gw, 53);
        if self.server.as_ref().is_none_or(|s| s.addr() != listen) {
            self.server = None;
            self.served = None;
            let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let opts = DnsOptions {
                listen,
                upstreams: upstreams_from_resolv_conf(&text, Some(listen)),
                freebind: true,
            };
            match DnsServer::start(opts, Zone::default()) {
                Ok(s) => self.server = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "pods get no cluster DNS");
                    return;
                }
            }
        }
        let domain = cfg
            .dns
            .as_ref()
            .map_or("cluster.local", |d| d.cluster_domain.as_str())
            .to_string();
        let hosts = cfg
            .dns
            .as_ref()
            .map(|d| d.hosts.clone())
            .unwrap_or_default();
        let want = (domain, cfg.services.clone(), hosts);
        if self.served.as_ref() != Some(&want) {
            if let Some(s) = &self.server {
                s.set_zone(Zone::build(&want.0, &want.1).with_hosts(&want.2));
            }
            self.served = Some(want);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_is_the_first_address() {
        assert_eq!(gateway("10.42.3.0/24"), Some("10.42.3.1".parse().unwrap()));
        assert_eq!(gateway("nope"), None);
    }
}
