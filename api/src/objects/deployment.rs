//! `apps/v1 Deployment`: a replicated, rolling-updated set of pods.

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors};
use crate::intstr::IntOrString;
use crate::meta::{LabelSelector, ObjectMeta};

use super::common::{
    Condition, check_int_or_percent, check_non_negative, check_opt_enum, is_false,
    is_zero_int_or_percent,
};
use super::template::PodTemplateSpec;

/// `strategy.type` values.
pub const DEPLOYMENT_STRATEGIES: &[&str] = &["RollingUpdate", "Recreate"];
/// Default `revisionHistoryLimit` of Deployments and DaemonSets.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// Default `progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

/// `apps/v1 Deployment`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.Deployment")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: DeploymentSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeploymentStatus>,
}

/// `spec` of a Deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.DeploymentSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentSpec {
    /// Number of desired pods (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Which pods the Deployment owns. Required; must select the template's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The pods to run; a change starts a rollout.
    #[serde(default)]
    pub template: PodTemplateSpec,
    /// How old pods are replaced by new ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,
    /// Seconds a new pod must be ready, without any container crashing, to
    /// count as available (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// Old revisions kept for rollback (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    /// Seconds a rollout may make no progress before it is reported as
    /// failed (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// A paused Deployment does not roll out template changes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
}

/// How a Deployment replaces its pods when the template changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.DeploymentStrategy")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentStrategy {
    /// Type of deployment: `RollingUpdate` (the default) replaces pods a few at
    /// a time, within `rollingUpdate`'s bounds; `Recreate` stops every old pod
    /// before starting new ones.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Bounds of a rolling update (only with `type: RollingUpdate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdate>,
}

/// Bounds of a rolling update, each a number of pods or a percentage of the
/// desired replicas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.RollingUpdateDeployment")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollingUpdate {
    /// How many pods may be unavailable during the update (default 25%,
    /// rounded down); may not be 0 when `maxSurge` is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// How many pods may be created above the desired replicas during the
    /// update (default 25%, rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
}

/// `status` of a Deployment, written by the hub's controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.DeploymentStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
}

/// Validates `rollingUpdate` at `path`: int-or-percent syntax, maxUnavailable
/// at most 100%, and not both zero. Shared with DaemonSets.
pub(crate) fn validate_rolling_update(errs: &mut FieldErrors, path: &str, ru: &RollingUpdate) {
    let up = crate::field::join(path, "maxUnavailable");
    let sp = crate::field::join(path, "maxSurge");
    if let Some(u) = &ru.max_unavailable {
        check_int_or_percent(errs, &up, u, true);
    }
    if let Some(s) = &ru.max_surge {
        check_int_or_percent(errs, &sp, s, false);
    }
    let zero = |v: &Option<IntOrString>| v.as_ref().is_none_or(is_zero_int_or_percent);
    if zero(&ru.max_unavailable) && zero(&ru.max_surge) {
        errs.push(FieldError::invalid(
            up,
            format!(
                "{}: may not be 0 when `maxSurge` is 0",
                ru.max_unavailable
                    .as_ref()
                    .map_or_else(|| "0".to_string(), ToString::to_string)
            ),
        ));
    }
}

impl Deployment {
    /// The deployment's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The deployment's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// Desired replicas (1 when unset).
    pub fn replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(1)
    }

    /// Whether the strategy is `Recreate`.
    pub fn is_recreate(&self) -> bool {
        self.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate")
    }
}

impl Object for Deployment {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// replicas 1, RollingUpdate with 25%/25%, revisionHistoryLimit 10,
    /// progressDeadlineSeconds 600, and pod template defaults.
    fn apply_defaults(&mut self) {
        let s = &mut self.spec;
        s.replicas.get_or_insert(1);
        s.revision_history_limit
            .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
        s.progress_deadline_seconds
            .get_or_insert(DEFAULT_PROGRESS_DEADLINE_SECONDS);
        let strategy = s.strategy.get_or_insert_with(Default::default);
        let t = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
        if t == "RollingUpdate" {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            ru.max_unavailable
                .get_or_insert_with(|| IntOrString::from("25%"));
            ru.max_surge.get_or_insert_with(|| IntOrString::from("25%"));
        }
        s.template.apply_defaults();
    }

