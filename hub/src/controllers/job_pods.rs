//! What a Job's pods say, counted as Kubernetes' Job controller counts
//! them: active, ready, terminating, succeeded (by completion index for
//! Indexed Jobs), failed, container restarts under `OnFailure`, the
//! failures since the last success and when the last one happened (the
//! delay before a failed pod is replaced: [`replacement_delay`]); and the
//! pods a Job stamps (Indexed ones carry their index).
//!
//! Bramble has no finalizers, so it cannot hold a finished pod until it is
//! counted (Kubernetes' `batch.kubernetes.io/job-tracking`): the controller
//! keeps finished pods until the Job finishes, and counts never go down
//! (`status.succeeded`/`failed` are the larger of the last status and the
//! pods present; `completedIndexes` is the union of both). A finished pod
//! deleted by hand is therefore still counted, but one deleted before the
//! controller saw it finish is not.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use bramble_api::objects::env::EnvVar;
use bramble_api::objects::job::{COMPLETION_INDEX, COMPLETION_INDEX_ENV};
use bramble_api::objects::{Job, Pod};

use super::pods::{from_template, is_controlled_by, is_ready};
use super::time;

/// Kubernetes' first delay before a failed pod is replaced; it doubles
/// with each further failure since the last success, up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_secs(10);
pub const MAX_DELAY: Duration = Duration::from_secs(360);

/// A Job's pods, sorted by what they mean for it.
#[derive(Debug, Default)]
pub struct Tally<'a> {
    /// Not finished, not being deleted.
    pub active: Vec<&'a Pod>,
    /// Being deleted and not finished.
    pub terminating: usize,
    pub ready: usize,
    /// Succeeded pods present.
    pub succeeded: usize,
    /// Failed pods present.
    pub failed: usize,
    /// Indexes of succeeded pods present (Indexed Jobs, within `completions`).
    pub succeeded_indexes: BTreeSet<i32>,
    /// Container restarts of active pods (`OnFailure` counts them as failures).
    pub restarts: i32,
    /// Failed pods that finished after the last succeeded one.
    pub failures_since_success: u32,
    /// When the last failed pod finished.
    pub last_failure: Option<SystemTime>,
}

/// Counts the pods of `pods` that `job` controls.
pub fn tally<'a>(job: &Job, pods: &'a [Pod]) -> Tally<'a> {
    let mut t = Tally::default();
    let completions = job.spec.completions.unwrap_or(0);
    let mut finished: Vec<(SystemTime, bool)> = Vec::new();
    for p in pods
        .iter()
        .filter(|p| is_controlled_by(p, "Job", &job.metadata))
    {
        if matches!(p.phase(), "Succeeded" | "Failed") {
            finished.push((finished_at(p), p.phase() == "Failed"));
        }
        match p.phase() {
            "Succeeded" => {
                t.succeeded += 1;
                if let Some(i) = index_of(p).filter(|i| *i < completions) {
                    t.succeeded_indexes.insert(i);
                }
            }
            "Failed" => t.failed += 1,
            _ if p.metadata.deletion_timestamp.is_some() => t.terminating += 1,
            _ => {
                t.ready += usize::from(is_ready(p));
                if let Some(s) = &p.status {
                    t.restarts += s.restart_count()
                        + s.init_container_statuses
                            .iter()
                            .map(|c| c.restart_count)
                            .sum::<i32>();
                }
                t.active.push(p);
            }
        }
    }
    finished.sort();
    for (at, failed) in finished {
        if failed {
            t.failures_since_success += 1;
            t.last_failure = Some(at);
        } else {
            t.failures_since_success = 0;
        }
    }
    t
}

/// When a finished pod finished, as Kubernetes reads it: the last
/// container's `finishedAt`, else when `Ready` turned false, else its
/// deletion, else its creation.
pub fn finished_at(pod: &Pod) -> SystemTime {
    let s = pod.status.as_ref();
    let containers = s
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .chain(&s.container_statuses)
        })
        .filter_map(|c| {
            c.state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_deref()
        })
        .filter_map(|t| time::parse(Some(t)))
        .max();
    let not_ready = || {
        s?.conditions
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == "False")
            .and_then(|c| time::parse(c.last_transition_time.as_deref()))
    };
    containers
        .or_else(not_ready)
        .or_else(|| time::parse(pod.metadata.deletion_timestamp.as_deref()))
        .or_else(|| time::parse(pod.metadata.creation_timestamp.as_deref()))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// How long after the last failure a failed pod is replaced, with
/// `failures` failures since the last success: 10 s, 20 s, 40 s, ... 6 min.
pub fn replacement_delay(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let doublings = (failures - 1).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// The completion index of an Indexed Job's pod (its annotation).
pub fn index_of(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .get(COMPLETION_INDEX)
        .and_then(|v| v.parse().ok())
        .filter(|i: &i32| *i >= 0)
}

/// Parses `status.completedIndexes` (`0-2,4`); unreadable parts are skipped.
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<i32>().ok()),
        }
    }
    out
}

/// The pod `job` stamps (without its name); with `index`, an Indexed Job's
/// pod: the index as annotation, label and `JOB_COMPLETION_INDEX` in every
/// container, and the hostname `JOB-INDEX` as Kubernetes sets it.
pub fn job_pod(job: &Job, index: Option<i32>) -> Pod {
    let index_label = index.map(|i| i.to_string());
    let extra: Vec<(&str, &str)> = index_label
        .iter()
        .map(|i| (COMPLETION_INDEX, i.as_str()))
        .collect();
    let mut pod = from_template(
        &job.spec.template,
        String::new(),
        "Job",
        &job.metadata,
        &extra,
    );
    if let Some(i) = index_label {
        pod.metadata
            .annotations
            .insert(COMPLETION_INDEX.to_string(), i.clone());
        for c in pod
            .spec
            .init_containers
            .iter_mut()
            .chain(pod.spec.containers.iter_mut())
        {
            c.env.retain(|e| e.name != COMPLETION_INDEX_ENV);
            c.env.push(EnvVar {
                name: COMPLETION_INDEX_ENV.into(),
                value: Some(i.clone()),
                value_from: None,
            });
        }
        if pod.spec.hostname.is_none() {
            let host = format!("{}-{i}", job.name());
            // A hostname is a DNS label: Kubernetes leaves it unset when too long.
            if host.len() <= 63 {
                pod.spec.hostname = Some(host);
            }
        }
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replacement_delay_doubles_up_to_six_minutes() {
        let secs = |n| replacement_delay(n).as_secs();
        assert_eq!(
            [secs(0), secs(1), secs(2), secs(3), secs(6), secs(40)],
            [0, 10, 20, 40, 320, 360]
        );
    }

    #[test]
    fn completed_indexes_parse_back() {
        assert_eq!(parse_indexes("0-2,4"), BTreeSet::from([0, 1, 2, 4]));
        assert_eq!(parse_indexes(""), BTreeSet::new());
        assert_eq!(parse_indexes("1,x,3-"), BTreeSet::from([1]));
    }
}
