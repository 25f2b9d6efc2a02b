//! NetworkPolicies in the node table with real traffic (root): a "node"
//! namespace routing three pod namespaces — a db (10.42.1.2, echo
//! listeners on 5432 and 8080), a frontend (10.42.1.3, 8080) and another
//! client (10.42.1.4) — and the node table applied with policies.
//! Allowed means a TCP round trip; blocked means the connection attempt
//! times out (dropped, not refused).

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::time::Duration;

use bramble_api::protocol::{NetworkConfig, PolicyEntry, PolicyPeer, PolicyPort, PolicyRule};
use bramble_net::policy::{EGRESS_CHAIN, FORWARD_CHAIN, INGRESS_CHAIN};
use bramble_net::rules::node_table;
use bramble_net::{nft, sysctl, veth};
use bramble_tests::require_root;
use common::TestNs;

const GW: &str = "10.42.1.1";
const DB: &str = "10.42.1.2";
const FRONT: &str = "10.42.1.3";
const OTHER: &str = "10.42.1.4";

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn at(addr: &str, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip(addr), port)
}

/// Echoes every connection's bytes back until it closes; runs until the
/// process ends.
fn echo_server(ns: &TestNs, port: u16) {
    let path = ns.path();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        bramble_net::netns::enter(&path).unwrap();
        let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).unwrap();
        tx.send(()).unwrap();
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = s;
                let mut w = r.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut w);
            });
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
}

/// A TCP connection made from inside `ns` (the socket stays in it).
fn connect(ns: &TestNs, to: SocketAddrV4, timeout: Duration) -> std::io::Result<TcpStream> {
    ns.run(move || {
        let s = TcpStream::connect_timeout(&to.into(), timeout)?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        Ok(s)
    })
}

/// Sends `msg` and reads it back.
fn round_trip(s: &mut TcpStream, msg: &str) -> std::io::Result<()> {
    s.write_all(msg.as_bytes())?;
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back)?;
    assert_eq!(back, msg.as_bytes());
    Ok(())
}

/// `from` opens a connection to `to` and gets its bytes echoed.
fn reaches(from: &TestNs, to: SocketAddrV4) {
    let mut s = connect(from, to, Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("{} → {to}: {e}", from.name));
    round_trip(&mut s, "hello").unwrap_or_else(|e| panic!("{} → {to}: {e}", from.name));
}

/// `from`'s connection attempt to `to` is dropped: it times out.
fn blocked(from: &TestNs, to: SocketAddrV4) {
    match connect(from, to, Duration::from_secs(1)) {
        Ok(_) => panic!("{} → {to}: connected, expected a drop", from.name),
        Err(e) => assert_eq!(
            e.kind(),
            std::io::ErrorKind::TimedOut,
            "{} → {to}: {e}",
            from.name
        ),
    }
}

/// The node and its three pods; dropping it deletes the namespaces and
/// with them the links, routes and the table.
struct Lab {
    table: String,
    db: TestNs,
    front: TestNs,
    other: TestNs,
    node: TestNs,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let node = TestNs::new(&format!("pol{tag}"));
        let (db, front, other) = (TestNs::new("db"), TestNs::new("fe"), TestNs::new("cl"));
        let np = node.path();
        sysctl::enable_forwarding(Some(&np)).unwrap();
        for (ns, name, addr) in [
            (&db, "db", DB),
            (&front, "fe", FRONT),
            (&other, "cl", OTHER),
        ] {
            veth::create(Some(&np), &ns.path(), name, ip(addr), ip(GW)).unwrap();
        }
        echo_server(&db, 5432);
        echo_server(&db, 8080);
        echo_server(&front, 8080);
        Lab {
            table: format!("bramble_p{}", std::process::id()),
            db,
            front,
            other,
            node,
        }
    }

    /// Applies the node table with `policies`; returns `nft list` as JSON text.
    fn apply(&self, policies: Vec<PolicyEntry>) -> String {
        let cfg = NetworkConfig {
            pod_cidr: Some("10.42.1.0/24".into()),
            cluster_cidr: Some("10.42.0.0/16".into()),
            policies,
            ..NetworkConfig::default()
        };
        let np = self.node.path();
        nft::apply(Some(&np), &node_table(&self.table, &cfg, &[])).unwrap();
        nft::list_table(Some(&np), &self.table)
            .unwrap()
            .unwrap()
            .to_string()
    }
}

fn peer(cidr: &str, except: &[&str]) -> PolicyPeer {
    PolicyPeer {
        cidr: cidr.into(),
        except: except.iter().map(|e| e.to_string()).collect(),
    }
}

fn tcp(port: u16) -> PolicyPort {
    PolicyPort {
        protocol: "TCP".into(),
        port: Some(port),
        end_port: None,
    }
}

fn policy(
    name: &str,
    pod: &str,
    ingress: Option<Vec<PolicyRule>>,
    egress: Option<Vec<PolicyRule>>,
) -> PolicyEntry {
    PolicyEntry {
        namespace: "default".into(),
        name: name.into(),
        pods: vec![pod.into()],
        ingress,
        egress,
    }
}

#[test]
fn without_policies_every_pod_reaches_the_db_and_there_is_no_filter_chain() {
    require_root("network namespaces");
    let lab = Lab::new("none");
    let listed = lab.apply(Vec::new());
    assert!(!listed.contains(FORWARD_CHAIN), "{listed}");
    reaches(&lab.front, at(DB, 5432));
    reaches(&lab.other, at(DB, 5432));
    reaches(&lab.db, at(FRONT, 8080));
}