    fn validate(&self) -> FieldErrors {
        let s = &self.spec;
        let mut errs = FieldErrors::new();
        if let Some(r) = s.replicas {
            check_non_negative(&mut errs, "spec.replicas", i64::from(r));
        }
        errs.extend(s.template.validate_controlled(
            "spec.template",
            s.selector.as_ref(),
            "spec.selector",
        ));
        if let Some(st) = &s.strategy {
            check_opt_enum(
                &mut errs,
                "spec.strategy.type",
                st.type_.as_deref(),
                DEPLOYMENT_STRATEGIES,
            );
            match (st.type_.as_deref(), &st.rolling_update) {
                (Some("Recreate"), Some(_)) => errs.push(FieldError::invalid(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                )),
                (_, Some(ru)) => {
                    validate_rolling_update(&mut errs, "spec.strategy.rollingUpdate", ru)
                }
                _ => {}
            }
        }
        for (name, v) in [
            ("spec.minReadySeconds", s.min_ready_seconds),
            ("spec.revisionHistoryLimit", s.revision_history_limit),
            ("spec.progressDeadlineSeconds", s.progress_deadline_seconds),
        ] {
            if let Some(v) = v {
                check_non_negative(&mut errs, name, i64::from(v));
            }
        }
        if let (Some(pd), Some(mr)) = (s.progress_deadline_seconds, s.min_ready_seconds)
            && pd <= mr
        {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                format!("{pd}: must be greater than minReadySeconds"),
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(spec: serde_json::Value) -> Deployment {
        let mut d: Deployment = crate::decode::decode(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec
        }))
        .unwrap();
        d.apply_defaults();
        d
    }

    fn template() -> serde_json::Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}})
    }

    #[test]
    fn defaults() {
        let d = deployment(
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": template()}),
        );
        assert_eq!(d.replicas(), 1);
        assert_eq!(
            serde_json::to_value(&d.spec.strategy).unwrap(),
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d.spec.revision_history_limit, Some(10));
        assert_eq!(d.spec.progress_deadline_seconds, Some(600));
        assert_eq!(d.spec.template.spec.restart_policy(), "Always");
        assert!(d.validate().is_empty(), "{}", d.validate());
        assert!(!d.is_recreate());
    }

    #[test]
    fn recreate_gets_no_rolling_update_and_refuses_one() {
        let d = deployment(
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": template(),
            "strategy": {"type": "Recreate"}}),
        );
        assert!(d.spec.strategy.as_ref().unwrap().rolling_update.is_none());
        assert!(d.is_recreate());
        assert!(d.validate().is_empty());
        let d = deployment(
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": template(),
            "strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}),
        );
        assert_eq!(d.validate().0[0].path, "spec.strategy.rollingUpdate");
    }

    #[test]
    fn bad_numbers_and_rolling_update() {
        let d = deployment(
            json!({"replicas": -1, "selector": {"matchLabels": {"app": "web"}}, "template": template(),
            "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}},
            "minReadySeconds": 700}),
        );
        let errs = d.validate();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.replicas",
                "spec.strategy.rollingUpdate.maxUnavailable",
                "spec.progressDeadlineSeconds"
            ]
        );
        assert_eq!(
            errs.0[1].to_string(),
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0%: may not be 0 when `maxSurge` is 0"
        );
        let d = deployment(
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": template(),
            "strategy": {"type": "BlueGreen", "rollingUpdate": {"maxUnavailable": "120%"}}}),
        );
        let paths: Vec<String> = d.validate().0.iter().map(|e| e.path.clone()).collect();
        assert_eq!(
            paths,
            [
                "spec.strategy.type",
                "spec.strategy.rollingUpdate.maxUnavailable"
            ]
        );
    }
}
