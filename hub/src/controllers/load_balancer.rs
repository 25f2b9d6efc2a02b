//! The status of `type: LoadBalancer` Services served by the hub's load
//! balancer ([`crate::service_lb`]): every port served → `status.
//! loadBalancer.ingress` lists the hub's addresses and the condition
//! [`CONDITION`] is `True`; a port held by an older Service, a protocol the
//! load balancer does not forward, or a port the hub could not bind (another
//! program listens on it) → no ingress (`EXTERNAL-IP <pending>`) and the
//! condition is `False` with reason [`UNAVAILABLE`] and what to do, with a
//! Warning event on the Service. Ready nodes its `bramble.dev/lb-nodes`
//! selects serve it too and are listed after the hub (an annotation that is
//! not a selector is a problem like the others). A Service that stops being
//! a LoadBalancer loses both. Other conditions are left alone.

use std::collections::BTreeMap;
use std::time::SystemTime;

use bramble_api::objects::common::{Condition, find_condition};
use bramble_api::objects::service::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
use bramble_api::objects::{Node, Service};

use super::action::{Action, Note};
use super::time;
use crate::network::table::internal_ip;
use crate::service_lb::nodes::selected;
use crate::service_lb::plan::{LbPlan, PortKey, ServiceId};

/// The condition the load balancer keeps on its Services.
pub const CONDITION: &str = "LoadBalancerReady";
/// Its reason while some port is not served.
pub const UNAVAILABLE: &str = "PortUnavailable";
/// Its reason once every port is served (and the event's, as Kubernetes'
/// service controller names it).
pub const SERVED: &str = "EnsuredLoadBalancer";

/// What the load balancer's status plan reads.
#[derive(Debug, Clone, Copy)]
pub struct LoadBalancerInput<'a> {
    pub services: &'a [Service],
    pub plan: &'a LbPlan,
    /// Served ports the hub could not bind, and why.
    pub failures: &'a BTreeMap<PortKey, String>,
    /// The addresses the load balancer answers on.
    pub ingress: &'a [LoadBalancerIngress],
    /// The nodes (those a Service's `bramble.dev/lb-nodes` selects serve it
    /// too, and are listed with the hub).
    pub nodes: &'a [Node],
    pub now: SystemTime,
}

/// Status updates for the Services whose load balancer status changed.
pub fn plan_load_balancers(input: LoadBalancerInput<'_>) -> Vec<Action> {
    let mut actions = Vec::new();
    for svc in input.services {
        let current = svc.status.clone().unwrap_or_default();
        let (want, note) = if svc.type_() == "LoadBalancer" {
            wanted(svc, &current, input)
        } else {
            (cleared(&current), None)
        };
        if want != current {
            actions.push(Action::UpdateServiceStatus {
                namespace: svc.namespace().to_string(),
                name: svc.name().to_string(),
                status: Box::new(want),
                notes: note.into_iter().collect(),
            });
        }
    }
    actions
}

/// The status of a LoadBalancer Service, and the event of a change.
fn wanted(
    svc: &Service,
    current: &ServiceStatus,
    input: LoadBalancerInput<'_>,
) -> (ServiceStatus, Option<Note>) {
    let id = ServiceId::of(svc);
    let mut problems: Vec<String> = input
        .plan
        .refused
        .get(&id)
        .into_iter()
        .flatten()
        .map(ToString::to_string)
        .collect();
    let served: Vec<PortKey> = input.plan.ports_of(&id).collect();
    problems.extend(
        served
            .iter()
            .filter_map(|k| input.failures.get(k).map(|why| format!("port {k}: {why}"))),
    );
    let mut ingress = input.ingress.to_vec();
    match selected(svc, input.nodes) {
        Ok(nodes) => {
            let mut ips: Vec<&str> = nodes.iter().filter_map(|n| internal_ip(n)).collect();
            ips.sort();
            ips.dedup();
            for ip in ips {
                if !ingress.iter().any(|i| i.ip.as_deref() == Some(ip)) {
                    ingress.push(LoadBalancerIngress {
                        ip: Some(ip.to_string()),
                        hostname: None,
                    });
                }
            }
        }
        Err(why) => problems.push(why),
    }
    let ok = problems.is_empty();
    let message = if ok {
        let addrs: Vec<&str> = ingress
            .iter()
            .filter_map(|i| i.ip.as_deref().or(i.hostname.as_deref()))
            .collect();
        let ports: Vec<String> = served.iter().map(ToString::to_string).collect();
        format!("served on {} port {}", addrs.join(", "), ports.join(", "))
    } else {
        problems.join("; ")
    };
    let (status, reason) = if ok {
        ("True", SERVED)
    } else {
        ("False", UNAVAILABLE)
    };
    let old = find_condition(&current.conditions, CONDITION);
    let same = old.is_some_and(|c| {
        c.status == status
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message.as_str())
    });
    let mut want = current.clone();
    want.load_balancer = ok.then_some(LoadBalancerStatus { ingress });
    if same {
        return (want, None);
    }
    let transition = match old {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Some(time::format(input.now)),
    };
    want.conditions.retain(|c| c.type_ != CONDITION);
    want.conditions.push(Condition {
        type_: CONDITION.into(),
        status: status.into(),
        last_transition_time: transition,
        reason: Some(reason.into()),
        message: Some(message.clone()),
        ..Default::default()
    });
    let note = if ok {
        Note::normal(SERVED, message)
    } else {
        Note::warning(UNAVAILABLE, message)
    };
    (want, Some(note))
}

