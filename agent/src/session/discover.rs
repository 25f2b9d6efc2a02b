//! `--join auto`: find the hub on the LAN by mDNS (`_bramble._tcp.local`,
//! announced by `bramble-hub`) instead of a configured address. Anyone on
//! the LAN can answer, so every hub heard is asked to prove the key the
//! join token names ([`prove`]: it signs a random challenge); the first that
//! proves it wins, the others are refused with the reason. Its TXT `s=https`
//! says the API speaks HTTPS, `mqtts` (or `mqtt`) gives the embedded
//! broker's port.
//!
//! A one-shot DNS-SD browse (RFC 6762 §5.2, RFC 6763 §4) in DNS wire
//! format by hickory-proto: a PTR question for the service type multicast
//! on every IPv4 link (repeated after 1, 2, 4… s), answers collected from
//! `224.0.0.251:5353` (the hub's responder multicasts them, its SRV, TXT
//! and A records as additionals) until one instance has a port and an
//! address. No mDNS daemon: the agent only ever asks once, at start.
//! Why no hub was found is a [`DiscoverError`].

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use bramble_api::protocol::MDNS_SERVICE_TYPE;
use bramble_trust::Fingerprint;
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use socket2::{Domain, Protocol, Socket, Type};

use super::hub_ca::ProofError;

/// How long `--join auto` looks before giving up with an error.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

const MDNS_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const MDNS_PORT: u16 = 5353;
/// Pause between the questions at most (they start 1 s apart, doubling).
const MAX_INTERVAL: Duration = Duration::from_secs(4);

/// A hub found on the LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundHub {
    /// The mDNS instance name (the hub's host name).
    pub instance: String,
    /// `https://IP:PORT` of its API (`http://` if its TXT lacks `s=https`).
    pub url: String,
    /// `mqtts://IP:PORT` (or `mqtt://`) of its embedded broker, when
    /// announced.
    pub mqtt_url: Option<String>,
}

/// Why `--join auto` found no hub to join.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("--join auto: service type {MDNS_SERVICE_TYPE}: {0}")]
    ServiceType(#[source] hickory_proto::ProtoError),
    #[error("--join auto: starting mDNS failed: {0}")]
    Socket(#[source] std::io::Error),
    #[error("--join auto: encoding the mDNS question failed: {0}")]
    Encode(#[source] hickory_proto::ProtoError),
    #[error("--join auto: mDNS socket: {0}")]
    SocketOption(#[source] std::io::Error),
    #[error("--join auto: receiving mDNS answers failed: {0}")]
    Receive(#[source] std::io::Error),
    /// Hubs answered, but none proved the key: each with why it was refused.
    #[error(
        "--join auto: no hub on the LAN proved the key the join token names; refused: {}",
        refused_list(.0)
    )]
    AllRefused(Vec<(FoundHub, ProofError)>),
    #[error(
        "--join auto: no Bramble hub answered on the LAN within {0:?} (mDNS \
         {MDNS_SERVICE_TYPE}); is bramble-hub running on this network without --no-mdns, \
         and does multicast reach this board? Otherwise pass --hub https://HUB:7480"
    )]
    NoHub(Duration),
}

/// `URL (instance): why; ...` for [`DiscoverError::AllRefused`].
fn refused_list(refused: &[(FoundHub, ProofError)]) -> String {
    let list: Vec<String> = refused
        .iter()
        .map(|(h, why)| format!("{} ({}): {why}", h.url, h.instance))
        .collect();
    list.join("; ")
}

