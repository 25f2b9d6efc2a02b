//! `batch/v1 Job`: pods run to completion, `completions` of them, at most
//! `parallelism` at once, retried up to `backoffLimit` failures.
//!
//! A new Job's selector and pod labels come from its uid, as Kubernetes'
//! registry generates them ([`Job::generate_selector`], called by the hub
//! once it has picked the uid); the type accepts a Job without a selector
//! unless `manualSelector` is true.

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors, join};
use crate::meta::{LabelSelector, ObjectMeta};

use super::common::{Condition, check_non_negative, check_opt_enum};
use super::template::PodTemplateSpec;

/// Label and selector key of a Job's pods: the Job's uid.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// Label of a Job's pods: the Job's name.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The labels Kubernetes wrote before 1.27, still written beside the new ones.
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
/// Annotation and label of an Indexed Job's pod: its completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable holding the completion index in every container.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// `spec.completionMode` values.
pub const COMPLETION_MODES: &[&str] = &["NonIndexed", "Indexed"];
/// `spec.podReplacementPolicy` values Bramble implements (a failed or
/// terminating pod is replaced at once).
pub const POD_REPLACEMENT_POLICIES: &[&str] = &["TerminatingOrFailed"];
/// Restart policies a Job's pods may have.
pub const JOB_RESTART_POLICIES: &[&str] = &["OnFailure", "Never"];
/// Kubernetes' default `spec.backoffLimit`.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;
/// Kubernetes' bound on an Indexed Job's `completions` and `parallelism`.
pub const MAX_INDEXED_COMPLETIONS: i32 = 100_000;

/// `batch/v1 Job`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.batch.v1.Job")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Job {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: JobSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
}

/// What a Job runs: pods from `template` until `completions` of them
/// succeeded (or, without `completions`, until one did and the rest ended).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.batch.v1.JobSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    /// Pods running at once at most (default 1; 0 pauses the Job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
    /// Successful pods needed (default 1 when `parallelism` is unset too;
    /// unset: the Job completes when any pod succeeds and none runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completions: Option<i32>,
    /// Seconds after the start after which the Job fails (`DeadlineExceeded`)
    /// and its pods are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// Pod failures (and container restarts under `OnFailure`) allowed
    /// before the Job fails (`BackoffLimitExceeded`); default 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,
    /// Selects the Job's pods; generated from the uid unless `manualSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The selector is the user's, not generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_selector: Option<bool>,
    #[serde(default)]
    pub template: PodTemplateSpec,
    /// Seconds after the Job finished when it is deleted, with its pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
    /// `NonIndexed` (default) or `Indexed`: each pod gets an index in
    /// `0..completions` (annotation, label and `JOB_COMPLETION_INDEX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_mode: Option<String>,
    /// No pods run while true (active ones are deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// `TerminatingOrFailed` (default, the only one Bramble implements).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_replacement_policy: Option<String>,
}

/// `status` of a Job, written by the hub's Job controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.batch.v1.JobStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// `Complete`, `Failed`, `SuccessCriteriaMet`, `FailureTarget`, `Suspended`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub active: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub succeeded: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: i32,
    /// Pods being deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating: Option<i32>,
    /// Indexed Jobs: the succeeded indexes, as ranges (`0-2,4`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub completed_indexes: String,
    /// Active pods whose `Ready` condition is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<i32>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl Job {
    /// The Job's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The Job's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// Whether `completionMode` is `Indexed`.
    pub fn indexed(&self) -> bool {
        self.spec.completion_mode.as_deref() == Some("Indexed")
    }

    /// What Kubernetes' registry does to a new Job once it has a uid
    /// (`generateSelector`), unless `manualSelector` is true: the template
    /// gets the job-name and controller-uid labels (new and legacy keys,
    /// where unset), and the selector `batch.kubernetes.io/controller-uid:
    /// UID`. A Job without labels takes the template's (Kubernetes'
    /// defaulting on read).
    pub fn generate_selector(&mut self) {
        if self.spec.manual_selector != Some(true) {
            let uid = self.metadata.uid.clone().unwrap_or_default();
            let name = self.metadata.name.clone();
            let labels = &mut self.spec.template.metadata.labels;
            for (key, value) in [
                (LEGACY_JOB_NAME_LABEL, &name),
                (JOB_NAME_LABEL, &name),
                (LEGACY_CONTROLLER_UID_LABEL, &uid),
                (CONTROLLER_UID_LABEL, &uid),
            ] {
                labels
                    .entry(key.to_string())
                    .or_insert_with(|| value.clone());
            }
            self.spec
                .selector
                .get_or_insert_with(Default::default)
                .match_labels
                .entry(CONTROLLER_UID_LABEL.to_string())
                .or_insert(uid);
        }
        if self.metadata.labels.is_empty() {
            self.metadata.labels = self.spec.template.metadata.labels.clone();
        }
    }
}