/// The status of a Service that is not a LoadBalancer: nothing of ours.
fn cleared(current: &ServiceStatus) -> ServiceStatus {
    let mut want = current.clone();
    want.load_balancer = None;
    want.conditions.retain(|c| c.type_ != CONDITION);
    want
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_lb::plan::Protocol;
    use serde_json::json;
    use std::time::Duration;

    fn svc(
        name: &str,
        created: &str,
        type_: &str,
        port: u16,
        status: serde_json::Value,
    ) -> Service {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
            "spec": {"type": type_, "ports": [{"port": port, "protocol": "TCP"}]},
            "status": status,
        }))
        .unwrap()
    }

    fn hub_ip() -> Vec<LoadBalancerIngress> {
        vec![LoadBalancerIngress {
            ip: Some("192.168.1.5".into()),
            hostname: None,
        }]
    }

    fn plan(
        services: &[Service],
        failures: &BTreeMap<PortKey, String>,
        now: SystemTime,
    ) -> Vec<Action> {
        let lb = LbPlan::build(services);
        plan_load_balancers(LoadBalancerInput {
            services,
            plan: &lb,
            failures,
            ingress: &hub_ip(),
            nodes: &[],
            now,
        })
    }

    fn status_of(a: &Action) -> (&str, &ServiceStatus, &[Note]) {
        match a {
            Action::UpdateServiceStatus {
                name,
                status,
                notes,
                ..
            } => (name.as_str(), status, notes.as_slice()),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The Service with `a`'s status, as the store would hold it next.
    fn applied(mut s: Service, a: &Action) -> Service {
        s.status = Some(status_of(a).1.clone());
        s
    }

    #[test]
    fn a_served_service_gets_the_hubs_address_once() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let web = svc(
            "web",
            "2026-01-01T00:00:00Z",
            "LoadBalancer",
            8080,
            json!({}),
        );
        let actions = plan(std::slice::from_ref(&web), &BTreeMap::new(), now);
        assert_eq!(actions.len(), 1);
        let (name, status, notes) = status_of(&actions[0]);
        assert_eq!(name, "web");
        assert_eq!(status.load_balancer.as_ref().unwrap().ingress, hub_ip());
        let c = find_condition(&status.conditions, CONDITION).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("True", Some(SERVED))
        );
        assert_eq!(
            c.message.as_deref(),
            Some("served on 192.168.1.5 port 8080/TCP")
        );
        assert_eq!(notes, [Note::normal(SERVED, c.message.clone().unwrap())]);
        // Applied, it converges: nothing more to write, no second event.
        let web = applied(web, &actions[0]);
        assert!(plan(&[web], &BTreeMap::new(), now + Duration::from_secs(5)).is_empty());
    }

    #[test]
    fn a_taken_or_unbindable_port_leaves_it_pending_with_a_warning() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let first = svc(
            "first",
            "2026-01-01T00:00:00Z",
            "LoadBalancer",
            8080,
            json!({}),
        );
        let second = svc(
            "second",
            "2026-02-01T00:00:00Z",
            "LoadBalancer",
            8080,
            json!({}),
        );
        let failures = BTreeMap::from([(
            PortKey {
                protocol: Protocol::Tcp,
                port: 8080,
            },
            "binding 0.0.0.0:8080 failed: address in use".to_string(),
        )]);
        let actions = plan(&[first.clone(), second.clone()], &failures, now);
        assert_eq!(actions.len(), 2);
        for a in &actions {
            let (name, status, notes) = status_of(a);
            assert!(status.load_balancer.is_none(), "{name}");
            let c = find_condition(&status.conditions, CONDITION).unwrap();
            assert_eq!(
                (c.status.as_str(), c.reason.as_deref()),
                ("False", Some(UNAVAILABLE))
            );
            let want = if name == "first" {
                "port 8080/TCP: binding 0.0.0.0:8080 failed: address in use"
            } else {
                "port 8080/TCP is already served for service default/first (created first): choose another port, or delete that service"
            };
            assert_eq!(c.message.as_deref(), Some(want), "{name}");
            assert_eq!(notes, [Note::warning(UNAVAILABLE, want.to_string())]);
        }
        // The port comes free: the first is served, its transition time moves.
        let first = applied(first, &actions[0]);
        let later = now + Duration::from_secs(60);
        let again = plan(std::slice::from_ref(&first), &BTreeMap::new(), later);
        let (_, status, notes) = status_of(&again[0]);
        let c = find_condition(&status.conditions, CONDITION).unwrap();
        assert_eq!(c.status, "True");
        assert_eq!(c.last_transition_time, Some(time::format(later)));
        assert_eq!(notes[0].reason, SERVED);
    }

    #[test]
    fn chosen_nodes_are_listed_after_the_hub_and_a_bad_choice_is_explained() {
        let now = SystemTime::UNIX_EPOCH;
        let gw: Node = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "gw-1", "labels": {"role": "gateway"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.11"}],
                "conditions": [{"type": "Ready", "status": "True"}]}}))
        .unwrap();
        let mut web = svc(
            "web",
            "2026-01-01T00:00:00Z",
            "LoadBalancer",
            8080,
            json!({}),
        );
        web.metadata
            .annotations
            .insert("bramble.dev/lb-nodes".into(), "role=gateway".into());
        let nodes = [gw];
        let no_failures = BTreeMap::new();
        let hub = hub_ip();
        let run = |services: &[Service]| {
            let lb = LbPlan::build(services);
            plan_load_balancers(LoadBalancerInput {
                services,
                plan: &lb,
                failures: &no_failures,
                ingress: &hub,
                nodes: &nodes,
                now,
            })
        };
        let actions = run(std::slice::from_ref(&web));
        let (_, status, _) = status_of(&actions[0]);
        let ips: Vec<String> = status
            .load_balancer
            .as_ref()
            .unwrap()
            .ingress
            .iter()
            .map(|i| i.ip.clone().unwrap())
            .collect();
        assert_eq!(ips, ["192.168.1.5", "10.0.0.11"]);
        web.metadata
            .annotations
            .insert("bramble.dev/lb-nodes".into(), "role in (".into());
        let actions = run(&[web]);
        let (_, status, _) = status_of(&actions[0]);
        let c = find_condition(&status.conditions, CONDITION).unwrap();
        assert_eq!(c.status, "False");
        assert!(
            c.message
                .as_deref()
                .unwrap()
                .contains("is not a label selector"),
            "{c:?}"
        );
    }

    #[test]
    fn a_service_that_is_no_longer_a_load_balancer_loses_its_status_only() {
        let now = SystemTime::UNIX_EPOCH;
        let was = svc(
            "was",
            "2026-01-01T00:00:00Z",
            "NodePort",
            80,
            json!({"loadBalancer": {"ingress": [{"ip": "192.168.1.5"}]},
                   "conditions": [{"type": CONDITION, "status": "True"},
                                  {"type": "Other", "status": "True"}]}),
        );
        let actions = plan(&[was], &BTreeMap::new(), now);
        let (_, status, notes) = status_of(&actions[0]);
        assert!(status.load_balancer.is_none());
        assert_eq!(status.conditions.len(), 1);
        assert_eq!(status.conditions[0].type_, "Other");
        assert!(notes.is_empty());
        let plain = svc("plain", "2026-01-01T00:00:00Z", "ClusterIP", 80, json!({}));
        assert!(plan(&[plain], &BTreeMap::new(), now).is_empty());
    }
}
