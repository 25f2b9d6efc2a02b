//! ClusterIPs and node ports for Services, assigned when a Service is
//! created or replaced (as the Kubernetes API server does): the lowest free
//! address of the service CIDR above the reserved ones, the lowest free port
//! of 30000-32767; both are kept across replaces and immutable once set.
//! Pure: the caller serializes assignments and passes the other Services.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use bramble_api::cidr::Cidr;
use bramble_api::objects::service::NODE_PORT_RANGE;
use serde_json::Value;

use super::NetworkSettings;

/// Addresses at the start of the service CIDR never handed out (Kubernetes
/// keeps `.1` for its API and `.10` for DNS).
pub const RESERVED_SERVICE_IPS: u32 = 10;

/// A Service whose addresses cannot be assigned: `(path, reason)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignError {
    pub path: String,
    pub reason: String,
}

fn err(path: impl Into<String>, reason: impl Into<String>) -> AssignError {
    AssignError {
        path: path.into(),
        reason: reason.into(),
    }
}

fn cluster_ip(svc: &Value) -> Option<&str> {
    svc["spec"]["clusterIP"].as_str().filter(|s| !s.is_empty())
}

fn port_key(p: &Value) -> (String, i64, String) {
    (
        p["name"].as_str().unwrap_or("").to_string(),
        p["port"].as_i64().unwrap_or(0),
        p["protocol"].as_str().unwrap_or("TCP").to_string(),
    )
}

/// Fills `spec.clusterIP`/`clusterIPs` and the node ports of `svc` (admitted
/// JSON). `current` is the stored version on a replace; `others` every other
/// Service in the cluster.
pub fn assign(
    settings: &NetworkSettings,
    svc: &mut Value,
    current: Option<&Value>,
    others: &[Value],
) -> Result<(), AssignError> {
    assign_cluster_ip(settings, svc, current, others)?;
    assign_node_ports(svc, current, others)
}

fn assign_cluster_ip(
    settings: &NetworkSettings,
    svc: &mut Value,
    current: Option<&Value>,
    others: &[Value],
) -> Result<(), AssignError> {
    let old = current.and_then(cluster_ip);
    let ip = match (cluster_ip(svc), old) {
        (Some(new), Some(old)) if new != old => {
            return Err(err(
                "spec.clusterIP",
                format!(
                    "{new:?}: field is immutable (the service has {old:?}); delete and recreate \
                     the Service to change it"
                ),
            ));
        }
        (_, Some(old)) => old.to_string(),
        (Some("None"), None) => "None".to_string(),
        (Some(new), None) => {
            let want: Ipv4Addr = new
                .parse()
                .map_err(|_| err("spec.clusterIP", format!("{new:?}: not an IPv4 address")))?;
            if !settings.service_cidr.contains(IpAddr::V4(want)) {
                return Err(err(
                    "spec.clusterIP",
                    format!(
                        "{new}: not in the service CIDR {} (--service-cidr)",
                        settings.service_cidr
                    ),
                ));
            }
            if others.iter().any(|o| cluster_ip(o) == Some(new)) {
                return Err(err(
                    "spec.clusterIP",
                    format!("{new}: provided IP is already allocated to another Service"),
                ));
            }
            new.to_string()
        }
        (None, None) => free_ip(settings.service_cidr, others)?.to_string(),
    };
    svc["spec"]["clusterIP"] = ip.clone().into();
    svc["spec"]["clusterIPs"] = Value::Array(vec![ip.into()]);
    Ok(())
}

fn free_ip(cidr: Cidr, others: &[Value]) -> Result<Ipv4Addr, AssignError> {
    let used: BTreeSet<Ipv4Addr> = others
        .iter()
        .filter_map(|o| cluster_ip(o)?.parse().ok())
        .collect();
    let IpAddr::V4(base) = cidr.network().addr else {
        unreachable!("validated IPv4")
    };
    let size = 1u64 << (32 - cidr.prefix);
    // Skip the reserved addresses and the broadcast address.
    (u64::from(RESERVED_SERVICE_IPS) + 1..size - 1)
        .map(|i| Ipv4Addr::from_bits(base.to_bits() + i as u32))
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| {
            err(
                "spec.clusterIP",
                format!("the service CIDR {cidr} is full: delete unused Services or widen --service-cidr"),
            )
        })
}

