//! Node lifecycle scenarios: heartbeats stop, the node goes NotReady, its
//! pods are evicted and replaced, and it is fenced when it returns.

use bramble_api::objects::Pod;
use serde_json::json;

use super::action::{Action, PodRef};
use super::daemonset::{DaemonSetInput, plan_daemonset};
use super::nodes::{NodeHealth, NodeLifecycleConfig, REASON_NODE_LOST, plan_nodes};
use super::pods::is_active;
use super::testutil::{World, daemonset, deployment, node, t};
use crate::scheduler::ImagePlatforms;

fn cfg() -> NodeLifecycleConfig {
    NodeLifecycleConfig::default()
}

/// Node `pi-2` last heard from at `beat`, with `online` and `running`.
fn plan(w: &World, beat: u64, online: bool, running: &[PodRef], now: u64) -> Vec<Action> {
    let health: Vec<NodeHealth<'_>> = w
        .nodes
        .iter()
        .map(|n| NodeHealth {
            node: n,
            last_heartbeat: Some(t(if n.name() == "pi-2" { beat } else { now })),
            online: n.name() != "pi-2" || online,
            running: if n.name() == "pi-2" { running } else { &[] },
        })
        .collect();
    plan_nodes(&cfg(), &health, &w.pods, t(now))
}

fn ready_status(w: &World, node: &str) -> String {
    let n = w.nodes.iter().find(|n| n.name() == node).unwrap();
    let s = n.status.as_ref().unwrap();
    s.conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .status
        .clone()
}

fn evicted(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::EvictPod { pod, reason, .. } => {
                assert_eq!(*reason, REASON_NODE_LOST);
                Some(pod.name.clone())
            }
            _ => None,
        })
        .collect()
}

/// Two nodes, a 2-replica Deployment bound to pi-2, a DaemonSet on both, and
/// a bare pod tolerating unreachability for 10 s on pi-2.
fn cluster() -> World {
    let mut w = World {
        deployment: deployment(2, "web:1", json!({})),
        daemonset: daemonset("logs:1", json!({})),
        nodes: vec![node("pi-1", json!({})), node("pi-2", json!({}))],
        ..World::default()
    };
    // The ReplicaSet, then its pods.
    for _ in 0..2 {
        w.apply(w.plan_deployment(t(0)), t(0));
    }
    for p in &mut w.pods {
        p.spec.node_name = Some("pi-2".into());
    }
    let ds = plan_daemonset(DaemonSetInput {
        daemonset: &w.daemonset,
        nodes: &w.nodes,
        pods: &w.pods,
        images: &ImagePlatforms::new(),
        refused: None,
        now: t(0),
    });
    w.apply(ds, t(0));
    let mut bare: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probe", "namespace": "default", "uid": "uid-probe"},
        "spec": {"nodeName": "pi-2", "containers": [{"name": "p", "image": "probe:1"}],
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 10}]}
    }))
    .unwrap();
    bare.metadata.creation_timestamp = Some(super::time::format(t(0)));
    w.pods.push(bare);
    w.ready_all(t(1));
    w
}

#[test]
fn not_ready_after_missed_heartbeats_or_last_will() {
    let mut w = cluster();
    assert!(plan(&w, 100, true, &[], 103).is_empty());
    let a = plan(&w, 100, true, &[], 104);
    assert_eq!(a.len(), 1, "{a:?}");
    w.apply(a, t(104));
    assert_eq!(ready_status(&w, "pi-2"), "Unknown");
    assert!(plan(&w, 100, true, &[], 105).is_empty());
    // The last will does it at once, whatever the heartbeat says.
    let mut w = cluster();
    let a = plan(&w, 100, false, &[], 100);
    match &a[..] {
        [Action::SetNodeReady { node, condition }] => {
            assert_eq!(node, "pi-2");
            assert_eq!(condition.reason.as_deref(), Some("NodeStatusUnknown"));
            assert!(condition.message.as_deref().unwrap().contains("last will"));
        }
        other => panic!("{other:?}"),
    }
    w.apply(a, t(100));
    assert_eq!(ready_status(&w, "pi-1"), "True");
}

#[test]
fn eviction_after_timeout_then_replacement_and_fencing() {
    let mut w = cluster();
    let on_pi2: Vec<PodRef> = w
        .pods
        .iter()
        .filter(|p| p.node_name() == Some("pi-2"))
        .map(PodRef::of)
        .collect();
    assert_eq!(on_pi2.len(), 4); // 2 web, 1 logs, 1 probe
    w.apply(plan(&w, 100, false, &on_pi2, 100), t(100));

    // The tolerating pod goes after its 10 s, the rest after 60 s; the
    // DaemonSet pod (tolerating forever) stays.
    assert!(evicted(&plan(&w, 100, false, &on_pi2, 109)).is_empty());
    let a = plan(&w, 100, false, &on_pi2, 110);
    assert_eq!(evicted(&a), ["probe"]);
    w.apply(a, t(110));
    assert!(evicted(&plan(&w, 100, false, &on_pi2, 159)).is_empty());
    let a = plan(&w, 100, false, &on_pi2, 160);
    let mut gone = evicted(&a);
    gone.sort();
    let mut web: Vec<String> = w
        .pods
        .iter()
        .filter(|p| p.name().starts_with("web-"))
        .map(|p| p.name().to_string())
        .collect();
    web.sort();
    assert_eq!(gone, web);
    w.apply(a, t(160));
    assert!(
        plan(&w, 100, false, &on_pi2, 200).is_empty(),
        "evictions repeat"
    );

    // The Deployment replaces the failed pods.
    let d = w.plan_deployment(t(161));
    assert_eq!(
        d.iter()
            .filter(|a| matches!(a, Action::CreatePod(_)))
            .count(),
        2
    );
    w.apply(d, t(161));
    assert_eq!(
        w.pods
            .iter()
            .filter(|p| p.name().starts_with("web-") && is_active(p))
            .count(),
        2
    );

    // pi-2 returns still running everything: Ready again, and all but the
    // DaemonSet pod are fenced.
    let a = plan(&w, 300, true, &on_pi2, 300);
    let fenced = a
        .iter()
        .find_map(|a| match a {
            Action::FencePods { node, pods } if node == "pi-2" => Some(pods.clone()),
            _ => None,
        })
        .expect("fencing");
    let mut names: Vec<&str> = fenced.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    let mut want: Vec<&str> = web.iter().map(String::as_str).collect();
    want.insert(0, "probe");
    want.sort();
    assert_eq!(names, want);
    w.apply(a, t(300));
    assert_eq!(ready_status(&w, "pi-2"), "True");
    // Once the agent reports only what it should run, nothing more happens.
    let logs: Vec<PodRef> = on_pi2
        .iter()
        .filter(|p| p.name.starts_with("logs-"))
        .cloned()
        .collect();
    assert!(plan(&w, 301, true, &logs, 301).is_empty());
}
