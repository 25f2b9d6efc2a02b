//! Which `type: LoadBalancer` Service each port of the hub's load balancer
//! belongs to (pure). A port (number and protocol) serves one Service: the
//! oldest one that asks for it (creation time, then namespace and name), as
//! k3s' ServiceLB lets the first pod bind a host port; the others are told
//! which Service holds it. SCTP is not served. [`LbPlan::backends`] gives
//! every served port the ready endpoints of its Service, and the client
//! ranges it admits (`loadBalancerSourceRanges`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use bramble_api::cidr::Cidr;
use bramble_api::objects::Service;

use super::backends::Target;

use crate::network::table::ServiceTable;

/// A port of the load balancer: its number and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortKey {
    pub protocol: Protocol,
    pub port: u16,
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// The protocols the load balancer forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// `TCP` or `UDP` as a Service spells it; `None` for anything else.
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        })
    }
}

/// A Service by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId {
    pub namespace: String,
    pub name: String,
}

impl ServiceId {
    pub fn of(svc: &Service) -> ServiceId {
        ServiceId {
            namespace: svc.namespace().to_string(),
            name: svc.name().to_string(),
        }
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Why a port of a Service is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An older Service holds the port.
    Taken { port: PortKey, by: ServiceId },
    /// A protocol the load balancer does not forward (SCTP).
    Protocol { port: u16, protocol: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Taken { port, by } => write!(
                f,
                "port {port} is already served for service {by} (created first): choose another port, or delete that service"
            ),
            Refusal::Protocol { port, protocol } => write!(
                f,
                "port {port}/{protocol}: the hub's load balancer forwards TCP and UDP only"
            ),
        }
    }
}

/// The owner of a served port: the Service and which of its ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub service: ServiceId,
    /// The Service port's name (may be empty when it has one port).
    pub port_name: String,
    /// Its `loadBalancerSourceRanges` (empty: every client).
    pub sources: Vec<Cidr>,
}

/// The load balancer's ports and the Services refused one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LbPlan {
    pub ports: BTreeMap<PortKey, Owner>,
    pub refused: BTreeMap<ServiceId, Vec<Refusal>>,
}

impl LbPlan {
    /// The plan for the LoadBalancer Services among `services`.
    pub fn build(services: &[Service]) -> LbPlan {
        let mut lbs: Vec<&Service> = services
            .iter()
            .filter(|s| s.type_() == "LoadBalancer" && s.metadata.deletion_timestamp.is_none())
            .collect();
        // RFC 3339 in UTC sorts as text; a missing time sorts first.
        lbs.sort_by(|a, b| {
            (
                a.metadata.creation_timestamp.as_deref(),
                a.namespace(),
                a.name(),
            )
                .cmp(&(
                    b.metadata.creation_timestamp.as_deref(),
                    b.namespace(),
                    b.name(),
                ))
        });
        let mut plan = LbPlan::default();
        for svc in lbs {
            let id = ServiceId::of(svc);
            let sources: Vec<Cidr> = svc
                .spec
                .load_balancer_source_ranges
                .iter()
                .filter_map(|r| r.trim().parse().ok())
                .collect();
            for p in &svc.spec.ports {
                let Ok(port) = u16::try_from(p.port) else {
                    continue; // refused by validation
                };
                let Some(protocol) = Protocol::parse(p.protocol()) else {
                    plan.refused
                        .entry(id.clone())
                        .or_default()
                        .push(Refusal::Protocol {
                            port,
                            protocol: p.protocol().to_string(),
                        });
                    continue;
                };
                let key = PortKey { protocol, port };
                match plan.ports.get(&key) {
                    Some(owner) => {
                        plan.refused
                            .entry(id.clone())
                            .or_default()
                            .push(Refusal::Taken {
                                port: key,
                                by: owner.service.clone(),
                            })
                    }
                    None => {
                        plan.ports.insert(
                            key,
                            Owner {
                                service: id.clone(),
                                port_name: p.name.clone(),
                                sources: sources.clone(),
                            },
                        );
                    }
                }
            }
        }
        plan
    }

    /// The ports served for `service`.
    pub fn ports_of<'a>(&'a self, service: &'a ServiceId) -> impl Iterator<Item = PortKey> + 'a {
        self.ports
            .iter()
            .filter(move |(_, o)| &o.service == service)
            .map(|(k, _)| *k)
    }

