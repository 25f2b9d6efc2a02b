//! Each node's share of the cluster network for its desired set: its pod
//! CIDR, host-gw routes to the other nodes' pod CIDRs through their
//! `InternalIP`s, and the service table (ClusterIP and node ports → ready
//! endpoints, headless services for DNS). The service table is the same for
//! every node and built once per round ([`ServiceTable::build`]).

use std::collections::BTreeMap;

use bramble_api::objects::{Endpoints, Node, Service};
use bramble_api::protocol::{
    DnsConfig, Endpoint, FEATURE_NETWORK, FEATURE_POD_HOSTNAMES, NetworkConfig, PodHost, PodRoute,
    PolicyEntry, ServiceEntry, ServicePortEntry,
};

use super::NetworkSettings;

/// Node annotation listing the protocol features its agent announced
/// (comma-separated), kept so a restarted hub knows them before a `hello`.
pub const FEATURES_ANNOTATION: &str = "bramble.dev/agent-features";

/// Whether `node`'s agent programs the pod network.
pub fn has_network(node: &Node) -> bool {
    has_feature(node, FEATURE_NETWORK)
}

/// Whether `node`'s agent announced `feature`.
pub fn has_feature(node: &Node, feature: &str) -> bool {
    node.metadata
        .annotations
        .get(FEATURES_ANNOTATION)
        .is_some_and(|f| f.split(',').any(|x| x.trim() == feature))
}

/// The node's `InternalIP`.
pub fn internal_ip(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .addresses
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.as_str())
        .filter(|a| !a.is_empty())
}

/// The node's pod CIDR.
pub fn pod_cidr(node: &Node) -> Option<&str> {
    node.spec.pod_cidr.as_deref().filter(|c| !c.is_empty())
}

/// Every Service as the data plane sees it, sorted by namespace and name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceTable(pub Vec<ServiceEntry>);

impl ServiceTable {
    /// The table of `services` with the ready addresses of their `endpoints`.
    pub fn build(services: &[Service], endpoints: &[Endpoints]) -> ServiceTable {
        let eps: BTreeMap<(&str, &str), &Endpoints> = endpoints
            .iter()
            .map(|e| ((e.namespace(), e.name()), e))
            .collect();
        let mut entries: Vec<ServiceEntry> = services
            .iter()
            .map(|s| entry(s, eps.get(&(s.namespace(), s.name())).copied()))
            .collect();
        entries.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        ServiceTable(entries)
    }
}

fn entry(svc: &Service, eps: Option<&Endpoints>) -> ServiceEntry {
    let cluster_ip = svc
        .spec
        .cluster_ip
        .clone()
        .filter(|ip| !ip.is_empty() && ip != "None");
    let affinity = (svc.spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        svc.spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .unwrap_or(bramble_api::objects::service::DEFAULT_CLIENT_IP_TIMEOUT_SECONDS)
            .max(1) as u32
    });
    let single = svc.spec.ports.len() == 1;
    let ports = svc
        .spec
        .ports
        .iter()
        .filter_map(|p| {
            let port = u16::try_from(p.port).ok()?;
            let mut endpoints: Vec<Endpoint> = eps
                .into_iter()
                .flat_map(|e| &e.subsets)
                .filter_map(|sub| {
                    let ep = sub.ports.iter().find(|ep| {
                        ep.protocol.as_deref().unwrap_or("TCP") == p.protocol()
                            && (single && sub.ports.len() == 1
                                || ep.name.as_deref().unwrap_or("") == p.name)
                    })?;
                    Some((sub, u16::try_from(ep.port).ok()?))
                })
                .flat_map(|(sub, port)| {
                    sub.addresses.iter().map(move |a| Endpoint {
                        ip: a.ip.clone(),
                        port,
                        node: a.node_name.clone().unwrap_or_default(),
                    })
                })
                .collect();
            endpoints.sort();
            endpoints.dedup();
            Some(ServicePortEntry {
                name: p.name.clone(),
                protocol: p.protocol().to_string(),
                port,
                node_port: p.node_port.and_then(|n| u16::try_from(n).ok()),
                endpoints,
            })
        })
        .collect();
    // A headless Service without ports: its Endpoints list addresses only.
    let mut addresses: Vec<String> = if cluster_ip.is_none() && svc.spec.ports.is_empty() {
        eps.into_iter()
            .flat_map(|e| &e.subsets)
            .flat_map(|sub| sub.addresses.iter().map(|a| a.ip.clone()))
            .collect()
    } else {
        Vec::new()
    };
    addresses.sort();
    addresses.dedup();
    ServiceEntry {
        namespace: svc.namespace().to_string(),
        name: svc.name().to_string(),
        cluster_ip,
        client_ip_affinity_seconds: affinity,
        addresses,
        ports,
    }
}

/// The parts of every node's network config that are the same for all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterTables {
    pub services: ServiceTable,
    pub policies: Vec<PolicyEntry>,
    /// Pods' names under headless Services ([`super::pod_hosts`]).
    pub hosts: Vec<PodHost>,
    /// The LoadBalancer ports each node serves on its own addresses
    /// ([`crate::service_lb::nodes`]), by node name.
    pub lb_ports: std::collections::BTreeMap<String, Vec<bramble_api::protocol::LbPort>>,
}

