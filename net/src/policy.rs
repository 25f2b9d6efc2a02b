//! NetworkPolicy enforcement in the node's nft table, as a pure function of
//! the cluster's [`PolicyEntry`]s ([`policy_chains`]; [`crate::rules`] adds
//! the chains to the node table). Kubernetes semantics: a pod selected by
//! at least one policy with `egress` (`ingress`) sends (accepts) only what
//! one rule of those policies allows; other pods are not restricted;
//! replies of allowed connections pass (stateful).
//!
//! The rules as written (`nft list` leaves out `meta l4proto`, implied by
//! `tcp dport`):
//!
//! ```text
//! chain policy_forward {   # type filter hook forward priority 0; policy accept
//!     ct state established,related accept
//!     jump pol_egress
//!     jump pol_ingress
//! }
//! chain pol_egress {       # one rule per (policy rule, peer group, protocol)
//!     ip saddr 10.42.1.4 meta l4proto tcp tcp dport 5432 return
//!     ip saddr 10.42.1.4 drop  # every egress-isolated pod
//! }
//! chain pol_ingress {
//!     ip daddr 10.42.1.2 ip saddr 10.42.1.0/24 ip saddr != 10.42.1.4 meta l4proto tcp tcp dport 5432 return
//!     ip daddr 10.42.1.2 drop
//! }
//! ```
//!
//! A rule matches when the peer address is in one of its peers (a CIDR
//! minus its `except`s; `None`: any) and the L4 protocol and destination
//! port are in its ports (`None`: any packet; a port without number: every
//! port of that protocol; `port`–`end_port`: a range). A rule with no peer
//! or no port (`Some([])`) matches nothing. Without any selected pod there
//! is no chain at all. Forwarded traffic only: the node's own traffic to
//! and from its pods (`input`/`output`) is always allowed, as in Kubernetes.
//! Addresses and CIDRs that do not parse as IPv4 are ignored.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use bramble_api::cidr::Cidr;
use bramble_api::protocol::{PolicyEntry, PolicyPeer, PolicyPort, PolicyRule};
use serde_json::{Value, json};

use crate::nft::Chain;
use crate::nft::expr::{cmp, eq, jump, meta, payload};

/// The filter base chain on `forward`.
pub const FORWARD_CHAIN: &str = "policy_forward";
/// Checks the sender of pods isolated for egress.
pub const EGRESS_CHAIN: &str = "pol_egress";
/// Checks the receiver of pods isolated for ingress.
pub const INGRESS_CHAIN: &str = "pol_ingress";

/// Which side of the packet a direction's selected pod and peer are.
#[derive(Clone, Copy)]
enum Dir {
    Egress,
    Ingress,
}

impl Dir {
    /// (the selected pod's field, the peer's field)
    fn fields(self) -> (&'static str, &'static str) {
        match self {
            Dir::Egress => ("saddr", "daddr"),
            Dir::Ingress => ("daddr", "saddr"),
        }
    }

    fn rules(self, p: &PolicyEntry) -> Option<&Vec<PolicyRule>> {
        match self {
            Dir::Egress => p.egress.as_ref(),
            Dir::Ingress => p.ingress.as_ref(),
        }
    }
}

/// One element or an anonymous set `{ a, b }`.
fn one_or_set(mut elems: Vec<Value>) -> Value {
    if elems.len() == 1 {
        elems.remove(0)
    } else {
        json!({"set": elems})
    }
}

/// `10.1.2.3/32` → `"10.1.2.3"`, else a prefix.
fn cidr_value(c: &Cidr) -> Value {
    if c.prefix == 32 {
        json!(c.addr.to_string())
    } else {
        json!({"prefix": {"addr": c.addr.to_string(), "len": c.prefix}})
    }
}

fn parse_cidr(s: &str) -> Option<Cidr> {
    let c: Cidr = s.parse().ok()?;
    c.addr.is_ipv4().then(|| c.network())
}

