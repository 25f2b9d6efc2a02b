//! Pod templates (`spec.template` of Deployments and DaemonSets) and the checks
//! every pod controller shares: a selector that matches the template's labels
//! and `restartPolicy: Always`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, join};
use crate::meta::{LabelSelector, ObjectMeta, validate_annotations, validate_labels};

use super::pod::{PodSpec, validate_devices};

/// `template: {metadata, spec}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PodTemplateSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTemplateSpec {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
}

impl PodTemplateSpec {
    /// Applies pod spec defaults to the template.
    pub fn apply_defaults(&mut self) {
        self.spec.apply_defaults();
    }

    /// Validates a template that a controller stamps pods from, at `path`
    /// (`spec.template`): labels, annotations (including devices), the pod
    /// spec, `restartPolicy: Always`, and that `selector` (at `selector_path`)
    /// is present, non-empty, valid and selects the template's labels.
    pub fn validate_controlled(
        &self,
        path: &str,
        selector: Option<&LabelSelector>,
        selector_path: &str,
    ) -> FieldErrors {
        let mut errs = self.validate_parts(path);
        let sp = join(path, "spec");
        if let Some(rp) = self.spec.restart_policy.as_deref()
            && rp != "Always"
        {
            errs.push(FieldError::unsupported_value(
                join(&sp, "restartPolicy"),
                &["Always"],
            ));
        }
        errs.extend(self.validate_selector(path, selector, selector_path));
        errs
    }

    /// Validates the template at `path` without its restart policy or a
    /// selector: labels, annotations (including devices) and the pod spec.
    pub fn validate_parts(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let mp = join(path, "metadata");
        let labels_path = join(&mp, "labels");
        errs.extend(validate_labels(&self.metadata.labels, &labels_path));
        let annotations_path = join(&mp, "annotations");
        errs.extend(validate_annotations(
            &self.metadata.annotations,
            &annotations_path,
        ));
        errs.extend(validate_devices(
            &self.metadata.annotations,
            &annotations_path,
        ));
        errs.extend(self.spec.validate(&join(path, "spec")));
        errs
    }

    /// `selector` (at `selector_path`) is present, non-empty, valid and
    /// selects the labels of the template at `path`.
    pub fn validate_selector(
        &self,
        path: &str,
        selector: Option<&LabelSelector>,
        selector_path: &str,
    ) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let labels_path = join(&join(path, "metadata"), "labels");
        match selector {
            None => errs.push(FieldError::required(selector_path)),
            Some(sel) if sel.is_empty() => errs.push(FieldError::invalid(
                selector_path,
                "empty selector is invalid for a pod controller: it would select every pod",
            )),
            Some(sel) => {
                let serrs = sel.validate(selector_path);
                if serrs.is_empty() && !sel.to_selector().matches(&self.metadata.labels) {
                    errs.push(FieldError::invalid(
                        labels_path,
                        format!(
                            "{}: `selector` does not match template `labels`",
                            go_map(&self.metadata.labels)
                        ),
                    ));
                }
                errs.extend(serrs);
            }
        }
        errs
    }
}

/// Formats labels as Go prints them in Kubernetes errors:
/// `map[string]string{"app":"web"}`.
fn go_map(labels: &BTreeMap<String, String>) -> String {
    let body: Vec<String> = labels.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
    format!("map[string]string{{{}}}", body.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(v: serde_json::Value) -> PodTemplateSpec {
        let mut t: PodTemplateSpec = crate::decode::decode(v).unwrap();
        t.apply_defaults();
        t
    }

    fn selector(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn selector_must_match_labels() {
        let t = template(
            json!({"metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "a", "image": "x"}]}}),
        );
        let ok = selector(json!({"matchLabels": {"app": "web"}}));
        assert!(
            t.validate_controlled("spec.template", Some(&ok), "spec.selector")
                .is_empty()
        );
        let expr = selector(
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]}),
        );
        assert!(
            t.validate_controlled("spec.template", Some(&expr), "spec.selector")
                .is_empty()
        );
        let bad = selector(json!({"matchLabels": {"app": "api"}}));
        assert_eq!(
            t.validate_controlled("spec.template", Some(&bad), "spec.selector")
                .to_string(),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\", \"tier\":\"front\"}: `selector` does not match template `labels`"
        );
        assert_eq!(
            t.validate_controlled("spec.template", None, "spec.selector")
                .to_string(),
            "spec.selector: Required value"
        );
        assert_eq!(
            t.validate_controlled(
                "spec.template",
                Some(&LabelSelector::default()),
                "spec.selector"
            )
            .0[0]
                .path,
            "spec.selector"
        );
    }

    #[test]
    fn restart_policy_must_be_always() {
        let t = template(json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "a", "image": "x"}]}}));
        let sel = selector(json!({"matchLabels": {"app": "web"}}));
        assert_eq!(
            t.validate_controlled("spec.template", Some(&sel), "spec.selector")
                .to_string(),
            "spec.template.spec.restartPolicy: Unsupported value: supported values: \"Always\""
        );
    }
}
