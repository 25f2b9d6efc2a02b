//! `autoscaling/v2 HorizontalPodAutoscaler`: scales a Deployment on CPU or
//! memory (`Resource` metrics only), with Kubernetes' scaling behavior rules.

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors, index, join};
use crate::meta::ObjectMeta;
use crate::quantity::Quantity;

use super::common::{Condition, check_enum, check_opt_enum};

/// Default target when no metrics are given: 80% average CPU utilization.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

/// `autoscaling/v2 HorizontalPodAutoscaler`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HorizontalPodAutoscaler {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: HpaSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HpaStatus>,
}

/// `spec` of a HorizontalPodAutoscaler.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaSpec {
    #[serde(default)]
    pub scale_target_ref: CrossVersionObjectReference,
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default)]
    pub max_replicas: i32,
    /// Default: CPU at 80% average utilization.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HpaBehavior>,
}

/// `scaleTargetRef: {apiVersion, kind, name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.CrossVersionObjectReference")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrossVersionObjectReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// One metric; only `type: Resource` is supported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.MetricSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSpec {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricSource>,
}

/// `resource: {name: cpu|memory, target}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.ResourceMetricSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceMetricSource {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub target: MetricTarget,
}

/// `target: {type: Utilization|AverageValue, averageUtilization, averageValue}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.MetricTarget")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricTarget {
    #[serde(rename = "type", default)]
    pub type_: String,
    /// Percent of the pods' requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
}

/// `behavior: {scaleUp, scaleDown}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaBehavior {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<HpaScalingRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<HpaScalingRules>,
}

/// `{stabilizationWindowSeconds, selectPolicy, policies}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.HPAScalingRules")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaScalingRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<i32>,
    /// `Max`, `Min` or `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<HpaScalingPolicy>,
}

/// `{type: Pods|Percent, value, periodSeconds}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.HPAScalingPolicy")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaScalingPolicy {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub value: i32,
    #[serde(default)]
    pub period_seconds: i32,
}

/// `status` of a HorizontalPodAutoscaler, written by the hub's autoscaler.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct HpaStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<String>,
    #[serde(default)]
    pub current_replicas: i32,
    #[serde(default)]
    pub desired_replicas: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub current_metrics: Vec<MetricStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The observed value of one metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.MetricStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricStatus>,
}

/// `{name, current: {averageUtilization, averageValue}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.ResourceMetricStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub current: MetricValueStatus,
}

/// `current: {averageUtilization, averageValue}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.autoscaling.v2.MetricValueStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
}

fn policy(type_: &str, value: i32) -> HpaScalingPolicy {
    HpaScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds: 15,
    }
}

/// Fills unset scaling rules with Kubernetes' defaults: scale up without
/// stabilization by max(100%, 4 pods) per 15s; scale down after 300s by up to
/// 100% per 15s.
fn default_rules(rules: &mut Option<HpaScalingRules>, up: bool) {
    let r = rules.get_or_insert_with(Default::default);
    r.stabilization_window_seconds
        .get_or_insert(if up { 0 } else { 300 });
    r.select_policy.get_or_insert_with(|| "Max".into());
    if r.policies.is_empty() {
        r.policies = if up {
            vec![policy("Pods", 4), policy("Percent", 100)]
        } else {
            vec![policy("Percent", 100)]
        };
    }
}

impl HorizontalPodAutoscaler {
    /// The autoscaler's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The autoscaler's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// Minimum replicas (1 when unset).
    pub fn min_replicas(&self) -> i32 {
        self.spec.min_replicas.unwrap_or(1)
    }
}

impl Object for HorizontalPodAutoscaler {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// minReplicas 1; CPU 80% when no metrics; behavior rules filled in when
    /// `behavior` is given (as Kubernetes does).
    fn apply_defaults(&mut self) {
        let s = &mut self.spec;
        s.min_replicas.get_or_insert(1);
        if s.metrics.is_empty() {
            s.metrics.push(MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                        average_value: None,
                    },
                }),
            });
        }
        if let Some(b) = &mut s.behavior {
            default_rules(&mut b.scale_up, true);
            default_rules(&mut b.scale_down, false);
        }
    }

    fn validate(&self) -> FieldErrors {
        let s = &self.spec;
        let mut errs = FieldErrors::new();
        let r = &s.scale_target_ref;
        if r.kind.is_empty() {
            errs.push(FieldError::required("spec.scaleTargetRef.kind"));
        } else {
            check_enum(
                &mut errs,
                "spec.scaleTargetRef.kind",
                &r.kind,
                &["Deployment"],
            );
        }
        check_opt_enum(
            &mut errs,
            "spec.scaleTargetRef.apiVersion",
            r.api_version.as_deref().filter(|v| !v.is_empty()),
            &["apps/v1"],
        );
        if r.name.is_empty() {
            errs.push(FieldError::required("spec.scaleTargetRef.name"));
        } else {
            super::common::check_subdomain(&mut errs, "spec.scaleTargetRef.name", &r.name);
        }
        let min = self.min_replicas();
        if min < 1 {
            errs.push(FieldError::invalid(
                "spec.minReplicas",
                format!("{min}: must be greater than or equal to 1"),
            ));
        }
        if s.max_replicas < 1 {
            errs.push(FieldError::invalid(
                "spec.maxReplicas",
                format!("{}: must be greater than 0", s.max_replicas),
            ));
        } else if s.max_replicas < min {
            errs.push(FieldError::invalid(
                "spec.maxReplicas",
                format!(
                    "{}: must be greater than or equal to `minReplicas`",
                    s.max_replicas
                ),
            ));
        }
        for (i, m) in s.metrics.iter().enumerate() {
            validate_metric(&mut errs, m, &index("spec.metrics", i));
        }
        if let Some(b) = &s.behavior {
            for (name, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
                if let Some(r) = rules {
                    validate_rules(&mut errs, r, &join("spec.behavior", name));
                }
            }
        }
        errs
    }
}