/// The IPv4 networks among `cidrs`, sorted, without those inside another
/// (so an interval set never holds overlapping elements).
fn networks<'a>(cidrs: impl IntoIterator<Item = &'a str>) -> Vec<Cidr> {
    let mut all: Vec<Cidr> = cidrs.into_iter().filter_map(parse_cidr).collect();
    // Widest first, so a network is only checked against wider ones.
    all.sort_by_key(|c| (c.prefix, c.addr));
    all.dedup();
    let mut kept: Vec<Cidr> = Vec::new();
    for c in all {
        if !kept.iter().any(|k| k.contains_cidr(&c)) {
            kept.push(c);
        }
    }
    kept.sort_by_key(|c| (c.addr, c.prefix));
    kept
}

/// The selected pods' addresses, sorted, deduplicated.
fn pod_addrs<'a>(pods: impl IntoIterator<Item = &'a String>) -> Vec<Ipv4Addr> {
    let set: BTreeSet<Ipv4Addr> = pods.into_iter().filter_map(|p| p.parse().ok()).collect();
    set.into_iter().collect()
}

fn addrs_match(field: &str, addrs: &[Ipv4Addr]) -> Value {
    eq(
        payload("ip", field),
        one_or_set(addrs.iter().map(|a| json!(a.to_string())).collect()),
    )
}

/// The peers' matches, one list of expressions per alternative: the
/// peers without exceptions in one set, each peer with exceptions on its
/// own. `None`: any peer (one empty alternative); empty: no peer.
fn peer_matches(field: &str, peers: Option<&[PolicyPeer]>) -> Vec<Vec<Value>> {
    let Some(peers) = peers else {
        return vec![Vec::new()];
    };
    let mut out = Vec::new();
    let plain = networks(
        peers
            .iter()
            .filter(|p| p.except.is_empty())
            .map(|p| p.cidr.as_str()),
    );
    if !plain.is_empty() {
        out.push(vec![eq(
            payload("ip", field),
            one_or_set(plain.iter().map(cidr_value).collect()),
        )]);
    }
    for p in peers.iter().filter(|p| !p.except.is_empty()) {
        let Some(c) = parse_cidr(&p.cidr) else {
            continue;
        };
        let except = networks(p.except.iter().map(String::as_str));
        if except.iter().any(|e| e.contains_cidr(&c)) {
            continue; // everything excepted
        }
        let mut m = vec![eq(payload("ip", field), cidr_value(&c))];
        if !except.is_empty() {
            m.push(cmp(
                "!=",
                payload("ip", field),
                one_or_set(except.iter().map(cidr_value).collect()),
            ));
        }
        out.push(m);
    }
    out
}

/// Sorted, merged port ranges (`(port, end)`, inclusive).
fn merge_ranges(mut r: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    r.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The ports' matches, one alternative per protocol (`meta l4proto P`
/// and, unless every port of P is allowed, `P dport { ports, ranges }`).
/// `None`: any packet (one empty alternative); empty: none.
fn port_matches(ports: Option<&[PolicyPort]>) -> Vec<Vec<Value>> {
    let Some(ports) = ports else {
        return vec![Vec::new()];
    };
    let mut out = Vec::new();
    for (name, proto) in [("TCP", "tcp"), ("UDP", "udp"), ("SCTP", "sctp")] {
        let of: Vec<&PolicyPort> = ports.iter().filter(|p| p.protocol == name).collect();
        if of.is_empty() {
            continue;
        }
        let l4 = eq(meta("l4proto"), json!(proto));
        if of.iter().any(|p| p.port.is_none()) {
            out.push(vec![l4]);
            continue;
        }
        let ranges = merge_ranges(
            of.iter()
                .filter_map(|p| {
                    let lo = p.port.filter(|&n| n != 0)?;
                    Some((lo, p.end_port.filter(|&e| e >= lo).unwrap_or(lo)))
                })
                .collect(),
        );
        if ranges.is_empty() {
            continue;
        }
        let elems = ranges
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    json!(lo)
                } else {
                    json!({"range": [lo, hi]})
                }
            })
            .collect();
        out.push(vec![l4, eq(payload(proto, "dport"), one_or_set(elems))]);
    }
    out
}