impl JobSpec {
    /// Kubernetes' Job defaults: parallelism 1 (and completions 1 when both
    /// are unset), backoffLimit 6, NonIndexed, not suspended,
    /// `TerminatingOrFailed`, and the pod template's defaults.
    pub fn apply_defaults(&mut self) {
        if self.completions.is_none() && self.parallelism.is_none() {
            self.completions = Some(1);
        }
        self.parallelism.get_or_insert(1);
        self.backoff_limit.get_or_insert(DEFAULT_BACKOFF_LIMIT);
        self.completion_mode
            .get_or_insert_with(|| "NonIndexed".into());
        self.suspend.get_or_insert(false);
        self.pod_replacement_policy
            .get_or_insert_with(|| "TerminatingOrFailed".into());
        self.template.apply_defaults();
    }

    /// Validates the spec at `path` (`spec` or `spec.jobTemplate.spec`).
    /// `selector_required`: a Job without a generated selector needs one.
    pub fn validate(&self, path: &str, selector_required: bool) -> FieldErrors {
        let tp = join(path, "template");
        let mut errs = self.template.validate_parts(&tp);
        let rp = join(&join(&tp, "spec"), "restartPolicy");
        match self.template.spec.restart_policy.as_deref() {
            None | Some("Always") => errs.push(FieldError::required_with(
                rp,
                "valid values: \"OnFailure\", \"Never\"",
            )),
            Some(p) if !JOB_RESTART_POLICIES.contains(&p) => {
                errs.push(FieldError::unsupported_value(rp, JOB_RESTART_POLICIES));
            }
            Some(_) => {}
        }
        let sel_path = join(path, "selector");
        if self.selector.is_some() || selector_required {
            errs.extend(
                self.template
                    .validate_selector(&tp, self.selector.as_ref(), &sel_path),
            );
        }
        for (name, v) in [
            ("parallelism", self.parallelism),
            ("completions", self.completions),
            ("backoffLimit", self.backoff_limit),
            ("ttlSecondsAfterFinished", self.ttl_seconds_after_finished),
        ] {
            if let Some(v) = v {
                check_non_negative(&mut errs, &join(path, name), i64::from(v));
            }
        }
        if let Some(d) = self.active_deadline_seconds
            && d <= 0
        {
            errs.push(FieldError::invalid(
                join(path, "activeDeadlineSeconds"),
                format!("{d}: must be greater than 0"),
            ));
        }
        check_opt_enum(
            &mut errs,
            &join(path, "completionMode"),
            self.completion_mode.as_deref(),
            COMPLETION_MODES,
        );
        check_opt_enum(
            &mut errs,
            &join(path, "podReplacementPolicy"),
            self.pod_replacement_policy.as_deref(),
            POD_REPLACEMENT_POLICIES,
        );
        if self.completion_mode.as_deref() == Some("Indexed") {
            match self.completions {
                None => errs.push(FieldError::required_with(
                    join(path, "completions"),
                    "when completion mode is Indexed",
                )),
                Some(c) if c > MAX_INDEXED_COMPLETIONS => errs.push(FieldError::invalid(
                    join(path, "completions"),
                    format!("{c}: must be less than or equal to {MAX_INDEXED_COMPLETIONS} when completion mode is Indexed"),
                )),
                Some(_) => {}
            }
            if let Some(p) = self.parallelism.filter(|p| *p > MAX_INDEXED_COMPLETIONS) {
                errs.push(FieldError::invalid(
                    join(path, "parallelism"),
                    format!("{p}: must be less than or equal to {MAX_INDEXED_COMPLETIONS} when completion mode is Indexed"),
                ));
            }
        }
        errs
    }
}

