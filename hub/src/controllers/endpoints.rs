//! Endpoints: for every Service with a selector, the addresses of the pods it
//! selects (same namespace, with a pod IP, not finished or being deleted),
//! ready ones in `addresses`, the others in `notReadyAddresses`, grouped by the
//! ports they resolve `targetPort` to (a named port may be a different number
//! on different pods). Endpoints of selector-less Services are the user's and
//! left alone; those of deleted Services are removed.

use std::collections::{BTreeMap, BTreeSet};

use bramble_api::intstr::IntOrString;
use bramble_api::meta::ObjectMeta;
use bramble_api::objects::common::ObjectReference;
use bramble_api::objects::endpoints::{EndpointAddress, EndpointPort, EndpointSubset};
use bramble_api::objects::{Endpoints, Pod, Service};
use bramble_api::selector::Selector;

use super::action::Action;
use super::pods::{is_active, is_ready};

/// Label Bramble puts on the Endpoints it manages.
pub const MANAGED_BY: &str = "endpoints.bramble.dev/managed-by";

/// What the endpoints controller reads.
#[derive(Debug, Clone, Copy)]
pub struct EndpointsInput<'a> {
    pub services: &'a [Service],
    pub pods: &'a [Pod],
    pub endpoints: &'a [Endpoints],
}

/// Upserts the Endpoints of every selecting Service whose content changed and
/// deletes managed Endpoints whose Service is gone or lost its selector.
pub fn plan_endpoints(input: EndpointsInput<'_>) -> Vec<Action> {
    let mut actions = Vec::new();
    let existing: BTreeMap<(&str, &str), &Endpoints> = input
        .endpoints
        .iter()
        .map(|e| ((e.namespace(), e.name()), e))
        .collect();
    let mut wanted = BTreeSet::new();
    for svc in input
        .services
        .iter()
        .filter(|s| !s.spec.selector.is_empty())
    {
        wanted.insert((svc.namespace(), svc.name()));
        let subsets = subsets_of(svc, input.pods);
        let current = existing.get(&(svc.namespace(), svc.name()));
        if current.is_some_and(|e| e.subsets == subsets && is_managed(e)) {
            continue;
        }
        let mut labels = svc.metadata.labels.clone();
        labels.insert(MANAGED_BY.into(), "bramble-hub".into());
        actions.push(Action::PutEndpoints(Box::new(Endpoints {
            api_version: "v1".into(),
            kind: "Endpoints".into(),
            metadata: ObjectMeta {
                name: svc.name().to_string(),
                namespace: Some(svc.namespace().to_string()),
                labels,
                ..ObjectMeta::default()
            },
            subsets,
        })));
    }
    for e in input.endpoints.iter().filter(|e| is_managed(e)) {
        if !wanted.contains(&(e.namespace(), e.name())) {
            actions.push(Action::DeleteEndpoints {
                namespace: e.namespace().to_string(),
                name: e.name().to_string(),
            });
        }
    }
    actions
}

fn is_managed(e: &Endpoints) -> bool {
    e.metadata.labels.contains_key(MANAGED_BY)
}

/// A service port resolved on one pod: name, container port, protocol.
type ResolvedPort = (String, i32, String);