/// Looks for a hub that `accept`s (see [`prove`]) for up to `timeout`.
pub fn discover(
    timeout: Duration,
    mut accept: impl FnMut(&FoundHub) -> Result<(), ProofError>,
) -> Result<FoundHub, DiscoverError> {
    let service = Name::from_ascii(MDNS_SERVICE_TYPE).map_err(DiscoverError::ServiceType)?;
    let sock = mdns_socket().map_err(DiscoverError::Socket)?;
    let question = browse_query(&service).map_err(DiscoverError::Encode)?;
    let mut joined: Vec<Ipv4Addr> = Vec::new();
    let mut seen = Seen::default();
    let mut refused: Vec<(FoundHub, ProofError)> = Vec::new();
    let mut buf = vec![0u8; 9000];
    let deadline = Instant::now() + timeout;
    let mut next_ask = Instant::now();
    let mut interval = Duration::from_secs(1);
    let found = loop {
        let now = Instant::now();
        if now >= deadline {
            break None;
        }
        if now >= next_ask {
            // Links are listed again each time: a board that is still
            // getting its DHCP lease when the agent starts.
            ask(&sock, &question, &mut joined);
            next_ask = now + interval;
            interval = (interval * 2).min(MAX_INTERVAL);
        }
        let wait = next_ask.min(deadline).saturating_duration_since(now);
        sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(DiscoverError::SocketOption)?;
        let n = match sock.recv_from(&mut buf) {
            Ok((n, _)) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(DiscoverError::Receive(e)),
        };
        let Ok(msg) = Message::from_vec(&buf[..n]) else {
            continue; // not DNS, or not for us to parse
        };
        if msg.message_type() != MessageType::Response {
            continue; // questions, our own included (multicast loop)
        }
        for r in msg.answers().iter().chain(msg.additionals()) {
            seen.add(r);
        }
        let mut winner = None;
        for hub in seen.hubs(&service) {
            if refused.iter().any(|(h, _)| *h == hub) {
                continue;
            }
            match accept(&hub) {
                Ok(()) => {
                    winner = Some(hub);
                    break;
                }
                Err(why) => {
                    tracing::warn!(hub = %hub.url, instance = %hub.instance, %why, "--join auto: refusing a hub");
                    refused.push((hub, why));
                }
            }
        }
        if winner.is_some() {
            break winner;
        }
    };
    match found {
        Some(hub) => Ok(hub),
        None if refused.is_empty() => Err(DiscoverError::NoHub(timeout)),
        None => Err(DiscoverError::AllRefused(refused)),
    }
}

/// Asks `hub` to prove the hub key whose fingerprint is `expected` (and
/// the CA it endorsed): see [`super::hub_ca::ask`].
pub fn prove(hub: &FoundHub, expected: Fingerprint) -> Result<(), ProofError> {
    super::hub_ca::ask(&hub.url, expected).map(|_| ())
}

/// A UDP socket on `*:5353`, shared with any mDNS responder on the host
/// (the hub's, avahi): the answers to a browse are multicast to the group
/// and port, not to the asker.
fn mdns_socket() -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, MDNS_PORT).into())?;
    // RFC 6762 §11: mDNS packets go out with TTL 255.
    s.set_multicast_ttl_v4(255)?;
    Ok(s.into())
}

/// The question: `PTR <service type>`, class IN, multicast answer wanted.
fn browse_query(service: &Name) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut m = Message::new();
    m.set_id(0);
    m.set_message_type(MessageType::Query);
    m.add_query(Query::query(service.clone(), RecordType::PTR));
    m.to_vec()
}

/// Joins the group on links not joined yet and sends the question out of
/// each; a link that refuses is skipped (logged), the others still ask.
fn ask(sock: &UdpSocket, question: &[u8], joined: &mut Vec<Ipv4Addr>) {
    let addrs = match bramble_net::links::ipv4_addresses(None) {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(error = %e, "--join auto: listing the links' addresses");
            Vec::new()
        }
    };
    let group = SocketAddrV4::new(MDNS_GROUP, MDNS_PORT);
    for ip in &addrs {
        if !joined.contains(ip) {
            match sock.join_multicast_v4(&MDNS_GROUP, ip) {
                Ok(()) => joined.push(*ip),
                Err(e) => tracing::debug!(%ip, error = %e, "--join auto: joining the mDNS group"),
            }
        }
        let sent = socket2::SockRef::from(sock)
            .set_multicast_if_v4(ip)
            .and_then(|()| sock.send_to(question, group));
        if let Err(e) = sent {
            tracing::debug!(%ip, error = %e, "--join auto: sending the mDNS question");
        }
    }
    tracing::debug!(links = ?addrs, "--join auto: asked for {MDNS_SERVICE_TYPE}");
}

/// The records heard so far (answers may come in several packets).
#[derive(Default)]
struct Seen {
    /// Instances of the service type (PTR targets), in the order heard.
    instances: Vec<Name>,
    /// Instance → (target host, port).
    srv: Vec<(Name, Name, u16)>,
    /// Instance → its TXT `mqtts` (true) or `mqtt` port.
    mqtt: Vec<(Name, u16, bool)>,
    /// Instances whose TXT says `s=https`.
    https: Vec<Name>,
    /// Host → IPv4 address.
    a: Vec<(Name, Ipv4Addr)>,
}

