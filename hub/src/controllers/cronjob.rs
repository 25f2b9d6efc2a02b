//! The CronJob controller, as Kubernetes' cronjob-controller (v2) runs one:
//! at each time of `schedule` (in `timeZone`) a Job from `jobTemplate`,
//! named `CRONJOB-<scheduled time in minutes since the epoch>` and
//! annotated with that time. The most recent scheduled time since
//! `lastScheduleTime` (or the creation) up to `now` runs once, even if it
//! was missed while the hub was down, unless it is older than
//! `startingDeadlineSeconds`; earlier missed times are not run.
//! `concurrencyPolicy`: `Allow` runs beside active Jobs, `Forbid` skips a
//! time while one is active (`lastScheduleTime` stays, so the time still
//! runs when the active Job ends if it is within the deadline), `Replace`
//! deletes the active Jobs first. Finished Jobs beyond
//! `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted,
//! oldest first. `suspend` stops new runs. Status: the active Jobs,
//! `lastScheduleTime`, `lastSuccessfulTime`.
//!
//! Pure: the caller hands in `now`; the control loop wakes at least once a
//! second, so a time is taken up within a second of passing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bramble_api::objects::common::ObjectReference;
use bramble_api::objects::cronjob::{CronJobStatus, SCHEDULED_TIMESTAMP};
use bramble_api::objects::{CronJob, Job};
use bramble_api::schedule::Schedule;

use super::action::{Action, Note, ObjectRef};
use super::job_status::{COMPLETE, FAILED, has};
use super::owners::{controller_ref_to, controls};
use super::time;

/// Kubernetes stops counting missed times here (and warns).
const MISSED_CAP: usize = 100;

/// What the CronJob controller reads for one CronJob.
#[derive(Debug, Clone, Copy)]
pub struct CronJobInput<'a> {
    pub cron_job: &'a CronJob,
    /// Jobs of the CronJob's namespace (others are ignored).
    pub jobs: &'a [Job],
    pub now: SystemTime,
}

/// Plans one CronJob. Applying the actions and planning again converges.
pub fn plan_cronjob(input: CronJobInput<'_>) -> Vec<Action> {
    let cj = input.cron_job;
    if cj.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let now = input.now;
    let old = cj.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let mut actions = Vec::new();
    let mut notes = Vec::new();
    let owned: Vec<&Job> = input
        .jobs
        .iter()
        .filter(|j| controls("CronJob", &cj.metadata, &j.metadata))
        .collect();
    let (finished, mut active): (Vec<&Job>, Vec<&Job>) = owned.iter().partition(|j| is_finished(j));
    for j in &finished {
        if old
            .active
            .iter()
            .any(|r| r.name.as_deref() == Some(j.name()))
        {
            let how = if is_complete(j) { COMPLETE } else { FAILED };
            notes.push(Note::normal(
                "SawCompletedJob",
                format!("Saw completed job: {}, status: {how}", j.name()),
            ));
        }
        if is_complete(j) {
            let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
            if later(done.as_deref(), status.last_successful_time.as_deref()) {
                status.last_successful_time = done;
            }
        }
    }
    prune_history(&mut actions, cj, &finished);

    if !cj.spec.suspend.unwrap_or(false)
        && let Some(at) = due(cj, &old, now)
    {
        let name = job_name(cj, at);
        let exists = owned.iter().any(|j| j.name() == name);
        // Another's Job of that name: not ours to replace (Kubernetes
        // retries too), and a create would only fail.
        let taken = !exists && input.jobs.iter().any(|j| j.name() == name);
        match cj.concurrency_policy() {
            _ if exists => status.last_schedule_time = Some(time::format(at)),
            _ if taken => {}
            // Skipped while one runs; lastScheduleTime stays.
            "Forbid" if !active.is_empty() => {}
            policy => {
                if policy == "Replace" {
                    for j in active.drain(..) {
                        actions.push(Action::DeleteJob {
                            job: ObjectRef::of(&j.metadata),
                            reason: "Replace",
                        });
                    }
                }
                actions.push(Action::CreateJob(Box::new(job_for(cj, at, name.clone()))));
                status.active.push(reference(cj.namespace(), &name, None));
                status.last_schedule_time = Some(time::format(at));
            }
        }
    }

    let created: Vec<ObjectReference> = status
        .active
        .iter()
        .filter(|r| r.uid.is_none() && !owned.iter().any(|j| Some(j.name()) == r.name.as_deref()))
        .cloned()
        .collect();
    status.active = active
        .iter()
        .map(|j| reference(j.namespace(), j.name(), j.metadata.uid.clone()))
        .chain(created)
        .collect();
    status.active.sort_by(|a, b| a.name.cmp(&b.name));
    if status != old {
        actions.push(Action::UpdateCronJobStatus {
            namespace: cj.namespace().to_string(),
            name: cj.name().to_string(),
            status: Box::new(status),
            notes,
        });
    }
    actions
}

