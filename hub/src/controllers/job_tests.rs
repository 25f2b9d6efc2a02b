//! Job controller scenarios: pods run to `completions` within
//! `parallelism`, Indexed Jobs by index, failures against `backoffLimit`,
//! the deadline, suspension and the TTL after finishing. Every scenario
//! plans, applies and plans again until nothing is left to do.

use bramble_api::admit::Object;
use bramble_api::objects::job::{COMPLETION_INDEX, COMPLETION_INDEX_ENV};
use bramble_api::objects::pod_status::{
    ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
};
use bramble_api::objects::{Job, Pod};
use serde_json::{Value, json};

use super::action::{Action, Note};
use super::job::{JobInput, plan_job};
use super::job_pods::index_of;
use super::testutil::{merge, t};
use super::time;

/// A defaulted Job `pi` (uid `pi-uid`, selector generated) with `spec`
/// merged over a one-container `restartPolicy: Never` spec.
fn job(spec: Value) -> Job {
    let mut v = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "pi-uid"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "pi", "image": "perl"}]}}}
    });
    merge(&mut v["spec"], spec);
    let mut j: Job = serde_json::from_value(v).unwrap();
    j.apply_defaults();
    j.generate_selector();
    assert!(j.validate().is_empty(), "{}", j.validate());
    j
}

/// The Job and its pods, changed only through the plan's actions and the
/// test's own pod transitions.
struct World {
    job: Job,
    /// The time of the last [`World::converge`]: when pods finish.
    now: u64,
    pods: Vec<Pod>,
    notes: Vec<Note>,
    deleted: bool,
}

impl World {
    fn new(job: Job) -> World {
        World {
            job,
            now: 0,
            pods: Vec::new(),
            notes: Vec::new(),
            deleted: false,
        }
    }

    fn plan(&self, now: u64) -> Vec<Action> {
        plan_job(JobInput {
            job: &self.job,
            pods: &self.pods,
            refused: None,
            now: t(now),
        })
    }

    /// Applies `actions`: created pods are `Pending`, deleted pods are
    /// terminating until [`World::settle`].
    fn apply(&mut self, actions: Vec<Action>, now: u64) {
        for a in actions {
            match a {
                Action::CreatePod(p) => {
                    let mut p = *p;
                    assert!(
                        !self.pods.iter().any(|x| x.name() == p.name()),
                        "name reused"
                    );
                    p.metadata.uid = Some(format!("uid-{}", p.metadata.name));
                    p.metadata.creation_timestamp = Some(time::format(t(now)));
                    p.status = Some(PodStatus {
                        phase: Some("Pending".into()),
                        ..PodStatus::default()
                    });
                    self.pods.push(p);
                }
                Action::DeletePod { pod, .. } => {
                    let p = self.pods.iter_mut().find(|p| p.name() == pod.name).unwrap();
                    p.metadata.deletion_timestamp = Some(time::format(t(now)));
                }
                Action::UpdateJobStatus { status, note, .. } => {
                    self.job.status = Some(*status);
                    self.notes.extend(note);
                }
                Action::DeleteJob { .. } => self.deleted = true,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Plans and applies once; returns whether anything was planned.
    fn step(&mut self, now: u64) -> bool {
        let a = self.plan(now);
        let busy = !a.is_empty();
        self.apply(a, now);
        busy
    }

    /// Steps until the plan is empty (converged).
    fn converge(&mut self, now: u64) {
        self.now = now;
        for _ in 0..20 {
            if !self.step(now) {
                return;
            }
        }
        panic!("did not converge: {:?}", self.plan(now));
    }

    /// Terminating pods are gone.
    fn settle(&mut self) {
        self.pods
            .retain(|p| p.metadata.deletion_timestamp.is_none());
    }

    fn active(&self) -> Vec<&Pod> {
        self.pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && p.phase() == "Pending")
            .collect()
    }

    /// Ends the first active pod (of `index`, when given) in `phase`, its
    /// container finished at the time of the last converge.
    fn finish(&mut self, index: Option<i32>, phase: &str) {
        let finished_at = time::format(t(self.now));
        let p = self
            .pods
            .iter_mut()
            .find(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.phase() == "Pending"
                    && index.is_none_or(|i| index_of(p) == Some(i))
            })
            .expect("an active pod");
        let s = p.status.as_mut().unwrap();
        s.phase = Some(phase.into());
        s.container_statuses = vec![ContainerStatus {
            name: "pi".into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: i32::from(phase == "Failed"),
                    finished_at: Some(finished_at),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }];
    }

    fn status(&self) -> bramble_api::objects::job::JobStatus {
        self.job.status.clone().unwrap_or_default()
    }

    /// `type=status(reason)` of every condition.
    fn conditions(&self) -> Vec<String> {
        self.status()
            .conditions
            .iter()
            .map(|c| {
                format!(
                    "{}={}({})",
                    c.type_,
                    c.status,
                    c.reason.as_deref().unwrap_or("")
                )
            })
            .collect()
    }

    fn reasons(&self) -> Vec<&'static str> {
        self.notes.iter().map(|n| n.reason).collect()
    }
}

