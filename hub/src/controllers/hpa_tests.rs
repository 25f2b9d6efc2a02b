//! The autoscaler's formula, tolerance, bounds and stabilization.

use std::collections::HashMap;

use bramble_api::objects::HorizontalPodAutoscaler;
use bramble_api::objects::Pod;
use serde_json::json;

use super::action::Action;
use super::hpa::{HpaInput, PodMetrics, plan_hpa};
use super::testutil::{World, deployment, t};

fn hpa(extra: serde_json::Value) -> HorizontalPodAutoscaler {
    let mut v = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "generation": 1},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 6,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}]}
    });
    super::testutil::merge(&mut v["spec"], extra);
    serde_json::from_value(v).unwrap()
}

/// A world whose Deployment runs `n` ready pods requesting 100m CPU each.
fn world(n: i32) -> World {
    let d = deployment(
        n,
        "busybox",
        json!({"template": {"spec": {"containers": [{"name": "web", "image": "busybox",
            "resources": {"requests": {"cpu": "100m"}}}]}}}),
    );
    let mut w = World {
        deployment: d,
        ..World::default()
    };
    // The ReplicaSet first, then its pods.
    for _ in 0..2 {
        w.apply(w.plan_deployment(t(0)), t(0));
    }
    w.ready_all(t(0));
    assert_eq!(w.pods.len(), n as usize);
    w
}

fn metrics(pods: &[Pod], cpu: u64) -> HashMap<String, PodMetrics> {
    pods.iter()
        .map(|p| {
            (
                p.metadata.key().to_string(),
                PodMetrics {
                    cpu_millis: cpu,
                    memory_bytes: 0,
                },
            )
        })
        .collect()
}

/// Plans `h` against the world's Deployment and pods at `t(now)`.
fn plan_at(
    w: &World,
    h: &HorizontalPodAutoscaler,
    metrics: &HashMap<String, PodMetrics>,
    history: &[(std::time::SystemTime, i32)],
    now: u64,
) -> super::hpa::HpaPlan {
    plan_hpa(HpaInput {
        hpa: h,
        deployment: Some(&w.deployment),
        pods: &w.pods,
        replica_sets: &w.replica_sets,
        metrics,
        history,
        now: t(now),
    })
}

fn scale_of(actions: &[Action]) -> Option<i32> {
    actions.iter().find_map(|a| match a {
        Action::ScaleDeployment { replicas, .. } => Some(*replicas),
        _ => None,
    })
}

#[test]
fn scales_up_by_the_usage_ratio_within_max() {
    let w = world(2);
    let h = hpa(json!({}));
    // 2 pods at 100% of a 50% target: ratio 2 -> 4 replicas.
    let m = metrics(&w.pods, 100);
    let p = plan_at(&w, &h, &m, &[], 10);
    assert_eq!(scale_of(&p.actions), Some(4));
    assert_eq!(p.recommendation, Some(4));
    // 2 pods at 500%: ratio 10 -> 20, capped at max 6.
    let m = metrics(&w.pods, 500);
    let p = plan_at(&w, &h, &m, &[], 10);
    assert_eq!(scale_of(&p.actions), Some(6));
}

#[test]
fn within_tolerance_nothing_changes() {
    let w = world(2);
    let h = hpa(json!({}));
    let m = metrics(&w.pods, 54);
    let p = plan_at(&w, &h, &m, &[], 10);
    assert_eq!(scale_of(&p.actions), None);
    let status = p.actions.iter().find_map(|a| match a {
        Action::UpdateHpaStatus { status, .. } => Some(status.clone()),
        _ => None,
    });
    let status = status.expect("status written");
    assert_eq!(status.desired_replicas, 2);
    assert_eq!(
        status.current_metrics[0]
            .resource
            .as_ref()
            .unwrap()
            .current
            .average_utilization,
        Some(54)
    );
}

#[test]
fn scale_down_waits_for_the_stabilization_window() {
    let w = world(4);
    let h = hpa(json!({"behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}}));
    let idle = metrics(&w.pods, 5);
    // A recommendation of 4 ten seconds ago holds the replicas at 4.
    let history = [(t(100), 4)];
    let p = plan_at(&w, &h, &idle, &history, 110);
    assert_eq!(scale_of(&p.actions), None);
    assert_eq!(p.recommendation, Some(1));
    // Once it left the window, down to min.
    let p = plan_at(&w, &h, &idle, &history, 131);
    assert_eq!(scale_of(&p.actions), Some(1));
}

#[test]
fn missing_requests_or_metrics_say_why_and_do_not_scale() {
    let mut w = world(2);
    for p in &mut w.pods {
        p.spec.containers[0].resources.requests.clear();
    }
    let h = hpa(json!({}));
    let m = metrics(&w.pods, 100);
    let p = plan_at(&w, &h, &m, &[], 10);
    assert_eq!(scale_of(&p.actions), None);
    let msg = format!("{:?}", p.actions);
    assert!(msg.contains("missing request for cpu"), "{msg}");
    let p = plan_hpa(HpaInput {
        hpa: &h,
        deployment: None,
        pods: &[],
        replica_sets: &[],
        metrics: &HashMap::new(),
        history: &[],
        now: t(10),
    });
    assert!(format!("{:?}", p.actions).contains("not found"));
}
