//! The node's share of the cluster network in a `desired` set: its pod CIDR,
//! the routes to the other nodes' pods (host-gw over the LAN), and the service
//! table (ClusterIP / NodePort → ready endpoints) the agent turns into nftables
//! DNAT rules and DNS answers. Sent only to agents whose `hello` announced
//! [`FEATURE_NETWORK`]; everything is recomputed by the hub from the store.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::field::{FieldError, FieldErrors, index, join};

/// The `hello` feature of agents that program the pod network from
/// [`NetworkConfig`].
pub const FEATURE_NETWORK: &str = "network";

/// The `hello` feature of agents that serve [`DnsConfig::hosts`]; others
/// are sent none.
pub const FEATURE_POD_HOSTNAMES: &str = "podHostnames";

/// The node's share of the cluster network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkConfig {
    /// This node's pods: the gateway is its first address, pods get the others.
    #[serde(rename = "podCIDR", default, skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    /// Every node's pods (e.g. `10.42.0.0/16`): traffic leaving it is masqueraded.
    #[serde(
        rename = "clusterCIDR",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_cidr: Option<String>,
    /// Service virtual IPs (e.g. `10.43.0.0/16`): the node routes it so that
    /// local clients reach ClusterIPs.
    #[serde(
        rename = "serviceCIDR",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_cidr: Option<String>,
    /// Cluster DNS: the names the node's resolver answers and where pods' other
    /// queries go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsConfig>,
    /// Other nodes' pod CIDRs and the LAN address to reach each through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<PodRoute>,
    /// Every Service with a ClusterIP or node ports, or headless (DNS only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceEntry>,
    /// Every NetworkPolicy, its selectors resolved to pod addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyEntry>,
    /// Service ports this node serves on its own addresses as it serves
    /// node ports: LoadBalancer Services whose `bramble.dev/lb-nodes`
    /// selects it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lb_ports: Vec<LbPort>,
}

/// A port of a LoadBalancer Service that a node serves on its addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LbPort {
    pub namespace: String,
    /// The Service (its entry in [`NetworkConfig::services`]).
    pub name: String,
    /// `TCP` or `UDP`.
    pub protocol: String,
    pub port: u16,
}

/// A NetworkPolicy as the data plane enforces it. A pod selected by at
/// least one policy with `ingress` (or `egress`) accepts (or sends) only what
/// one of those policies' rules allow, plus replies (stateful); other pods
/// are not restricted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyEntry {
    pub namespace: String,
    pub name: String,
    /// Addresses of the pods it selects, on every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
    /// `None`: the policy does not restrict ingress; `Some([])`: denies all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<PolicyRule>>,
    /// `None`: the policy does not restrict egress; `Some([])`: denies all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<PolicyRule>>,
}

/// Traffic one rule allows: from (ingress) or to (egress) `peers` on `ports`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRule {
    /// `None`: any peer; `Some([])`: no peer (selectors matched no pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<Vec<PolicyPeer>>,
    /// `None`: every port; `Some([])`: none (named ports matched nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PolicyPort>>,
}

/// A peer network: a pod as `ip/32`, or an `ipBlock` with its exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyPeer {
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// A protocol and a port or range (`port` absent: every port).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyPort {
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<u16>,
}

/// Cluster DNS settings for the node's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsConfig {
    /// `cluster.local`.
    pub cluster_domain: String,
    /// Where names outside the cluster domain are forwarded (the hub's DNS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<String>,
    /// Names of pods with a `hostname` and a `subdomain` naming a headless
    /// Service that selects them (StatefulSet pods), to agents announcing
    /// [`FEATURE_POD_HOSTNAMES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<PodHost>,
}

/// `<hostname>.<service>.<namespace>.svc.<cluster domain>` → `ip`, as
/// Kubernetes DNS answers for a pod behind a headless Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodHost {
    pub namespace: String,
    pub service: String,
    pub hostname: String,
    pub ip: String,
}

/// A route to another node's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodRoute {
    /// The node owning the CIDR (for logs).
    pub node: String,
    /// Its pod CIDR.
    pub cidr: String,
    /// Its LAN address (the Node's `InternalIP`).
    pub via: String,
}

/// One Service as the data plane sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceEntry {
    pub namespace: String,
    pub name: String,
    /// `None` for a headless service (DNS answers with the endpoints).
    #[serde(rename = "clusterIP", default, skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    /// `sessionAffinity: ClientIP` timeout; `None` spreads every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip_affinity_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePortEntry>,
    /// The ready pod addresses of a headless Service without ports (its
    /// Endpoints list addresses only); DNS answers its name with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

