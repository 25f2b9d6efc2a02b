//! Pod links and the node's nft table with real traffic: a "node"
//! namespace, pod namespaces with veths, a service VIP DNATed to a pod,
//! a port without endpoints rejected, hairpin, hostPort (root).

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use bramble_api::protocol::{Endpoint, NetworkConfig, ServiceEntry, ServicePortEntry};
use bramble_net::routes::{self, NODE_PROTO};
use bramble_net::rules::{HostPort, node_table};
use bramble_net::{NextHop, Route, nft, sysctl, veth};
use bramble_tests::{eventually, require_root};
use common::TestNs;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn a_pod_link_has_eth0_routes_and_reaches_the_gateway() {
    require_root("network namespaces");
    let node = TestNs::new("node");
    let pod = TestNs::new("pod");
    let link = veth::create(
        Some(&node.path()),
        &pod.path(),
        "test/pod-a",
        ip("10.42.1.2"),
        ip("10.42.1.1"),
    )
    .unwrap();
    assert_eq!(link.host_if, veth::host_ifname("test/pod-a"));
    let addr = pod.ip(&["-4", "addr", "show", "eth0"]);
    assert!(addr.contains("inet 10.42.1.2/32"), "{addr}");
    assert!(addr.contains("state UP"), "{addr}");
    let r = pod.ip(&["route", "show"]);
    assert!(r.contains("default via 10.42.1.1 dev eth0"), "{r}");
    assert!(r.contains("10.42.1.1 dev eth0"), "{r}");
    let r = node.ip(&["route", "show", "proto", "78"]);
    assert!(
        r.contains(&format!("10.42.1.2 dev {}", link.host_if)),
        "{r}"
    );
    // The pod reaches a listener on the node's gateway address and back.
    node.serve((ip("10.42.1.1"), 7000), "hello from the node");
    assert_eq!(
        pod.fetch((ip("10.42.1.1"), 7000)).unwrap(),
        "hello from the node"
    );
    // Again (a retried start): replaced, still working.
    veth::create(
        Some(&node.path()),
        &pod.path(),
        "test/pod-a",
        ip("10.42.1.2"),
        ip("10.42.1.1"),
    )
    .unwrap();
    assert_eq!(
        pod.fetch((ip("10.42.1.1"), 7000)).unwrap(),
        "hello from the node"
    );
    veth::remove(Some(&node.path()), &link.host_if).unwrap();
    assert!(veth::pod_links(Some(&node.path())).unwrap().is_empty());
    eventually("the pod's eth0 to go", Duration::from_secs(5), || {
        let links = pod.ip(&["link", "show"]);
        if links.contains("eth0") {
            Err(links)
        } else {
            Ok(())
        }
    });
    assert_eq!(node.ip(&["route", "show", "proto", "78"]).trim(), "");
    // Idempotent.
    veth::remove(Some(&node.path()), &link.host_if).unwrap();
}

fn service(vip: &str, port: u16, np: Option<u16>, eps: &[(&str, u16)]) -> ServiceEntry {
    ServiceEntry {
        namespace: "default".into(),
        name: format!("s{port}"),
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
                .map(|(i, p)| Endpoint {
                    ip: i.to_string(),
                    port: *p,
                    node: String::new(),
                })
                .collect(),
        }],
    }
}

