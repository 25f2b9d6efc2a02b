//! NetworkPolicies resolved for the data plane: selectors become pod
//! addresses (pods with an IP, not on the host network, not finished),
//! `namespaceSelector` matches Namespace labels plus the implicit
//! `kubernetes.io/metadata.name`, named ports become the numbers the
//! destination pods give them. Pure; built once per round for every node.

use std::collections::{BTreeMap, BTreeSet};

use bramble_api::IntOrString;
use bramble_api::meta::LabelSelector;
use bramble_api::objects::network_policy::{NetworkPolicyPeer, NetworkPolicyPort};
use bramble_api::objects::{Namespace, NetworkPolicy, Pod};
use bramble_api::protocol::{PolicyEntry, PolicyPeer, PolicyPort, PolicyRule};

use crate::controllers::pods::is_active;

/// The label every namespace implicitly has.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// What resolution reads.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    pub policies: &'a [NetworkPolicy],
    pub pods: &'a [Pod],
    pub namespaces: &'a [Namespace],
}

fn pod_ip(p: &Pod) -> Option<&str> {
    if p.spec.host_network || !is_active(p) {
        return None;
    }
    p.status
        .as_ref()?
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
}

struct Resolver<'a> {
    pods: Vec<(&'a Pod, &'a str)>,
    ns_labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl<'a> Resolver<'a> {
    fn new(input: PolicyInput<'a>) -> Self {
        let pods = input
            .pods
            .iter()
            .filter_map(|p| Some((p, pod_ip(p)?)))
            .collect();
        let mut ns_labels: BTreeMap<String, BTreeMap<String, String>> = input
            .namespaces
            .iter()
            .map(|n| (n.metadata.name.clone(), n.metadata.labels.clone()))
            .collect();
        for p in input.pods {
            ns_labels.entry(p.namespace().to_string()).or_default();
        }
        for (name, labels) in ns_labels.iter_mut() {
            labels.insert(NAMESPACE_NAME_LABEL.into(), name.clone());
        }
        Resolver { pods, ns_labels }
    }

    fn namespace_matches(&self, ns: &str, sel: &LabelSelector) -> bool {
        let empty = BTreeMap::new();
        let labels = self.ns_labels.get(ns).unwrap_or(&empty);
        sel.to_selector().matches(labels)
    }

    /// Pods in `ns` matching `sel`.
    fn selected(&self, ns: &str, sel: &LabelSelector) -> Vec<(&'a Pod, &'a str)> {
        let s = sel.to_selector();
        self.pods
            .iter()
            .filter(|(p, _)| p.namespace() == ns && s.matches(&p.metadata.labels))
            .copied()
            .collect()
    }

    /// Pods a peer's selectors match (`ns` is the policy's namespace).
    fn peer_pods(&self, ns: &str, peer: &NetworkPolicyPeer) -> Vec<(&'a Pod, &'a str)> {
        let pod_sel = peer.pod_selector.as_ref().map(|s| s.to_selector());
        self.pods
            .iter()
            .filter(|(p, _)| match &peer.namespace_selector {
                Some(ns_sel) => self.namespace_matches(p.namespace(), ns_sel),
                None => p.namespace() == ns,
            })
            .filter(|(p, _)| {
                pod_sel
                    .as_ref()
                    .is_none_or(|s| s.matches(&p.metadata.labels))
            })
            .copied()
            .collect()
    }

    /// `None` = any peer.
    fn peers(
        &self,
        ns: &str,
        peers: &[NetworkPolicyPeer],
    ) -> (Option<Vec<PolicyPeer>>, Vec<&'a Pod>) {
        if peers.is_empty() {
            return (None, Vec::new());
        }
        let mut out = BTreeSet::new();
        let mut pods = Vec::new();
        for peer in peers {
            if let Some(b) = &peer.ip_block {
                out.insert(PolicyPeer {
                    cidr: b.cidr.clone(),
                    except: b.except.clone(),
                });
                continue;
            }
            for (p, ip) in self.peer_pods(ns, peer) {
                out.insert(PolicyPeer {
                    cidr: format!("{ip}/32"),
                    except: Vec::new(),
                });
                pods.push(p);
            }
        }
        (Some(out.into_iter().collect()), pods)
    }
}

/// `None` = every port. Named ports resolve on `targets` (the pods the
/// traffic goes to); a name no target has matches nothing.
fn ports(ports: &[NetworkPolicyPort], targets: &[&Pod]) -> Option<Vec<PolicyPort>> {
    if ports.is_empty() {
        return None;
    }
    let mut out = BTreeSet::new();
    for p in ports {
        let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
        match &p.port {
            None => {
                out.insert(PolicyPort {
                    protocol,
                    port: None,
                    end_port: None,
                });
            }
            Some(IntOrString::Int(n)) => {
                out.insert(PolicyPort {
                    protocol,
                    port: u16::try_from(*n).ok(),
                    end_port: p.end_port.and_then(|e| u16::try_from(e).ok()),
                });
            }
            Some(IntOrString::String(name)) => {
                for pod in targets {
                    for c in &pod.spec.containers {
                        if let Some(cp) = c.port_named(name).filter(|cp| cp.protocol() == protocol)
                        {
                            out.insert(PolicyPort {
                                protocol: protocol.clone(),
                                port: u16::try_from(cp.container_port).ok(),
                                end_port: None,
                            });
                        }
                    }
                }
            }
        }
    }
    Some(out.into_iter().collect())
}