/// The check chain of one direction: per rule of every policy isolating
/// pods in that direction, `<pods> <peer> <ports> return`; then a drop for
/// every isolated pod. `None` when no policy isolates a pod that way.
fn direction_chain(name: &str, dir: Dir, policies: &[PolicyEntry]) -> Option<Chain> {
    let (own, peer) = dir.fields();
    let mut chain = Chain::regular(name);
    let mut isolated = BTreeSet::new();
    for p in policies {
        let Some(rules) = dir.rules(p) else {
            continue;
        };
        let pods = pod_addrs(&p.pods);
        if pods.is_empty() {
            continue;
        }
        isolated.extend(pods.iter().copied());
        let selected = addrs_match(own, &pods);
        for r in rules {
            let ports = port_matches(r.ports.as_deref());
            for pm in peer_matches(peer, r.peers.as_deref()) {
                for l4 in &ports {
                    let mut rule = vec![selected.clone()];
                    rule.extend(pm.iter().cloned());
                    rule.extend(l4.iter().cloned());
                    rule.push(json!({"return": null}));
                    chain.rules.push(rule);
                }
            }
        }
    }
    if isolated.is_empty() {
        return None;
    }
    let isolated: Vec<Ipv4Addr> = isolated.into_iter().collect();
    chain
        .rules
        .push(vec![addrs_match(own, &isolated), json!({"drop": null})]);
    Some(chain)
}