impl Object for Job {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn apply_defaults(&mut self) {
        self.spec.apply_defaults();
    }

    fn validate(&self) -> FieldErrors {
        self.spec
            .validate("spec", self.spec.manual_selector == Some(true))
    }
}

/// `0-2,4`: sorted, distinct indexes as Kubernetes writes
/// `status.completedIndexes` (runs of two or more as ranges).
pub fn format_indexes(indexes: impl IntoIterator<Item = i32>) -> String {
    let mut v: Vec<i32> = indexes.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(spec: serde_json::Value) -> Job {
        let mut j: Job = crate::decode::decode(json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "uid": "u-1"}, "spec": spec
        }))
        .unwrap();
        j.apply_defaults();
        j
    }

    fn template(restart: &str) -> serde_json::Value {
        json!({"spec": {"restartPolicy": restart, "containers": [{"name": "pi", "image": "perl"}]}})
    }

    #[test]
    fn defaults_as_kubernetes() {
        let j = job(json!({"template": template("Never")}));
        assert_eq!(j.spec.completions, Some(1));
        assert_eq!(j.spec.parallelism, Some(1));
        assert_eq!(j.spec.backoff_limit, Some(6));
        assert_eq!(j.spec.completion_mode.as_deref(), Some("NonIndexed"));
        assert_eq!(j.spec.suspend, Some(false));
        assert!(j.validate().is_empty(), "{}", j.validate());
        // parallelism alone leaves completions unset (a work queue).
        let j = job(json!({"parallelism": 3, "template": template("Never")}));
        assert_eq!(j.spec.completions, None);
    }

    #[test]
    fn restart_policy_must_be_never_or_on_failure() {
        let j =
            job(json!({"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}}));
        assert_eq!(
            j.validate().to_string(),
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
        );
        assert!(
            job(json!({"template": template("OnFailure")}))
                .validate()
                .is_empty()
        );
        let mut j = job(json!({"template": template("Never")}));
        j.spec.template.spec.restart_policy = Some("Sometimes".into());
        assert!(
            j.validate()
                .to_string()
                .starts_with("[spec.template.spec.restartPolicy: Unsupported value"),
            "{}",
            j.validate()
        );
    }

    #[test]
    fn counts_and_modes_are_checked() {
        let j = job(
            json!({"completionMode": "Indexed", "parallelism": 2, "template": template("Never"),
            "backoffLimit": -1, "activeDeadlineSeconds": 0}),
        );
        assert_eq!(
            j.validate().to_string(),
            "[spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0, \
             spec.activeDeadlineSeconds: Invalid value: 0: must be greater than 0, \
             spec.completions: Required value: when completion mode is Indexed]"
        );
        let j = job(json!({"completionMode": "Sparse", "template": template("Never")}));
        assert_eq!(j.validate().0[0].path, "spec.completionMode");
    }

    #[test]
    fn a_manual_selector_must_be_given_and_match() {
        let j = job(json!({"manualSelector": true, "template": template("Never")}));
        assert_eq!(j.validate().to_string(), "spec.selector: Required value");
        let j =
            job(json!({"selector": {"matchLabels": {"app": "x"}}, "template": template("Never")}));
        assert_eq!(j.validate().0[0].path, "spec.template.metadata.labels");
    }

    #[test]
    fn the_selector_is_generated_from_the_uid() {
        let mut j = job(json!({"template": template("Never")}));
        j.generate_selector();
        let sel = j.spec.selector.clone().unwrap();
        assert_eq!(
            serde_json::to_value(&sel).unwrap(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        assert_eq!(
            serde_json::to_value(&j.spec.template.metadata.labels).unwrap(),
            json!({"batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-name": "pi",
                   "controller-uid": "u-1", "job-name": "pi"})
        );
        assert_eq!(j.metadata.labels, j.spec.template.metadata.labels);
        assert!(j.validate().is_empty(), "{}", j.validate());
    }

    #[test]
    fn indexes_are_written_as_ranges() {
        assert_eq!(format_indexes([4, 0, 1, 2]), "0-2,4");
        assert_eq!(format_indexes([1, 3, 5, 6]), "1,3,5-6");
        assert_eq!(format_indexes([]), "");
    }
}