#[test]
fn services_dnat_to_pods_reject_without_endpoints_and_hairpin() {
    require_root("network namespaces");
    let node = TestNs::new("svcnode").with_lan("10.77.0.11");
    let (a, b) = (TestNs::new("svc-a"), TestNs::new("svc-b"));
    let np = node.path();
    sysctl::enable_forwarding(Some(&np)).unwrap();
    // Strict reverse-path filtering (the strictest host setting) works
    // without proxy_arp or per-veth tweaks: a pod's source address routes
    // back through its own veth.
    node.run(|| {
        for k in ["all", "default"] {
            std::fs::write(format!("/proc/sys/net/ipv4/conf/{k}/rp_filter"), "1").unwrap();
        }
    });
    assert!(sysctl::forwarding(Some(&np)).unwrap());
    veth::create(Some(&np), &a.path(), "a", ip("10.42.1.2"), ip("10.42.1.1")).unwrap();
    veth::create(Some(&np), &b.path(), "b", ip("10.42.1.3"), ip("10.42.1.1")).unwrap();
    routes::reconcile(
        Some(&np),
        NODE_PROTO,
        &[Route {
            dst: ip("10.43.0.0"),
            prefix: 16,
            next: NextHop::Dev("lan0".into()),
        }],
    )
    .unwrap();
    a.serve((Ipv4Addr::UNSPECIFIED, 8080), "pod a");
    b.serve((Ipv4Addr::UNSPECIFIED, 8080), "pod b");
    let cfg = NetworkConfig {
        pod_cidr: Some("10.42.1.0/24".into()),
        cluster_cidr: Some("10.42.0.0/16".into()),
        service_cidr: Some("10.43.0.0/16".into()),
        services: vec![
            service("10.43.0.20", 80, Some(30080), &[("10.42.1.2", 8080)]),
            service("10.43.0.21", 81, None, &[]),
            service(
                "10.43.0.22",
                82,
                None,
                &[("10.42.1.2", 8080), ("10.42.1.3", 8080)],
            ),
            ServiceEntry {
                client_ip_affinity_seconds: Some(600),
                addresses: Vec::new(),
                ..service(
                    "10.43.0.23",
                    83,
                    None,
                    &[("10.42.1.2", 8080), ("10.42.1.3", 8080)],
                )
            },
        ],
        ..NetworkConfig::default()
    };
    let hp = HostPort {
        protocol: "TCP".into(),
        host_port: 9090,
        pod_ip: ip("10.42.1.3"),
        container_port: 8080,
    };
    let table = format!("bramble_t{}", std::process::id());
    nft::apply(Some(&np), &node_table(&table, &cfg, &[hp])).unwrap();
    let listed = nft::list_table(Some(&np), &table).unwrap().unwrap();
    assert!(listed.to_string().contains("svc_default_s80_tcp_80"));
    // From the node itself (nat output) and from another pod (prerouting).
    assert_eq!(node.fetch((ip("10.43.0.20"), 80)).unwrap(), "pod a");
    assert_eq!(b.fetch((ip("10.43.0.20"), 80)).unwrap(), "pod a");
    // Hairpin: pod a through the VIP back to itself.
    assert_eq!(a.fetch((ip("10.43.0.20"), 80)).unwrap(), "pod a");
    // Node port on the node's LAN address.
    assert_eq!(node.fetch((ip("10.77.0.11"), 30080)).unwrap(), "pod a");
    // hostPort on the node's address → pod b.
    assert_eq!(node.fetch((ip("10.77.0.11"), 9090)).unwrap(), "pod b");
    // No endpoints: refused (TCP reset); a dropped SYN would end in TimedOut.
    let e = b.fetch((ip("10.43.0.21"), 81)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    // Two endpoints: both get connections.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        seen.insert(node.fetch((ip("10.43.0.22"), 82)).unwrap());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    // ClientIP affinity: one client keeps its endpoint (random would pick
    // both within 12 tries but for 1 in 2^11).
    let first = node.fetch((ip("10.43.0.23"), 83)).unwrap();
    for _ in 0..11 {
        assert_eq!(node.fetch((ip("10.43.0.23"), 83)).unwrap(), first);
    }
    // Replaced atomically with an endpoint change; then removed.
    let mut cfg2 = cfg.clone();
    cfg2.services[0].ports[0].endpoints[0].ip = "10.42.1.3".into();
    nft::apply(Some(&np), &node_table(&table, &cfg2, &[])).unwrap();
    assert_eq!(node.fetch((ip("10.43.0.20"), 80)).unwrap(), "pod b");
    nft::remove_table(Some(&np), &table).unwrap();
    assert!(nft::list_table(Some(&np), &table).unwrap().is_none());
    nft::remove_table(Some(&np), &table).unwrap();
}

#[test]
fn nft_refusing_a_table_says_why_and_changes_nothing() {
    require_root("network namespaces");
    let node = TestNs::new("nftbad");
    let np = node.path();
    let good = nft::Table {
        name: "bramble".into(),
        chains: vec![nft::Chain::regular("kept")],
        ..nft::Table::default()
    };
    nft::apply(Some(&np), &good).unwrap();
    // A jump to a chain that does not exist: nft's own message comes back,
    // and the table in place stays as it was (one transaction).
    let mut c = nft::Chain::regular("a");
    c.rules.push(vec![nft::expr::jump("missing")]);
    let bad = nft::Table {
        name: "bramble".into(),
        chains: vec![c],
        ..nft::Table::default()
    };
    let e = nft::apply(Some(&np), &bad).unwrap_err().to_string();
    assert!(e.contains("nft refused the table"), "{e}");
    assert!(e.contains("Could not process rule"), "{e}");
    let listed = nft::list_table(Some(&np), "bramble")
        .unwrap()
        .unwrap()
        .to_string();
    assert!(listed.contains("\"kept\""), "{listed}");
}
