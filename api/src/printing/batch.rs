//! kubectl's columns of the `batch/v1` kinds: a Job's STATUS, COMPLETIONS
//! and DURATION, a CronJob's SCHEDULE, TIMEZONE, SUSPEND, ACTIVE and LAST
//! SCHEDULE (Kubernetes 1.32's printers), each with `-o wide`'s
//! CONTAINERS, IMAGES and SELECTOR.

use std::time::SystemTime;

use serde_json::Value;

use super::age::{age, run_duration};
use super::columns::label_selector;
use super::json::{bool_at, int_at, list_at, str_at};

/// Base headers and wide headers of a Job.
pub const JOB_HEADERS: (&[&str], &[&str]) = (
    &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
    &["CONTAINERS", "IMAGES", "SELECTOR"],
);

/// Base headers and wide headers of a CronJob.
pub const CRONJOB_HEADERS: (&[&str], &[&str]) = (
    &[
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "AGE",
    ],
    &["CONTAINERS", "IMAGES", "SELECTOR"],
);

/// A Job's row.
pub fn job_cells(o: &Value, name: String, now: SystemTime) -> (Vec<String>, Vec<String>) {
    let succeeded = int_at(o, "/status/succeeded").unwrap_or(0);
    let completions = match int_at(o, "/spec/completions") {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int_at(o, "/spec/parallelism").unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = run_duration(o, now);
    (
        vec![
            name,
            job_status(o),
            completions,
            duration,
            age(str_at(o, "/metadata/creationTimestamp"), now),
        ],
        containers(
            o,
            "/spec/template/spec/containers",
            o.pointer("/spec/selector"),
        ),
    )
}

/// kubectl's Job STATUS: the first of Complete, Failed, Terminating,
/// Suspended, FailureTarget, SuccessCriteriaMet that holds, else Running.
pub fn job_status(o: &Value) -> String {
    let has = |t: &str| {
        list_at(o, "/status/conditions")
            .iter()
            .any(|c| str_at(c, "/type") == Some(t) && str_at(c, "/status") == Some("True"))
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if o.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    status.to_string()
}

/// A CronJob's row.
pub fn cronjob_cells(o: &Value, name: String, now: SystemTime) -> (Vec<String>, Vec<String>) {
    let suspend = match bool_at(o, "/spec/suspend") {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let last = match str_at(o, "/status/lastScheduleTime") {
        Some(t) => age(Some(t), now),
        None => "<none>".into(),
    };
    let tz = str_at(o, "/spec/timeZone").unwrap_or("<none>");
    (
        vec![
            name,
            str_at(o, "/spec/schedule").unwrap_or("").to_string(),
            tz.to_string(),
            suspend.to_string(),
            list_at(o, "/status/active").len().to_string(),
            last,
            age(str_at(o, "/metadata/creationTimestamp"), now),
        ],
        containers(
            o,
            "/spec/jobTemplate/spec/template/spec/containers",
            o.pointer("/spec/jobTemplate/spec/selector"),
        ),
    )
}

/// CONTAINERS, IMAGES, SELECTOR.
fn containers(o: &Value, pointer: &str, selector: Option<&Value>) -> Vec<String> {
    let list = list_at(o, pointer);
    let join = |field: &str| {
        let v: Vec<&str> = list.iter().filter_map(|c| str_at(c, field)).collect();
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v.join(",")
        }
    };
    vec![join("/name"), join("/image"), label_selector(selector)]
}

#[cfg(test)]
mod tests {
    use super::super::age::parse_time;
    use super::*;
    use serde_json::json;

    #[test]
    fn job_rows_are_kubectls() {
        let now = parse_time("2026-01-01T00:10:00Z").unwrap();
        let job = json!({
            "metadata": {"name": "pi", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"completions": 5, "parallelism": 2,
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
                "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}}},
            "status": {"succeeded": 5, "startTime": "2026-01-01T00:00:00Z",
                "completionTime": "2026-01-01T00:00:42Z",
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                               {"type": "Complete", "status": "True"}]},
        });
        let (base, wide) = job_cells(&job, "pi".into(), now);
        assert_eq!(base, ["pi", "Complete", "5/5", "42s", "10m"]);
        assert_eq!(
            wide,
            ["pi", "perl:5.34", "batch.kubernetes.io/controller-uid=u"]
        );
        let queue = json!({"metadata": {"name": "q"}, "spec": {"parallelism": 3},
            "status": {"startTime": "2026-01-01T00:08:00Z"}});
        let (base, _) = job_cells(&queue, "q".into(), now);
        assert_eq!(base[1..4], ["Running", "0/1 of 3", "2m"]);
        let fresh = json!({"metadata": {"name": "f"}, "spec": {"completions": 1}});
        assert_eq!(
            job_cells(&fresh, "f".into(), now).0[1..4],
            ["Running", "0/1", ""]
        );
    }

    #[test]
    fn cronjob_rows_are_kubectls() {
        let now = parse_time("2026-01-01T00:10:00Z").unwrap();
        let cj = json!({
            "metadata": {"name": "hello", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"schedule": "*/1 * * * *", "suspend": false,
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "hello-29000000"}], "lastScheduleTime": "2026-01-01T00:09:00Z"},
        });
        let (base, wide) = cronjob_cells(&cj, "hello".into(), now);
        assert_eq!(
            base,
            ["hello", "*/1 * * * *", "<none>", "False", "1", "60s", "10m"]
        );
        assert_eq!(wide, ["hello", "busybox", "<none>"]);
    }
}
