//! The hub host's own part of the cluster network (`--no-pod-routes` turns
//! it off): host-gw routes to every remote node's pod CIDR (the ingress
//! connects to pods directly), a route for the service CIDR, and an nft
//! table ([`HUB_NFT_TABLE`]) that DNATs ClusterIPs to ready endpoints as
//! every node's table does, so programs on the hub host reach Services too.
//!
//! When an agent runs on this host (a node's `InternalIP` is local) that
//! agent programs services and routes for it, and the hub adds neither.
//! One task applies the latest wanted state in order; routes carry route
//! protocol [`HUB_ROUTE_PROTO`] and never mix with an agent's.

use std::net::{IpAddr, Ipv4Addr};

use bramble_api::cidr::Cidr;
use bramble_api::objects::Node;
use bramble_api::protocol::{NetworkConfig, ServiceEntry};
use bramble_net::nft::Table;
use bramble_net::{NextHop, Route};
use tokio::sync::watch;

use super::host_routes::{self, HUB_ROUTE_PROTO};
use super::table::internal_ip;

/// The hub host's nft table (agents' default is `bramble`).
pub const HUB_NFT_TABLE: &str = "bramble-hub";

/// What the hub host should have programmed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Wanted {
    pub routes: Vec<Route>,
    /// `None`: no table (removed if there was one).
    pub table: Option<Table>,
}

/// The wanted state for `nodes` and `services` (`local`: whether an address
/// is this host's). Node ports are left to the nodes: the hub is not one.
pub fn wanted(
    nodes: &[Node],
    services: &[ServiceEntry],
    service_cidr: Cidr,
    local: impl Fn(Ipv4Addr) -> bool,
) -> Wanted {
    let ips: Vec<Ipv4Addr> = nodes
        .iter()
        .filter_map(|n| internal_ip(n)?.parse().ok())
        .collect();
    let mut routes = host_routes::wanted(nodes, &local);
    if ips.iter().any(|ip| local(*ip)) {
        return Wanted {
            routes,
            table: None,
        };
    }
    let Some(via) = ips.into_iter().min() else {
        return Wanted::default();
    };
    let IpAddr::V4(dst) = service_cidr.network().addr else {
        return Wanted {
            routes,
            table: None,
        };
    };
    // Through a node: connecting to a VIP needs a route before the output
    // DNAT rewrites it (and a node would DNAT it as well).
    routes.push(Route {
        dst,
        prefix: service_cidr.prefix,
        next: NextHop::Via(via),
    });
    let cfg = NetworkConfig {
        services: services
            .iter()
            .cloned()
            .map(|mut s| {
                s.ports.iter_mut().for_each(|p| p.node_port = None);
                s
            })
            .collect(),
        ..NetworkConfig::default()
    };
    Wanted {
        routes,
        table: Some(bramble_net::rules::node_table(HUB_NFT_TABLE, &cfg, &[])),
    }
}

/// Programs [`Wanted`] states on this host, latest first, one at a time.
#[derive(Debug)]
pub struct HostNetwork {
    tx: watch::Sender<Option<Wanted>>,
}

impl HostNetwork {
    /// Starts the applying task (on the current tokio runtime).
    pub fn start() -> HostNetwork {
        let (tx, mut rx) = watch::channel(None::<Wanted>);
        tokio::spawn(async move {
            let mut applied = Wanted::default();
            let mut first = true;
            while rx.changed().await.is_ok() {
                let Some(want) = rx.borrow_and_update().clone() else {
                    continue;
                };
                let before = std::mem::take(&mut applied);
                let force = std::mem::take(&mut first);
                applied = match tokio::task::spawn_blocking(move || {
                    apply(&before, &want, force);
                    want
                })
                .await
                {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!(error = %e, "programming the hub host's network");
                        Wanted::default()
                    }
                };
            }
        });
        HostNetwork { tx }
    }

    /// Asks for `want` (nothing happens if it is what was asked last).
    pub fn set(&self, want: Wanted) {
        self.tx.send_if_modified(|cur| {
            let changed = cur.as_ref() != Some(&want);
            *cur = Some(want);
            changed
        });
    }
}

/// Moves the host from `before` to `want` (`force`: the first time, when a
/// previous hub's table may be left over).
fn apply(before: &Wanted, want: &Wanted, force: bool) {
    if force || before.routes != want.routes {
        match bramble_net::routes::reconcile(None, HUB_ROUTE_PROTO, &want.routes) {
            Ok(ch) if !ch.is_empty() => {
                tracing::info!(routes = want.routes.len(), changes = ?ch, "routes to the nodes' pods and services updated")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "routes to the nodes' pods not installed (the ingress cannot reach pods on other hosts; run the hub as root or pass --no-pod-routes)")
            }
        }
    }
    if !force && before.table == want.table {
        return;
    }
    let r = match &want.table {
        Some(t) => bramble_net::nft::apply(None, t),
        None => bramble_net::nft::remove_table(None, HUB_NFT_TABLE),
    };
    match r {
        Ok(()) => tracing::debug!(
            table = HUB_NFT_TABLE,
            present = want.table.is_some(),
            "service table programmed"
        ),
        Err(e) => {
            tracing::warn!(table = HUB_NFT_TABLE, error = %e, "service table not programmed (ClusterIPs unreachable from the hub host)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::host_routes::tests::node;
    use bramble_api::protocol::{Endpoint, ServicePortEntry};

    fn web() -> ServiceEntry {
        ServiceEntry {
            namespace: "default".into(),
            name: "web".into(),
            cluster_ip: Some("10.43.0.20".into()),
            client_ip_affinity_seconds: None,
            addresses: Vec::new(),
            ports: vec![ServicePortEntry {
                name: String::new(),
                protocol: "TCP".into(),
                port: 80,
                node_port: Some(30080),
                endpoints: vec![Endpoint {
                    ip: "10.42.1.5".into(),
                    port: 8080,
                    node: "b".into(),
                }],
            }],
        }
    }

    #[test]
    fn a_hub_alone_routes_pods_and_services_and_dnats_cluster_ips_only() {
        let nodes = [
            node("b", "10.42.1.0/24", "10.77.0.12"),
            node("a", "10.42.0.0/24", "10.77.0.11"),
        ];
        let svc: Cidr = "10.43.0.0/16".parse().unwrap();
        let w = wanted(&nodes, &[web()], svc, |_| false);
        assert_eq!(w.routes.len(), 3);
        assert!(w.routes.contains(&Route {
            dst: Ipv4Addr::new(10, 43, 0, 0),
            prefix: 16,
            next: NextHop::Via(Ipv4Addr::new(10, 77, 0, 11)),
        }));
        let table = w.table.expect("a service table");
        assert_eq!(table.name, HUB_NFT_TABLE);
        let json = table.batch().to_string();
        assert!(json.contains("10.43.0.20") && json.contains("10.42.1.5"));
        assert!(!json.contains("30080"), "no node ports on the hub: {json}");
    }

    #[test]
    fn an_agent_beside_the_hub_programs_services_itself() {
        let nodes = [
            node("a", "10.42.0.0/24", "10.77.0.2"),
            node("b", "10.42.1.0/24", "10.77.0.12"),
        ];
        let svc: Cidr = "10.43.0.0/16".parse().unwrap();
        let w = wanted(&nodes, &[web()], svc, |ip| {
            ip == Ipv4Addr::new(10, 77, 0, 2)
        });
        assert_eq!(w.table, None);
        assert_eq!(w.routes.len(), 1, "only node b's pods: {:?}", w.routes);
        assert_eq!(wanted(&[], &[web()], svc, |_| false), Wanted::default());
    }
}
