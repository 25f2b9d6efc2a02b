//! The pods' own DNS names under headless Services, Kubernetes' rule: an
//! address of a Service with `clusterIP: None` that carries a `hostname`
//! (the Endpoints controller sets it for a pod whose `spec.hostname` is set
//! and whose `spec.subdomain` names the Service, as a StatefulSet's pods
//! have) is `<hostname>.<service>.<namespace>.svc.<cluster domain>`. Only
//! ready addresses count, as for the Service's own name.

use bramble_api::objects::{Endpoints, Service};
use bramble_api::protocol::PodHost;

/// The named pod addresses behind the headless `services`, sorted.
pub fn pod_hosts(services: &[Service], endpoints: &[Endpoints]) -> Vec<PodHost> {
    let mut out = Vec::new();
    for svc in services
        .iter()
        .filter(|s| s.spec.cluster_ip.as_deref() == Some("None"))
    {
        let Some(eps) = endpoints
            .iter()
            .find(|e| e.namespace() == svc.namespace() && e.name() == svc.name())
        else {
            continue;
        };
        for a in eps.subsets.iter().flat_map(|s| &s.addresses) {
            if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
                out.push(PodHost {
                    namespace: svc.namespace().to_string(),
                    service: svc.name().to_string(),
                    hostname: h.to_string(),
                    ip: a.ip.clone(),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(name: &str, cluster_ip: &str) -> Service {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"clusterIP": cluster_ip, "selector": {"app": "db"}, "ports": [{"port": 80}]}}))
        .unwrap()
    }

    fn endpoints(name: &str) -> Endpoints {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": "shop"},
            "subsets": [{
                "addresses": [{"ip": "10.42.1.5", "hostname": "db-0"}, {"ip": "10.42.2.7"}],
                "notReadyAddresses": [{"ip": "10.42.3.9", "hostname": "db-1"}],
                "ports": [{"port": 80}]}]}))
        .unwrap()
    }

    #[test]
    fn only_ready_named_addresses_of_headless_services() {
        let hosts = pod_hosts(
            &[service("db", "None"), service("web", "10.43.0.9")],
            &[endpoints("db"), endpoints("web")],
        );
        assert_eq!(
            hosts,
            [PodHost {
                namespace: "shop".into(),
                service: "db".into(),
                hostname: "db-0".into(),
                ip: "10.42.1.5".into(),
            }]
        );
    }
}
