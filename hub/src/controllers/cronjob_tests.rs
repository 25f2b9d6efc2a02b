//! CronJob controller scenarios on a clock: a Job per scheduled time,
//! named by its minute; `Forbid`, `Replace` and `Allow` with a Job still
//! active; history limits; runs missed while the hub was down, within and
//! past `startingDeadlineSeconds`; suspension.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bramble_api::admit::Object;
use bramble_api::objects::cronjob::SCHEDULED_TIMESTAMP;
use bramble_api::objects::job::JobStatus;
use bramble_api::objects::{CronJob, Job};
use serde_json::{Value, json};

use super::action::{Action, Note};
use super::cronjob::{CronJobInput, plan_cronjob};
use super::testutil::merge;
use super::time;

/// The first minute of the tests' clock (minutes since the epoch).
const BASE: u64 = 29_000_000;

/// `min` minutes and `sec` seconds after [`BASE`].
fn at(min: u64, sec: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs((BASE + min) * 60 + sec)
}

/// A defaulted CronJob `hello` created at 00:30 of minute 0, with `spec`
/// merged over an every-minute schedule.
fn cron_job(spec: Value) -> CronJob {
    let mut v = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "hello", "namespace": "default", "uid": "hello-uid",
            "creationTimestamp": time::format(at(0, 30))},
        "spec": {"schedule": "*/1 * * * *", "jobTemplate": {
            "metadata": {"labels": {"app": "hello"}},
            "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "hello", "image": "busybox"}]}}}}}
    });
    merge(&mut v["spec"], spec);
    let mut c: CronJob = serde_json::from_value(v).unwrap();
    c.apply_defaults();
    assert!(c.validate().is_empty(), "{}", c.validate());
    c
}

struct World {
    cron_job: CronJob,
    jobs: Vec<Job>,
    notes: Vec<Note>,
    /// Names of the Jobs created and deleted, in order.
    created: Vec<String>,
    deleted: Vec<String>,
}

impl World {
    fn new(cron_job: CronJob) -> World {
        World {
            cron_job,
            jobs: Vec::new(),
            notes: Vec::new(),
            created: Vec::new(),
            deleted: Vec::new(),
        }
    }

    fn plan(&self, now: SystemTime) -> Vec<Action> {
        plan_cronjob(CronJobInput {
            cron_job: &self.cron_job,
            jobs: &self.jobs,
            now,
        })
    }