/// The scheduled time to run now, if any: the most recent one in
/// (`lastScheduleTime` or the creation, or `now - startingDeadlineSeconds`
/// if later, `now`], when not older than the deadline.
pub fn due(cj: &CronJob, status: &CronJobStatus, now: SystemTime) -> Option<SystemTime> {
    let schedule = Schedule::parse(&cj.spec.schedule, cj.spec.time_zone.as_deref()).ok()?;
    let mut earliest = time::parse(status.last_schedule_time.as_deref())
        .or_else(|| time::parse(cj.metadata.creation_timestamp.as_deref()))
        .unwrap_or(now);
    let deadline = cj
        .spec
        .starting_deadline_seconds
        .map(|d| Duration::from_secs(u64::try_from(d).unwrap_or(0)));
    if let Some(d) = deadline
        && let Some(window) = now.checked_sub(d)
        && window > earliest
    {
        earliest = window;
    }
    let (latest, _missed) = schedule.most_recent(earliest, now, MISSED_CAP);
    let latest = latest?;
    match deadline {
        Some(d) if latest + d < now => None,
        _ => Some(latest),
    }
}

/// `CRONJOB-<minutes since the epoch>` of the time `at`.
pub fn job_name(cj: &CronJob, at: SystemTime) -> String {
    let minutes = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60;
    format!("{}-{minutes}", cj.name())
}

/// The Job `cj` runs for the time `at`: the template's labels,
/// annotations and spec, the scheduled-time annotation, owned by `cj`.
pub fn job_for(cj: &CronJob, at: SystemTime, name: String) -> Job {
    let t = &cj.spec.job_template;
    let mut meta = t.metadata.clone();
    meta.name = name;
    meta.namespace = Some(cj.namespace().to_string());
    meta.annotations
        .insert(SCHEDULED_TIMESTAMP.to_string(), time::format(at));
    meta.owner_references = vec![controller_ref_to("CronJob", &cj.metadata)];
    Job {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        metadata: meta,
        spec: t.spec.clone(),
        status: None,
    }
}

/// Deletes the oldest finished Jobs beyond the history limits.
fn prune_history(actions: &mut Vec<Action>, cj: &CronJob, finished: &[&Job]) {
    for (complete, limit) in [
        (true, cj.spec.successful_jobs_history_limit.unwrap_or(3)),
        (false, cj.spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let mut jobs: Vec<&Job> = finished
            .iter()
            .copied()
            .filter(|j| is_complete(j) == complete)
            .collect();
        let keep = usize::try_from(limit).unwrap_or(0);
        if jobs.len() <= keep {
            continue;
        }
        // Oldest first: by start time, then name (the scheduled minute).
        jobs.sort_by_key(|j| {
            (
                time::parse(j.status.as_ref().and_then(|s| s.start_time.as_deref())),
                j.name().to_string(),
            )
        });
        for j in &jobs[..jobs.len() - keep] {
            actions.push(Action::DeleteJob {
                job: ObjectRef::of(&j.metadata),
                reason: "HistoryLimit",
            });
        }
    }
}

fn reference(namespace: &str, name: &str, uid: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        namespace: Some(namespace.to_string()),
        name: Some(name.to_string()),
        uid,
        ..ObjectReference::default()
    }
}

fn is_complete(j: &Job) -> bool {
    j.status.as_ref().is_some_and(|s| has(s, COMPLETE))
}

fn is_finished(j: &Job) -> bool {
    j.status
        .as_ref()
        .is_some_and(|s| has(s, COMPLETE) || has(s, FAILED))
}

/// Whether timestamp `a` is set and later than `b` (or `b` is unset).
fn later(a: Option<&str>, b: Option<&str>) -> bool {
    match (time::parse(a), time::parse(b)) {
        (Some(a), Some(b)) => a > b,
        (Some(_), None) => true,
        _ => false,
    }
}
