//! The hub host's routes to the nodes' pods (host-gw, as every node has):
//! the ingress connects to pod addresses directly. Nodes whose LAN address
//! is this host's own (an agent beside the hub) need none. Routes carry
//! route protocol [`HUB_ROUTE_PROTO`], so they never mix with an agent's on
//! the same host.

use std::collections::HashSet;
use std::net::{Ipv4Addr, UdpSocket};

use bramble_api::cidr::Cidr;
use bramble_api::objects::Node;
use bramble_net::{NextHop, Route};

use super::table::{internal_ip, pod_cidr};

/// Route protocol of the hub's routes (an agent's are 77 and 78).
pub const HUB_ROUTE_PROTO: u8 = 79;

/// Whether `ip` is an address of this host (binding to it works).
pub fn is_local(ip: Ipv4Addr) -> bool {
    ip.is_loopback() || UdpSocket::bind((ip, 0)).is_ok()
}

/// The nodes' `InternalIP`s that are this host's ([`is_local`] once per
/// distinct address: it binds a socket, and the answer serves every check
/// of one revision).
pub fn local_addresses(nodes: &[Node]) -> HashSet<Ipv4Addr> {
    let ips: HashSet<Ipv4Addr> = nodes
        .iter()
        .filter_map(|n| internal_ip(n)?.parse().ok())
        .collect();
    ips.into_iter().filter(|ip| is_local(*ip)).collect()
}

/// Routes to every node's pod CIDR through its `InternalIP`, except nodes
/// on this host (`local`).
pub fn wanted(nodes: &[Node], local: impl Fn(Ipv4Addr) -> bool) -> Vec<Route> {
    let mut out: Vec<Route> = nodes
        .iter()
        .filter_map(|n| {
            let via: Ipv4Addr = internal_ip(n)?.parse().ok()?;
            let cidr: Cidr = pod_cidr(n)?.parse().ok()?;
            let std::net::IpAddr::V4(dst) = cidr.network().addr else {
                return None;
            };
            (!local(via)).then_some(Route {
                dst,
                prefix: cidr.prefix,
                next: NextHop::Via(via),
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// A registered node with a pod CIDR and an InternalIP.
    pub(in crate::network) fn node(name: &str, cidr: &str, ip: &str) -> Node {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}))
        .unwrap()
    }

    #[test]
    fn routes_to_remote_nodes_only() {
        let nodes = [
            node("a", "10.42.0.0/24", "10.77.0.11"),
            node("b", "10.42.1.0/24", "10.77.0.2"),
        ];
        let r = wanted(&nodes, |ip| ip == Ipv4Addr::new(10, 77, 0, 2));
        assert_eq!(
            r,
            [Route {
                dst: Ipv4Addr::new(10, 42, 0, 0),
                prefix: 24,
                next: NextHop::Via(Ipv4Addr::new(10, 77, 0, 11))
            }]
        );
        assert!(is_local(Ipv4Addr::LOCALHOST));
        assert!(!is_local(Ipv4Addr::new(192, 0, 2, 1)));
        let nodes = [
            node("here", "10.42.0.0/24", "127.0.0.1"),
            node("there", "10.42.1.0/24", "192.0.2.1"),
            node("again", "10.42.2.0/24", "127.0.0.1"),
        ];
        assert_eq!(
            local_addresses(&nodes),
            HashSet::from([Ipv4Addr::LOCALHOST])
        );
    }
}
