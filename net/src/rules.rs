//! The nftables table a node programs for its pods and the cluster's
//! services, as a pure function of the node's [`NetworkConfig`] and the
//! hostPorts of its pods ([`node_table`]):
//!
//! - `services` (jumped to from nat `prerouting` and `output`): per
//!   ClusterIP port with ready endpoints, `ip daddr VIP <proto> dport P
//!   jump svc_…`; `svc_…` spreads new connections with `numgen random mod
//!   N vmap` over one `ep_…` chain per endpoint, which DNATs to it. With
//!   `sessionAffinity: ClientIP` each `ep_…` chain also remembers the
//!   client in a timeout set (`aff_ep_…`) that `svc_…` checks first.
//! - `nodeports` (for `fib daddr type local`): `<proto> dport NODEPORT`
//!   → the same `svc_…` chain, marked for masquerade so replies come back
//!   through this node; also the Service port of each LoadBalancer port the
//!   node serves on its addresses (`lb_ports`).
//! - `hostports` (for `fib daddr type local`): DNAT to `podIP:containerPort`.
//! - hairpin: an `ep_…` chain marks the connection when the client is the
//!   endpoint itself (same for hostPorts); `postrouting` masquerades marked
//!   packets ([`MASQ_MARK`]) and pod traffic leaving the cluster CIDR.
//! - a service port without ready endpoints is rejected (TCP reset, ICMP
//!   port-unreachable otherwise) in filter `forward`/`output` (ClusterIP)
//!   and `input` (node port), so clients fail fast instead of timing out.
//! - NetworkPolicies: filter `policy_forward` and its check chains, only
//!   when a policy selects a pod ([`crate::policy`]).

use std::net::Ipv4Addr;

use bramble_api::cidr::Cidr;
use bramble_api::protocol::{NetworkConfig, ServiceEntry, ServicePortEntry};
use serde_json::{Value, json};

use crate::nft::expr::{cmp, remember_saddr, saddr_in};
use crate::nft::expr::{
    daddr_local, dnat, eq, has_mark_bit, jump, masquerade, meta, payload, prefix, random_vmap,
    reject, set_mark_bit,
};
use crate::nft::{Chain, Table, TimeoutSet};
use crate::policy::policy_chains;

/// The packet mark bit for "masquerade this connection".
pub const MASQ_MARK: u32 = 0x4000;

/// A pod's `hostPort`: DNAT from the node's addresses to the pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    pub host_port: u16,
    pub pod_ip: Ipv4Addr,
    pub container_port: u16,
}

/// `TCP` → `tcp`; `None` for anything else.
fn l4(protocol: &str) -> Option<&'static str> {
    match protocol {
        "TCP" => Some("tcp"),
        "UDP" => Some("udp"),
        "SCTP" => Some("sctp"),
        _ => None,
    }
}

fn ipv4_cidr(s: Option<&str>) -> Option<Cidr> {
    let c: Cidr = s?.parse().ok()?;
    c.addr.is_ipv4().then(|| c.network())
}

/// `svc_<ns>_<name>_<proto>_<port>` (`_` never occurs in the names).
fn svc_chain(s: &ServiceEntry, p: &ServicePortEntry, proto: &str) -> String {
    format!("svc_{}_{}_{proto}_{}", s.namespace, s.name, p.port)
}

fn dport(proto: &str, port: u16) -> Value {
    eq(payload(proto, "dport"), json!(port))
}

