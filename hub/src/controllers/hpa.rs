//! The HorizontalPodAutoscaler: from a Deployment's ready pods, their
//! requests and the usage the agents report, Kubernetes' replica formula
//! `ceil(current × usage / target)` (a 10% tolerance band around the
//! target), clamped to min/max, then stabilized: a scale-down takes the
//! highest recommendation of its window (default 300 s), a scale-up the
//! lowest of its window (default 0 s), so a brief dip or spike does not
//! flap the workload. Only `Resource` metrics (cpu, memory) with
//! `Utilization` or `AverageValue` targets.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bramble_api::objects::common::Condition;
use bramble_api::objects::hpa::{
    HorizontalPodAutoscaler, HpaStatus, MetricStatus, MetricValueStatus, ResourceMetricStatus,
};
use bramble_api::objects::{Deployment, Pod, ReplicaSet};
use bramble_api::quantity::Quantity;

use super::action::Action;
use super::pods::{is_active, is_ready};
use super::replicasets::deployment_pods;
use super::time;

/// Kubernetes' tolerance: no change while usage is within 10% of target.
pub const TOLERANCE: f64 = 0.1;

/// A pod's current usage: CPU in millicores (a rate) and memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodMetrics {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

/// What one autoscaler reads.
#[derive(Debug, Clone, Copy)]
pub struct HpaInput<'a> {
    pub hpa: &'a HorizontalPodAutoscaler,
    /// The target Deployment, if it exists.
    pub deployment: Option<&'a Deployment>,
    /// Pods of the namespace.
    pub pods: &'a [Pod],
    /// ReplicaSets of the namespace (the Deployment's hold its pods).
    pub replica_sets: &'a [ReplicaSet],
    /// Usage by `namespace/name`.
    pub metrics: &'a HashMap<String, PodMetrics>,
    /// Earlier recommendations (time, replicas), any order.
    pub history: &'a [(SystemTime, i32)],
    pub now: SystemTime,
}

/// The plan: actions, and the raw recommendation to remember.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaPlan {
    pub actions: Vec<Action>,
    pub recommendation: Option<i32>,
}

/// Plans one autoscaler.
pub fn plan_hpa(input: HpaInput<'_>) -> HpaPlan {
    let hpa = input.hpa;
    let mut status = hpa.status.clone().unwrap_or_default();
    status.observed_generation = hpa.metadata.generation;
    let Some(d) = input.deployment else {
        set_condition(
            &mut status,
            "AbleToScale",
            "False",
            "FailedGetScale",
            format!("deployment {:?} not found", hpa.spec.scale_target_ref.name),
            input.now,
        );
        return finish(hpa, status, None, Vec::new());
    };
    let current = d.spec.replicas.unwrap_or(1);
    status.current_replicas = d
        .status
        .as_ref()
        .map_or(current, |s| s.replicas.unwrap_or(0));
    let ready: Vec<&Pod> = deployment_pods(d, input.replica_sets, input.pods)
        .into_iter()
        .filter(|p| is_active(p) && is_ready(p))
        .collect();
    let mut desired: Option<i32> = None;
    let mut current_metrics = Vec::new();
    let mut problem: Option<String> = None;
    for m in &hpa.spec.metrics {
        let Some(r) = m.resource.as_ref().filter(|_| m.type_ == "Resource") else {
            continue;
        };
        match recommend(&r.name, &r.target, &ready, input.metrics) {
            Ok((count, ratio, value_status)) => {
                current_metrics.push(MetricStatus {
                    type_: "Resource".into(),
                    resource: Some(ResourceMetricStatus {
                        name: r.name.clone(),
                        current: value_status,
                    }),
                });
                let want = if (ratio - 1.0).abs() <= TOLERANCE {
                    current
                } else {
                    (ratio * count as f64).ceil() as i32
                };
                desired = Some(desired.map_or(want, |d| d.max(want)));
            }
            Err(why) => problem = Some(why),
        }
    }
    status.current_metrics = current_metrics;
    let Some(raw) = desired else {
        let why = problem.unwrap_or_else(|| "no ready pods with metrics yet".into());
        set_condition(
            &mut status,
            "ScalingActive",
            "False",
            "FailedGetResourceMetric",
            why,
            input.now,
        );
        return finish(hpa, status, None, Vec::new());
    };
    set_condition(
        &mut status,
        "ScalingActive",
        "True",
        "ValidMetricFound",
        "the HPA was able to compute the replica count".into(),
        input.now,
    );
    let min = hpa.spec.min_replicas.unwrap_or(1);
    let max = hpa.spec.max_replicas;
    let bounded = raw.clamp(min.min(max), max);
    let window = |up: bool| {
        let rules = hpa.spec.behavior.as_ref().and_then(|b| {
            if up {
                b.scale_up.as_ref()
            } else {
                b.scale_down.as_ref()
            }
        });
        let secs = rules
            .and_then(|r| r.stabilization_window_seconds)
            .unwrap_or(if up { 0 } else { 300 });
        Duration::from_secs(secs.max(0) as u64)
    };
    let within = |w: Duration| {
        input
            .history
            .iter()
            .filter(move |(t, _)| *t + w > input.now)
            .map(|(_, r)| *r)
            .chain(std::iter::once(bounded))
    };
    let stabilized = if bounded < current {
        within(window(false)).max().unwrap_or(bounded).min(current)
    } else if bounded > current {
        within(window(true)).min().unwrap_or(bounded).max(current)
    } else {
        current
    };
    status.desired_replicas = stabilized;
    let mut actions = Vec::new();
    if stabilized != current {
        status.last_scale_time = Some(time::format(input.now));
        set_condition(
            &mut status,
            "AbleToScale",
            "True",
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {stabilized}"),
            input.now,
        );
        actions.push(Action::ScaleDeployment {
            namespace: d.metadata.namespace_or_default().to_string(),
            name: d.metadata.name.clone(),
            replicas: stabilized,
        });
    } else {
        set_condition(
            &mut status,
            "AbleToScale",
            "True",
            "ReadyForNewScale",
            "recommended size matches current size".into(),
            input.now,
        );
    }
    finish(hpa, status, Some(bounded), actions)
}