/// One port of a Service and the ready endpoints behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePortEntry {
    /// The port's name (SRV records `_name._proto.svc...`); may be empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<u16>,
    /// Ready endpoints only (or all with `publishNotReadyAddresses`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
}

/// A pod address and port behind a service port.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
    /// The node running it (for `internalTrafficPolicy: Local` and logs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
}

fn check_cidr(errs: &mut FieldErrors, path: &str, value: Option<&str>) -> Option<Cidr> {
    let v = value?;
    match v.parse::<Cidr>() {
        Ok(c) if c.addr.is_ipv4() => Some(c),
        Ok(_) => {
            errs.push(FieldError::invalid(path, format!("{v:?}: IPv4 only")));
            None
        }
        Err(e) => {
            errs.push(FieldError::invalid(path, e.to_string()));
            None
        }
    }
}

fn check_ip(errs: &mut FieldErrors, path: String, value: &str) -> Option<Ipv4Addr> {
    match value.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Some(ip),
        _ => {
            errs.push(FieldError::invalid(
                path,
                format!("{value:?}: not an IPv4 address"),
            ));
            None
        }
    }
}

impl NetworkConfig {
    /// Checks addresses, CIDRs and protocols; `path` is where the config sits.
    pub fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let pod = check_cidr(&mut errs, &join(path, "podCIDR"), self.pod_cidr.as_deref());
        if let Some(c) = pod
            && c.prefix > 30
        {
            errs.push(FieldError::invalid(
                join(path, "podCIDR"),
                format!("{c}: needs room for a gateway and pods (/30 or larger)"),
            ));
        }
        check_cidr(
            &mut errs,
            &join(path, "clusterCIDR"),
            self.cluster_cidr.as_deref(),
        );
        check_cidr(
            &mut errs,
            &join(path, "serviceCIDR"),
            self.service_cidr.as_deref(),
        );
        for (i, r) in self.routes.iter().enumerate() {
            let rp = index(&join(path, "routes"), i);
            check_cidr(&mut errs, &join(&rp, "cidr"), Some(&r.cidr));
            check_ip(&mut errs, join(&rp, "via"), &r.via);
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.services.iter().enumerate() {
            let sp = index(&join(path, "services"), i);
            if !seen.insert((s.namespace.as_str(), s.name.as_str())) {
                errs.push(FieldError::duplicate(sp.clone()));
            }
            if let Some(ip) = &s.cluster_ip {
                check_ip(&mut errs, join(&sp, "clusterIP"), ip);
            }
            for (j, ip) in s.addresses.iter().enumerate() {
                check_ip(&mut errs, index(&join(&sp, "addresses"), j), ip);
            }
            for (j, p) in s.ports.iter().enumerate() {
                let pp = index(&join(&sp, "ports"), j);
                if !matches!(p.protocol.as_str(), "TCP" | "UDP" | "SCTP") {
                    errs.push(FieldError::invalid(
                        join(&pp, "protocol"),
                        format!("{:?}: must be TCP, UDP or SCTP", p.protocol),
                    ));
                }
                if p.port == 0 {
                    errs.push(FieldError::invalid(join(&pp, "port"), "0: must be 1-65535"));
                }
                for (k, e) in p.endpoints.iter().enumerate() {
                    let ep = index(&join(&pp, "endpoints"), k);
                    check_ip(&mut errs, join(&ep, "ip"), &e.ip);
                    if e.port == 0 {
                        errs.push(FieldError::invalid(join(&ep, "port"), "0: must be 1-65535"));
                    }
                }
            }
        }
        for (i, l) in self.lb_ports.iter().enumerate() {
            let lp = index(&join(path, "lbPorts"), i);
            if !matches!(l.protocol.as_str(), "TCP" | "UDP") {
                errs.push(FieldError::invalid(
                    join(&lp, "protocol"),
                    format!("{:?}: must be TCP or UDP", l.protocol),
                ));
            }
            if l.port == 0 {
                errs.push(FieldError::invalid(join(&lp, "port"), "0: must be 1-65535"));
            }
        }
        for (i, p) in self.policies.iter().enumerate() {
            let pp = index(&join(path, "policies"), i);
            for (j, ip) in p.pods.iter().enumerate() {
                check_ip(&mut errs, index(&join(&pp, "pods"), j), ip);
            }
            for (dir, rules) in [("ingress", &p.ingress), ("egress", &p.egress)] {
                for (k, r) in rules.iter().flatten().enumerate() {
                    let rp = index(&join(&pp, dir), k);
                    for (m, peer) in r.peers.iter().flatten().enumerate() {
                        let peer_path = index(&join(&rp, "peers"), m);
                        check_cidr(&mut errs, &join(&peer_path, "cidr"), Some(&peer.cidr));
                        for (n, e) in peer.except.iter().enumerate() {
                            check_cidr(&mut errs, &index(&join(&peer_path, "except"), n), Some(e));
                        }
                    }
                    for (m, port) in r.ports.iter().flatten().enumerate() {
                        if !matches!(port.protocol.as_str(), "TCP" | "UDP" | "SCTP") {
                            errs.push(FieldError::invalid(
                                join(&index(&join(&rp, "ports"), m), "protocol"),
                                format!("{:?}: must be TCP, UDP or SCTP", port.protocol),
                            ));
                        }
                    }
                }
            }
        }
        errs
    }

