//! The ingress routing table, rebuilt whenever Ingresses, Services or
//! Endpoints change: host rules (exact before `*.wildcard` before any host),
//! then paths (`Exact` before `Prefix`, longest prefix first, matched by
//! whole path segments as Kubernetes specifies), then each Ingress's default
//! backend. A backend is a Service port with its ready endpoints, chosen
//! round robin.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use bramble_api::objects::Ingress;
use bramble_api::objects::ingress::IngressBackend;

use crate::network::table::ServiceTable;

/// A Service port behind a rule, with its ready endpoints.
#[derive(Debug)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    /// The port as the Ingress names it (`80` or `http`).
    pub port: String,
    pub endpoints: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl Backend {
    /// The endpoints in the order to try them for one request: round robin
    /// start, then the others (retries on connection failure).
    pub fn order(&self) -> impl ExactSizeIterator<Item = SocketAddr> + '_ {
        let n = self.endpoints.len();
        let start = match n {
            0 => 0,
            n => self.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        (0..n).map(move |i| self.endpoints[(start + i) % n])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Exact(String),
    /// `*.example.com` stored as `.example.com`: one label before it.
    Wildcard(String),
    Any,
}

impl HostMatch {
    fn parse(host: Option<&str>) -> HostMatch {
        match host.map(str::to_ascii_lowercase) {
            None => HostMatch::Any,
            Some(h) if h.is_empty() => HostMatch::Any,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => HostMatch::Wildcard(suffix.to_string()),
                None => HostMatch::Exact(h),
            },
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(h) => h.eq_ignore_ascii_case(host),
            HostMatch::Wildcard(suffix) => {
                let Some(cut) = host.len().checked_sub(suffix.len()).filter(|&c| c > 0) else {
                    return false;
                };
                let (label, tail) = host.as_bytes().split_at(cut);
                tail.eq_ignore_ascii_case(suffix.as_bytes()) && !label.contains(&b'.')
            }
            HostMatch::Any => true,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            HostMatch::Exact(_) => 0,
            HostMatch::Wildcard(_) => 1,
            HostMatch::Any => 2,
        }
    }
}

#[derive(Debug)]
struct Route {
    host: HostMatch,
    path: String,
    exact: bool,
    backend: usize,
}

impl Route {
    fn matches_path(&self, path: &str) -> bool {
        if self.exact {
            return path == self.path;
        }
        let prefix = self.path.trim_end_matches('/');
        if prefix.is_empty() {
            return true;
        }
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// `ingresses` oldest first (then by namespace and name), the order in
/// which controllers resolve conflicts between Ingresses: the older one
/// wins a host or path, and its certificate too.
pub fn oldest_first(ingresses: &[Ingress]) -> Vec<&Ingress> {
    let mut sorted: Vec<&Ingress> = ingresses.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.metadata.creation_timestamp, a.namespace(), a.name()).cmp(&(
            &b.metadata.creation_timestamp,
            b.namespace(),
            b.name(),
        ))
    });
    sorted
}

/// Every rule of every Ingress, ready to match requests.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    defaults: Vec<usize>,
    backends: Vec<Backend>,
}

impl RouteTable {
    /// Builds the table from `ingresses` and the cluster's service table.
    pub fn build(ingresses: &[Ingress], services: &ServiceTable) -> RouteTable {
        let mut t = RouteTable::default();
        for ing in oldest_first(ingresses) {
            let ns = ing.namespace();
            if let Some(b) = &ing.spec.default_backend {
                let i = t.backend(ns, b, services);
                t.defaults.push(i);
            }
            for rule in &ing.spec.rules {
                let host = HostMatch::parse(rule.host.as_deref());
                for p in rule.http.iter().flat_map(|h| &h.paths) {
                    let backend = t.backend(ns, &p.backend, services);
                    t.routes.push(Route {
                        host: host.clone(),
                        path: p.path.clone().unwrap_or_else(|| "/".into()),
                        exact: p.path_type.as_deref() == Some("Exact"),
                        backend,
                    });
                }
            }
        }
        // Stable: among equals the older Ingress wins.
        t.routes.sort_by(|a, b| {
            (a.host.rank(), !a.exact, std::cmp::Reverse(a.path.len())).cmp(&(
                b.host.rank(),
                !b.exact,
                std::cmp::Reverse(b.path.len()),
            ))
        });
        t
    }

