//! The node's share of the pod network: pod addresses from the node's pod
//! CIDR ([`allocate`]) and the node-level state programmed from every
//! desired set's [`NetworkConfig`] ([`NodeNetwork::reconcile`]): host-gw
//! routes to the other nodes' pod CIDRs, a route for the service CIDR (so
//! local clients reach ClusterIPs), `ip_forward`, and the agent's nft table
//! (masquerade, services, node ports, hostPorts; see `bramble_net::rules`).
//! Without a network config nothing is touched; when one goes away, what
//! was programmed is removed. A pod that gets no address is an
//! [`AllocateError`]; a node that could not be programmed, a
//! [`NetworkError`].

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use bramble_api::cidr::{Cidr, CidrError};
use bramble_api::objects::pod::Pod;
use bramble_api::protocol::NetworkConfig;
use bramble_net::routes::{self, NODE_PROTO};
use bramble_net::rules::{HostPort, node_table};
use bramble_net::{NetError, NextHop, Route, nft, sysctl};

use crate::pod::PodAddress;

/// Why a pod got no address from the node's pod CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocateError {
    #[error("pod CIDR {cidr:?}: {source}")]
    Cidr {
        cidr: String,
        #[source]
        source: CidrError,
    },
    #[error("pod CIDR {cidr}: not an IPv4 /30 or larger")]
    NotIpv4Range { cidr: String },
    #[error("no free pod address: the node's pod CIDR {cidr} is full ({pods} pods)")]
    Full { cidr: String, pods: u32 },
}

/// Why the node's network could not be programmed or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// Finding the node's link, `ip_forward` or the nft table.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The host-gw routes to the other nodes' pod CIDRs.
    #[error(
        "{0} (pods on that node are unreachable from here: host-gw routing needs every node \
         on this node's LAN; check that node's --node-ip)"
    )]
    Routes(#[source] NetError),
    /// Removing the table and the routes: each failure (at least one).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Remove(Vec<NetError>),
}

/// The default `--nft-table`.
pub const DEFAULT_TABLE: &str = "bramble";

/// How this agent programs the node: set once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSettings {
    /// The node's LAN address (`--node-ip` or detected): host-gw routes via
    /// it are skipped and the service CIDR is routed out of its link.
    pub node_ip: Option<Ipv4Addr>,
    /// The agent's nft table (`--nft-table`).
    pub table: String,
}

/// The gateway (first address) of `cidr` and the usable pod addresses
/// after it, without the broadcast address.
fn pod_range(cidr: &Cidr) -> Option<(Ipv4Addr, u32, u32)> {
    let IpAddr::V4(net) = cidr.network().addr else {
        return None;
    };
    if cidr.prefix > 30 {
        return None;
    }
    let base = net.to_bits();
    let size = 1u64 << (32 - u32::from(cidr.prefix));
    let last = u32::try_from(u64::from(base) + size - 2).ok()?;
    Some((Ipv4Addr::from_bits(base + 1), base + 2, last))
}

/// The lowest free pod address in `pod_cidr` (from `.2`, skipping the
/// gateway and the broadcast address) not in `used`, with its gateway.
pub fn allocate(pod_cidr: &str, used: &BTreeSet<Ipv4Addr>) -> Result<PodAddress, AllocateError> {
    let cidr: Cidr = pod_cidr.parse().map_err(|source| AllocateError::Cidr {
        cidr: pod_cidr.to_string(),
        source,
    })?;
    let (gateway, first, last) = pod_range(&cidr).ok_or_else(|| AllocateError::NotIpv4Range {
        cidr: pod_cidr.to_string(),
    })?;
    (first..=last)
        .map(Ipv4Addr::from_bits)
        .find(|ip| !used.contains(ip))
        .map(|ip| PodAddress { ip, gateway })
        .ok_or_else(|| AllocateError::Full {
            cidr: pod_cidr.to_string(),
            pods: last - first + 1,
        })
}

/// The source address this host uses toward `host:port` (a UDP socket's
/// `connect` picks it; nothing is sent).
pub fn source_address_toward(host: &str, port: u16) -> Option<Ipv4Addr> {
    let to: SocketAddr = (host, port).to_socket_addrs().ok()?.find(|a| a.is_ipv4())?;
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect(to).ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// The node's LAN address when `--node-ip` is not given: the source
/// address toward the broker, or — when that is loopback (hub on this
/// host) — toward a TEST-NET address (the default route's source), so
/// routes and the service CIDR never point at `lo`.
pub fn detect_node_ip(broker_host: &str, broker_port: u16) -> Option<Ipv4Addr> {
    match source_address_toward(broker_host, broker_port) {
        Some(ip) if !ip.is_loopback() => Some(ip),
        other => source_address_toward("192.0.2.1", 9).or(other),
    }
}

/// The hostPorts of `pods` that have an address.
pub fn host_ports<'a>(pods: impl Iterator<Item = (&'a Pod, Option<PodAddress>)>) -> Vec<HostPort> {
    let mut out = Vec::new();
    for (pod, addr) in pods {
        let Some(addr) = addr else { continue };
        for c in &pod.spec.containers {
            for p in &c.ports {
                if let Some(hp) = p.host_port.and_then(|h| u16::try_from(h).ok())
                    && let Ok(cp) = u16::try_from(p.container_port)
                {
                    out.push(HostPort {
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        host_port: hp,
                        pod_ip: addr.ip,
                        container_port: cp,
                    });
                }
            }
        }
    }
    out.sort();
    out
}