impl Seen {
    fn add(&mut self, r: &Record) {
        if r.ttl() == 0 {
            return; // a goodbye (RFC 6762 §10.1)
        }
        let name = r.name().clone();
        match r.data() {
            RData::PTR(p) if !self.instances.contains(&p.0) => {
                self.instances.push(p.0.clone());
            }
            RData::SRV(s) => self.srv.push((name, s.target().clone(), s.port())),
            RData::TXT(t) => {
                let mqtt = t.iter().find_map(|kv| {
                    let (v, tls) = match kv.strip_prefix(b"mqtts=") {
                        Some(v) => (v, true),
                        None => (kv.strip_prefix(b"mqtt=")?, false),
                    };
                    Some((std::str::from_utf8(v).ok()?.parse::<u16>().ok()?, tls))
                });
                if t.iter().any(|kv| &kv[..] == b"s=https") {
                    self.https.push(name.clone());
                }
                if let Some((p, tls)) = mqtt {
                    self.mqtt.push((name, p, tls));
                }
            }
            RData::A(a) if !a.0.is_loopback() => self.a.push((name, a.0)),
            _ => {}
        }
    }

    /// The instances of `service` with a port and an address, in the order
    /// heard.
    fn hubs(&self, service: &Name) -> Vec<FoundHub> {
        self.instances
            .iter()
            .filter_map(|inst| {
                if !service.zone_of(inst) || inst.num_labels() != service.num_labels() + 1 {
                    return None;
                }
                let (_, host, port) = self.srv.iter().rev().find(|(n, _, _)| n == inst)?;
                let ip = self
                    .a
                    .iter()
                    .filter(|(n, _)| n == host)
                    .map(|(_, ip)| *ip)
                    .min()?;
                let instance = inst
                    .iter()
                    .next()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .unwrap_or_default();
                let mqtt_url =
                    self.mqtt
                        .iter()
                        .rev()
                        .find(|(n, _, _)| n == inst)
                        .map(|(_, p, tls)| {
                            let scheme = if *tls { "mqtts" } else { "mqtt" };
                            format!("{scheme}://{ip}:{p}")
                        });
                let scheme = if self.https.contains(inst) {
                    "https"
                } else {
                    "http"
                };
                Some(FoundHub {
                    instance,
                    url: format!("{scheme}://{ip}:{port}"),
                    mqtt_url,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, PTR, SRV, TXT};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn an_instance_resolves_once_srv_and_address_are_heard() {
        let service = name(MDNS_SERVICE_TYPE);
        let inst = name("pi-hub._bramble._tcp.local.");
        let host = name("pi-hub.local.");
        let mut seen = Seen::default();
        seen.add(&Record::from_rdata(
            service.clone(),
            120,
            RData::PTR(PTR(inst.clone())),
        ));
        assert_eq!(seen.hubs(&service), vec![]);
        seen.add(&Record::from_rdata(
            inst.clone(),
            120,
            RData::SRV(SRV::new(0, 0, 7480, host.clone())),
        ));
        seen.add(&Record::from_rdata(
            inst.clone(),
            120,
            RData::TXT(TXT::new(vec!["v=1".into(), "mqtt=1883".into()])),
        ));
        assert_eq!(seen.hubs(&service), vec![]);
        seen.add(&Record::from_rdata(
            host.clone(),
            120,
            RData::A(A(Ipv4Addr::new(127, 0, 0, 1))),
        ));
        // A goodbye is no address.
        seen.add(&Record::from_rdata(
            host.clone(),
            0,
            RData::A(A(Ipv4Addr::new(10, 77, 0, 9))),
        ));
        assert_eq!(seen.hubs(&service), vec![]);
        seen.add(&Record::from_rdata(
            name("PI-HUB.local."),
            120,
            RData::A(A(Ipv4Addr::new(10, 77, 0, 2))),
        ));
        assert_eq!(
            seen.hubs(&service),
            vec![FoundHub {
                instance: "pi-hub".into(),
                url: "http://10.77.0.2:7480".into(),
                mqtt_url: Some("mqtt://10.77.0.2:1883".into()),
            }]
        );
    }

    #[test]
    fn the_question_is_a_ptr_query_for_the_service_type() {
        let service = name(MDNS_SERVICE_TYPE);
        let m = Message::from_vec(&browse_query(&service).unwrap()).unwrap();
        assert_eq!(m.message_type(), MessageType::Query);
        assert_eq!(m.queries().len(), 1);
        assert_eq!(m.queries()[0].name(), &service);
        assert_eq!(m.queries()[0].query_type(), RecordType::PTR);
    }
}