/// The node's table `name`; see the module docs.
pub fn node_table(name: &str, cfg: &NetworkConfig, host_ports: &[HostPort]) -> Table {
    let mut services = Chain::regular("services");
    let mut nodeports = Chain::regular("nodeports");
    let mut no_endpoints = Chain::regular("no_endpoints");
    let mut no_nodeports = Chain::regular("no_nodeports");
    let mut lb = Vec::new();
    let mut sets = Vec::new();
    let lb_ports: std::collections::BTreeSet<(&str, &str, &str, u16)> = cfg
        .lb_ports
        .iter()
        .map(|l| {
            (
                l.namespace.as_str(),
                l.name.as_str(),
                l.protocol.as_str(),
                l.port,
            )
        })
        .collect();
    for s in &cfg.services {
        let vip: Option<Ipv4Addr> = s.cluster_ip.as_deref().and_then(|ip| ip.parse().ok());
        for p in &s.ports {
            let Some(proto) = l4(&p.protocol) else {
                continue;
            };
            // Served on this node's addresses too, as a node port.
            let lb_port = lb_ports
                .contains(&(
                    s.namespace.as_str(),
                    s.name.as_str(),
                    p.protocol.as_str(),
                    p.port,
                ))
                .then_some(p.port);
            let eps: Vec<(Ipv4Addr, u16)> = p
                .endpoints
                .iter()
                .filter_map(|e| Some((e.ip.parse().ok()?, e.port)))
                .collect();
            if eps.is_empty() {
                if let Some(vip) = vip {
                    no_endpoints.rules.push(vec![
                        eq(payload("ip", "daddr"), json!(vip.to_string())),
                        dport(proto, p.port),
                        reject(proto),
                    ]);
                }
                for np in p.node_port.into_iter().chain(lb_port) {
                    no_nodeports
                        .rules
                        .push(vec![dport(proto, np), reject(proto)]);
                }
                continue;
            }
            let svc = svc_chain(s, p, proto);
            let mut chain = Chain::regular(&svc);
            let mut ep_chains = Vec::new();
            for (i, (ip, port)) in eps.iter().enumerate() {
                let mut ep = Chain::regular(format!(
                    "ep_{}_{}_{proto}_{}_{i}",
                    s.namespace, s.name, p.port
                ));
                ep.rules.push(vec![
                    eq(payload("ip", "saddr"), json!(ip.to_string())),
                    set_mark_bit(MASQ_MARK),
                ]);
                if let Some(timeout) = s.client_ip_affinity_seconds {
                    // ClientIP affinity: the client sticks to this endpoint
                    // while it keeps connecting within `timeout`.
                    let set = format!("aff_{}", ep.name);
                    ep.rules.push(vec![remember_saddr(&set)]);
                    chain.rules.push(vec![saddr_in(&set), jump(&ep.name)]);
                    sets.push(TimeoutSet {
                        name: set,
                        timeout_seconds: timeout.max(1),
                    });
                }
                ep.rules
                    .push(vec![eq(meta("l4proto"), json!(proto)), dnat(ip, *port)]);
                ep_chains.push(ep);
            }
            let names: Vec<String> = ep_chains.iter().map(|c| c.name.clone()).collect();
            chain.rules.push(vec![if names.len() == 1 {
                jump(&names[0])
            } else {
                random_vmap(&names)
            }]);
            if let Some(vip) = vip {
                services.rules.push(vec![
                    eq(payload("ip", "daddr"), json!(vip.to_string())),
                    dport(proto, p.port),
                    jump(&svc),
                ]);
            }
            for np in p.node_port.into_iter().chain(lb_port) {
                nodeports
                    .rules
                    .push(vec![dport(proto, np), set_mark_bit(MASQ_MARK), jump(&svc)]);
            }
            lb.push(chain);
            lb.extend(ep_chains);
        }
    }
    let mut hostports = Chain::regular("hostports");
    for hp in host_ports {
        let Some(proto) = l4(&hp.protocol) else {
            continue;
        };
        hostports.rules.push(vec![
            dport(proto, hp.host_port),
            eq(payload("ip", "saddr"), json!(hp.pod_ip.to_string())),
            set_mark_bit(MASQ_MARK),
        ]);
        hostports.rules.push(vec![
            dport(proto, hp.host_port),
            dnat(hp.pod_ip, hp.container_port),
        ]);
    }
    let dnat_rules = || {
        vec![
            vec![jump("services")],
            vec![daddr_local(), jump("nodeports")],
            vec![daddr_local(), jump("hostports")],
        ]
    };
    let mut prerouting = Chain::base("prerouting", "nat", "prerouting", -100);
    prerouting.rules = dnat_rules();
    let mut output = Chain::base("output", "nat", "output", -100);
    output.rules = dnat_rules();
    let mut postrouting = Chain::base("postrouting", "nat", "postrouting", 100);
    postrouting
        .rules
        .push(vec![has_mark_bit(MASQ_MARK), masquerade()]);
    if let (Some(pods), Some(cluster)) = (
        ipv4_cidr(cfg.pod_cidr.as_deref()),
        ipv4_cidr(cfg.cluster_cidr.as_deref()),
    ) {
        postrouting.rules.push(vec![
            eq(payload("ip", "saddr"), prefix(pods.addr, pods.prefix)),
            cmp(
                "!=",
                payload("ip", "daddr"),
                prefix(cluster.addr, cluster.prefix),
            ),
            masquerade(),
        ]);
    }
    let mut filter_forward = Chain::base("filter_forward", "filter", "forward", -10);
    filter_forward.rules.push(vec![jump("no_endpoints")]);
    let mut filter_output = Chain::base("filter_output", "filter", "output", -10);
    filter_output.rules.push(vec![jump("no_endpoints")]);
    let mut filter_input = Chain::base("filter_input", "filter", "input", -10);
    filter_input.rules.push(vec![jump("no_nodeports")]);
    let mut chains = vec![services, nodeports, hostports, no_endpoints, no_nodeports];
    chains.extend(lb);
    chains.extend([
        prerouting,
        output,
        postrouting,
        filter_forward,
        filter_output,
        filter_input,
    ]);
    chains.extend(policy_chains(&cfg.policies));
    Table {
        name: name.to_string(),
        sets,
        chains,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::Endpoint;

    fn svc(
        ns: &str,
        name: &str,
        vip: &str,
        port: u16,
        np: Option<u16>,
        eps: &[(&str, u16)],
    ) -> ServiceEntry {
        ServiceEntry {
            namespace: ns.into(),
            name: name.into(),
            cluster_ip: Some(vip.into()),
            client_ip_affinity_seconds: None,
            addresses: Vec::new(),
            ports: vec![ServicePortEntry {
                name: String::new(),
                protocol: "TCP".into(),
                port,
                node_port: np,
                endpoints: eps
                    .iter()
                    .map(|(ip, p)| Endpoint {
                        ip: ip.to_string(),
                        port: *p,
                        node: String::new(),
                    })
                    .collect(),
            }],
        }
    }

    fn config() -> NetworkConfig {
        NetworkConfig {
            pod_cidr: Some("10.42.1.0/24".into()),
            cluster_cidr: Some("10.42.0.0/16".into()),
            service_cidr: Some("10.43.0.0/16".into()),
            services: vec![
                svc(
                    "default",
                    "web",
                    "10.43.0.20",
                    80,
                    Some(30080),
                    &[("10.42.1.5", 8080), ("10.42.2.7", 8080)],
                ),
                svc("default", "db", "10.43.0.21", 5432, Some(30432), &[]),
            ],
            ..NetworkConfig::default()
        }
    }

    fn chain<'a>(t: &'a Table, name: &str) -> &'a Chain {
        t.chains
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no chain {name}"))
    }

    #[test]
    fn services_spread_over_ready_endpoints_with_numgen() {
        let t = node_table("bramble", &config(), &[]);
        let services = chain(&t, "services");
        assert_eq!(
            services.rules,
            vec![vec![
                json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.43.0.20"}}),
                json!({"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}),
                json!({"jump": {"target": "svc_default_web_tcp_80"}}),
            ]]
        );
        let svc = chain(&t, "svc_default_web_tcp_80");
        assert_eq!(
            svc.rules[0][0],
            json!({"vmap": {
                "key": {"numgen": {"mode": "random", "mod": 2, "offset": 0}},
                "data": {"set": [
                    [0, {"jump": {"target": "ep_default_web_tcp_80_0"}}],
                    [1, {"jump": {"target": "ep_default_web_tcp_80_1"}}],
                ]},
            }})
        );
        let ep = chain(&t, "ep_default_web_tcp_80_1");
        // hairpin mark when the client is the endpoint, then DNAT
        assert_eq!(ep.rules[0][0]["match"]["right"], "10.42.2.7");
        assert_eq!(ep.rules[0][1], set_mark_bit(MASQ_MARK));
        assert_eq!(
            ep.rules[1][1],
            json!({"dnat": {"addr": "10.42.2.7", "port": 8080}})
        );
        // node port: marked for masquerade, same backends
        assert_eq!(
            chain(&t, "nodeports").rules,
            vec![vec![
                dport("tcp", 30080),
                set_mark_bit(MASQ_MARK),
                jump("svc_default_web_tcp_80")
            ]]
        );
        crate::nft::typed(&t.batch(), "bramble").unwrap();
    }

    #[test]
    fn load_balancer_ports_of_this_node_are_answered_like_node_ports() {
        let mut cfg = config();
        let lb = |name: &str, port| bramble_api::protocol::LbPort {
            namespace: "default".into(),
            name: name.into(),
            protocol: "TCP".into(),
            port,
        };
        // web's port 80 with endpoints, db's 5432 without; a port the
        // Service does not have is ignored.
        cfg.lb_ports = vec![lb("web", 80), lb("db", 5432), lb("web", 81)];
        let t = node_table("bramble", &cfg, &[]);
        assert_eq!(
            chain(&t, "nodeports").rules,
            vec![
                vec![
                    dport("tcp", 30080),
                    set_mark_bit(MASQ_MARK),
                    jump("svc_default_web_tcp_80")
                ],
                vec![
                    dport("tcp", 80),
                    set_mark_bit(MASQ_MARK),
                    jump("svc_default_web_tcp_80")
                ],
            ]
        );
        assert_eq!(
            chain(&t, "no_nodeports").rules,
            vec![
                vec![dport("tcp", 30432), reject("tcp")],
                vec![dport("tcp", 5432), reject("tcp")],
            ]
        );
        crate::nft::typed(&t.batch(), "bramble").unwrap();
    }

    #[test]
    fn client_ip_affinity_remembers_the_client_per_endpoint() {
        let mut cfg = config();
        cfg.services[0].client_ip_affinity_seconds = Some(600);
        let t = node_table("bramble", &cfg, &[]);
        assert_eq!(
            t.sets,
            vec![
                TimeoutSet {
                    name: "aff_ep_default_web_tcp_80_0".into(),
                    timeout_seconds: 600
                },
                TimeoutSet {
                    name: "aff_ep_default_web_tcp_80_1".into(),
                    timeout_seconds: 600
                },
            ]
        );
        let svc = chain(&t, "svc_default_web_tcp_80");
        // Known clients first, then the random spread.
        assert_eq!(
            svc.rules[0],
            vec![
                json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                    "right": "@aff_ep_default_web_tcp_80_0"}}),
                jump("ep_default_web_tcp_80_0"),
            ]
        );
        assert!(svc.rules[2][0].get("vmap").is_some());
        let ep = chain(&t, "ep_default_web_tcp_80_1");
        assert_eq!(
            ep.rules[1],
            vec![json!({"set": {"op": "update",
                "elem": {"payload": {"protocol": "ip", "field": "saddr"}},
                "set": "@aff_ep_default_web_tcp_80_1"}})]
        );
        let batch = t.batch();
        assert_eq!(
            batch["nftables"][3]["add"]["set"],
            json!({"family": "ip", "table": "bramble", "name": "aff_ep_default_web_tcp_80_0",
                "type": "ipv4_addr", "flags": ["timeout"], "timeout": 600})
        );
        crate::nft::typed(&batch, "bramble").unwrap();
        // Without affinity: no sets.
        assert!(node_table("bramble", &config(), &[]).sets.is_empty());
    }

    #[test]
    fn a_port_without_endpoints_is_rejected_not_dnatted() {
        let t = node_table("bramble", &config(), &[]);
        assert!(
            !t.chains
                .iter()
                .any(|c| c.name.starts_with("svc_default_db"))
        );
        assert_eq!(
            chain(&t, "no_endpoints").rules,
            vec![vec![
                eq(payload("ip", "daddr"), json!("10.43.0.21")),
                dport("tcp", 5432),
                json!({"reject": {"type": "tcp reset"}}),
            ]]
        );
        assert_eq!(
            chain(&t, "no_nodeports").rules,
            vec![vec![
                dport("tcp", 30432),
                json!({"reject": {"type": "tcp reset"}})
            ]]
        );
        assert_eq!(
            chain(&t, "filter_input").hook.as_ref().unwrap().hook,
            "input"
        );
    }

    #[test]
    fn pods_leaving_the_cluster_are_masqueraded_and_host_ports_dnatted() {
        let hp = HostPort {
            protocol: "UDP".into(),
            host_port: 5353,
            pod_ip: "10.42.1.9".parse().unwrap(),
            container_port: 53,
        };
        let t = node_table("bramble", &config(), &[hp]);
        let post = chain(&t, "postrouting");
        assert_eq!(post.rules[0], vec![has_mark_bit(MASQ_MARK), masquerade()]);
        assert_eq!(
            post.rules[1],
            vec![
                json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                    "right": {"prefix": {"addr": "10.42.1.0", "len": 24}}}}),
                json!({"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                    "right": {"prefix": {"addr": "10.42.0.0", "len": 16}}}}),
                json!({"masquerade": null}),
            ]
        );
        let hostports = chain(&t, "hostports");
        assert_eq!(
            hostports.rules[1],
            vec![dport("udp", 5353), dnat("10.42.1.9", 53)]
        );
        let pre = chain(&t, "prerouting");
        assert_eq!(pre.hook.as_ref().unwrap().prio, -100);
        assert_eq!(pre.rules[2], vec![daddr_local(), jump("hostports")]);
        crate::nft::typed(&t.batch(), "bramble").unwrap();
    }

    #[test]
    fn policies_add_the_filter_chains_to_the_table_only_when_they_select_pods() {
        use bramble_api::protocol::{PolicyEntry, PolicyPeer, PolicyPort, PolicyRule};
        let plain = node_table("bramble", &config(), &[]);
        assert!(plain.chains.iter().all(|c| !c.name.starts_with("pol")));
        let mut cfg = config();
        cfg.policies.push(PolicyEntry {
            namespace: "default".into(),
            name: "db".into(),
            pods: vec!["10.42.1.5".into()],
            ingress: Some(vec![PolicyRule {
                peers: Some(vec![PolicyPeer {
                    cidr: "10.42.0.0/16".into(),
                    except: vec!["10.42.1.9/32".into()],
                }]),
                ports: Some(vec![PolicyPort {
                    protocol: "TCP".into(),
                    port: Some(5432),
                    end_port: Some(5440),
                }]),
            }]),
            egress: Some(Vec::new()),
        });
        let t = node_table("bramble", &cfg, &[]);
        // Everything else unchanged; the policy chains come last.
        assert_eq!(t.chains[..plain.chains.len()], plain.chains[..]);
        let names: Vec<&str> = t.chains[plain.chains.len()..]
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["policy_forward", "pol_egress", "pol_ingress"]);
        crate::nft::typed(&t.batch(), "bramble").unwrap();
        // Selecting no pod: as without policies.
        cfg.policies[0].pods.clear();
        assert_eq!(node_table("bramble", &cfg, &[]), plain);
    }
}