#[test]
fn runs_completions_within_parallelism_then_completes() {
    let mut w = World::new(job(json!({"completions": 3, "parallelism": 2})));
    w.converge(0);
    assert_eq!(w.active().len(), 2);
    assert!(
        w.pods
            .iter()
            .all(|p| p.name().starts_with("pi-") && p.name().len() == 8)
    );
    let p = &w.pods[0];
    assert_eq!(p.metadata.owner_references[0].api_version, "batch/v1");
    assert_eq!(p.metadata.owner_references[0].kind, "Job");
    assert_eq!(p.metadata.labels["batch.kubernetes.io/job-name"], "pi");
    assert_eq!(p.metadata.labels["controller-uid"], "pi-uid");
    assert_eq!(w.status().active, 2);
    assert_eq!(
        w.status().start_time.as_deref(),
        Some(time::format(t(0)).as_str())
    );

    w.finish(None, "Succeeded");
    w.converge(1);
    // One left to do and one running: no third pod at once.
    assert_eq!(w.active().len(), 2);
    assert_eq!(w.status().succeeded, 1);
    w.finish(None, "Succeeded");
    w.converge(2);
    assert_eq!(w.active().len(), 1, "only one completion left");
    w.finish(None, "Succeeded");
    w.converge(3);
    assert_eq!(
        w.conditions(),
        [
            "SuccessCriteriaMet=True(CompletionsReached)",
            "Complete=True(CompletionsReached)"
        ]
    );
    let s = w.status();
    assert_eq!((s.succeeded, s.failed, s.active), (3, 0, 0));
    assert_eq!(
        s.completion_time.as_deref(),
        Some(time::format(t(3)).as_str())
    );
    assert_eq!(w.reasons(), ["Completed"]);
    // Finished pods stay (they are the Job's record) and nothing more happens.
    assert_eq!(w.pods.len(), 3);
    assert!(w.plan(100).is_empty());
}

#[test]
fn indexed_pods_carry_their_index_and_a_failed_index_runs_again() {
    let mut w = World::new(job(
        json!({"completions": 5, "parallelism": 2, "completionMode": "Indexed"}),
    ));
    w.converge(0);
    let mut indexes: Vec<i32> = w.active().iter().filter_map(|p| index_of(p)).collect();
    indexes.sort();
    assert_eq!(indexes, [0, 1]);
    let p = w.active()[0];
    let i = index_of(p).unwrap().to_string();
    assert!(p.name().starts_with(&format!("pi-{i}-")), "{}", p.name());
    assert_eq!(p.metadata.labels[COMPLETION_INDEX], i);
    let env = &p.spec.containers[0].env;
    assert!(
        env.iter()
            .any(|e| e.name == COMPLETION_INDEX_ENV && e.value.as_deref() == Some(i.as_str()))
    );
    assert_eq!(p.spec.hostname.as_deref(), Some(format!("pi-{i}").as_str()));

    w.finish(Some(0), "Succeeded");
    w.finish(Some(1), "Succeeded");
    w.converge(1);
    w.converge(2);
    w.finish(Some(2), "Failed");
    w.converge(3);
    let indexes: Vec<i32> = w.active().iter().filter_map(|p| index_of(p)).collect();
    assert_eq!(indexes, [3], "no new pod within 10 s of the failure");
    w.converge(11);
    assert_eq!(w.active().len(), 1);
    w.converge(12);
    // Index 2 runs again beside index 3; the failed pod is kept, counted once.
    let mut indexes: Vec<i32> = w.active().iter().filter_map(|p| index_of(p)).collect();
    indexes.sort();
    assert_eq!(indexes, [2, 3]);
    assert_eq!(w.pods.iter().filter(|p| p.phase() == "Failed").count(), 1);
    w.finish(Some(3), "Succeeded");
    w.converge(13);
    assert_eq!(w.status().completed_indexes, "0-1,3");
    assert_eq!(w.status().failed, 1);
    assert_eq!(w.status().succeeded, 3);
    w.finish(Some(2), "Succeeded");
    w.converge(14);
    w.finish(Some(4), "Succeeded");
    w.converge(15);
    let s = w.status();
    assert_eq!(s.completed_indexes, "0-4");
    assert_eq!((s.succeeded, s.failed), (5, 1));
    assert_eq!(
        w.conditions(),
        [
            "SuccessCriteriaMet=True(CompletionsReached)",
            "Complete=True(CompletionsReached)"
        ]
    );
}