    /// Plans and applies until the plan is empty.
    fn converge(&mut self, now: SystemTime) {
        for _ in 0..10 {
            let actions = self.plan(now);
            if actions.is_empty() {
                return;
            }
            for a in actions {
                match a {
                    Action::CreateJob(j) => {
                        let mut j = *j;
                        assert!(!self.jobs.iter().any(|x| x.name() == j.name()));
                        j.metadata.uid = Some(format!("uid-{}", j.name()));
                        j.metadata.creation_timestamp = Some(time::format(now));
                        j.status = Some(JobStatus {
                            start_time: Some(time::format(now)),
                            active: 1,
                            ..JobStatus::default()
                        });
                        self.created.push(j.name().to_string());
                        self.jobs.push(j);
                    }
                    Action::DeleteJob { job, .. } => {
                        self.jobs.retain(|j| j.name() != job.name);
                        self.deleted.push(job.name);
                    }
                    Action::UpdateCronJobStatus { status, notes, .. } => {
                        self.cron_job.status = Some(*status);
                        self.notes.extend(notes);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        panic!("did not converge: {:?}", self.plan(now));
    }

    /// Job `name` ends (`Complete` or `Failed`) at `when`.
    fn finish(&mut self, name: &str, condition: &str, when: SystemTime) {
        let j = self.jobs.iter_mut().find(|j| j.name() == name).unwrap();
        let s = j.status.get_or_insert_with(Default::default);
        s.active = 0;
        s.conditions.push(bramble_api::objects::common::Condition {
            type_: condition.into(),
            status: "True".into(),
            last_transition_time: Some(time::format(when)),
            ..Default::default()
        });
        if condition == "Complete" {
            s.completion_time = Some(time::format(when));
        }
    }

    fn active(&self) -> Vec<String> {
        self.cron_job
            .status
            .as_ref()
            .map(|s| s.active.iter().filter_map(|r| r.name.clone()).collect())
            .unwrap_or_default()
    }

    fn last_schedule(&self) -> Option<String> {
        self.cron_job.status.as_ref()?.last_schedule_time.clone()
    }
}

fn name(min: u64) -> String {
    format!("hello-{}", BASE + min)
}

#[test]
fn a_job_runs_at_each_scheduled_time_named_by_its_minute() {
    let mut w = World::new(cron_job(json!({})));
    w.converge(at(0, 59));
    assert!(w.created.is_empty());
    w.converge(at(1, 0));
    assert_eq!(w.created, [name(1)]);
    let j = &w.jobs[0];
    assert_eq!(
        j.metadata.annotations[SCHEDULED_TIMESTAMP],
        time::format(at(1, 0))
    );
    assert_eq!(j.metadata.labels["app"], "hello");
    let owner = &j.metadata.owner_references[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.uid.as_str()
        ),
        ("batch/v1", "CronJob", "hello-uid")
    );
    assert_eq!(w.active(), [name(1)]);
    assert_eq!(
        w.cron_job.status.as_ref().unwrap().active[0].uid.as_deref(),
        Some(format!("uid-{}", name(1)).as_str())
    );
    assert_eq!(w.last_schedule(), Some(time::format(at(1, 0))));
    // Allow: the next minute runs beside the active Job.
    w.converge(at(2, 0));
    assert_eq!(w.created, [name(1), name(2)]);
    assert_eq!(w.active(), [name(1), name(2)]);
    w.finish(&name(1), "Complete", at(2, 10));
    w.converge(at(2, 11));
    assert_eq!(w.active(), [name(2)]);
    let s = w.cron_job.status.as_ref().unwrap();
    assert_eq!(s.last_successful_time, Some(time::format(at(2, 10))));
    assert_eq!(w.notes[0].reason, "SawCompletedJob");
    assert_eq!(
        w.notes[0].message,
        format!("Saw completed job: {}, status: Complete", name(1))
    );
}

#[test]
fn forbid_skips_a_time_while_a_job_is_active_and_runs_it_late_without_a_deadline() {
    let mut w = World::new(cron_job(json!({"concurrencyPolicy": "Forbid"})));
    w.converge(at(1, 0));
    w.converge(at(2, 0));
    assert_eq!(w.created, [name(1)], "skipped while hello-1 runs");
    assert_eq!(w.last_schedule(), Some(time::format(at(1, 0))));
    w.finish(&name(1), "Complete", at(2, 30));
    // Kubernetes runs the latest missed time once the active Job ended.
    w.converge(at(2, 31));
    assert_eq!(w.created, [name(1), name(2)]);
}

#[test]
fn forbid_with_a_deadline_skips_the_time_for_good() {
    let mut w = World::new(cron_job(
        json!({"concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 10}),
    ));
    w.converge(at(1, 0));
    w.converge(at(2, 0));
    w.finish(&name(1), "Complete", at(2, 30));
    w.converge(at(2, 31));
    assert_eq!(w.created, [name(1)], "minute 2 is past its deadline");
    w.converge(at(3, 0));
    assert_eq!(w.created, [name(1), name(3)]);
}

#[test]
fn replace_deletes_the_active_job_then_runs() {
    let mut w = World::new(cron_job(json!({"concurrencyPolicy": "Replace"})));
    w.converge(at(1, 0));
    w.converge(at(2, 0));
    assert_eq!(w.deleted, [name(1)]);
    assert_eq!(w.created, [name(1), name(2)]);
    assert_eq!(w.active(), [name(2)]);
}

#[test]
fn finished_jobs_beyond_the_history_limits_are_deleted_oldest_first() {
    let mut w = World::new(cron_job(
        json!({"successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1}),
    ));
    for min in 1..=6 {
        w.converge(at(min, 0));
        let how = if min % 3 == 0 { "Failed" } else { "Complete" };
        w.finish(&name(min), how, at(min, 20));
    }
    w.converge(at(6, 30));
    // Complete: 1, 2, 4, 5 -> 4, 5 kept; Failed: 3, 6 -> 6 kept.
    let mut kept: Vec<String> = w.jobs.iter().map(|j| j.name().to_string()).collect();
    kept.sort();
    assert_eq!(kept, [name(4), name(5), name(6)]);
    assert_eq!(
        w.cron_job.status.as_ref().unwrap().last_successful_time,
        Some(time::format(at(5, 20)))
    );
}

#[test]
fn a_run_missed_while_the_hub_was_down_runs_once_within_the_deadline() {
    let hourly = |deadline: Value| {
        let mut spec = json!({"schedule": "0 * * * *"});
        if !deadline.is_null() {
            spec["startingDeadlineSeconds"] = deadline;
        }
        let mut w = World::new(cron_job(spec));
        w.cron_job.status = Some(Default::default());
        w
    };
    // Down from before 01:00 until 03:00:20: 01:00, 02:00 and 03:00 missed.
    // Kubernetes runs only the latest, if the deadline allows.
    let back = UNIX_EPOCH + Duration::from_secs(BASE * 60 / 3600 * 3600 + 3 * 3600 + 20);
    let created_at = UNIX_EPOCH + Duration::from_secs(BASE * 60 / 3600 * 3600 + 600);
    for (deadline, runs) in [(json!(60), true), (json!(10), false), (Value::Null, true)] {
        let mut w = hourly(deadline.clone());
        w.cron_job.metadata.creation_timestamp = Some(time::format(created_at));
        w.converge(back);
        let three = format!("hello-{}", (BASE * 60 / 3600 * 3600 + 3 * 3600) / 60);
        if runs {
            assert_eq!(w.created, [three], "deadline {deadline}");
        } else {
            assert!(w.created.is_empty(), "deadline {deadline}: {:?}", w.created);
        }
        // Nothing more until 04:00.
        w.converge(back + Duration::from_secs(1800));
        assert_eq!(w.created.len(), usize::from(runs));
    }
}

#[test]
fn a_suspended_cronjob_runs_nothing() {
    let mut w = World::new(cron_job(json!({"suspend": true})));
    w.converge(at(1, 0));
    w.converge(at(5, 0));
    assert!(w.created.is_empty());
    w.cron_job.spec.suspend = Some(false);
    w.converge(at(5, 1));
    assert_eq!(
        w.created,
        [name(5)],
        "the latest missed time runs on resume"
    );
}

#[test]
fn a_job_of_the_same_name_not_owned_is_left_alone() {
    let mut w = World::new(cron_job(json!({})));
    let mut other = w.cron_job.spec.job_template.clone();
    other.metadata.name = name(1);
    w.jobs.push(Job {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        metadata: other.metadata,
        spec: other.spec,
        status: None,
    });
    w.converge(at(1, 0));
    assert!(w.created.is_empty());
    assert_eq!(w.last_schedule(), None);
    assert!(w.plan(at(1, 5)).is_empty());
}
