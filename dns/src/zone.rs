//! The cluster's names, built from the service table a node (or the hub)
//! already has: `<svc>.<ns>.svc.<domain>` (A: the ClusterIP, or the ready
//! endpoints of a headless service), `_<port>._<proto>.<svc>.<ns>.svc.<domain>`
//! (SRV for named ports), `<a-b-c-d>.<svc>.<ns>.svc.<domain>` for the
//! endpoints of headless services, `<hostname>.<svc>.<ns>.svc.<domain>` for
//! pods with a hostname behind a headless service ([`Zone::with_hosts`]), and
//! `<a-b-c-d>.<ns>.pod.<domain>` (A: the address written in the name, as
//! Kubernetes DNS answers).

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use bramble_api::protocol::{PodHost, ServiceEntry};

/// What a name has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub a: Vec<Ipv4Addr>,
    /// `(port, target name)`.
    pub srv: Vec<(u16, String)>,
}

/// The answer for one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Outside the cluster domain: forward it.
    NotOurs,
    /// In the cluster domain, but no such name.
    NxDomain,
    /// The name exists (its records may not include the asked type).
    Found(Entry),
}

/// Every cluster name, lowercase, without the trailing dot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    domain: String,
    names: HashMap<String, Entry>,
}

fn dashed(ip: &str) -> String {
    ip.replace('.', "-")
}

impl Zone {
    /// The names of `services` under `domain` (e.g. `cluster.local`).
    pub fn build(domain: &str, services: &[ServiceEntry]) -> Zone {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut names: HashMap<String, Entry> = HashMap::new();
        for s in services {
            let base = format!("{}.{}.svc.{domain}", s.name, s.namespace).to_ascii_lowercase();
            let headless = s.cluster_ip.is_none();
            let endpoint_ips: BTreeSet<&str> = s
                .ports
                .iter()
                .flat_map(|p| p.endpoints.iter().map(|e| e.ip.as_str()))
                .chain(s.addresses.iter().map(String::as_str))
                .collect();
            let entry = names.entry(base.clone()).or_default();
            match &s.cluster_ip {
                Some(ip) => entry.a.extend(ip.parse::<Ipv4Addr>().ok()),
                None => entry.a.extend(
                    endpoint_ips
                        .iter()
                        .filter_map(|ip| ip.parse::<Ipv4Addr>().ok()),
                ),
            }
            if headless {
                for ip in &endpoint_ips {
                    if let Ok(addr) = ip.parse() {
                        names
                            .entry(format!("{}.{base}", dashed(ip)))
                            .or_default()
                            .a
                            .push(addr);
                    }
                }
            }
            for p in s.ports.iter().filter(|p| !p.name.is_empty()) {
                let srv_name = format!("_{}._{}.{base}", p.name, p.protocol).to_ascii_lowercase();
                let records: Vec<(u16, String)> = if headless {
                    p.endpoints
                        .iter()
                        .map(|e| (e.port, format!("{}.{base}", dashed(&e.ip))))
                        .collect()
                } else {
                    vec![(p.port, base.clone())]
                };
                names.entry(srv_name).or_default().srv.extend(records);
            }
        }
        Zone { domain, names }
    }

    /// Adds `<hostname>.<service>.<namespace>.svc.<domain>` for each of
    /// `hosts` (the hub lists only pods behind a headless service).
    pub fn with_hosts(mut self, hosts: &[PodHost]) -> Zone {
        for h in hosts {
            let Ok(addr) = h.ip.parse::<Ipv4Addr>() else {
                continue;
            };
            let name = format!(
                "{}.{}.{}.svc.{}",
                h.hostname, h.service, h.namespace, self.domain
            )
            .to_ascii_lowercase();
            let a = &mut self.names.entry(name).or_default().a;
            if !a.contains(&addr) {
                a.push(addr);
            }
        }
        self
    }