/// The subsets of `svc` from `pods`, sorted so equal content compares equal.
pub fn subsets_of(svc: &Service, pods: &[Pod]) -> Vec<EndpointSubset> {
    let selector = Selector::from_map(&svc.spec.selector);
    let mut by_ports: BTreeMap<Vec<ResolvedPort>, (Vec<_>, Vec<_>)> = BTreeMap::new();
    for pod in pods {
        if pod.namespace() != svc.namespace()
            || !is_active(pod)
            || !selector.matches(&pod.metadata.labels)
        {
            continue;
        }
        let Some(ip) = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty())
        else {
            continue;
        };
        let ports: Vec<ResolvedPort> = svc
            .spec
            .ports
            .iter()
            .filter_map(|p| {
                let port = resolve_target_port(pod, p.target_port.as_ref(), p.port)?;
                Some((p.name.clone(), port, p.protocol().to_string()))
            })
            .collect();
        if ports.is_empty() && !svc.spec.ports.is_empty() {
            continue;
        }
        let address = EndpointAddress {
            ip,
            // Kubernetes' rule: the pod's own DNS name under this Service.
            hostname: pod
                .spec
                .hostname
                .clone()
                .filter(|h| !h.is_empty() && pod.spec.subdomain.as_deref() == Some(svc.name())),
            node_name: pod.node_name().map(str::to_string),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: Some(pod.namespace().to_string()),
                name: Some(pod.name().to_string()),
                uid: pod.metadata.uid.clone(),
                ..ObjectReference::default()
            }),
        };
        let (ready, not_ready) = by_ports.entry(ports).or_default();
        if is_ready(pod) || svc.spec.publish_not_ready_addresses {
            ready.push(address);
        } else {
            not_ready.push(address);
        }
    }
    by_ports
        .into_iter()
        .map(|(ports, (mut addresses, mut not_ready_addresses))| {
            addresses.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready_addresses.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses,
                not_ready_addresses,
                ports: ports
                    .into_iter()
                    .map(|(name, port, protocol)| EndpointPort {
                        name: (!name.is_empty()).then_some(name),
                        port,
                        protocol: Some(protocol),
                        app_protocol: None,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The container port a Service port's `targetPort` means on `pod`: a number
/// as is, a name looked up in the pod's containers (none: the pod is not an
/// endpoint of that port), absent: the service port.
fn resolve_target_port(pod: &Pod, target: Option<&IntOrString>, port: i32) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => match name.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => pod
                .spec
                .containers
                .iter()
                .find_map(|c| c.port_named(name))
                .map(|p| p.container_port),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: Option<&str>, ready: bool, port_name_value: i32) -> Pod {
        let mut status = json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]});
        if let Some(ip) = ip {
            status["podIP"] = ip.into();
        }
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"),
                         "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i",
                "ports": [{"name": "http", "containerPort": port_name_value}]}]},
            "status": status
        }))
        .unwrap()
    }

    fn service(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec}))
        .unwrap()
    }

    fn put(actions: &[Action]) -> &Endpoints {
        match actions {
            [Action::PutEndpoints(e)] => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ready_pods_are_addresses_others_not_ready_named_ports_resolved() {
        let svc = service(json!({"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}));
        let pods = vec![
            pod("b", Some("10.42.1.3"), true, 8080),
            pod("a", Some("10.42.0.2"), true, 8080),
            pod("c", Some("10.42.2.2"), false, 8080),
            pod("d", None, true, 8080),
            pod("e", Some("10.42.2.9"), true, 9090),
        ];
        let actions = plan_endpoints(EndpointsInput {
            services: std::slice::from_ref(&svc),
            pods: &pods,
            endpoints: &[],
        });
        let e = put(&actions);
        assert_eq!(e.subsets.len(), 2, "{e:?}");
        let s8080 = &e.subsets[0];
        assert_eq!(s8080.ports[0].port, 8080);
        let ips: Vec<&str> = s8080.addresses.iter().map(|a| a.ip.as_str()).collect();
        assert_eq!(ips, ["10.42.0.2", "10.42.1.3"]);
        assert_eq!(s8080.not_ready_addresses[0].ip, "10.42.2.2");
        assert_eq!(e.subsets[1].ports[0].port, 9090);
        assert_eq!(
            s8080.addresses[0]
                .target_ref
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("a")
        );

        // Applied and planned again: nothing to do.
        let again = plan_endpoints(EndpointsInput {
            services: std::slice::from_ref(&svc),
            pods: &pods,
            endpoints: std::slice::from_ref(e),
        });
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_pod_whose_subdomain_names_the_service_gets_its_hostname() {
        let svc = service(
            json!({"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}),
        );
        let mut named = pod("web-0", Some("10.42.0.5"), true, 8080);
        named.spec.hostname = Some("web-0".into());
        named.spec.subdomain = Some("web".into());
        let mut elsewhere = pod("web-1", Some("10.42.0.6"), true, 8080);
        elsewhere.spec.hostname = Some("web-1".into());
        elsewhere.spec.subdomain = Some("other".into());
        let subsets = subsets_of(&svc, &[named, elsewhere]);
        let hosts: Vec<(&str, Option<&str>)> = subsets[0]
            .addresses
            .iter()
            .map(|a| (a.ip.as_str(), a.hostname.as_deref()))
            .collect();
        assert_eq!(hosts, [("10.42.0.5", Some("web-0")), ("10.42.0.6", None)]);
    }

    #[test]
    fn managed_endpoints_of_gone_services_are_deleted_user_ones_kept() {
        let svc = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let e = put(&plan_endpoints(EndpointsInput {
            services: std::slice::from_ref(&svc),
            pods: &[pod("a", Some("10.42.0.2"), true, 80)],
            endpoints: &[],
        }))
        .clone();
        let mut user = e.clone();
        user.metadata.name = "external".into();
        user.metadata.labels.clear();
        let actions = plan_endpoints(EndpointsInput {
            services: &[],
            pods: &[],
            endpoints: &[e, user],
        });
        assert_eq!(
            actions,
            vec![Action::DeleteEndpoints {
                namespace: "default".into(),
                name: "web".into()
            }]
        );
    }
}