    /// Every served port with the ready endpoints (address and target port)
    /// of its Service in `table`; a port without any is served and refuses
    /// its connections.
    pub fn backends(&self, table: &ServiceTable) -> BTreeMap<PortKey, Target> {
        self.ports
            .iter()
            .map(|(key, owner)| {
                let endpoints = table
                    .0
                    .iter()
                    .find(|e| {
                        e.namespace == owner.service.namespace && e.name == owner.service.name
                    })
                    .and_then(|e| {
                        e.ports.iter().find(|p| {
                            p.port == key.port
                                && p.name == owner.port_name
                                && Protocol::parse(&p.protocol) == Some(key.protocol)
                        })
                    })
                    .map(|p| {
                        p.endpoints
                            .iter()
                            .filter_map(|ep| {
                                let ip: IpAddr = ep.ip.parse().ok()?;
                                Some(SocketAddr::new(ip, ep.port))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let target = Target {
                    endpoints,
                    sources: owner.sources.clone(),
                };
                (*key, target)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::objects::Endpoints;
    use serde_json::json;

    fn lb(ns: &str, name: &str, created: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.20",
                     "selector": {"app": name}, "ports": ports}
        }))
        .unwrap()
    }

    fn key(port: u16, protocol: Protocol) -> PortKey {
        PortKey { protocol, port }
    }

    #[test]
    fn the_oldest_service_holds_a_port_and_the_others_are_told_which() {
        let older = lb(
            "b",
            "web",
            "2026-01-01T00:00:00Z",
            json!([{"name": "http", "port": 8080, "protocol": "TCP"},
                   {"name": "dns", "port": 53, "protocol": "UDP"}]),
        );
        let newer = lb(
            "a",
            "other",
            "2026-02-01T00:00:00Z",
            json!([{"name": "http", "port": 8080, "protocol": "TCP"},
                   {"name": "dns", "port": 8080, "protocol": "UDP"},
                   {"name": "sctp", "port": 9000, "protocol": "SCTP"}]),
        );
        let mut cluster_ip: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "plain"},
            "spec": {"ports": [{"port": 53, "protocol": "UDP"}]}
        }))
        .unwrap();
        cluster_ip.spec.type_ = Some("ClusterIP".into());
        // Order of the input does not matter.
        let plan = LbPlan::build(&[newer.clone(), cluster_ip, older.clone()]);
        assert_eq!(plan, LbPlan::build(&[older.clone(), newer.clone()]));
        let web = ServiceId::of(&older);
        let other = ServiceId::of(&newer);
        assert_eq!(plan.ports[&key(8080, Protocol::Tcp)].service, web);
        assert_eq!(plan.ports[&key(53, Protocol::Udp)].service, web);
        assert_eq!(plan.ports[&key(8080, Protocol::Udp)].service, other);
        assert_eq!(plan.ports.len(), 3);
        assert_eq!(
            plan.refused[&other],
            vec![
                Refusal::Taken {
                    port: key(8080, Protocol::Tcp),
                    by: web.clone()
                },
                Refusal::Protocol {
                    port: 9000,
                    protocol: "SCTP".into()
                },
            ]
        );
        assert!(!plan.refused.contains_key(&web));
        assert_eq!(
            plan.refused[&other][0].to_string(),
            "port 8080/TCP is already served for service b/web (created first): choose another port, or delete that service"
        );
        let mine: Vec<PortKey> = plan.ports_of(&other).collect();
        assert_eq!(mine, vec![key(8080, Protocol::Udp)]);
    }

    #[test]
    fn a_deleted_service_frees_its_port() {
        let mut old = lb("a", "old", "2026-01-01T00:00:00Z", json!([{"port": 80}]));
        let new = lb("a", "new", "2026-02-01T00:00:00Z", json!([{"port": 80}]));
        old.metadata.deletion_timestamp = Some("2026-03-01T00:00:00Z".into());
        let plan = LbPlan::build(&[old, new.clone()]);
        assert_eq!(
            plan.ports[&key(80, Protocol::Tcp)].service,
            ServiceId::of(&new)
        );
        assert!(plan.refused.is_empty());
    }

    #[test]
    fn backends_are_the_ready_endpoints_of_the_owning_port() {
        let svc = lb(
            "default",
            "web",
            "2026-01-01T00:00:00Z",
            json!([{"name": "http", "port": 8080, "targetPort": 80},
                   {"name": "metrics", "port": 9100}]),
        );
        let eps: Endpoints = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "default"},
            "subsets": [{
                "addresses": [{"ip": "10.42.1.5", "nodeName": "n1"}, {"ip": "10.42.2.7"}],
                "notReadyAddresses": [{"ip": "10.42.3.9"}],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                          {"name": "metrics", "port": 9100, "protocol": "TCP"}]
            }]
        }))
        .unwrap();
        let plan = LbPlan::build(std::slice::from_ref(&svc));
        let table = ServiceTable::build(&[svc], &[eps]);
        let backends = plan.backends(&table);
        assert_eq!(
            backends[&key(8080, Protocol::Tcp)].endpoints,
            vec![
                "10.42.1.5:80".parse::<SocketAddr>().unwrap(),
                "10.42.2.7:80".parse().unwrap()
            ]
        );
        assert_eq!(backends[&key(9100, Protocol::Tcp)].endpoints.len(), 2);
        // No endpoints yet: the port is served, with nothing behind it.
        let plan_only = plan.backends(&ServiceTable::default());
        assert!(plan_only[&key(8080, Protocol::Tcp)].endpoints.is_empty());
    }

    #[test]
    fn a_port_admits_the_source_ranges_of_its_service() {
        let mut svc = lb(
            "default",
            "web",
            "2026-01-01T00:00:00Z",
            json!([{"port": 8080}]),
        );
        svc.spec.load_balancer_source_ranges = vec!["192.168.1.0/24".into(), " 10.0.0.5/32".into()];
        let plan = LbPlan::build(&[svc]);
        let sources = &plan.backends(&ServiceTable::default())[&key(8080, Protocol::Tcp)].sources;
        assert_eq!(
            sources,
            &vec![
                "192.168.1.0/24".parse().unwrap(),
                "10.0.0.5/32".parse().unwrap()
            ]
        );
    }
}