/// The node routes `cfg` asks for (see the module docs); `node_link` is
/// the link holding the node's address.
pub fn wanted_routes(
    cfg: &NetworkConfig,
    node_ip: Option<Ipv4Addr>,
    node_link: Option<&str>,
) -> Vec<Route> {
    let mut out = Vec::new();
    for r in &cfg.routes {
        let (Ok(c), Ok(via)) = (r.cidr.parse::<Cidr>(), r.via.parse::<Ipv4Addr>()) else {
            continue;
        };
        let IpAddr::V4(dst) = c.network().addr else {
            continue;
        };
        if Some(via) == node_ip {
            continue;
        }
        out.push(Route {
            dst,
            prefix: c.prefix,
            next: NextHop::Via(via),
        });
    }
    if let (Some(svc), Some(link)) = (cfg.service_cidr.as_deref(), node_link)
        && link != "lo"
        && let Ok(c) = svc.parse::<Cidr>()
        && let IpAddr::V4(dst) = c.network().addr
    {
        out.push(Route {
            dst,
            prefix: c.prefix,
            next: NextHop::Dev(link.to_string()),
        });
    }
    out
}

/// A failed reconcile is retried after this long.
const RETRY: Duration = Duration::from_secs(5);
/// A programmed node is re-programmed this often, undoing outside changes
/// (a firewall reload flushing the table, a route deleted by hand).
const RESYNC: Duration = Duration::from_secs(60);

/// What the agent programmed on the node, to redo only on change (and
/// every [`RESYNC`]).
#[derive(Debug)]
pub struct NodeNetwork {
    settings: NetSettings,
    /// The inputs of the last successful reconcile (`None`: nothing
    /// programmed).
    applied: Option<String>,
    /// When [`NodeNetwork::due`] says to reconcile again.
    next_sync: Option<Instant>,
}

impl NodeNetwork {
    /// This node's address on the LAN (`--node-ip` or detected), if known.
    pub fn node_ip(&self) -> Option<Ipv4Addr> {
        self.settings.node_ip
    }

    pub fn new(settings: NetSettings) -> NodeNetwork {
        NodeNetwork {
            settings,
            applied: None,
            next_sync: None,
        }
    }

    /// Whether a retry or a resync is due (see [`NodeNetwork::resync`]).
    pub fn due(&self, now: Instant) -> bool {
        self.next_sync.is_some_and(|t| now >= t)
    }

    /// [`NodeNetwork::reconcile`], applying even if nothing changed.
    pub fn resync(
        &mut self,
        cfg: Option<&NetworkConfig>,
        host_ports: &[HostPort],
    ) -> Result<(), NetworkError> {
        if cfg.is_some_and(|c| c.pod_cidr.is_some()) {
            self.applied = None;
        }
        self.reconcile(cfg, host_ports)
    }

    pub fn settings(&self) -> &NetSettings {
        &self.settings
    }

    /// Programs the node for `cfg` (routes, `ip_forward`, the nft table);
    /// with no pod CIDR in `cfg`, removes what an earlier call programmed.
    /// Unchanged inputs are not applied again.
    pub fn reconcile(
        &mut self,
        cfg: Option<&NetworkConfig>,
        host_ports: &[HostPort],
    ) -> Result<(), NetworkError> {
        let r = self.program(cfg, host_ports);
        let now = Instant::now();
        self.next_sync = match (&r, &self.applied) {
            (Err(_), _) => Some(now + RETRY),
            (Ok(()), Some(_)) => Some(now + RESYNC),
            (Ok(()), None) => None,
        };
        r
    }

