//! What a pod takes from a node: its effective cpu and memory requests, computed
//! as Kubernetes does, and its host ports.
//!
//! The effective request of a resource is `max(sum over app containers, max over
//! init containers)`: init containers run one at a time before the app
//! containers, so the largest of them and the app containers together bound
//! what the pod ever holds. Scoring uses a second figure in which a container
//! that sets no request counts as 100m cpu and 200 MiB memory (kube-scheduler's
//! `DefaultMilliCPURequest`/`DefaultMemoryRequest`), so that pods without
//! requests still spread by load; the fit filter never uses those defaults.

use bramble_api::objects::PodSpec;
use bramble_api::objects::container::Container;

/// Non-zero cpu default for scoring, in millicores.
pub const DEFAULT_MILLI_CPU_REQUEST: u64 = 100;
/// Non-zero memory default for scoring, in bytes.
pub const DEFAULT_MEMORY_REQUEST: u64 = 200 * 1024 * 1024;

/// Cpu in millicores and memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

impl Resources {
    /// Adds `other` (saturating).
    pub fn add(&mut self, other: Resources) {
        self.cpu_millis = self.cpu_millis.saturating_add(other.cpu_millis);
        self.memory_bytes = self.memory_bytes.saturating_add(other.memory_bytes);
    }

    /// Per resource, the larger of the two.
    fn max(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.max(other.cpu_millis),
            memory_bytes: self.memory_bytes.max(other.memory_bytes),
        }
    }
}

/// A `hostPort` the pod binds on its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub port: i32,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The host IP; empty for every address (`0.0.0.0`, `::` or unset).
    pub ip: String,
}

impl HostPort {
    /// Whether two bindings cannot coexist on one node: same port and protocol,
    /// and the same IP or either one bound to every address (Kubernetes'
    /// `HostPortInfo.CheckConflict`).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip.is_empty() || other.ip.is_empty() || self.ip == other.ip)
    }
}

/// A pod's demands on the node it lands on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRequest {
    /// Effective requests: what the fit filter compares with free capacity.
    pub requests: Resources,
    /// Effective requests with the non-zero defaults: what scoring adds up.
    pub non_zero: Resources,
    /// Host ports of the app containers (init containers' ports bind nothing).
    pub host_ports: Vec<HostPort>,
}

impl PodRequest {
    /// The demands of a pod spec.
    pub fn of(spec: &PodSpec) -> PodRequest {
        let (mut sum, mut sum_nz) = (Resources::default(), Resources::default());
        for c in &spec.containers {
            sum.add(container(c, false));
            sum_nz.add(container(c, true));
        }
        let (mut init, mut init_nz) = (Resources::default(), Resources::default());
        for c in &spec.init_containers {
            init = init.max(container(c, false));
            init_nz = init_nz.max(container(c, true));
        }
        let host_ports = spec
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .filter_map(|p| {
                let port = p.host_port.filter(|h| *h > 0)?;
                let ip = p.host_ip.as_deref().unwrap_or("");
                let ip = if matches!(ip, "0.0.0.0" | "::") {
                    ""
                } else {
                    ip
                };
                Some(HostPort {
                    port,
                    protocol: p.protocol().to_string(),
                    ip: ip.to_string(),
                })
            })
            .collect();
        PodRequest {
            requests: sum.max(init),
            non_zero: sum_nz.max(init_nz),
            host_ports,
        }
    }
}

/// One container's requests; with `non_zero`, unset ones take the defaults.
fn container(c: &Container, non_zero: bool) -> Resources {
    let r = &c.resources;
    let default = |name: &str, d: u64| {
        if non_zero && !r.requests.contains_key(name) {
            d
        } else {
            0
        }
    };
    Resources {
        cpu_millis: r.cpu_request_millis() + default("cpu", DEFAULT_MILLI_CPU_REQUEST),
        memory_bytes: r.memory_request_bytes() + default("memory", DEFAULT_MEMORY_REQUEST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn effective_request_is_max_of_app_sum_and_largest_init() {
        let s = spec(json!({
            "initContainers": [
                {"name": "i1", "image": "x", "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}},
                {"name": "i2", "image": "x", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
            ],
            "containers": [
                {"name": "a", "image": "x", "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}},
                {"name": "b", "image": "x", "resources": {"requests": {"cpu": "700m", "memory": "256Mi"}}}
            ]
        }));
        let r = PodRequest::of(&s);
        // cpu: max(1200m, 2000m); memory: max(512Mi, 1Gi).
        assert_eq!(
            r.requests,
            Resources {
                cpu_millis: 2000,
                memory_bytes: 1 << 30
            }
        );
        assert_eq!(r.non_zero, r.requests);
    }

    #[test]
    fn unset_requests_are_zero_for_fit_and_defaults_for_scoring() {
        let s = spec(json!({"containers": [
            {"name": "a", "image": "x"},
            {"name": "b", "image": "x", "resources": {"requests": {"cpu": "0", "memory": "10Mi"}}}
        ]}));
        let r = PodRequest::of(&s);
        assert_eq!(
            r.requests,
            Resources {
                cpu_millis: 0,
                memory_bytes: 10 << 20
            }
        );
        // An explicit 0 stays 0; only a missing request takes the default.
        assert_eq!(
            r.non_zero,
            Resources {
                cpu_millis: DEFAULT_MILLI_CPU_REQUEST,
                memory_bytes: DEFAULT_MEMORY_REQUEST + (10 << 20)
            }
        );
    }

    #[test]
    fn host_ports_and_conflicts() {
        let s = spec(json!({
            "initContainers": [{"name": "i", "image": "x", "ports": [{"containerPort": 1, "hostPort": 1}]}],
            "containers": [{"name": "a", "image": "x", "ports": [
                {"containerPort": 80, "hostPort": 8080},
                {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "192.168.1.5"},
                {"containerPort": 9000},
                {"containerPort": 9001, "hostPort": 9001, "hostIP": "0.0.0.0"}
            ]}]
        }));
        let ports = PodRequest::of(&s).host_ports;
        assert_eq!(ports.len(), 3);
        assert_eq!(
            ports[0],
            HostPort {
                port: 8080,
                protocol: "TCP".into(),
                ip: String::new()
            }
        );
        assert_eq!(ports[2].ip, "");
        let hp = |port, protocol: &str, ip: &str| HostPort {
            port,
            protocol: protocol.into(),
            ip: ip.into(),
        };
        assert!(hp(53, "UDP", "").conflicts(&ports[1]));
        assert!(hp(53, "UDP", "192.168.1.5").conflicts(&ports[1]));
        assert!(!hp(53, "UDP", "192.168.1.6").conflicts(&ports[1]));
        assert!(!hp(53, "TCP", "192.168.1.5").conflicts(&ports[1]));
        assert!(!hp(54, "UDP", "").conflicts(&ports[1]));
        assert!(hp(8080, "TCP", "10.0.0.1").conflicts(&ports[0]));
    }
}
