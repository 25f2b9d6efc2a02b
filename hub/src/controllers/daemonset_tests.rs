//! DaemonSet controller scenarios: nodes come and go, labels and taints
//! change, and a rolling update stays within `maxUnavailable`.

use bramble_api::objects::node::Taint;
use serde_json::json;

use super::action::Action;
use super::daemonset::{DaemonSetInput, plan_daemonset};
use super::pods::is_available;
use super::testutil::{World, daemonset, node, t};
use crate::scheduler::ImagePlatforms;

fn plan(w: &World, now: u64) -> Vec<Action> {
    plan_daemonset(DaemonSetInput {
        daemonset: &w.daemonset,
        nodes: &w.nodes,
        pods: &w.pods,
        images: &ImagePlatforms::new(),
        refused: None,
        now: t(now),
    })
}

/// Plans and applies until no pod changes, marking pods ready after each
/// step; `check` runs after every change.
fn converge(w: &mut World, mut now: u64, check: impl Fn(&World)) -> u64 {
    for _ in 0..100 {
        let actions = plan(w, now);
        let busy = actions
            .iter()
            .any(|a| matches!(a, Action::CreatePod(_) | Action::DeletePod { .. }));
        w.apply(actions, t(now));
        check(w);
        now += 1;
        w.ready_all(t(now));
        if !busy {
            let last = plan(w, now);
            w.apply(last, t(now));
            assert!(plan(w, now).is_empty(), "not idempotent");
            return now;
        }
    }
    panic!("did not converge");
}

