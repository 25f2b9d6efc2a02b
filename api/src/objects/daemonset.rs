//! `apps/v1 DaemonSet`: one pod on every (matching) node.

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors};
use crate::intstr::IntOrString;
use crate::meta::{LabelSelector, ObjectMeta};

use super::common::{Condition, check_non_negative, check_opt_enum};
use super::deployment::{DEFAULT_REVISION_HISTORY_LIMIT, RollingUpdate, validate_rolling_update};
use super::template::PodTemplateSpec;

/// `updateStrategy.type` values.
pub const DAEMONSET_STRATEGIES: &[&str] = &["RollingUpdate", "OnDelete"];

/// `apps/v1 DaemonSet`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.DaemonSet")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaemonSet {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: DaemonSetSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DaemonSetStatus>,
}

/// `spec` of a DaemonSet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.DaemonSetSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaemonSetSpec {
    /// Required; must select the template's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default)]
    pub template: PodTemplateSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<DaemonSetUpdateStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
}

/// `updateStrategy: {type, rollingUpdate}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.DaemonSetUpdateStrategy")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaemonSetUpdateStrategy {
    /// `RollingUpdate` (default) or `OnDelete`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Defaults: maxUnavailable 1, maxSurge 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdate>,
}

/// `status` of a DaemonSet, written by the hub's controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.DaemonSetStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetStatus {
    #[serde(default)]
    pub current_number_scheduled: i32,
    #[serde(default)]
    pub number_misscheduled: i32,
    #[serde(default)]
    pub desired_number_scheduled: i32,
    #[serde(default)]
    pub number_ready: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_number_scheduled: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_available: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_unavailable: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl DaemonSet {
    /// The daemonset's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The daemonset's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }
}

impl Object for DaemonSet {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// RollingUpdate with maxUnavailable 1 / maxSurge 0, revisionHistoryLimit
    /// 10, and pod template defaults.
    fn apply_defaults(&mut self) {
        let s = &mut self.spec;
        let us = s.update_strategy.get_or_insert_with(Default::default);
        let t = us.type_.get_or_insert_with(|| "RollingUpdate".into());
        if t == "RollingUpdate" {
            let ru = us.rolling_update.get_or_insert_with(Default::default);
            ru.max_unavailable.get_or_insert(IntOrString::Int(1));
            ru.max_surge.get_or_insert(IntOrString::Int(0));
        }
        s.revision_history_limit
            .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
        s.template.apply_defaults();
    }

    fn validate(&self) -> FieldErrors {
        let s = &self.spec;
        let mut errs =
            s.template
                .validate_controlled("spec.template", s.selector.as_ref(), "spec.selector");
        if let Some(us) = &s.update_strategy {
            check_opt_enum(
                &mut errs,
                "spec.updateStrategy.type",
                us.type_.as_deref(),
                DAEMONSET_STRATEGIES,
            );
            match (us.type_.as_deref(), &us.rolling_update) {
                (Some("OnDelete"), Some(_)) => errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'OnDelete'",
                )),
                (_, Some(ru)) => {
                    validate_rolling_update(&mut errs, "spec.updateStrategy.rollingUpdate", ru)
                }
                _ => {}
            }
        }
        for (name, v) in [
            ("spec.minReadySeconds", s.min_ready_seconds),
            ("spec.revisionHistoryLimit", s.revision_history_limit),
        ] {
            if let Some(v) = v {
                check_non_negative(&mut errs, name, i64::from(v));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn daemonset(spec: serde_json::Value) -> DaemonSet {
        let mut d: DaemonSet = crate::decode::decode(json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": spec
        }))
        .unwrap();
        d.apply_defaults();
        d
    }

    fn template() -> serde_json::Value {
        json!({"metadata": {"labels": {"app": "logs"}}, "spec": {"containers": [{"name": "fluent", "image": "fluent-bit:3"}]}})
    }

    #[test]
    fn defaults_and_valid() {
        let d = daemonset(
            json!({"selector": {"matchLabels": {"app": "logs"}}, "template": template()}),
        );
        assert_eq!(
            serde_json::to_value(&d.spec.update_strategy).unwrap(),
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(d.spec.revision_history_limit, Some(10));
        assert!(d.validate().is_empty(), "{}", d.validate());
        assert_eq!(d.namespace(), "default");
    }

    #[test]
    fn strategy_errors() {
        let d = daemonset(
            json!({"selector": {"matchLabels": {"app": "logs"}}, "template": template(),
            "updateStrategy": {"type": "OnDelete", "rollingUpdate": {"maxUnavailable": 2}}}),
        );
        assert_eq!(d.validate().0[0].path, "spec.updateStrategy.rollingUpdate");
        let d = daemonset(
            json!({"selector": {"matchLabels": {"app": "logs"}}, "template": template(),
            "updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}}}),
        );
        assert_eq!(
            d.validate().to_string(),
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
        );
        let d = daemonset(
            json!({"selector": {"matchLabels": {"app": "other"}}, "template": template()}),
        );
        assert_eq!(d.validate().0[0].path, "spec.template.metadata.labels");
    }
}
