//! A Job's next `status`, and the event that goes with it: counts, start
//! time, and the conditions in Kubernetes 1.32's order (an interim
//! `SuccessCriteriaMet` or `FailureTarget`, then, with no pod left running
//! or terminating, `Complete` or `Failed`). Failure is judged before
//! success, backoff before the deadline, as Kubernetes does.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use bramble_api::objects::Job;
use bramble_api::objects::common::Condition;
use bramble_api::objects::job::JobStatus;

use super::action::Note;
use super::job::indexes_string;
use super::job_pods::Tally;
use super::time;

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUSPENDED: &str = "Suspended";
pub const REASON_COMPLETIONS_REACHED: &str = "CompletionsReached";
pub const REASON_BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
pub const REASON_DEADLINE_EXCEEDED: &str = "DeadlineExceeded";

/// Where a Job stands after this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Running,
    Suspended,
    Succeeding,
    Failing,
}

impl Outcome {
    /// From a status [`next_status`] made.
    pub fn of(status: &JobStatus) -> Outcome {
        if has(status, FAILURE_TARGET) || has(status, FAILED) {
            Outcome::Failing
        } else if has(status, SUCCESS_CRITERIA_MET) || has(status, COMPLETE) {
            Outcome::Succeeding
        } else if has(status, SUSPENDED) {
            Outcome::Suspended
        } else {
            Outcome::Running
        }
    }

    /// Why active pods are deleted in this state.
    pub fn reason(self) -> &'static str {
        match self {
            Outcome::Running => "Surplus",
            Outcome::Suspended => "JobSuspended",
            Outcome::Succeeding => "JobSucceeded",
            Outcome::Failing => "JobFailed",
        }
    }
}

/// Whether condition `type_` is `True`.
pub fn has(status: &JobStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == type_ && c.is_true())
}

/// When the Job finished (`Complete` or `Failed`), if it did.
pub fn finished(status: &JobStatus) -> Option<SystemTime> {
    let c = status
        .conditions
        .iter()
        .find(|c| (c.type_ == COMPLETE || c.type_ == FAILED) && c.is_true())?;
    time::parse(c.last_transition_time.as_deref())
        .or_else(|| time::parse(status.completion_time.as_deref()))
        .or(Some(SystemTime::UNIX_EPOCH))
}

/// The status after this round and the event to record with it.
pub fn next_status(
    job: &Job,
    status: &JobStatus,
    t: &Tally<'_>,
    completed: &BTreeSet<i32>,
    now: SystemTime,
) -> (JobStatus, Option<Note>) {
    let spec = &job.spec;
    let mut s = status.clone();
    let mut note = None;
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    s.active = count(t.active.len());
    s.ready = Some(count(t.ready));
    s.terminating = Some(count(t.terminating));
    s.failed = status.failed.max(count(t.failed));
    if job.indexed() {
        s.succeeded = count(completed.len());
        s.completed_indexes = indexes_string(completed);
    } else {
        s.succeeded = status.succeeded.max(count(t.succeeded));
    }

    let decided = has(&s, FAILURE_TARGET) || has(&s, SUCCESS_CRITERIA_MET);
    let suspend = spec.suspend.unwrap_or(false);
    if !decided && suspend {
        if !has(&s, SUSPENDED) {
            set(
                &mut s.conditions,
                SUSPENDED,
                "JobSuspended",
                "Job suspended",
                now,
            );
            note = Some(Note::normal("Suspended", "Job suspended".into()));
        }
        return (s, note);
    }
    if has(&s, SUSPENDED) {
        set_false(
            &mut s.conditions,
            SUSPENDED,
            "JobResumed",
            "Job resumed",
            now,
        );
        // Kubernetes restarts the clock of activeDeadlineSeconds on resume.
        s.start_time = Some(time::format(now));
        note = Some(Note::normal("Resumed", "Job resumed".into()));
    }
    if s.start_time.is_none() {
        s.start_time = Some(time::format(now));
    }

    if !decided {
        let backoff = spec.backoff_limit.unwrap_or(6);
        let on_failure = job.spec.template.spec.restart_policy.as_deref() == Some("OnFailure");
        let restarts_exceed = on_failure
            && if backoff == 0 {
                t.restarts > 0
            } else {
                t.restarts >= backoff
            };
        let deadline = spec.active_deadline_seconds.and_then(|d| {
            let start = time::parse(s.start_time.as_deref())?;
            let d = Duration::from_secs(u64::try_from(d).ok()?);
            Some(start + d <= now)
        });
        if s.failed > backoff || restarts_exceed {
            set(
                &mut s.conditions,
                FAILURE_TARGET,
                REASON_BACKOFF_LIMIT_EXCEEDED,
                "Job has reached the specified backoff limit",
                now,
            );
        } else if deadline == Some(true) {
            set(
                &mut s.conditions,
                FAILURE_TARGET,
                REASON_DEADLINE_EXCEEDED,
                "Job was active longer than specified deadline",
                now,
            );
        } else if succeeded(job, &s, t) {
            set(
                &mut s.conditions,
                SUCCESS_CRITERIA_MET,
                REASON_COMPLETIONS_REACHED,
                "Reached expected number of succeeded pods",
                now,
            );
        }
    }

    // Decided, and nothing runs any more: the terminal condition.
    if t.active.is_empty() && t.terminating == 0 {
        let interim = |type_: &str| {
            s.conditions
                .iter()
                .find(|c| c.type_ == type_ && c.is_true())
                .cloned()
        };
        if let Some(c) = interim(FAILURE_TARGET) {
            let reason = c.reason.clone().unwrap_or_default();
            let message = c.message.clone().unwrap_or_default();
            set(&mut s.conditions, FAILED, &reason, &message, now);
            note = Some(Note::warning(
                if reason == REASON_DEADLINE_EXCEEDED {
                    REASON_DEADLINE_EXCEEDED
                } else {
                    REASON_BACKOFF_LIMIT_EXCEEDED
                },
                message,
            ));
        } else if let Some(c) = interim(SUCCESS_CRITERIA_MET) {
            let reason = c.reason.clone().unwrap_or_default();
            let message = c.message.clone().unwrap_or_default();
            set(&mut s.conditions, COMPLETE, &reason, &message, now);
            s.completion_time = Some(time::format(now));
            note = Some(Note::normal("Completed", "Job completed".into()));
        }
    }
    (s, note)
}

/// Whether the Job has all the successes it needs.
fn succeeded(job: &Job, s: &JobStatus, t: &Tally<'_>) -> bool {
    match job.spec.completions {
        Some(c) => s.succeeded >= c,
        None => s.succeeded > 0 && t.active.is_empty(),
    }
}

/// Sets condition `type_` to `True` (probe and transition times `now`).
fn set(conds: &mut Vec<Condition>, type_: &str, reason: &str, message: &str, now: SystemTime) {
    put(conds, type_, "True", reason, message, now);
}

fn set_false(
    conds: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    message: &str,
    now: SystemTime,
) {
    put(conds, type_, "False", reason, message, now);
}

fn put(
    conds: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: SystemTime,
) {
    let ts = Some(time::format(now));
    let c = Condition {
        type_: type_.into(),
        status: status.into(),
        last_probe_time: ts.clone(),
        last_transition_time: ts,
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..Condition::default()
    };
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(old) if old.status == status => {}
        Some(old) => *old = c,
        None => conds.push(c),
    }
}