/// `(node, image)` of every pod, sorted.
fn placement(w: &World) -> Vec<(String, String)> {
    let mut v: Vec<_> = w
        .pods
        .iter()
        .map(|p| {
            (
                p.node_name().unwrap().to_string(),
                p.spec.containers[0].image.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

fn on(nodes: &[&str], image: &str) -> Vec<(String, String)> {
    nodes
        .iter()
        .map(|n| (n.to_string(), image.to_string()))
        .collect()
}

#[test]
fn one_pod_per_matching_node_follows_nodes() {
    let mut w = World {
        daemonset: daemonset(
            "logs:1",
            json!({"template": {"spec": {"nodeSelector": {"sensors": "yes"}}}}),
        ),
        nodes: vec![
            node("pi-1", json!({"sensors": "yes"})),
            node("pi-2", json!({"sensors": "yes"})),
            node("pi-3", json!({})),
        ],
        ..World::default()
    };
    let now = converge(&mut w, 0, |_| {});
    assert_eq!(placement(&w), on(&["pi-1", "pi-2"], "logs:1"));
    let p = &w.pods[0];
    assert_eq!(p.metadata.owner_references[0].kind, "DaemonSet");
    assert!(
        p.spec
            .tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready"))
    );
    let s = w.daemonset.status.clone().unwrap();
    assert_eq!(
        (
            s.desired_number_scheduled,
            s.current_number_scheduled,
            s.number_ready,
            s.number_misscheduled
        ),
        (2, 2, 2, 0)
    );

    // A node joins, another stops matching, a third leaves.
    w.nodes.push(node("pi-4", json!({"sensors": "yes"})));
    w.nodes[1].metadata.labels.clear();
    let now = converge(&mut w, now, |_| {});
    assert_eq!(placement(&w), on(&["pi-1", "pi-4"], "logs:1"));
    w.nodes.retain(|n| n.name() != "pi-1");
    converge(&mut w, now, |_| {});
    assert_eq!(placement(&w), on(&["pi-4"], "logs:1"));
    assert_eq!(
        w.daemonset
            .status
            .as_ref()
            .unwrap()
            .desired_number_scheduled,
        1
    );
}

#[test]
fn taints_exclude_unless_tolerated_but_readiness_and_cordon_do_not() {
    let mut tainted = node("pi-2", json!({}));
    tainted.spec.taints.push(Taint {
        key: "dedicated".into(),
        value: Some("db".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    });
    let mut not_ready = node("pi-3", json!({}));
    not_ready.status.as_mut().unwrap().conditions[0].status = "False".into();
    let mut cordoned = node("pi-4", json!({}));
    cordoned.spec.unschedulable = true;
    let mut w = World {
        daemonset: daemonset("logs:1", json!({})),
        nodes: vec![node("pi-1", json!({})), tainted, not_ready, cordoned],
        ..World::default()
    };
    converge(&mut w, 0, |_| {});
    assert_eq!(placement(&w), on(&["pi-1", "pi-3", "pi-4"], "logs:1"));

    w.daemonset.spec.template.spec.tolerations =
        serde_json::from_value(json!([{"key": "dedicated", "operator": "Exists"}])).unwrap();
    w.daemonset.spec.template.spec.containers[0].image = "logs:2".into();
    converge(&mut w, 10, |_| {});
    assert_eq!(
        placement(&w),
        on(&["pi-1", "pi-2", "pi-3", "pi-4"], "logs:2")
    );
}

#[test]
fn rolling_update_replaces_within_max_unavailable() {
    let names = ["pi-1", "pi-2", "pi-3", "pi-4", "pi-5"];
    let mut w = World {
        daemonset: daemonset(
            "logs:1",
            json!({"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}),
        ),
        nodes: names.iter().map(|n| node(n, json!({}))).collect(),
        ..World::default()
    };
    let now = converge(&mut w, 0, |_| {});
    w.daemonset.spec.template.spec.containers[0].image = "logs:2".into();
    converge(&mut w, now, |w| {
        let available = w.pods.iter().filter(|p| is_available(p, 0, t(0))).count();
        assert!(available >= 3, "only {available} of 5 nodes available");
        assert!(w.pods.len() <= 5);
    });
    assert_eq!(placement(&w), on(&names, "logs:2"));
    assert_eq!(
        w.daemonset
            .status
            .as_ref()
            .unwrap()
            .updated_number_scheduled,
        Some(5)
    );
}

#[test]
fn on_delete_leaves_old_pods_and_duplicates_are_trimmed() {
    let mut w = World {
        daemonset: daemonset("logs:1", json!({"updateStrategy": {"type": "OnDelete"}})),
        nodes: vec![node("pi-1", json!({}))],
        ..World::default()
    };
    let now = converge(&mut w, 0, |_| {});
    w.daemonset.spec.template.spec.containers[0].image = "logs:2".into();
    let now = converge(&mut w, now, |_| {});
    assert_eq!(placement(&w), on(&["pi-1"], "logs:1"));
    // A second copy on the node (e.g. restored from a backup) is trimmed.
    let mut dup = w.pods[0].clone();
    dup.metadata.name = "logs-dup".into();
    w.pods.push(dup);
    let actions = plan(&w, now);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::DeletePod {
            reason: "Surplus",
            ..
        }
    )));
}

#[test]
fn pods_pod_security_refuses_are_not_created_and_a_condition_says_why() {
    use bramble_api::objects::common::find_condition;
    let why = "violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true)";
    let mut w = World {
        daemonset: daemonset("logs:1", json!({})),
        nodes: vec![node("pi-1", json!({})), node("pi-2", json!({}))],
        ..World::default()
    };
    let refused = |w: &World| {
        plan_daemonset(DaemonSetInput {
            daemonset: &w.daemonset,
            nodes: &w.nodes,
            pods: &w.pods,
            images: &ImagePlatforms::new(),
            refused: Some(why),
            now: t(0),
        })
    };
    let actions = refused(&w);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::CreatePod(_))),
        "{actions:?}"
    );
    w.apply(actions, t(0));
    let status = w.daemonset.status.clone().unwrap();
    let c = find_condition(&status.conditions, "ReplicaFailure").unwrap();
    assert_eq!(c.reason.as_deref(), Some("FailedCreate"));
    assert_eq!(
        c.message.as_deref().unwrap(),
        format!("pods \"{}-\" is forbidden: {why}", w.daemonset.name())
    );
    assert!(refused(&w).is_empty());
    converge(&mut w, 1, |_| {});
    assert_eq!(placement(&w), on(&["pi-1", "pi-2"], "logs:1"));
    let status = w.daemonset.status.clone().unwrap();
    assert!(find_condition(&status.conditions, "ReplicaFailure").is_none());
}
