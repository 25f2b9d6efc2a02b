//! `apps/v1 ReplicaSet`: one revision of a Deployment, as Kubernetes shows it.
//!
//! The hub writes ReplicaSets only from its Deployment controller (one per
//! pod template a Deployment has run, named `<deployment>-<pod-template-hash>`
//! and controlled by the Deployment); clients read them (`kubectl get rs`,
//! `rollout history|undo`, `describe deployment`). The type is admitted like
//! every kind so that what the controller writes is canonical and checked.

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::FieldErrors;
use crate::meta::{LabelSelector, ObjectMeta};

use super::common::{Condition, check_non_negative};
use super::template::PodTemplateSpec;

/// `apps/v1 ReplicaSet`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.ReplicaSet")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaSet {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ReplicaSetSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReplicaSetStatus>,
}

/// `spec` of a ReplicaSet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.ReplicaSetSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaSetSpec {
    /// Pods this revision should have now: the Deployment's replicas for its
    /// current revision once rolled out, 0 for the older ones (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Seconds a new pod must be ready to count as available (the
    /// Deployment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// The Deployment's selector and this revision's `pod-template-hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The revision's pod template, labelled with its `pod-template-hash`.
    #[serde(default)]
    pub template: PodTemplateSpec,
}

/// `status` of a ReplicaSet: counts of its pods, written by the hub.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.ReplicaSetStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetStatus {
    /// Pods of this revision that are neither finished nor being deleted.
    #[serde(default)]
    pub replicas: i32,
    /// Of those, pods whose labels match the template's (all of them: the
    /// hub stamps pods from the template).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fully_labeled_replicas: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ready_replicas: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub available_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl ReplicaSet {
    /// The replica set's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The replica set's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// Desired replicas (1 when unset).
    pub fn replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(1)
    }
}

impl Object for ReplicaSet {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// replicas 1 and pod template defaults.
    fn apply_defaults(&mut self) {
        self.spec.replicas.get_or_insert(1);
        self.spec.template.apply_defaults();
    }

    fn validate(&self) -> FieldErrors {
        let s = &self.spec;
        let mut errs =
            s.template
                .validate_controlled("spec.template", s.selector.as_ref(), "spec.selector");
        for (name, v) in [
            ("spec.replicas", s.replicas),
            ("spec.minReadySeconds", s.min_ready_seconds),
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

    fn replicaset(spec: serde_json::Value) -> ReplicaSet {
        let mut r: ReplicaSet = crate::decode::decode(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-5d8f7c9b4x"}, "spec": spec
        }))
        .unwrap();
        r.apply_defaults();
        r
    }

    #[test]
    fn defaults_validates_and_keeps_zero_replicas() {
        let template = json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "5d8f7c9b4x"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        let selector = json!({"matchLabels": {"app": "web", "pod-template-hash": "5d8f7c9b4x"}});
        let r = replicaset(json!({"selector": selector, "template": template}));
        assert_eq!(r.replicas(), 1);
        assert!(r.validate().is_empty(), "{}", r.validate());
        let r = replicaset(json!({"replicas": 0, "selector": selector, "template": template}));
        // kubectl dereferences spec.replicas: a zero must be written out.
        assert_eq!(serde_json::to_value(&r).unwrap()["spec"]["replicas"], 0);
        let r = replicaset(
            json!({"replicas": -1, "selector": {"matchLabels": {"app": "api"}},
            "template": template}),
        );
        let paths: Vec<String> = r.validate().0.iter().map(|e| e.path.clone()).collect();
        assert_eq!(paths, ["spec.template.metadata.labels", "spec.replicas"]);
    }

    #[test]
    fn status_writes_replicas_always_and_other_counts_when_set() {
        let s = ReplicaSetStatus {
            observed_generation: Some(2),
            ..ReplicaSetStatus::default()
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"replicas": 0, "observedGeneration": 2})
        );
    }
}
