//! The Job controller: runs a Job's pods to completion, as Kubernetes 1.32's
//! job-controller does. At most `parallelism` active pods, until
//! `completions` succeeded (Indexed: one per index `0..completions`; no
//! `completions`: until one succeeded and none runs). A Job fails when its
//! failures pass `backoffLimit` (failed pods, plus container restarts under
//! `OnFailure`) or it ran longer than `activeDeadlineSeconds`. A decided
//! Job first gets its interim condition (`SuccessCriteriaMet` or
//! `FailureTarget`) and loses its active pods, then, once none is left
//! terminating, its terminal one (`Complete` with `completionTime`, or
//! `Failed`). `suspend` deletes the active pods (`Suspended`); a resumed Job
//! starts its clock again. `ttlSecondsAfterFinished` deletes the Job after
//! it finished (its pods go with it, by garbage collection).
//!
//! A failed pod is replaced after Kubernetes' delay (10 s after the last
//! failure, doubled per failure since the last success, at most 6 min);
//! the loop's once-a-second rounds take it up.
//!
//! Not implemented: `podFailurePolicy`, `successPolicy`,
//! `backoffLimitPerIndex`, Pod Security's `FailedCreate` event (refused
//! pods are simply not created).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use bramble_api::objects::job::{JobStatus, format_indexes};
use bramble_api::objects::{Job, Pod};

use super::action::{Action, ObjectRef, PodRef};
use super::job_pods::{Tally, index_of, job_pod, parse_indexes, replacement_delay, tally};
use super::job_status::{Outcome, finished, next_status};
use super::naming::pod_names;
use super::rank::sort_for_deletion;
use super::time;

/// What the Job controller reads for one Job.
#[derive(Debug, Clone, Copy)]
pub struct JobInput<'a> {
    pub job: &'a Job,
    /// Pods of the Job's namespace (others are ignored).
    pub pods: &'a [Pod],
    /// Why Pod Security refuses the template's pods now: none are created.
    pub refused: Option<&'a str>,
    pub now: SystemTime,
}

/// Plans one Job. Applying the actions and planning again converges.
pub fn plan_job(input: JobInput<'_>) -> Vec<Action> {
    let job = input.job;
    if job.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let now = input.now;
    let status = job.status.clone().unwrap_or_default();
    let mut actions = Vec::new();
    let t = tally(job, input.pods);
    if let Some(done) = finished(&status) {
        // Active pods of a finished Job (left by an older round) go.
        delete_all(&mut actions, &t, "JobFinished");
        if let Some(ttl) = job.spec.ttl_seconds_after_finished {
            let after = Duration::from_secs(u64::try_from(ttl).unwrap_or(0));
            if time::elapsed(Some(done), after, now) {
                actions.push(Action::DeleteJob {
                    job: ObjectRef::of(&job.metadata),
                    reason: "TTLAfterFinished",
                });
            }
        }
        return actions;
    }

    let completed = completed_indexes(job, &status, &t);
    let (next, note) = next_status(job, &status, &t, &completed, now);
    let outcome = Outcome::of(&next);
    match outcome {
        Outcome::Running if !job.spec.suspend.unwrap_or(false) => {
            manage(&mut actions, &input, &t, &completed, next.succeeded)
        }
        // Suspended, or decided: no pod keeps running.
        _ => delete_all(&mut actions, &t, outcome.reason()),
    }
    if next != status || note.is_some() {
        actions.push(Action::UpdateJobStatus {
            namespace: job.namespace().to_string(),
            name: job.name().to_string(),
            status: Box::new(next),
            note,
        });
    }
    actions
}

/// Succeeded indexes of an Indexed Job: the last status's and the pods'.
fn completed_indexes(job: &Job, status: &JobStatus, t: &Tally<'_>) -> BTreeSet<i32> {
    if !job.indexed() {
        return BTreeSet::new();
    }
    let completions = job.spec.completions.unwrap_or(0);
    let mut done = parse_indexes(&status.completed_indexes);
    done.retain(|i| *i < completions);
    done.extend(t.succeeded_indexes.iter().copied());
    done
}

/// The formatted `completedIndexes` of `indexes`.
pub fn indexes_string(indexes: &BTreeSet<i32>) -> String {
    format_indexes(indexes.iter().copied())
}

fn delete_all(actions: &mut Vec<Action>, t: &Tally<'_>, reason: &'static str) {
    for p in &t.active {
        actions.push(Action::DeletePod {
            pod: PodRef::of(p),
            reason,
        });
    }
}

/// Creates and deletes pods so that the running Job has what it wants.
fn manage(
    actions: &mut Vec<Action>,
    input: &JobInput<'_>,
    t: &Tally<'_>,
    completed: &BTreeSet<i32>,
    succeeded: i32,
) {
    let job = input.job;
    let parallelism = usize::try_from(job.spec.parallelism.unwrap_or(1)).unwrap_or(0);
    let mut surplus: Vec<&Pod> = Vec::new();
    // Indexes to start, lowest first (None: a NonIndexed pod).
    let mut start: Vec<Option<i32>> = Vec::new();
    let mut active: Vec<&Pod> = t.active.clone();
    if job.indexed() {
        let completions = job.spec.completions.unwrap_or(0);
        let mut running = BTreeSet::new();
        // One active pod per index still to do; the rest are surplus.
        sort_for_deletion(&mut active);
        active.reverse();
        let mut kept = Vec::new();
        for p in active {
            match index_of(p) {
                Some(i) if i < completions && !completed.contains(&i) && running.insert(i) => {
                    kept.push(p)
                }
                _ => surplus.push(p),
            }
        }
        let room = parallelism.saturating_sub(kept.len());
        start.extend(
            (0..completions)
                .filter(|i| !completed.contains(i) && !running.contains(i))
                .take(room)
                .map(Some),
        );
        // Over parallelism (lowered): drop the worst of the kept ones.
        if kept.len() > parallelism {
            sort_for_deletion(&mut kept);
            surplus.extend(kept.drain(..kept.len() - parallelism));
        }
    } else {
        // Counted successes (pods removed by hand still count).
        let want = match job.spec.completions {
            Some(c) => usize::try_from(c.saturating_sub(succeeded))
                .unwrap_or(0)
                .min(parallelism),
            // A work queue: no new pods once one succeeded.
            None if succeeded > 0 => active.len().min(parallelism),
            None => parallelism,
        };
        if active.len() > want {
            sort_for_deletion(&mut active);
            surplus.extend(active.drain(..active.len() - want));
        }
        start.extend(std::iter::repeat_n(None, want - active.len()));
    }
    for p in surplus {
        actions.push(Action::DeletePod {
            pod: PodRef::of(p),
            reason: "Surplus",
        });
    }
    if start.is_empty() || input.refused.is_some() {
        return;
    }
    // Failed pods are replaced only after the backoff delay.
    let delay = replacement_delay(t.failures_since_success);
    if t.last_failure.is_some_and(|at| at + delay > input.now) {
        return;
    }
    let taken: BTreeSet<&str> = input.pods.iter().map(Pod::name).collect();
    let seed = super::naming::pod_name_seed(&job.metadata, input.now);
    for (n, index) in start.iter().enumerate() {
        let prefix = match index {
            Some(i) => format!("{}-{i}", job.name()),
            None => job.name().to_string(),
        };
        let seed = format!("{seed}/{n}");
        let Some(name) = pod_names(&prefix, 1, &seed, &taken).pop() else {
            continue;
        };
        let mut pod = job_pod(job, *index);
        pod.metadata.name = name;
        actions.push(Action::CreatePod(Box::new(pod)));
    }
}