    /// The cluster domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Looks `name` up (any case, trailing dot or not).
    pub fn lookup(&self, name: &str) -> Lookup {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let Some(rest) = name
            .strip_suffix(&self.domain)
            .and_then(|r| r.strip_suffix('.'))
        else {
            return if name == self.domain {
                Lookup::Found(Entry::default())
            } else {
                Lookup::NotOurs
            };
        };
        if let Some(e) = self.names.get(&name) {
            return Lookup::Found(e.clone());
        }
        // `<a-b-c-d>.<ns>.pod.<domain>`
        let parts: Vec<&str> = rest.split('.').collect();
        if let [ip, _ns, "pod"] = parts[..]
            && let Ok(addr) = ip.replace('-', ".").parse::<Ipv4Addr>()
        {
            return Lookup::Found(Entry {
                a: vec![addr],
                srv: Vec::new(),
            });
        }
        // Names that only have children (`svc.<domain>`, `<ns>.svc.<domain>`).
        let suffix = format!(".{name}");
        if self.names.keys().any(|k| k.ends_with(&suffix)) {
            return Lookup::Found(Entry::default());
        }
        Lookup::NxDomain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::{Endpoint, ServicePortEntry};

    fn svc(name: &str, ip: Option<&str>, endpoints: &[&str]) -> ServiceEntry {
        ServiceEntry {
            namespace: "shop".into(),
            name: name.into(),
            cluster_ip: ip.map(str::to_string),
            client_ip_affinity_seconds: None,
            addresses: Vec::new(),
            ports: vec![ServicePortEntry {
                name: "http".into(),
                protocol: "TCP".into(),
                port: 80,
                node_port: None,
                endpoints: endpoints
                    .iter()
                    .map(|ip| Endpoint {
                        ip: ip.to_string(),
                        port: 8080,
                        node: String::new(),
                    })
                    .collect(),
            }],
        }
    }

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn cluster_ips_headless_endpoints_srv_and_pods() {
        let z = Zone::build(
            "cluster.local",
            &[
                svc("web", Some("10.43.0.11"), &["10.42.0.2"]),
                svc("db", None, &["10.42.1.5", "10.42.2.7"]),
            ],
        );
        let found = |n: &str| match z.lookup(n) {
            Lookup::Found(e) => e,
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(found("web.shop.svc.cluster.local.").a, [a("10.43.0.11")]);
        assert_eq!(found("WEB.Shop.svc.cluster.local").a, [a("10.43.0.11")]);
        assert_eq!(
            found("db.shop.svc.cluster.local").a,
            [a("10.42.1.5"), a("10.42.2.7")]
        );
        assert_eq!(
            found("10-42-2-7.db.shop.svc.cluster.local").a,
            [a("10.42.2.7")]
        );
        assert_eq!(
            found("_http._tcp.web.shop.svc.cluster.local").srv,
            [(80, "web.shop.svc.cluster.local".to_string())]
        );
        assert_eq!(
            found("_http._tcp.db.shop.svc.cluster.local").srv,
            [
                (8080, "10-42-1-5.db.shop.svc.cluster.local".to_string()),
                (8080, "10-42-2-7.db.shop.svc.cluster.local".to_string())
            ]
        );
        assert_eq!(
            found("10-42-0-9.shop.pod.cluster.local").a,
            [a("10.42.0.9")]
        );
        assert!(found("shop.svc.cluster.local").a.is_empty());
        assert_eq!(z.lookup("nope.shop.svc.cluster.local"), Lookup::NxDomain);
        assert_eq!(z.lookup("example.com"), Lookup::NotOurs);
        assert_eq!(z.lookup("notcluster.local"), Lookup::NotOurs);
    }

    #[test]
    fn a_headless_service_without_ports_answers_with_its_addresses() {
        let mut cache = svc("cache", None, &[]);
        cache.ports.clear();
        cache.addresses = vec!["10.42.1.5".into(), "10.42.2.7".into()];
        let z = Zone::build("cluster.local", &[cache]);
        let Lookup::Found(e) = z.lookup("cache.shop.svc.cluster.local") else {
            panic!("cache not found")
        };
        assert_eq!(e.a, [a("10.42.1.5"), a("10.42.2.7")]);
        assert!(matches!(
            z.lookup("10-42-2-7.cache.shop.svc.cluster.local"),
            Lookup::Found(_)
        ));
    }

    #[test]
    fn pods_with_a_hostname_are_named_under_their_headless_service() {
        let host = |name: &str, ip: &str| PodHost {
            namespace: "shop".into(),
            service: "db".into(),
            hostname: name.into(),
            ip: ip.into(),
        };
        let z = Zone::build(
            "cluster.local",
            &[svc("db", None, &["10.42.1.5", "10.42.2.7"])],
        )
        .with_hosts(&[
            host("db-0", "10.42.1.5"),
            host("db-1", "10.42.2.7"),
            host("bad", "x"),
        ]);
        let found = |n: &str| match z.lookup(n) {
            Lookup::Found(e) => e.a,
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(found("db-1.db.shop.svc.cluster.local"), [a("10.42.2.7")]);
        assert_eq!(found("DB-0.db.shop.svc.cluster.local."), [a("10.42.1.5")]);
        assert_eq!(
            found("db.shop.svc.cluster.local"),
            [a("10.42.1.5"), a("10.42.2.7")],
            "the service's name is unchanged"
        );
        assert_eq!(z.lookup("db-2.db.shop.svc.cluster.local"), Lookup::NxDomain);
        assert_eq!(z.lookup("bad.db.shop.svc.cluster.local"), Lookup::NxDomain);
    }
}