#[test]
fn failures_past_the_backoff_limit_fail_the_job_and_stop_its_pods() {
    let mut w = World::new(job(
        json!({"completions": 3, "parallelism": 2, "backoffLimit": 1}),
    ));
    w.converge(0);
    w.finish(None, "Failed");
    w.converge(1);
    assert!(w.conditions().is_empty(), "one failure is within the limit");
    assert_eq!(w.active().len(), 1, "replaced 10 s after the failure");
    w.converge(10);
    assert_eq!(w.active().len(), 2, "the failed pod is replaced");
    w.finish(None, "Failed");
    w.converge(11);
    // Decided: the running pod is being stopped, not yet Failed.
    assert_eq!(w.conditions(), ["FailureTarget=True(BackoffLimitExceeded)"]);
    assert!(w.active().is_empty());
    assert_eq!(w.status().terminating, Some(1));
    w.settle();
    w.converge(12);
    assert_eq!(
        w.conditions(),
        [
            "FailureTarget=True(BackoffLimitExceeded)",
            "Failed=True(BackoffLimitExceeded)"
        ]
    );
    assert_eq!(w.status().failed, 2);
    assert_eq!(w.status().completion_time, None);
    assert_eq!(w.reasons(), ["BackoffLimitExceeded"]);
    assert!(w.notes[0].warning);
    assert!(w.plan(10).is_empty());
}

#[test]
fn container_restarts_count_against_the_backoff_limit_under_on_failure() {
    let mut w = World::new(job(json!({"backoffLimit": 2,
        "template": {"spec": {"restartPolicy": "OnFailure"}}})));
    w.converge(0);
    let restarted = |n: i32| {
        vec![ContainerStatus {
            name: "pi".into(),
            restart_count: n,
            ..ContainerStatus::default()
        }]
    };
    w.pods[0].status.as_mut().unwrap().container_statuses = restarted(1);
    w.converge(1);
    assert!(w.conditions().is_empty());
    w.pods[0].status.as_mut().unwrap().container_statuses = restarted(2);
    w.converge(2);
    assert_eq!(w.conditions(), ["FailureTarget=True(BackoffLimitExceeded)"]);
    w.settle();
    w.converge(3);
    assert_eq!(
        w.conditions().last().unwrap(),
        "Failed=True(BackoffLimitExceeded)"
    );
}

#[test]
fn a_job_active_past_its_deadline_fails() {
    let mut w = World::new(job(
        json!({"activeDeadlineSeconds": 10, "parallelism": 2, "completions": 4}),
    ));
    w.converge(0);
    w.converge(9);
    assert!(w.conditions().is_empty());
    w.converge(10);
    assert_eq!(w.conditions(), ["FailureTarget=True(DeadlineExceeded)"]);
    assert!(w.active().is_empty());
    w.settle();
    w.converge(11);
    assert_eq!(
        w.conditions().last().unwrap(),
        "Failed=True(DeadlineExceeded)"
    );
    assert_eq!(
        w.notes.last().unwrap().message,
        "Job was active longer than specified deadline"
    );
}