fn validate_metric(errs: &mut FieldErrors, m: &MetricSpec, path: &str) {
    let tp = join(path, "type");
    if m.type_.is_empty() {
        errs.push(FieldError::required(tp));
        return;
    }
    check_enum(errs, &tp, &m.type_, &["Resource"]);
    let Some(r) = &m.resource else {
        if m.type_ == "Resource" {
            errs.push(FieldError::required(join(path, "resource")));
        }
        return;
    };
    let rp = join(path, "resource");
    check_enum(errs, &join(&rp, "name"), &r.name, &["cpu", "memory"]);
    let tgt = join(&rp, "target");
    let t = &r.target;
    match t.type_.as_str() {
        "" => errs.push(FieldError::required(join(&tgt, "type"))),
        "Utilization" => match t.average_utilization {
            None => errs.push(FieldError::required(join(&tgt, "averageUtilization"))),
            Some(u) if u < 1 => errs.push(FieldError::invalid(
                join(&tgt, "averageUtilization"),
                format!("{u}: must be greater than 0"),
            )),
            Some(_) => {}
        },
        "AverageValue" => match &t.average_value {
            None => errs.push(FieldError::required(join(&tgt, "averageValue"))),
            Some(q) if q.is_zero() => errs.push(FieldError::invalid(
                join(&tgt, "averageValue"),
                format!("{:?}: must be positive", q.as_str()),
            )),
            Some(_) => {}
        },
        _ => errs.push(FieldError::unsupported_value(
            join(&tgt, "type"),
            &["Utilization", "AverageValue"],
        )),
    }
}

fn validate_rules(errs: &mut FieldErrors, r: &HpaScalingRules, path: &str) {
    if let Some(w) = r.stabilization_window_seconds
        && !(0..=3600).contains(&w)
    {
        errs.push(FieldError::invalid(
            join(path, "stabilizationWindowSeconds"),
            format!("{w}: must be between 0 and 3600 (one hour)"),
        ));
    }
    check_opt_enum(
        errs,
        &join(path, "selectPolicy"),
        r.select_policy.as_deref(),
        &["Max", "Min", "Disabled"],
    );
    for (i, p) in r.policies.iter().enumerate() {
        let pp = index(&join(path, "policies"), i);
        check_enum(errs, &join(&pp, "type"), &p.type_, &["Pods", "Percent"]);
        if p.value < 1 {
            errs.push(FieldError::invalid(
                join(&pp, "value"),
                format!("{}: must be greater than zero", p.value),
            ));
        }
        if !(1..=1800).contains(&p.period_seconds) {
            errs.push(FieldError::invalid(
                join(&pp, "periodSeconds"),
                format!(
                    "{}: must be between 1 and 1800 (half an hour)",
                    p.period_seconds
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hpa(spec: serde_json::Value) -> HorizontalPodAutoscaler {
        let mut h: HorizontalPodAutoscaler = crate::decode::decode(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"}, "spec": spec
        }))
        .unwrap();
        h.apply_defaults();
        h
    }

    #[test]
    fn defaults_min_replicas_cpu_metric_and_behavior() {
        let h = hpa(
            json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}),
        );
        assert!(h.validate().is_empty(), "{}", h.validate());
        assert_eq!(h.min_replicas(), 1);
        assert_eq!(
            serde_json::to_value(&h.spec.metrics).unwrap(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
        );
        assert_eq!(
            serde_json::to_value(&h.spec.behavior).unwrap(),
            json!({
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]}
            })
        );
    }

    #[test]
    fn replicas_and_metric_errors() {
        let h = hpa(
            json!({"scaleTargetRef": {"kind": "StatefulSet"}, "minReplicas": 4, "maxReplicas": 2, "metrics": [
                {"type": "Resource", "resource": {"name": "gpu", "target": {"type": "Utilization"}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Value"}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "200Mi"}}},
                {"type": "External"}
            ]}),
        );
        let errs = h.validate();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.scaleTargetRef.kind",
                "spec.scaleTargetRef.name",
                "spec.maxReplicas",
                "spec.metrics[0].resource.name",
                "spec.metrics[0].resource.target.averageUtilization",
                "spec.metrics[1].resource.target.type",
                "spec.metrics[3].type",
            ]
        );
        assert_eq!(
            errs.0[2].to_string(),
            "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"
        );
    }

    #[test]
    fn other_metric_sources_are_not_supported() {
        let e = crate::decode::decode::<HorizontalPodAutoscaler>(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
            "spec": {"metrics": [{"type": "Pods", "pods": {}}]}
        }))
        .unwrap_err();
        assert_eq!(e.to_string(), "spec.metrics[0].pods: not supported");
    }

    #[test]
    fn behavior_errors() {
        let h = hpa(
            json!({"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
            "behavior": {"scaleUp": {"stabilizationWindowSeconds": 4000, "selectPolicy": "Avg",
                "policies": [{"type": "Nodes", "value": 0, "periodSeconds": 0}]}}}),
        );
        let errs = h.validate();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.behavior.scaleUp.stabilizationWindowSeconds",
                "spec.behavior.scaleUp.selectPolicy",
                "spec.behavior.scaleUp.policies[0].type",
                "spec.behavior.scaleUp.policies[0].value",
                "spec.behavior.scaleUp.policies[0].periodSeconds",
            ]
        );
    }
}
