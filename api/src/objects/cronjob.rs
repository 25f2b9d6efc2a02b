//! `batch/v1 CronJob`: a Job made from `jobTemplate` at each time of
//! `schedule` (cron syntax, in `timeZone`), with a concurrency policy and
//! a history of finished Jobs kept.

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors};
use crate::meta::{ObjectMeta, validate_annotations, validate_labels};

use super::common::{ObjectReference, check_non_negative, check_opt_enum};
use super::job::JobSpec;

/// `spec.concurrencyPolicy` values.
pub const CONCURRENCY_POLICIES: &[&str] = &["Allow", "Forbid", "Replace"];
/// Annotation of a CronJob's Job: the time it was scheduled for (RFC 3339).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Annotation of a Job made by hand from a CronJob (`kubectl create job --from`).
pub const INSTANTIATE: &str = "cronjob.kubernetes.io/instantiate";
/// Longest CronJob name: its Jobs append `-` and up to 11 digits.
pub const MAX_NAME_LENGTH: usize = 52;

/// `batch/v1 CronJob`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.batch.v1.CronJob")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronJob {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: CronJobSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CronJobStatus>,
}

/// When and how a CronJob makes Jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.batch.v1.CronJobSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronJobSpec {
    /// Cron syntax (`*/5 * * * *`) or `@hourly`, `@daily`, ...
    #[serde(default)]
    pub schedule: String,
    /// IANA time zone of `schedule` (`Europe/Paris`); UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// A run missed by more than this many seconds is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<i64>,
    /// `Allow` (default), `Forbid` (skip a run while one is active) or
    /// `Replace` (delete the active Jobs, then run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<String>,
    /// No new runs while true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    #[serde(default)]
    pub job_template: JobTemplateSpec,
    /// Finished successful Jobs kept (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_jobs_history_limit: Option<i32>,
    /// Failed Jobs kept (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_jobs_history_limit: Option<i32>,
}

/// The Job a CronJob makes: its labels and annotations, and its spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.batch.v1.JobTemplateSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobTemplateSpec {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: JobSpec,
}

/// `status` of a CronJob, written by the hub's CronJob controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.batch.v1.CronJobStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct CronJobStatus {
    /// The Jobs running now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<ObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<String>,
}

impl CronJob {
    /// The CronJob's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The CronJob's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// `concurrencyPolicy`, `Allow` when unset.
    pub fn concurrency_policy(&self) -> &str {
        self.spec.concurrency_policy.as_deref().unwrap_or("Allow")
    }
}

impl Object for CronJob {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Allow, not suspended, 3 successful and 1 failed Jobs kept, and the
    /// pod template's defaults (the Job's own come when it is made).
    fn apply_defaults(&mut self) {
        let s = &mut self.spec;
        s.concurrency_policy.get_or_insert_with(|| "Allow".into());
        s.suspend.get_or_insert(false);
        s.successful_jobs_history_limit.get_or_insert(3);
        s.failed_jobs_history_limit.get_or_insert(1);
        s.job_template.spec.template.apply_defaults();
    }

    fn validate(&self) -> FieldErrors {
        let s = &self.spec;
        let mut errs = FieldErrors::new();
        if self.metadata.name.len() > MAX_NAME_LENGTH {
            errs.push(FieldError::invalid(
                "metadata.name",
                format!(
                    "{:?}: must be no more than {MAX_NAME_LENGTH} characters",
                    self.metadata.name
                ),
            ));
        }
        if s.schedule.trim().is_empty() {
            errs.push(FieldError::required("spec.schedule"));
        } else {
            check_schedule(&mut errs, &s.schedule, s.time_zone.as_deref());
        }
        check_opt_enum(
            &mut errs,
            "spec.concurrencyPolicy",
            s.concurrency_policy.as_deref(),
            CONCURRENCY_POLICIES,
        );
        if let Some(d) = s.starting_deadline_seconds {
            check_non_negative(&mut errs, "spec.startingDeadlineSeconds", d);
        }
        for (name, v) in [
            (
                "spec.successfulJobsHistoryLimit",
                s.successful_jobs_history_limit,
            ),
            ("spec.failedJobsHistoryLimit", s.failed_jobs_history_limit),
        ] {
            if let Some(v) = v {
                check_non_negative(&mut errs, name, i64::from(v));
            }
        }
        let t = &s.job_template;
        errs.extend(validate_labels(
            &t.metadata.labels,
            "spec.jobTemplate.metadata.labels",
        ));
        errs.extend(validate_annotations(
            &t.metadata.annotations,
            "spec.jobTemplate.metadata.annotations",
        ));
        if t.spec.manual_selector == Some(true) {
            errs.push(FieldError::unsupported_value(
                "spec.jobTemplate.spec.manualSelector",
                &["nil", "false"],
            ));
        }
        errs.extend(t.spec.validate("spec.jobTemplate.spec", false));
        errs
    }
}