    fn backend(&mut self, ns: &str, b: &IngressBackend, services: &ServiceTable) -> usize {
        let (name, port) = match &b.service {
            Some(s) => (
                s.name.clone(),
                s.port
                    .name
                    .clone()
                    .or(s.port.number.map(|n| n.to_string()))
                    .unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        };
        let endpoints = services
            .0
            .iter()
            .find(|s| s.namespace == ns && s.name == name)
            .and_then(|s| {
                s.ports
                    .iter()
                    .find(|p| p.name == port || p.port.to_string() == port)
            })
            .map(|p| {
                p.endpoints
                    .iter()
                    .filter(|e| e.ip.parse::<std::net::IpAddr>().is_ok())
                    .map(|e| SocketAddr::new(e.ip.parse().expect("checked"), e.port))
                    .collect()
            })
            .unwrap_or_default();
        self.backends.push(Backend {
            namespace: ns.to_string(),
            service: name,
            port,
            endpoints,
            next: AtomicUsize::new(0),
        });
        self.backends.len() - 1
    }

    /// The backend for a request to `host` (port stripped, any case) and
    /// `path`; `None` when no rule and no default backend matches.
    pub fn route(&self, host: &str, path: &str) -> Option<&Backend> {
        self.routes
            .iter()
            .find(|r| r.host.matches(host) && r.matches_path(path))
            .map(|r| r.backend)
            .or_else(|| self.defaults.first().copied())
            .map(|i| &self.backends[i])
    }

    /// How many rules the table has (for logs).
    pub fn len(&self) -> usize {
        self.routes.len() + self.defaults.len()
    }

    /// Whether the table has no rules.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use bramble_api::protocol::{Endpoint, ServiceEntry, ServicePortEntry};
    use serde_json::json;

    fn ingress(name: &str, spec: serde_json::Value) -> Ingress {
        serde_json::from_value(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}),
        )
        .unwrap()
    }

    fn backend(svc: &str) -> serde_json::Value {
        json!({"service": {"name": svc, "port": {"number": 80}}})
    }

    fn services() -> ServiceTable {
        let entry = |name: &str, ips: &[&str]| ServiceEntry {
            namespace: "default".into(),
            name: name.into(),
            cluster_ip: Some("10.43.0.11".into()),
            client_ip_affinity_seconds: None,
            addresses: Vec::new(),
            ports: vec![ServicePortEntry {
                name: "http".into(),
                protocol: "TCP".into(),
                port: 80,
                node_port: None,
                endpoints: ips
                    .iter()
                    .map(|ip| Endpoint {
                        ip: ip.to_string(),
                        port: 8080,
                        node: String::new(),
                    })
                    .collect(),
            }],
        };
        ServiceTable(vec![
            entry("web", &["10.42.0.2", "10.42.1.2", "10.42.2.2"]),
            entry("api", &["10.42.0.3"]),
            entry("docs", &[]),
            entry("fallback", &["10.42.0.9"]),
        ])
    }

    fn to(t: &RouteTable, host: &str, path: &str) -> Option<String> {
        t.route(host, path).map(|b| b.service.clone())
    }

    #[test]
    fn hosts_then_paths_by_kubernetes_precedence() {
        let t = RouteTable::build(
            &[
                ingress(
                    "a",
                    json!({"rules": [
                    {"host": "shop.lan", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": backend("web")},
                        {"path": "/api", "pathType": "Prefix", "backend": backend("api")},
                        {"path": "/docs", "pathType": "Exact", "backend": backend("docs")}]}},
                    {"host": "*.lan", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": backend("api")}]}}]}),
                ),
                ingress("b", json!({"defaultBackend": backend("fallback")})),
            ],
            &services(),
        );
        assert_eq!(to(&t, "shop.lan", "/").as_deref(), Some("web"));
        assert_eq!(to(&t, "SHOP.lan", "/api/v1").as_deref(), Some("api"));
        assert_eq!(to(&t, "shop.lan", "/api").as_deref(), Some("api"));
        assert_eq!(to(&t, "shop.lan", "/apiary").as_deref(), Some("web"));
        assert_eq!(to(&t, "shop.lan", "/docs").as_deref(), Some("docs"));
        assert_eq!(to(&t, "shop.lan", "/docs/x").as_deref(), Some("web"));
        assert_eq!(to(&t, "blog.lan", "/").as_deref(), Some("api"));
        assert_eq!(to(&t, "Blog.LAN", "/").as_deref(), Some("api"));
        assert_eq!(to(&t, ".lan", "/").as_deref(), Some("fallback"));
        assert_eq!(to(&t, "a.b.lan", "/").as_deref(), Some("fallback"));
        assert_eq!(to(&t, "other", "/").as_deref(), Some("fallback"));
        assert!(t.route("shop.lan", "/docs").unwrap().endpoints.is_empty());
    }

    #[test]
    fn round_robin_over_ready_endpoints_then_the_rest() {
        let t = RouteTable::build(
            &[ingress(
                "a",
                json!({"rules": [{"http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend("web")}]}}]}),
            )],
            &services(),
        );
        let b = t.route("x", "/").unwrap();
        let firsts: Vec<SocketAddr> = (0..3).map(|_| b.order().next().unwrap()).collect();
        assert_eq!(firsts.len(), 3);
        assert_ne!(firsts[0], firsts[1]);
        assert_ne!(firsts[1], firsts[2]);
        assert_eq!(b.order().len(), 3);
        assert_eq!(b.order().collect::<BTreeSet<_>>().len(), 3);
        assert!(to(&t, "x", "/").is_some());
        assert!(
            RouteTable::build(&[], &services())
                .route("x", "/")
                .is_none()
        );
    }
}