    /// The parsed pod CIDR, when valid.
    pub fn pod_cidr(&self) -> Option<Cidr> {
        self.pod_cidr.as_deref()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NetworkConfig {
        NetworkConfig {
            pod_cidr: Some("10.42.1.0/24".into()),
            cluster_cidr: Some("10.42.0.0/16".into()),
            service_cidr: Some("10.43.0.0/16".into()),
            dns: Some(DnsConfig {
                cluster_domain: "cluster.local".into(),
                upstreams: vec!["10.77.0.1".into()],
                hosts: Vec::new(),
            }),
            routes: vec![PodRoute {
                node: "pi-2".into(),
                cidr: "10.42.2.0/24".into(),
                via: "10.77.0.12".into(),
            }],
            services: vec![ServiceEntry {
                namespace: "default".into(),
                name: "web".into(),
                cluster_ip: Some("10.43.0.20".into()),
                client_ip_affinity_seconds: None,
                addresses: Vec::new(),
                ports: vec![ServicePortEntry {
                    name: "http".into(),
                    protocol: "TCP".into(),
                    port: 80,
                    node_port: Some(30080),
                    endpoints: vec![Endpoint {
                        ip: "10.42.2.5".into(),
                        port: 8080,
                        node: "pi-2".into(),
                    }],
                }],
            }],
            policies: vec![PolicyEntry {
                namespace: "default".into(),
                name: "db".into(),
                pods: vec!["10.42.2.5".into()],
                ingress: Some(vec![PolicyRule {
                    peers: Some(vec![PolicyPeer {
                        cidr: "10.42.1.0/24".into(),
                        except: vec!["10.42.1.9/32".into()],
                    }]),
                    ports: Some(vec![PolicyPort {
                        protocol: "TCP".into(),
                        port: Some(5432),
                        end_port: None,
                    }]),
                }]),
                egress: None,
            }],
            lb_ports: vec![LbPort {
                namespace: "default".into(),
                name: "web".into(),
                protocol: "TCP".into(),
                port: 8080,
            }],
        }
    }

    #[test]
    fn a_full_config_is_valid_and_round_trips() {
        let c = config();
        assert!(c.validate("network").is_empty());
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["podCIDR"], "10.42.1.0/24");
        assert_eq!(v["services"][0]["clusterIP"], "10.43.0.20");
        assert_eq!(v["services"][0]["ports"][0]["nodePort"], 30080);
        assert_eq!(v["lbPorts"][0]["port"], 8080);
        assert_eq!(serde_json::from_value::<NetworkConfig>(v).unwrap(), c);
    }

    #[test]
    fn bad_addresses_are_named_by_path() {
        let mut c = config();
        c.pod_cidr = Some("10.42.1.0/31".into());
        c.routes[0].via = "pi-2".into();
        c.services[0].ports[0].protocol = "ICMP".into();
        c.services[0].ports[0].endpoints[0].ip = "fd00::1".into();
        c.services.push(c.services[0].clone());
        c.policies[0].pods[0] = "x".into();
        c.policies[0].ingress.as_mut().unwrap()[0]
            .peers
            .as_mut()
            .unwrap()[0]
            .except[0] = "10.42.1.9".into();
        c.lb_ports[0].protocol = "SCTP".into();
        let e = c.validate("network").to_string();
        for want in [
            "network.podCIDR",
            "network.routes[0].via",
            "network.services[0].ports[0].protocol",
            "network.services[0].ports[0].endpoints[0].ip",
            "network.services[1]",
            "network.policies[0].pods[0]",
            "network.policies[0].ingress[0].peers[0].except[0]",
            "network.lbPorts[0].protocol",
        ] {
            assert!(e.contains(want), "{want} missing in {e}");
        }
    }
}