fn finish(
    hpa: &HorizontalPodAutoscaler,
    status: HpaStatus,
    recommendation: Option<i32>,
    mut actions: Vec<Action>,
) -> HpaPlan {
    if hpa.status.as_ref() != Some(&status) {
        actions.push(Action::UpdateHpaStatus {
            namespace: hpa.namespace().to_string(),
            name: hpa.name().to_string(),
            status: Box::new(status),
        });
    }
    HpaPlan {
        actions,
        recommendation,
    }
}

/// (pods counted, usage/target ratio, current value) for one resource metric.
fn recommend(
    resource: &str,
    target: &bramble_api::objects::hpa::MetricTarget,
    ready: &[&Pod],
    metrics: &HashMap<String, PodMetrics>,
) -> Result<(usize, f64, MetricValueStatus), String> {
    let usage_of = |m: &PodMetrics| match resource {
        "cpu" => m.cpu_millis as f64,
        _ => m.memory_bytes as f64,
    };
    let mut usage = 0.0;
    let mut requests = 0.0;
    let mut count = 0usize;
    for p in ready {
        let Some(m) = metrics.get(&p.metadata.key().to_string()) else {
            continue;
        };
        usage += usage_of(m);
        let mut req = 0.0;
        for c in &p.spec.containers {
            if let Some(q) = c.resources.requests.get(resource) {
                req += match resource {
                    "cpu" => q.to_millis().unwrap_or(0) as f64,
                    _ => q.to_bytes().unwrap_or(0) as f64,
                };
            }
        }
        requests += req;
        count += 1;
        if target.type_ == "Utilization" && req == 0.0 {
            return Err(format!(
                "missing request for {resource} in pod {:?}: Utilization targets need resources.requests.{resource} on every container",
                p.name()
            ));
        }
    }
    if count == 0 {
        return Err(format!("no {resource} metrics for the ready pods yet"));
    }
    match target.type_.as_str() {
        "Utilization" => {
            let want = target.average_utilization.unwrap_or(80).max(1) as f64;
            let util = 100.0 * usage / requests;
            Ok((
                count,
                util / want,
                MetricValueStatus {
                    average_utilization: Some(util.round() as i32),
                    average_value: Some(quantity(resource, usage / count as f64)),
                },
            ))
        }
        _ => {
            let want = target
                .average_value
                .as_ref()
                .map(|q| match resource {
                    "cpu" => q.to_millis().unwrap_or(0) as f64,
                    _ => q.to_bytes().unwrap_or(0) as f64,
                })
                .filter(|v| *v > 0.0)
                .ok_or_else(|| format!("{resource}: an AverageValue target needs averageValue"))?;
            let avg = usage / count as f64;
            Ok((
                count,
                avg / want,
                MetricValueStatus {
                    average_utilization: None,
                    average_value: Some(quantity(resource, avg)),
                },
            ))
        }
    }
}

fn quantity(resource: &str, v: f64) -> Quantity {
    match resource {
        "cpu" => Quantity::from_millis(v.round() as u64),
        _ => Quantity::from_bytes(v.round() as u64),
    }
}

fn set_condition(
    status: &mut HpaStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: String,
    now: SystemTime,
) {
    if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != value {
            c.last_transition_time = Some(time::format(now));
        }
        c.status = value.into();
        c.reason = Some(reason.into());
        c.message = Some(message);
        return;
    }
    status.conditions.push(Condition {
        type_: type_.into(),
        status: value.into(),
        last_transition_time: Some(time::format(now)),
        reason: Some(reason.into()),
        message: Some(message),
        ..Condition::default()
    });
}
