//! Services announced to LAN clients as `<name>.local`: a Service annotated
//! `bramble.dev/mdns: "true"` (or `"<name>"`) of type NodePort (or
//! LoadBalancer) is announced by the hub's mDNS responder as host
//! `<name>.local` with the addresses of
//! the Ready nodes (for `externalTrafficPolicy: Local` only those with a
//! ready endpoint) and, for DNS-SD browsers, as an instance of
//! `_<port name or http>._<proto>.local` on its first node port. ClusterIPs
//! are not reachable from the LAN, so other Services are refused with a
//! warning.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use bramble_api::objects::common::find_condition;
use bramble_api::objects::{Node, Service};
use bramble_api::protocol::ServiceEntry;

use crate::network::table::internal_ip;

/// The annotation: `"true"` (the Service's name) or the host label to use.
pub const MDNS_ANNOTATION: &str = "bramble.dev/mdns";

/// One Service's announcement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LanName {
    /// `<namespace>/<name>` of the Service.
    pub service: String,
    /// The host label: announced as `<label>.local`.
    pub label: String,
    /// DNS-SD type, e.g. `_http._tcp.local.`.
    pub service_type: String,
    /// The node port LAN clients connect to.
    pub port: u16,
    /// Where it is served (never empty).
    pub addrs: Vec<Ipv4Addr>,
}

/// Whether `s` is a DNS label of lowercase letters, digits and hyphens.
fn is_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, "Ready"))
        .is_some_and(|c| c.is_true())
}

/// The announcements wanted for `services`, and a message for each
/// annotated Service that cannot be announced (what and how to fix).
pub fn lan_names(
    services: &[Service],
    nodes: &[Node],
    table: &[ServiceEntry],
) -> (Vec<LanName>, Vec<String>) {
    let mut out: Vec<LanName> = Vec::new();
    let mut problems = Vec::new();
    let mut taken = BTreeSet::new();
    let mut annotated: Vec<&Service> = services
        .iter()
        .filter(|s| {
            s.metadata
                .annotations
                .get(MDNS_ANNOTATION)
                .is_some_and(|v| v != "false")
        })
        .collect();
    annotated.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));
    for s in annotated {
        let (ns, name) = (
            s.metadata.namespace.as_deref().unwrap_or("default"),
            &s.metadata.name,
        );
        let id = format!("{ns}/{name}");
        let value = &s.metadata.annotations[MDNS_ANNOTATION];
        let label = if value == "true" {
            name.as_str()
        } else {
            value.as_str()
        };
        if !is_label(label) {
            problems.push(format!(
                "service {id}: {MDNS_ANNOTATION}={value:?} is not a host name: use \"true\" or a name like web-ui (lowercase letters, digits, '-')"
            ));
            continue;
        }
        if !s.has_node_ports() {
            problems.push(format!(
                "service {id}: not announced as {label}.local: LAN clients cannot reach a ClusterIP; set spec.type: NodePort (or LoadBalancer)"
            ));
            continue;
        }
        let Some(port) = s.spec.ports.iter().find(|p| p.node_port.is_some()) else {
            problems.push(format!("service {id}: no node port allocated yet"));
            continue;
        };
        if !taken.insert(label.to_string()) {
            problems.push(format!(
                "service {id}: {label}.local is already announced for another service; pick another name with {MDNS_ANNOTATION}: <name>"
            ));
            continue;
        }
        let local_only = s.spec.external_traffic_policy.as_deref() == Some("Local");
        let serving: BTreeSet<&str> = table
            .iter()
            .filter(|e| e.namespace == ns && e.name == *name)
            .flat_map(|e| e.ports.iter().flat_map(|p| &p.endpoints))
            .map(|e| e.node.as_str())
            .collect();
        let mut addrs: Vec<Ipv4Addr> = nodes
            .iter()
            .filter(|n| node_ready(n))
            .filter(|n| !local_only || serving.contains(n.metadata.name.as_str()))
            .filter_map(|n| internal_ip(n)?.parse().ok())
            .collect();
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            continue;
        }
        let kind = if port.name.is_empty() {
            "http"
        } else {
            port.name.as_str()
        };
        out.push(LanName {
            service: id,
            label: label.to_string(),
            service_type: format!("_{kind}._{}.local.", port.protocol().to_lowercase()),
            port: port.node_port.unwrap_or_default() as u16,
            addrs,
        });
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::{Endpoint, ServicePortEntry};
    use serde_json::json;

    fn node(name: &str, ip: &str, ready: bool) -> Node {
        let status = if ready { "True" } else { "Unknown" };
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                "conditions": [{"type": "Ready", "status": status}]}}))
        .unwrap()
    }

    fn svc(name: &str, annotation: &str, ty: &str, extra: serde_json::Value) -> Service {
        let mut spec =
            json!({"type": ty, "ports": [{"name": "web", "port": 80, "nodePort": 30080}]});
        if let (Some(m), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default",
                "annotations": {MDNS_ANNOTATION: annotation}},
            "spec": spec}))
        .unwrap()
    }

    #[test]
    fn node_port_services_are_announced_on_ready_nodes() {
        let nodes = [
            node("a", "10.77.0.12", true),
            node("b", "10.77.0.11", true),
            node("c", "10.77.0.13", false),
        ];
        let (names, problems) =
            lan_names(&[svc("web", "true", "NodePort", json!({}))], &nodes, &[]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            names,
            [LanName {
                service: "default/web".into(),
                label: "web".into(),
                service_type: "_web._tcp.local.".into(),
                port: 30080,
                addrs: vec![Ipv4Addr::new(10, 77, 0, 11), Ipv4Addr::new(10, 77, 0, 12)],
            }]
        );
    }

    #[test]
    fn local_traffic_policy_names_only_nodes_with_endpoints() {
        let nodes = [node("a", "10.77.0.11", true), node("b", "10.77.0.12", true)];
        let entry = ServiceEntry {
            namespace: "default".into(),
            name: "web".into(),
            cluster_ip: Some("10.43.0.20".into()),
            client_ip_affinity_seconds: None,
            addresses: Vec::new(),
            ports: vec![ServicePortEntry {
                name: "web".into(),
                protocol: "TCP".into(),
                port: 80,
                node_port: Some(30080),
                endpoints: vec![Endpoint {
                    ip: "10.42.1.5".into(),
                    port: 8080,
                    node: "b".into(),
                }],
            }],
        };
        let s = svc(
            "web",
            "shop",
            "NodePort",
            json!({"externalTrafficPolicy": "Local"}),
        );
        let (names, _) = lan_names(&[s], &nodes, &[entry]);
        assert_eq!(names[0].label, "shop");
        assert_eq!(names[0].addrs, [Ipv4Addr::new(10, 77, 0, 12)]);
    }

    #[test]
    fn what_cannot_be_announced_is_said() {
        let nodes = [node("a", "10.77.0.11", true)];
        let services = [
            svc("cip", "true", "ClusterIP", json!({})),
            svc("bad", "Not A Name", "NodePort", json!({})),
            svc("one", "same", "NodePort", json!({})),
            svc("two", "same", "NodePort", json!({})),
            svc("off", "false", "NodePort", json!({})),
        ];
        let (names, problems) = lan_names(&services, &nodes, &[]);
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(names[0].service, "default/one");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("default/bad") && problems[0].contains("not a host name"));
        assert!(problems[1].contains("default/cip") && problems[1].contains("NodePort"));
        assert!(problems[2].contains("default/two") && problems[2].contains("already announced"));
    }
}
