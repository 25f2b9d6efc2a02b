//! Boards that serve a LoadBalancer Service on their own addresses besides
//! the hub (pure): the Service's annotation [`LB_NODES_ANNOTATION`] is a
//! label selector (`kubernetes.io/hostname=pi-1`, `role=gateway`), and each
//! selected Ready node gets, in its network config, the Service's ports
//! that the Service holds ([`LbPlan`]); its agent answers them on the
//! node's addresses as it answers node ports. The Service's status lists
//! those nodes' `InternalIP`s with the hub's.

use std::collections::BTreeMap;

use bramble_api::objects::common::find_condition;
use bramble_api::objects::{Node, Service};
use bramble_api::protocol::LbPort;
use bramble_api::selector::Selector;

use super::plan::{LbPlan, ServiceId};
use crate::network::table::internal_ip;

pub use bramble_api::objects::service::LB_NODES_ANNOTATION;

/// The Ready nodes `svc`'s annotation selects (none without it), or why the
/// annotation cannot be used.
pub fn selected<'a>(svc: &Service, nodes: &'a [Node]) -> Result<Vec<&'a Node>, String> {
    let Some(text) = svc.metadata.annotations.get(LB_NODES_ANNOTATION) else {
        return Ok(Vec::new());
    };
    let selector = Selector::parse(text).map_err(|e| {
        format!(
            "{LB_NODES_ANNOTATION}={text:?} is not a label selector ({e}): write e.g. kubernetes.io/hostname=pi-1 or role=gateway"
        )
    })?;
    if selector.is_empty() {
        return Err(format!(
            "{LB_NODES_ANNOTATION} is empty: name the boards with a label selector, or remove it"
        ));
    }
    Ok(nodes
        .iter()
        .filter(|n| selector.matches(&n.metadata.labels) && is_ready(n))
        .collect())
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// Each node's ports to serve: the held ports of the Services selecting it.
pub fn node_ports(
    services: &[Service],
    nodes: &[Node],
    plan: &LbPlan,
) -> BTreeMap<String, Vec<LbPort>> {
    let mut out: BTreeMap<String, Vec<LbPort>> = BTreeMap::new();
    for svc in services.iter().filter(|s| s.type_() == "LoadBalancer") {
        let Ok(chosen) = selected(svc, nodes) else {
            continue;
        };
        let id = ServiceId::of(svc);
        for key in plan.ports_of(&id) {
            for n in &chosen {
                out.entry(n.name().to_string()).or_default().push(LbPort {
                    namespace: id.namespace.clone(),
                    name: id.name.clone(),
                    protocol: key.protocol.to_string(),
                    port: key.port,
                });
            }
        }
    }
    for ports in out.values_mut() {
        ports.sort();
    }
    out
}

/// The `InternalIP`s of the nodes serving each LoadBalancer Service (for its
/// status), or why its annotation cannot be used.
pub fn node_addresses(
    services: &[Service],
    nodes: &[Node],
) -> BTreeMap<ServiceId, Result<Vec<String>, String>> {
    services
        .iter()
        .filter(|s| s.type_() == "LoadBalancer")
        .map(|s| {
            let ips = selected(s, nodes).map(|chosen| {
                let mut ips: Vec<String> = chosen
                    .iter()
                    .filter_map(|n| internal_ip(n).map(str::to_string))
                    .collect();
                ips.sort();
                ips.dedup();
                ips
            });
            (ServiceId::of(s), ips)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, role: &str, ip: &str, ready: &str) -> Node {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"role": role, "kubernetes.io/hostname": name}},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                "conditions": [{"type": "Ready", "status": ready}]}}))
        .unwrap()
    }

    fn lb(name: &str, created: &str, nodes: Option<&str>) -> Service {
        let mut s: Service = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 8080, "protocol": "TCP"},
                {"name": "dns", "port": 53, "protocol": "UDP"}]}}))
        .unwrap();
        s.spec.ports[0].name = "http".into();
        if let Some(sel) = nodes {
            s.metadata
                .annotations
                .insert(LB_NODES_ANNOTATION.into(), sel.into());
        }
        s
    }

    #[test]
    fn selected_ready_nodes_serve_the_ports_their_service_holds() {
        let nodes = [
            node("gw-1", "gateway", "10.0.0.11", "True"),
            node("gw-2", "gateway", "10.0.0.12", "False"),
            node("pi-1", "sensor", "10.0.0.21", "True"),
        ];
        let first = lb("first", "2026-01-01T00:00:00Z", Some("role=gateway"));
        // Older holder of 8080 elsewhere: the newer one keeps only 53/UDP.
        let mut second = lb(
            "second",
            "2026-02-01T00:00:00Z",
            Some("kubernetes.io/hostname=pi-1"),
        );
        second.spec.ports[1].port = 5353;
        let services = [first.clone(), second.clone()];
        let plan = LbPlan::build(&services);
        let ports = node_ports(&services, &nodes, &plan);
        let names = |n: &str| -> Vec<(String, String, u16)> {
            ports
                .get(n)
                .into_iter()
                .flatten()
                .map(|p| (p.name.clone(), p.protocol.clone(), p.port))
                .collect()
        };
        assert_eq!(
            names("gw-1"),
            vec![
                ("first".into(), "TCP".into(), 8080),
                ("first".into(), "UDP".into(), 53)
            ]
        );
        assert!(names("gw-2").is_empty(), "a NotReady node serves nothing");
        assert_eq!(names("pi-1"), vec![("second".into(), "UDP".into(), 5353)]);
        let addrs = node_addresses(&services, &nodes);
        assert_eq!(
            addrs[&ServiceId::of(&first)],
            Ok(vec!["10.0.0.11".to_string()])
        );
        assert_eq!(
            addrs[&ServiceId::of(&second)],
            Ok(vec!["10.0.0.21".to_string()])
        );
    }

    #[test]
    fn a_bad_annotation_is_explained_and_serves_on_no_node() {
        let nodes = [node("gw-1", "gateway", "10.0.0.11", "True")];
        let bad = lb("bad", "2026-01-01T00:00:00Z", Some("role in (gateway"));
        let err = selected(&bad, &nodes).unwrap_err();
        assert!(
            err.starts_with("bramble.dev/lb-nodes=\"role in (gateway\" is not a label selector"),
            "{err}"
        );
        let plan = LbPlan::build(std::slice::from_ref(&bad));
        assert!(node_ports(std::slice::from_ref(&bad), &nodes, &plan).is_empty());
        let none = lb("none", "2026-01-01T00:00:00Z", None);
        assert_eq!(selected(&none, &nodes).unwrap().len(), 0);
    }
}
