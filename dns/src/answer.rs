//! One DNS query against the [`Zone`]: the response message for cluster
//! names, or [`Reply::Forward`] for names outside the cluster domain.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::zone::{Lookup, Zone};

/// TTL of cluster records: short, so endpoint changes show quickly.
pub const TTL: u32 = 5;
/// Largest UDP answer without EDNS.
pub const UDP_PLAIN_MAX: usize = 512;

/// What to do with a query.
#[derive(Debug)]
pub enum Reply {
    /// Send these bytes back.
    Answer(Vec<u8>),
    /// Not a cluster name: relay the query to an upstream resolver.
    Forward,
}

/// Answers the query in `packet` from `zone`. `udp` limits the size of the
/// answer (truncated with TC set, so clients retry over TCP).
pub fn answer(zone: &Zone, packet: &[u8], udp: bool) -> Option<Reply> {
    let query = Message::from_vec(packet).ok()?;
    if query.message_type() != MessageType::Query {
        return None;
    }
    let mut resp = Message::new();
    resp.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true);
    let q = match (query.op_code(), query.queries()) {
        (OpCode::Query, [q]) => q.clone(),
        (OpCode::Query, _) => {
            resp.set_response_code(ResponseCode::FormErr);
            return encode(resp).map(Reply::Answer);
        }
        _ => {
            resp.set_response_code(ResponseCode::NotImp);
            return encode(resp).map(Reply::Answer);
        }
    };
    resp.add_query(q.clone());
    let entry = match zone.lookup(&q.name().to_ascii()) {
        Lookup::NotOurs => return Some(Reply::Forward),
        Lookup::NxDomain => {
            resp.set_authoritative(true)
                .set_response_code(ResponseCode::NXDomain);
            return encode(resp).map(Reply::Answer);
        }
        Lookup::Found(e) => e,
    };
    resp.set_authoritative(true);
    if q.query_class() == DNSClass::IN {
        let name = q.name().clone();
        if matches!(q.query_type(), RecordType::A | RecordType::ANY) {
            for ip in &entry.a {
                resp.add_answer(Record::from_rdata(name.clone(), TTL, RData::A(A(*ip))));
            }
        }
        if matches!(q.query_type(), RecordType::SRV | RecordType::ANY) {
            let weight = u16::try_from(100 / entry.srv.len().max(1)).unwrap_or(1);
            for (port, target) in &entry.srv {
                let Ok(mut target) = Name::from_ascii(target) else {
                    continue;
                };
                target.set_fqdn(true);
                resp.add_answer(Record::from_rdata(
                    name.clone(),
                    TTL,
                    RData::SRV(SRV::new(0, weight, *port, target)),
                ));
            }
        }
    }
    let limit = if udp {
        usize::from(query.max_payload()).max(UDP_PLAIN_MAX)
    } else {
        usize::from(u16::MAX)
    };
    let bytes = resp.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(Reply::Answer(bytes));
    }
    resp.take_answers();
    resp.set_truncated(true);
    encode(resp).map(Reply::Answer)
}

fn encode(m: Message) -> Option<Vec<u8>> {
    m.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::{Endpoint, ServiceEntry, ServicePortEntry};
    use hickory_proto::op::Query;

    fn zone(endpoints: usize) -> Zone {
        Zone::build(
            "cluster.local",
            &[ServiceEntry {
                namespace: "default".into(),
                name: "db".into(),
                cluster_ip: None,
                client_ip_affinity_seconds: None,
                addresses: Vec::new(),
                ports: vec![ServicePortEntry {
                    name: "pg".into(),
                    protocol: "TCP".into(),
                    port: 5432,
                    node_port: None,
                    endpoints: (0..endpoints)
                        .map(|i| Endpoint {
                            ip: format!("10.42.{}.{}", i / 200, 2 + i % 200),
                            port: 5432,
                            node: String::new(),
                        })
                        .collect(),
                }],
            }],
        )
    }

    fn query(name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(7)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
        m.to_vec().unwrap()
    }

    fn reply(z: &Zone, name: &str, ty: RecordType, udp: bool) -> Message {
        match answer(z, &query(name, ty), udp).unwrap() {
            Reply::Answer(b) => Message::from_vec(&b).unwrap(),
            Reply::Forward => panic!("forwarded"),
        }
    }

    #[test]
    fn a_srv_nxdomain_and_forward() {
        let z = zone(2);
        let m = reply(&z, "db.default.svc.cluster.local.", RecordType::A, true);
        assert_eq!(m.id(), 7);
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert_eq!(m.answers().len(), 2);
        let m = reply(
            &z,
            "_pg._tcp.db.default.svc.cluster.local.",
            RecordType::SRV,
            true,
        );
        let RData::SRV(srv) = m.answers()[0].data() else {
            panic!("{m:?}")
        };
        assert_eq!(srv.port(), 5432);
        assert_eq!(
            srv.target().to_ascii(),
            "10-42-0-2.db.default.svc.cluster.local."
        );
        let m = reply(&z, "db.default.svc.cluster.local.", RecordType::AAAA, true);
        assert_eq!(
            (m.response_code(), m.answers().len()),
            (ResponseCode::NoError, 0)
        );
        let m = reply(&z, "x.default.svc.cluster.local.", RecordType::A, true);
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        assert!(matches!(
            answer(&z, &query("example.com.", RecordType::A), true),
            Some(Reply::Forward)
        ));
        assert!(answer(&z, b"garbage", true).is_none());
    }

    #[test]
    fn big_udp_answers_are_truncated_not_over_tcp() {
        let z = zone(100);
        let m = reply(&z, "db.default.svc.cluster.local.", RecordType::A, true);
        assert!(m.truncated() && m.answers().is_empty());
        let m = reply(&z, "db.default.svc.cluster.local.", RecordType::A, false);
        assert_eq!(m.answers().len(), 100);
    }
}