fn assign_node_ports(
    svc: &mut Value,
    current: Option<&Value>,
    others: &[Value],
) -> Result<(), AssignError> {
    let node_port = matches!(
        svc["spec"]["type"].as_str(),
        Some("NodePort" | "LoadBalancer")
    );
    let mut used: BTreeSet<i64> = others
        .iter()
        .flat_map(|o| o["spec"]["ports"].as_array().into_iter().flatten())
        .filter_map(|p| p["nodePort"].as_i64())
        .collect();
    let old_ports: Vec<Value> = current
        .and_then(|c| c["spec"]["ports"].as_array().cloned())
        .unwrap_or_default();
    // `pointer_mut`, not `svc["spec"]["ports"]`: indexing a Value mutably
    // inserts a `null` for a missing key, and a headless Service without
    // ports would be stored with `ports: null`, which no longer decodes.
    let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    if !node_port {
        for p in ports.iter_mut() {
            if let Some(m) = p.as_object_mut() {
                m.remove("nodePort");
            }
        }
        return Ok(());
    }
    for (i, p) in ports.iter_mut().enumerate() {
        let path = format!("spec.ports[{i}].nodePort");
        let chosen = match p["nodePort"].as_i64() {
            Some(n) => {
                if used.contains(&n) {
                    return Err(err(
                        path,
                        format!("{n}: provided port is already allocated"),
                    ));
                }
                n
            }
            None => {
                let kept = old_ports
                    .iter()
                    .find(|o| port_key(o) == port_key(p))
                    .and_then(|o| o["nodePort"].as_i64())
                    .filter(|n| !used.contains(n));
                match kept {
                    Some(n) => n,
                    None => NODE_PORT_RANGE
                        .map(i64::from)
                        .find(|n| !used.contains(n))
                        .ok_or_else(|| err(path, "every node port (30000-32767) is allocated"))?,
                }
            }
        };
        used.insert(chosen);
        p["nodePort"] = chosen.into();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec})
    }

    #[test]
    fn lowest_free_ip_above_the_reserved_ones_and_kept_on_replace() {
        let s = NetworkSettings::default();
        let mut a = svc(json!({"ports": [{"port": 80}]}));
        assign(&s, &mut a, None, &[]).unwrap();
        assert_eq!(a["spec"]["clusterIP"], "10.43.0.11");
        assert_eq!(a["spec"]["clusterIPs"], json!(["10.43.0.11"]));
        let mut b = svc(json!({"ports": [{"port": 80}]}));
        assign(&s, &mut b, None, std::slice::from_ref(&a)).unwrap();
        assert_eq!(b["spec"]["clusterIP"], "10.43.0.12");

        // A replace without the field keeps it; a different one is refused.
        let mut again = svc(json!({"ports": [{"port": 81}]}));
        assign(&s, &mut again, Some(&a), std::slice::from_ref(&b)).unwrap();
        assert_eq!(again["spec"]["clusterIP"], "10.43.0.11");
        let mut moved = svc(json!({"clusterIP": "10.43.0.50"}));
        let e = assign(&s, &mut moved, Some(&a), &[]).unwrap_err();
        assert!(e.reason.contains("immutable"), "{e:?}");
    }

    #[test]
    fn chosen_ips_are_checked_and_headless_stays_headless() {
        let s = NetworkSettings::default();
        let taken = svc(json!({"clusterIP": "10.43.0.40"}));
        for (ip, want) in [
            ("10.44.0.1", "not in the service CIDR"),
            ("10.43.0.40", "already allocated"),
            ("nope", "not an IPv4"),
        ] {
            let mut x = svc(json!({"clusterIP": ip}));
            let e = assign(&s, &mut x, None, std::slice::from_ref(&taken)).unwrap_err();
            assert_eq!(e.path, "spec.clusterIP");
            assert!(e.reason.contains(want), "{ip}: {e:?}");
        }
        let mut h = svc(json!({"clusterIP": "None"}));
        assign(&s, &mut h, None, &[]).unwrap();
        assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));
        assert!(
            h["spec"].get("ports").is_none(),
            "no ports stay no ports: {h}"
        );
    }

    #[test]
    fn node_ports_are_allocated_kept_and_unique() {
        let s = NetworkSettings::default();
        let other = svc(json!({"type": "NodePort", "clusterIP": "10.43.0.11",
            "ports": [{"port": 80, "nodePort": 30000}]}));
        let mut a = svc(
            json!({"type": "NodePort", "ports": [{"name": "http", "port": 80},
            {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]}),
        );
        assign(&s, &mut a, None, std::slice::from_ref(&other)).unwrap();
        assert_eq!(a["spec"]["ports"][0]["nodePort"], 30001);
        assert_eq!(a["spec"]["ports"][1]["nodePort"], 30053);

        let mut again = svc(json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}]}));
        assign(&s, &mut again, Some(&a), std::slice::from_ref(&other)).unwrap();
        assert_eq!(again["spec"]["ports"][0]["nodePort"], 30001);

        let mut clash = svc(json!({"type": "NodePort", "ports": [{"port": 1, "nodePort": 30000}]}));
        let e = assign(&s, &mut clash, None, std::slice::from_ref(&other)).unwrap_err();
        assert_eq!(e.path, "spec.ports[0].nodePort");
    }
}