/// The policy chains for the node table: [`FORWARD_CHAIN`] (filter
/// `forward`, priority 0) and the check chains it jumps to; empty when no
/// policy selects a pod.
pub fn policy_chains(policies: &[PolicyEntry]) -> Vec<Chain> {
    let checks: Vec<Chain> = [(EGRESS_CHAIN, Dir::Egress), (INGRESS_CHAIN, Dir::Ingress)]
        .into_iter()
        .filter_map(|(name, dir)| direction_chain(name, dir, policies))
        .collect();
    if checks.is_empty() {
        return Vec::new();
    }
    let mut forward = Chain::base(FORWARD_CHAIN, "filter", "forward", 0);
    forward.rules.push(vec![
        json!({"match": {"op": "in", "left": {"ct": {"key": "state"}},
            "right": ["established", "related"]}}),
        json!({"accept": null}),
    ]);
    for c in &checks {
        forward.rules.push(vec![jump(&c.name)]);
    }
    let mut out = vec![forward];
    out.extend(checks);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(cidr: &str, except: &[&str]) -> PolicyPeer {
        PolicyPeer {
            cidr: cidr.into(),
            except: except.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn port(protocol: &str, port: Option<u16>, end_port: Option<u16>) -> PolicyPort {
        PolicyPort {
            protocol: protocol.into(),
            port,
            end_port,
        }
    }

    fn policy(
        pods: &[&str],
        ingress: Option<Vec<PolicyRule>>,
        egress: Option<Vec<PolicyRule>>,
    ) -> PolicyEntry {
        PolicyEntry {
            namespace: "default".into(),
            name: "p".into(),
            pods: pods.iter().map(|p| p.to_string()).collect(),
            ingress,
            egress,
        }
    }

    fn chain<'a>(chains: &'a [Chain], name: &str) -> &'a Chain {
        chains
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no chain {name}"))
    }

    fn schema_ok(chains: Vec<Chain>) {
        let t = crate::nft::Table {
            name: "bramble".into(),
            chains,
            ..Default::default()
        };
        crate::nft::typed(&t.batch(), "bramble").unwrap();
    }

    fn ret() -> Value {
        json!({"return": null})
    }

    fn drop() -> Value {
        json!({"drop": null})
    }

    fn tcp_dport(right: Value) -> Vec<Value> {
        vec![
            eq(meta("l4proto"), json!("tcp")),
            eq(payload("tcp", "dport"), right),
        ]
    }

    #[test]
    fn no_policy_or_no_selected_pod_means_no_chain() {
        assert!(policy_chains(&[]).is_empty());
        let none = policy(&[], Some(Vec::new()), Some(Vec::new()));
        let unrestricted = policy(&["10.42.1.2"], None, None);
        assert!(policy_chains(&[none, unrestricted]).is_empty());
    }

    #[test]
    fn ingress_allowing_one_pod_on_one_port() {
        let p = policy(
            &["10.42.1.2"],
            Some(vec![PolicyRule {
                peers: Some(vec![peer("10.42.1.3/32", &[])]),
                ports: Some(vec![port("TCP", Some(5432), None)]),
            }]),
            None,
        );
        let chains = policy_chains(&[p]);
        assert_eq!(chains.len(), 2, "{chains:?}");
        let fwd = chain(&chains, FORWARD_CHAIN);
        let hook = fwd.hook.as_ref().unwrap();
        assert_eq!((hook.kind, hook.hook, hook.prio), ("filter", "forward", 0));
        assert_eq!(
            fwd.rules,
            vec![
                vec![
                    json!({"match": {"op": "in", "left": {"ct": {"key": "state"}},
                        "right": ["established", "related"]}}),
                    json!({"accept": null}),
                ],
                vec![jump(INGRESS_CHAIN)],
            ]
        );
        let mut allow = vec![
            eq(payload("ip", "daddr"), json!("10.42.1.2")),
            eq(payload("ip", "saddr"), json!("10.42.1.3")),
        ];
        allow.extend(tcp_dport(json!(5432)));
        allow.push(ret());
        assert_eq!(
            chain(&chains, INGRESS_CHAIN).rules,
            vec![
                allow,
                vec![eq(payload("ip", "daddr"), json!("10.42.1.2")), drop()],
            ]
        );
    }

    #[test]
    fn deny_all_is_only_the_drop_and_egress_comes_first() {
        let chains = policy_chains(&[
            policy(&["10.42.1.2", "10.42.1.9"], Some(Vec::new()), None),
            policy(&["10.42.1.4"], None, Some(Vec::new())),
        ]);
        let fwd = chain(&chains, FORWARD_CHAIN);
        assert_eq!(fwd.rules[1], vec![jump(EGRESS_CHAIN)]);
        assert_eq!(fwd.rules[2], vec![jump(INGRESS_CHAIN)]);
        assert_eq!(
            chain(&chains, INGRESS_CHAIN).rules,
            vec![vec![
                eq(
                    payload("ip", "daddr"),
                    json!({"set": ["10.42.1.2", "10.42.1.9"]})
                ),
                drop()
            ]]
        );
        assert_eq!(
            chain(&chains, EGRESS_CHAIN).rules,
            vec![vec![eq(payload("ip", "saddr"), json!("10.42.1.4")), drop()]]
        );
    }

    #[test]
    fn egress_ports_ranges_protocols_and_any_peer() {
        let p = policy(
            &["10.42.1.4"],
            None,
            Some(vec![
                PolicyRule {
                    peers: None,
                    ports: Some(vec![
                        port("TCP", Some(8000), Some(8010)),
                        port("TCP", Some(5432), None),
                        port("TCP", Some(8005), Some(8020)),
                        port("UDP", Some(53), None),
                        port("SCTP", None, None),
                    ]),
                },
                // Matches nothing: no rule.
                PolicyRule {
                    peers: Some(Vec::new()),
                    ports: None,
                },
                PolicyRule {
                    peers: None,
                    ports: Some(Vec::new()),
                },
                // Any packet to this network.
                PolicyRule {
                    peers: Some(vec![peer("192.168.1.0/24", &[])]),
                    ports: None,
                },
            ]),
        );
        let chains = policy_chains(&[p]);
        let me = eq(payload("ip", "saddr"), json!("10.42.1.4"));
        let mut tcp = vec![me.clone()];
        tcp.extend(tcp_dport(json!({"set": [5432, {"range": [8000, 8020]}]})));
        tcp.push(ret());
        assert_eq!(
            chain(&chains, EGRESS_CHAIN).rules,
            vec![
                tcp,
                vec![
                    me.clone(),
                    eq(meta("l4proto"), json!("udp")),
                    eq(payload("udp", "dport"), json!(53)),
                    ret()
                ],
                vec![me.clone(), eq(meta("l4proto"), json!("sctp")), ret()],
                vec![
                    me.clone(),
                    eq(
                        payload("ip", "daddr"),
                        json!({"prefix": {"addr": "192.168.1.0", "len": 24}})
                    ),
                    ret()
                ],
                vec![me, drop()],
            ]
        );
        assert!(chains.iter().all(|c| c.name != INGRESS_CHAIN));
        schema_ok(chains);
    }

    #[test]
    fn ip_blocks_with_excepts_and_overlaps() {
        let p = policy(
            &["10.42.1.2", "10.42.1.2", "bogus"],
            Some(vec![PolicyRule {
                peers: Some(vec![
                    peer("10.42.1.3/32", &[]),
                    // host bits cleared; contains the /32 above
                    peer("10.42.7.9/16", &[]),
                    peer("10.42.1.77/32", &[]),
                    peer("10.0.0.0/8", &["10.1.0.0/16", "10.1.2.0/24"]),
                    // all excepted: no rule
                    peer("172.16.0.0/16", &["172.16.0.0/12"]),
                    peer("not-a-cidr", &[]),
                ]),
                ports: Some(vec![port("TCP", Some(5432), None)]),
            }]),
            None,
        );
        let chains = policy_chains(&[p]);
        let me = eq(payload("ip", "daddr"), json!("10.42.1.2"));
        let rules = &chain(&chains, INGRESS_CHAIN).rules;
        assert_eq!(rules.len(), 3, "{rules:?}");
        let mut plain = vec![
            me.clone(),
            eq(
                payload("ip", "saddr"),
                json!({"prefix": {"addr": "10.42.0.0", "len": 16}}),
            ),
        ];
        plain.extend(tcp_dport(json!(5432)));
        plain.push(ret());
        assert_eq!(rules[0], plain);
        let mut block = vec![
            me.clone(),
            eq(
                payload("ip", "saddr"),
                json!({"prefix": {"addr": "10.0.0.0", "len": 8}}),
            ),
            cmp(
                "!=",
                payload("ip", "saddr"),
                json!({"prefix": {"addr": "10.1.0.0", "len": 16}}),
            ),
        ];
        block.extend(tcp_dport(json!(5432)));
        block.push(ret());
        assert_eq!(rules[1], block);
        assert_eq!(rules[2], vec![me, drop()]);
        schema_ok(chains);
    }

    #[test]
    fn several_policies_on_one_pod_allow_the_union() {
        let allow = |from: &str| {
            Some(vec![PolicyRule {
                peers: Some(vec![peer(from, &[])]),
                ports: None,
            }])
        };
        let chains = policy_chains(&[
            policy(&["10.42.1.2"], allow("10.42.1.3/32"), None),
            policy(&["10.42.1.2", "10.42.2.8"], allow("10.42.1.4/32"), None),
        ]);
        let rules = &chain(&chains, INGRESS_CHAIN).rules;
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0][1], eq(payload("ip", "saddr"), json!("10.42.1.3")));
        assert_eq!(
            rules[1][0],
            eq(
                payload("ip", "daddr"),
                json!({"set": ["10.42.1.2", "10.42.2.8"]})
            )
        );
        assert_eq!(
            rules[2],
            vec![
                eq(
                    payload("ip", "daddr"),
                    json!({"set": ["10.42.1.2", "10.42.2.8"]})
                ),
                drop()
            ]
        );
    }
}