/// Every policy, resolved, sorted by namespace and name.
pub fn resolve(input: PolicyInput<'_>) -> Vec<PolicyEntry> {
    let r = Resolver::new(input);
    let mut out: Vec<PolicyEntry> = input
        .policies
        .iter()
        .map(|pol| {
            let ns = pol.namespace();
            let selected = r.selected(ns, &pol.spec.pod_selector);
            let selected_pods: Vec<&Pod> = selected.iter().map(|(p, _)| *p).collect();
            let mut pods: Vec<String> = selected.iter().map(|(_, ip)| ip.to_string()).collect();
            pods.sort();
            pods.dedup();
            let ingress = pol.affects_ingress().then(|| {
                pol.spec
                    .ingress
                    .iter()
                    .map(|rule| PolicyRule {
                        peers: r.peers(ns, &rule.from).0,
                        ports: ports(&rule.ports, &selected_pods),
                    })
                    .collect()
            });
            let egress = pol.affects_egress().then(|| {
                pol.spec
                    .egress
                    .iter()
                    .map(|rule| {
                        let (peers, targets) = r.peers(ns, &rule.to);
                        let targets = if rule.to.is_empty() {
                            r.pods.iter().map(|(p, _)| *p).collect()
                        } else {
                            targets
                        };
                        PolicyRule {
                            peers,
                            ports: ports(&rule.ports, &targets),
                        }
                    })
                    .collect()
            });
            PolicyEntry {
                namespace: ns.to_string(),
                name: pol.name().to_string(),
                pods,
                ingress,
                egress,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, app: &str, ip: Option<&str>) -> Pod {
        let mut status = json!({"phase": "Running"});
        if let Some(ip) = ip {
            status["podIP"] = ip.into();
        }
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "i",
                "ports": [{"name": "pg", "containerPort": 5432}]}]},
            "status": status}))
        .unwrap()
    }

    fn policy(spec: serde_json::Value) -> NetworkPolicy {
        let v = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "db", "namespace": "shop"}, "spec": spec});
        let admitted = bramble_api::admit(v).unwrap().object;
        serde_json::from_value(admitted).unwrap()
    }

    fn namespace(name: &str, team: &str) -> Namespace {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"team": team}}}))
        .unwrap()
    }

    fn peer(ip: &str) -> PolicyPeer {
        PolicyPeer {
            cidr: format!("{ip}/32"),
            except: vec![],
        }
    }

    #[test]
    fn frontend_only_to_db_with_named_port() {
        let pods = vec![
            pod("shop", "db", "db", Some("10.42.2.5")),
            pod("shop", "fe", "frontend", Some("10.42.1.4")),
            pod("shop", "other", "other", Some("10.42.1.9")),
            pod("shop", "fe-pending", "frontend", None),
            pod("ops", "fe", "frontend", Some("10.42.0.7")),
        ];
        let pol = policy(json!({"podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                         "ports": [{"port": "pg"}]}]}));
        let out = resolve(PolicyInput {
            policies: &[pol],
            pods: &pods,
            namespaces: &[],
        });
        assert_eq!(out[0].pods, ["10.42.2.5"]);
        assert!(out[0].egress.is_none());
        let rule = &out[0].ingress.as_ref().unwrap()[0];
        assert_eq!(rule.peers, Some(vec![peer("10.42.1.4")]));
        assert_eq!(
            rule.ports,
            Some(vec![PolicyPort {
                protocol: "TCP".into(),
                port: Some(5432),
                end_port: None
            }])
        );
    }

    #[test]
    fn namespace_selectors_ip_blocks_deny_all_and_no_match() {
        let pods = vec![
            pod("shop", "db", "db", Some("10.42.2.5")),
            pod("ops", "mon", "mon", Some("10.42.0.7")),
            pod("dev", "x", "mon", Some("10.42.0.8")),
        ];
        let namespaces = [namespace("ops", "sre"), namespace("dev", "devs")];
        let pol = policy(json!({"podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "sre"}}},
                                  {"ipBlock": {"cidr": "192.168.1.0/24", "except": ["192.168.1.9/32"]}}]},
                        {"from": [{"podSelector": {"matchLabels": {"app": "nobody"}}}]}],
            "policyTypes": ["Ingress", "Egress"]}));
        let out = resolve(PolicyInput {
            policies: &[pol],
            pods: &pods,
            namespaces: &namespaces,
        });
        let rules = out[0].ingress.as_ref().unwrap();
        assert_eq!(
            rules[0].peers,
            Some(vec![
                peer("10.42.0.7"),
                PolicyPeer {
                    cidr: "192.168.1.0/24".into(),
                    except: vec!["192.168.1.9/32".into()]
                }
            ])
        );
        assert_eq!(rules[0].ports, None);
        assert_eq!(
            rules[1].peers,
            Some(vec![]),
            "matches no pod: allows nothing"
        );
        assert_eq!(
            out[0].egress,
            Some(vec![]),
            "Egress without rules denies all"
        );

        // The implicit name label selects a namespace without a Namespace object.
        let pol = policy(json!({"podSelector": {}, "ingress": [{"from": [
            {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "dev"}}}]}]}));
        let out = resolve(PolicyInput {
            policies: &[pol],
            pods: &pods,
            namespaces: &[],
        });
        assert_eq!(
            out[0].ingress.as_ref().unwrap()[0].peers,
            Some(vec![peer("10.42.0.8")])
        );
    }
}