#[test]
fn a_db_policy_admits_only_the_frontend_and_keeps_established_connections() {
    require_root("network namespaces");
    let lab = Lab::new("fe");
    lab.apply(Vec::new());
    // Opened before the policy exists.
    let mut held = connect(&lab.front, at(DB, 5432), Duration::from_secs(3)).unwrap();
    round_trip(&mut held, "before").unwrap();
    let only_frontend = policy(
        "db",
        DB,
        Some(vec![PolicyRule {
            peers: Some(vec![peer(&format!("{FRONT}/32"), &[])]),
            ports: Some(vec![tcp(5432)]),
        }]),
        None,
    );
    let listed = lab.apply(vec![only_frontend.clone()]);
    assert!(listed.contains(INGRESS_CHAIN), "{listed}");
    assert!(!listed.contains(EGRESS_CHAIN), "{listed}");
    reaches(&lab.front, at(DB, 5432));
    blocked(&lab.other, at(DB, 5432));
    // Only the allowed port, even for the frontend.
    blocked(&lab.front, at(DB, 8080));
    // The connection opened before the policy keeps working.
    round_trip(&mut held, "after").unwrap();
    // Stateful: with the frontend isolated for ingress too (deny all),
    // the replies to its own connections still come in; new connections
    // to it do not.
    lab.apply(vec![
        only_frontend,
        policy("fe", FRONT, Some(Vec::new()), None),
    ]);
    reaches(&lab.front, at(DB, 5432));
    round_trip(&mut held, "still").unwrap();
    blocked(&lab.db, at(FRONT, 8080));
    // Policies gone: open again.
    lab.apply(Vec::new());
    reaches(&lab.other, at(DB, 5432));
    reaches(&lab.db, at(FRONT, 8080));
}

#[test]
fn an_empty_ingress_denies_everyone_but_not_the_pods_own_connections() {
    require_root("network namespaces");
    let lab = Lab::new("deny");
    lab.apply(vec![policy("db", DB, Some(Vec::new()), None)]);
    blocked(&lab.front, at(DB, 5432));
    blocked(&lab.other, at(DB, 8080));
    // The db is not restricted for egress; the replies come back.
    reaches(&lab.db, at(FRONT, 8080));
    // Others are not isolated.
    reaches(&lab.other, at(FRONT, 8080));
}

#[test]
fn an_egress_policy_lets_the_client_reach_only_the_db_port() {
    require_root("network namespaces");
    let lab = Lab::new("eg");
    lab.apply(vec![policy(
        "client",
        OTHER,
        None,
        Some(vec![PolicyRule {
            peers: None,
            ports: Some(vec![tcp(5432)]),
        }]),
    )]);
    reaches(&lab.other, at(DB, 5432));
    blocked(&lab.other, at(DB, 8080));
    blocked(&lab.other, at(FRONT, 8080));
    // Other pods are unrestricted.
    reaches(&lab.front, at(DB, 8080));
}

#[test]
fn ip_blocks_with_exceptions() {
    require_root("network namespaces");
    let lab = Lab::new("blk");
    // Ingress: the pod network except the other client.
    lab.apply(vec![policy(
        "db",
        DB,
        Some(vec![PolicyRule {
            peers: Some(vec![peer("10.42.1.0/24", &[&format!("{OTHER}/32")])]),
            ports: None,
        }]),
        None,
    )]);
    reaches(&lab.front, at(DB, 5432));
    reaches(&lab.front, at(DB, 8080));
    blocked(&lab.other, at(DB, 5432));
    // Egress: the client reaches the pod network except the frontend.
    lab.apply(vec![policy(
        "client",
        OTHER,
        None,
        Some(vec![PolicyRule {
            peers: Some(vec![peer("10.42.0.0/16", &[&format!("{FRONT}/32")])]),
            ports: None,
        }]),
    )]);
    reaches(&lab.other, at(DB, 5432));
    blocked(&lab.other, at(FRONT, 8080));
}

#[test]
fn nft_accepts_every_rule_form() {
    require_root("network namespaces");
    let node = TestNs::new("polforms");
    let table = format!("bramble_f{}", std::process::id());
    let port = |protocol: &str, port: Option<u16>, end_port: Option<u16>| PolicyPort {
        protocol: protocol.into(),
        port,
        end_port,
    };
    let rules = vec![
        PolicyRule {
            peers: Some(vec![
                peer("10.42.1.3/32", &[]),
                peer("10.42.2.0/24", &[]),
                peer("10.0.0.0/8", &["10.42.0.0/16", "10.1.0.0/16"]),
            ]),
            ports: Some(vec![
                tcp(5432),
                port("TCP", Some(8000), Some(8100)),
                port("UDP", Some(53), None),
                port("SCTP", None, None),
            ]),
        },
        PolicyRule {
            peers: None,
            ports: None,
        },
    ];
    let cfg = NetworkConfig {
        policies: vec![PolicyEntry {
            namespace: "default".into(),
            name: "all".into(),
            pods: vec!["10.42.1.2".into(), "10.42.1.5".into()],
            ingress: Some(rules.clone()),
            egress: Some(rules),
        }],
        ..NetworkConfig::default()
    };
    let np = node.path();
    nft::apply(Some(&np), &node_table(&table, &cfg, &[])).unwrap();
    let listed = node.exec(&["nft", "list", "chain", "ip", &table, INGRESS_CHAIN]);
    assert!(listed.contains("tcp dport { 5432, 8000-8100 }"), "{listed}");
    assert!(
        listed.contains("ip saddr != { 10.1.0.0/16, 10.42.0.0/16 }"),
        "{listed}"
    );
    assert!(listed.contains("udp dport 53"), "{listed}");
    assert!(
        listed.contains("ip daddr { 10.42.1.2, 10.42.1.5 } drop"),
        "{listed}"
    );
    nft::remove_table(Some(&np), &table).unwrap();
}