/// `schedule` and `timeZone` parse (with the `cron` feature; without it
/// only their presence is checked).
#[cfg(feature = "cron")]
fn check_schedule(errs: &mut FieldErrors, schedule: &str, time_zone: Option<&str>) {
    use crate::schedule::{Schedule, ScheduleError, parse_time_zone};
    if let Some(z) = time_zone
        && parse_time_zone(z).is_err()
    {
        errs.push(FieldError::invalid(
            "spec.timeZone",
            format!("{z:?}: unknown time zone {z}: use an IANA name such as \"Europe/Paris\" or \"Etc/UTC\""),
        ));
    }
    match Schedule::parse(schedule, None) {
        Ok(_) | Err(ScheduleError::UnknownTimeZone(_)) => {}
        Err(e) => errs.push(FieldError::invalid(
            "spec.schedule",
            format!("{schedule:?}: {e}"),
        )),
    }
}

#[cfg(not(feature = "cron"))]
fn check_schedule(_: &mut FieldErrors, _: &str, _: Option<&str>) {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cronjob(spec: serde_json::Value) -> CronJob {
        let mut c: CronJob = crate::decode::decode(json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello"}, "spec": spec
        }))
        .unwrap();
        c.apply_defaults();
        c
    }

    fn job_template() -> serde_json::Value {
        json!({"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
            "containers": [{"name": "hello", "image": "busybox"}]}}}})
    }

    #[test]
    fn defaults_as_kubernetes() {
        let c = cronjob(json!({"schedule": "*/1 * * * *", "jobTemplate": job_template()}));
        assert_eq!(c.spec.concurrency_policy.as_deref(), Some("Allow"));
        assert_eq!(c.spec.suspend, Some(false));
        assert_eq!(c.spec.successful_jobs_history_limit, Some(3));
        assert_eq!(c.spec.failed_jobs_history_limit, Some(1));
        assert!(c.validate().is_empty(), "{}", c.validate());
    }

    #[test]
    fn the_job_template_is_a_job_spec() {
        let c = cronjob(
            json!({"schedule": "@hourly", "concurrencyPolicy": "Sometimes",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}}}}),
        );
        assert_eq!(
            c.validate().to_string(),
            "[spec.concurrencyPolicy: Unsupported value: supported values: \"Allow\", \"Forbid\", \"Replace\", \
             spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"]"
        );
        let c = cronjob(json!({"jobTemplate": job_template()}));
        assert_eq!(c.validate().to_string(), "spec.schedule: Required value");
    }

    #[cfg(feature = "cron")]
    #[test]
    fn schedules_and_time_zones_are_parsed() {
        let c = cronjob(json!({"schedule": "* * *", "jobTemplate": job_template()}));
        assert_eq!(c.validate().0[0].path, "spec.schedule");
        let c = cronjob(
            json!({"schedule": "0 9 * * *", "timeZone": "Europe/Paname", "jobTemplate": job_template()}),
        );
        assert!(
            c.validate()
                .to_string()
                .starts_with("spec.timeZone: Invalid value: \"Europe/Paname\": unknown time zone"),
            "{}",
            c.validate()
        );
        let c = cronjob(
            json!({"schedule": "0 9 * * *", "timeZone": "Europe/Paris", "jobTemplate": job_template()}),
        );
        assert!(c.validate().is_empty(), "{}", c.validate());
    }
}