#[test]
fn suspend_stops_the_pods_and_resume_restarts_the_clock() {
    let mut w = World::new(job(
        json!({"parallelism": 2, "completions": 4, "activeDeadlineSeconds": 100}),
    ));
    w.converge(0);
    w.finish(None, "Succeeded");
    w.converge(1);
    w.job.spec.suspend = Some(true);
    w.converge(50);
    assert_eq!(w.conditions(), ["Suspended=True(JobSuspended)"]);
    assert!(w.active().is_empty());
    w.settle();
    w.converge(51);
    assert_eq!(w.status().active, 0);
    assert_eq!(w.status().succeeded, 1, "a suspension keeps what succeeded");
    assert_eq!(w.status().failed, 0, "stopped pods are not failures");
    // Resumed well after the original deadline: the clock starts again.
    w.job.spec.suspend = Some(false);
    w.converge(200);
    assert_eq!(w.conditions(), ["Suspended=False(JobResumed)"]);
    assert_eq!(w.active().len(), 2);
    assert_eq!(
        w.status().start_time.as_deref(),
        Some(time::format(t(200)).as_str())
    );
    assert_eq!(w.reasons(), ["Suspended", "Resumed"]);
}

#[test]
fn a_finished_job_is_deleted_after_its_ttl() {
    let mut w = World::new(job(json!({"ttlSecondsAfterFinished": 30})));
    w.converge(0);
    w.finish(None, "Succeeded");
    w.converge(5);
    assert_eq!(
        w.conditions().last().unwrap(),
        "Complete=True(CompletionsReached)"
    );
    w.converge(34);
    assert!(!w.deleted);
    w.step(35);
    assert!(w.deleted);
}

#[test]
fn counts_never_go_down_when_finished_pods_are_removed() {
    let mut w = World::new(job(
        json!({"completions": 3, "parallelism": 1, "backoffLimit": 6}),
    ));
    w.converge(0);
    w.finish(None, "Failed");
    w.converge(10);
    w.finish(None, "Succeeded");
    w.converge(11);
    assert_eq!((w.status().succeeded, w.status().failed), (1, 1));
    // The controller never deleted them; a user does.
    assert_eq!(w.pods.len(), 3);
    w.pods.retain(|p| p.phase() == "Pending");
    w.converge(12);
    assert_eq!((w.status().succeeded, w.status().failed), (1, 1));
    // Two completions left, not three: the removed success still counts.
    w.job.spec.parallelism = Some(3);
    w.converge(13);
    assert_eq!(w.active().len(), 2);
}

#[test]
fn a_work_queue_completes_when_one_succeeded_and_none_runs() {
    let mut w = World::new(job(json!({"parallelism": 2})));
    assert_eq!(w.job.spec.completions, None);
    w.converge(0);
    assert_eq!(w.active().len(), 2);
    w.finish(None, "Succeeded");
    w.converge(1);
    assert_eq!(w.active().len(), 1, "no new pod once one succeeded");
    assert!(w.conditions().is_empty());
    w.finish(None, "Succeeded");
    w.converge(2);
    assert_eq!(
        w.conditions().last().unwrap(),
        "Complete=True(CompletionsReached)"
    );
}

#[test]
fn lowered_parallelism_deletes_the_surplus() {
    let mut w = World::new(job(
        json!({"parallelism": 3, "completions": 6, "completionMode": "Indexed"}),
    ));
    w.converge(0);
    assert_eq!(w.active().len(), 3);
    w.job.spec.parallelism = Some(1);
    w.converge(1);
    assert_eq!(w.active().len(), 1);
    w.settle();
    w.converge(2);
    assert_eq!(w.active().len(), 1);
}

#[test]
fn refused_pods_are_not_created() {
    let w = World::new(job(json!({})));
    let actions = plan_job(JobInput {
        job: &w.job,
        pods: &w.pods,
        refused: Some("violates PodSecurity \"restricted:latest\""),
        now: t(0),
    });
    assert!(
        actions.iter().all(|a| !matches!(a, Action::CreatePod(_))),
        "{actions:?}"
    );
}
