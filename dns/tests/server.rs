//! The DNS server over real sockets on loopback: cluster names over UDP and
//! TCP, a zone swap, relaying to an upstream (a second server standing in
//! for the site's resolver), SERVFAIL when the upstream is gone, and
//! freebind on an address no interface has.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use bramble_api::protocol::{Endpoint, ServiceEntry, ServicePortEntry};
use bramble_dns::{DnsOptions, DnsServer, Zone};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

fn service(ns: &str, name: &str, ip: &str) -> ServiceEntry {
    ServiceEntry {
        namespace: ns.into(),
        name: name.into(),
        cluster_ip: Some(ip.into()),
        client_ip_affinity_seconds: None,
        addresses: Vec::new(),
        ports: vec![ServicePortEntry {
            name: "http".into(),
            protocol: "TCP".into(),
            port: 80,
            node_port: None,
            endpoints: vec![Endpoint {
                ip: "10.42.0.2".into(),
                port: 8080,
                node: "n1".into(),
            }],
        }],
    }
}

fn start(domain: &str, services: &[ServiceEntry], upstreams: Vec<SocketAddr>) -> DnsServer {
    DnsServer::start(
        DnsOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstreams,
            freebind: false,
        },
        Zone::build(domain, services),
    )
    .unwrap()
}

fn query(name: &str, ty: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
    m.to_vec().unwrap()
}

fn udp(server: SocketAddr, name: &str, ty: RecordType) -> Message {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send_to(&query(name, ty, 4242), server).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.id(), 4242);
    m
}

fn tcp(server: SocketAddr, name: &str, ty: RecordType) -> Message {
    let mut s = TcpStream::connect(server).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let q = query(name, ty, 99);
    s.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
    s.write_all(&q).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    Message::from_vec(&buf).unwrap()
}

fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[test]
fn cluster_names_relay_zone_swap_and_servfail() {
    let upstream = start(
        "site.lan",
        &[service("x", "printer", "192.168.1.50")],
        vec![],
    );
    let dns = start(
        "cluster.local",
        &[service("shop", "web", "10.43.0.11")],
        vec![upstream.addr()],
    );
    let m = udp(dns.addr(), "web.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(a_records(&m), [Ipv4Addr::new(10, 43, 0, 11)]);
    assert!(m.authoritative());
    let m = tcp(
        dns.addr(),
        "_http._tcp.web.shop.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(m.answers().len(), 1);
    let m = udp(dns.addr(), "gone.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::NXDomain);

    // Other names are relayed to the upstream, over UDP and TCP.
    let m = udp(dns.addr(), "printer.x.svc.site.lan.", RecordType::A);
    assert_eq!(a_records(&m), [Ipv4Addr::new(192, 168, 1, 50)]);
    let m = tcp(dns.addr(), "printer.x.svc.site.lan.", RecordType::A);
    assert_eq!(a_records(&m), [Ipv4Addr::new(192, 168, 1, 50)]);

    // A new zone replaces the old one at once.
    dns.set_zone(Zone::build(
        "cluster.local",
        &[service("shop", "api", "10.43.0.12")],
    ));
    let m = udp(dns.addr(), "web.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    let m = udp(dns.addr(), "api.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(a_records(&m), [Ipv4Addr::new(10, 43, 0, 12)]);

    // Upstream gone: SERVFAIL, not silence; cluster names still answer.
    upstream.stop();
    let m = udp(dns.addr(), "printer.x.svc.site.lan.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::ServFail);
    let m = udp(dns.addr(), "api.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(a_records(&m).len(), 1);
    dns.stop();
}

#[test]
fn freebind_binds_an_address_no_interface_has() {
    // 127.0.0.0/8 is all local; a TEST-NET address is not on any interface.
    let plain = DnsServer::start(
        DnsOptions {
            listen: "192.0.2.53:0".parse().unwrap(),
            upstreams: vec![],
            freebind: false,
        },
        Zone::default(),
    );
    let e = plain.unwrap_err();
    assert!(e.to_string().contains("192.0.2.53"), "{e}");
    let free = DnsServer::start(
        DnsOptions {
            listen: "192.0.2.53:0".parse().unwrap(),
            upstreams: vec![],
            freebind: true,
        },
        Zone::default(),
    )
    .unwrap();
    assert_eq!(free.addr().ip().to_string(), "192.0.2.53");
}