    fn program(
        &mut self,
        cfg: Option<&NetworkConfig>,
        host_ports: &[HostPort],
    ) -> Result<(), NetworkError> {
        let Some(cfg) = cfg.filter(|c| c.pod_cidr.is_some()) else {
            if self.applied.take().is_some() {
                return self.remove();
            }
            return Ok(());
        };
        let key = serde_json::json!([cfg, format!("{host_ports:?}")]).to_string();
        if self.applied.as_ref() == Some(&key) {
            return Ok(());
        }
        let link = match self.settings.node_ip {
            Some(ip) => bramble_net::links::link_with_address(None, ip)?,
            None => None,
        };
        let wanted = wanted_routes(cfg, self.settings.node_ip, link.as_deref());
        sysctl::enable_forwarding(None)?;
        let routed = routes::reconcile(None, NODE_PROTO, &wanted);
        if let Ok(changes) = &routed
            && !changes.is_empty()
        {
            tracing::info!(
                added = changes.added.len(),
                replaced = changes.replaced.len(),
                removed = changes.removed.len(),
                "node routes updated"
            );
        }
        // The table does not need the routes: services, hostPorts and
        // policies work for every pod this node reaches even when a route
        // to another node cannot be added.
        nft::apply(None, &node_table(&self.settings.table, cfg, host_ports))?;
        tracing::debug!(table = %self.settings.table, services = cfg.services.len(), "nft table applied");
        routed.map_err(NetworkError::Routes)?;
        self.applied = Some(key);
        Ok(())
    }

    /// Removes the agent's nft table and node routes (`reset`, or the
    /// network config gone).
    pub fn remove(&self) -> Result<(), NetworkError> {
        let mut errors = Vec::new();
        if let Err(e) = nft::remove_table(None, &self.settings.table) {
            errors.push(e);
        }
        if let Err(e) = routes::reconcile(None, NODE_PROTO, &[]) {
            errors.push(e);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(NetworkError::Remove(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::PodRoute;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_start_after_the_gateway_and_a_full_cidr_says_so() {
        let mut used = BTreeSet::new();
        let a = allocate("10.42.1.0/24", &used).unwrap();
        assert_eq!(
            a,
            PodAddress {
                ip: ip("10.42.1.2"),
                gateway: ip("10.42.1.1")
            }
        );
        used.insert(ip("10.42.1.2"));
        used.insert(ip("10.42.1.4"));
        assert_eq!(allocate("10.42.1.0/24", &used).unwrap().ip, ip("10.42.1.3"));
        // /30: network, gateway, one pod, broadcast.
        let mut used = BTreeSet::new();
        assert_eq!(allocate("10.42.9.0/30", &used).unwrap().ip, ip("10.42.9.2"));
        used.insert(ip("10.42.9.2"));
        let e = allocate("10.42.9.0/30", &used).unwrap_err();
        assert_eq!(
            e,
            AllocateError::Full {
                cidr: "10.42.9.0/30".into(),
                pods: 1
            }
        );
        assert!(
            e.to_string().contains("pod CIDR 10.42.9.0/30 is full"),
            "{e}"
        );
        assert!(matches!(
            allocate("10.42.9.0/31", &BTreeSet::new()),
            Err(AllocateError::NotIpv4Range { .. })
        ));
        assert!(matches!(
            allocate("10.42.9.0", &BTreeSet::new()),
            Err(AllocateError::Cidr { .. })
        ));
    }

    #[test]
    fn routes_skip_the_node_itself_and_route_the_service_cidr() {
        let cfg = NetworkConfig {
            pod_cidr: Some("10.42.1.0/24".into()),
            service_cidr: Some("10.43.0.0/16".into()),
            routes: vec![
                PodRoute {
                    node: "me".into(),
                    cidr: "10.42.1.0/24".into(),
                    via: "10.77.0.11".into(),
                },
                PodRoute {
                    node: "pi-2".into(),
                    cidr: "10.42.2.0/24".into(),
                    via: "10.77.0.12".into(),
                },
            ],
            ..NetworkConfig::default()
        };
        let r = wanted_routes(&cfg, Some(ip("10.77.0.11")), Some("eth0"));
        assert_eq!(
            r,
            vec![
                Route {
                    dst: ip("10.42.2.0"),
                    prefix: 24,
                    next: NextHop::Via(ip("10.77.0.12"))
                },
                Route {
                    dst: ip("10.43.0.0"),
                    prefix: 16,
                    next: NextHop::Dev("eth0".into())
                },
            ]
        );
        // No known link, or loopback: no service route (never a wrong one).
        assert_eq!(wanted_routes(&cfg, Some(ip("10.77.0.11")), None).len(), 1);
        assert_eq!(
            wanted_routes(&cfg, Some(ip("127.0.0.1")), Some("lo")).len(),
            2
        );
        assert!(
            wanted_routes(&cfg, Some(ip("127.0.0.1")), Some("lo"))
                .iter()
                .all(|r| matches!(r.next, NextHop::Via(_)))
        );
    }

    #[test]
    fn the_source_address_toward_loopback_is_loopback() {
        assert_eq!(
            source_address_toward("127.0.0.1", 1883),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(source_address_toward("no-such-host.invalid", 1883), None);
    }
}