/// The network config of `node` (`None` until it has a pod CIDR or when its
/// agent does not program the network).
pub fn network_for(
    settings: &NetworkSettings,
    nodes: &[Node],
    node: &Node,
    tables: &ClusterTables,
) -> Option<NetworkConfig> {
    if !has_network(node) {
        return None;
    }
    let cidr = pod_cidr(node)?;
    let own_ip = internal_ip(node);
    let routes = nodes
        .iter()
        .filter(|n| n.name() != node.name())
        .filter_map(|n| {
            let via = internal_ip(n)?;
            // Agents sharing one host (tests) reach each other's pods directly.
            if Some(via) == own_ip {
                return None;
            }
            Some(PodRoute {
                node: n.name().to_string(),
                cidr: pod_cidr(n)?.to_string(),
                via: via.to_string(),
            })
        })
        .collect();
    Some(NetworkConfig {
        pod_cidr: Some(cidr.to_string()),
        cluster_cidr: Some(settings.cluster_cidr.to_string()),
        service_cidr: Some(settings.service_cidr.to_string()),
        dns: Some(DnsConfig {
            cluster_domain: settings.cluster_domain.clone(),
            upstreams: Vec::new(),
            hosts: if has_feature(node, FEATURE_POD_HOSTNAMES) {
                tables.hosts.clone()
            } else {
                Vec::new()
            },
        }),
        routes,
        services: tables.services.0.clone(),
        policies: tables.policies.clone(),
        lb_ports: tables
            .lb_ports
            .get(node.name())
            .cloned()
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cidr: Option<&str>, ip: &str) -> Node {
        let mut spec = json!({});
        if let Some(c) = cidr {
            spec["podCIDR"] = c.into();
        }
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {FEATURES_ANNOTATION: "network"}},
            "spec": spec,
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}))
        .unwrap()
    }

    #[test]
    fn pod_hostnames_go_only_to_agents_announcing_them() {
        let mut new = node("a", Some("10.42.0.0/24"), "10.77.0.11");
        new.metadata.annotations.insert(
            FEATURES_ANNOTATION.into(),
            format!("{FEATURE_NETWORK},{FEATURE_POD_HOSTNAMES}"),
        );
        let old = node("b", Some("10.42.1.0/24"), "10.77.0.12");
        let tables = ClusterTables {
            hosts: vec![PodHost {
                namespace: "default".into(),
                service: "db".into(),
                hostname: "db-0".into(),
                ip: "10.42.0.5".into(),
            }],
            ..ClusterTables::default()
        };
        let nodes = [new.clone(), old.clone()];
        let dns = |n: &Node| {
            network_for(&NetworkSettings::default(), &nodes, n, &tables)
                .unwrap()
                .dns
                .unwrap()
        };
        assert_eq!(dns(&new).hosts, tables.hosts);
        assert!(dns(&old).hosts.is_empty());
    }

    #[test]
    fn routes_to_every_other_node_but_not_through_itself() {
        let nodes = vec![
            node("a", Some("10.42.0.0/24"), "10.77.0.11"),
            node("b", Some("10.42.1.0/24"), "10.77.0.12"),
            node("c", None, "10.77.0.13"),
            node("same-host", Some("10.42.3.0/24"), "10.77.0.11"),
        ];
        let n = network_for(
            &NetworkSettings::default(),
            &nodes,
            &nodes[0],
            &ClusterTables::default(),
        )
        .unwrap();
        assert_eq!(n.pod_cidr.as_deref(), Some("10.42.0.0/24"));
        assert_eq!(
            n.routes,
            vec![PodRoute {
                node: "b".into(),
                cidr: "10.42.1.0/24".into(),
                via: "10.77.0.12".into()
            }]
        );
        assert!(n.validate("network").is_empty());
        assert!(
            network_for(
                &NetworkSettings::default(),
                &nodes,
                &nodes[2],
                &ClusterTables::default()
            )
            .is_none()
        );
        let mut old = nodes[1].clone();
        old.metadata.annotations.clear();
        assert!(
            network_for(
                &NetworkSettings::default(),
                &nodes,
                &old,
                &ClusterTables::default()
            )
            .is_none()
        );
    }

    #[test]
    fn service_ports_get_their_ready_endpoints_by_name() {
        let svc: Service = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.11", "type": "NodePort", "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                          {"name": "metrics", "port": 9100}]}}))
        .unwrap();
        let eps: Endpoints =
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.42.1.2", "nodeName": "b"}],
                         "notReadyAddresses": [{"ip": "10.42.0.9"}],
                         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                                   {"name": "metrics", "port": 9100, "protocol": "TCP"}]}]}))
            .unwrap();
        let t = ServiceTable::build(&[svc], &[eps]);
        let e = &t.0[0];
        assert_eq!(e.cluster_ip.as_deref(), Some("10.43.0.11"));
        assert_eq!(e.ports[0].node_port, Some(30080));
        assert_eq!(
            e.ports[0].endpoints,
            vec![Endpoint {
                ip: "10.42.1.2".into(),
                port: 8080,
                node: "b".into()
            }]
        );
        assert_eq!(e.ports[1].endpoints[0].port, 9100);
        assert!(e.addresses.is_empty());
    }

    #[test]
    fn a_headless_service_without_ports_keeps_its_ready_addresses() {
        let svc: Service = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "cache", "namespace": "default"},
            "spec": {"clusterIP": "None", "selector": {"app": "cache"}}}))
        .unwrap();
        let eps: Endpoints =
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "cache", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.42.1.7"}, {"ip": "10.42.0.3"}],
                         "notReadyAddresses": [{"ip": "10.42.0.9"}]}]}))
            .unwrap();
        let t = ServiceTable::build(&[svc], &[eps]);
        assert_eq!(t.0[0].addresses, ["10.42.0.3", "10.42.1.7"]);
        assert!(t.0[0].ports.is_empty());
    }
}
