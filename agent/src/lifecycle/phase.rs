//! Pod phase and conditions from container states, following the kubelet's
//! `getPhase` and its `Generate*Condition` functions (no sidecar init
//! containers, no readiness gates).

use std::fmt;
use std::time::SystemTime;

use bramble_api::objects::PodSpec;
use bramble_api::objects::common::Condition;

use super::restart::RestartPolicy;
use super::state::{ContainerRecord, State, rfc3339};

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl PodPhase {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }

    /// `Succeeded` or `Failed`.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

impl fmt::Display for PodPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container of the spec and what is known of it (`None`: no status yet).
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub name: &'a str,
    pub record: Option<&'a ContainerRecord>,
}

/// A pod as the agent sees it: its policy and its containers' records in
/// spec order.
#[derive(Debug, Clone)]
pub struct PodObserved<'a> {
    pub restart_policy: RestartPolicy,
    pub init_containers: Vec<Observed<'a>>,
    pub containers: Vec<Observed<'a>>,
    /// The agent decided the pod is finished (deleted or failed for good):
    /// containers will not be restarted whatever the policy.
    pub terminal: bool,
}

impl<'a> PodObserved<'a> {
    /// Pairs the containers of `spec` with `records` by name.
    pub fn from_spec(spec: &'a PodSpec, records: &'a [ContainerRecord]) -> Self {
        let pair = |c: &'a bramble_api::objects::container::Container| Observed {
            name: c.name.as_str(),
            record: records.iter().find(|r| r.name == c.name),
        };
        Self {
            restart_policy: spec.restart_policy().parse().unwrap_or_default(),
            init_containers: spec.init_containers.iter().map(pair).collect(),
            containers: spec.containers.iter().map(pair).collect(),
            terminal: false,
        }
    }

    fn any_regular_started(&self) -> bool {
        self.containers.iter().any(|c| {
            c.record
                .is_some_and(|r| matches!(r.state, State::Running { .. } | State::Terminated(_)))
        })
    }

    /// The kubelet's `getPhase`.
    pub fn phase(&self) -> PodPhase {
        let mut pending_init = 0;
        let mut failed_init = 0;
        for c in &self.init_containers {
            let Some(r) = c.record else {
                pending_init += 1;
                continue;
            };
            match &r.state {
                State::Running { .. } => pending_init += 1,
                State::Terminated(t) => failed_init += usize::from(!t.succeeded()),
                State::Waiting { .. } => match &r.last_termination {
                    Some(t) => failed_init += usize::from(!t.succeeded()),
                    None => pending_init += 1,
                },
            }
        }

        let (mut unknown, mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
        for c in &self.containers {
            let Some(r) = c.record else {
                unknown += 1;
                continue;
            };
            match &r.state {
                State::Running { .. } => running += 1,
                State::Terminated(t) => {
                    stopped += 1;
                    succeeded += usize::from(t.succeeded());
                }
                State::Waiting { .. } if r.last_termination.is_some() => stopped += 1,
                State::Waiting { .. } => waiting += 1,
            }
        }

        if failed_init > 0 && self.restart_policy == RestartPolicy::Never {
            return PodPhase::Failed;
        }
        if (pending_init > 0 && !self.any_regular_started()) || waiting > 0 {
            return PodPhase::Pending;
        }
        if running > 0 && unknown == 0 {
            return PodPhase::Running;
        }
        if running == 0 && stopped > 0 && unknown == 0 {
            if self.terminal {
                return if stopped == succeeded {
                    PodPhase::Succeeded
                } else {
                    PodPhase::Failed
                };
            }
            return match self.restart_policy {
                RestartPolicy::Always => PodPhase::Running,
                _ if stopped == succeeded => PodPhase::Succeeded,
                RestartPolicy::Never => PodPhase::Failed,
                RestartPolicy::OnFailure => PodPhase::Running,
            };
        }
        PodPhase::Pending
    }

    /// `Initialized`, `Ready`, `ContainersReady` and `PodScheduled` for
    /// `phase`. A condition whose status is unchanged from `previous` keeps
    /// its `lastTransitionTime`; a changed one gets `now`.
    pub fn conditions(
        &self,
        phase: PodPhase,
        previous: &[Condition],
        now: SystemTime,
    ) -> Vec<Condition> {
        let containers_ready = self.containers_ready(phase);
        let mut ready = containers_ready.clone();
        ready.type_ = "Ready".into();
        let mut out = vec![
            self.initialized(phase),
            ready,
            containers_ready,
            cond("PodScheduled", true, None, None),
        ];
        let stamp = rfc3339(now);
        for c in &mut out {
            let kept = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == c.status)
                .and_then(|p| p.last_transition_time.clone());
            c.last_transition_time = Some(kept.unwrap_or_else(|| stamp.clone()));
        }
        out
    }

    fn initialized(&self, phase: PodPhase) -> Condition {
        if self.init_containers.is_empty() {
            return cond("Initialized", true, None, None);
        }
        let mut unknown = Vec::new();
        let mut incomplete = Vec::new();
        for c in &self.init_containers {
            match c.record {
                None => unknown.push(c.name),
                Some(r) if r.state.terminated().is_none_or(|t| !t.succeeded()) => {
                    incomplete.push(c.name);
                }
                Some(_) => {}
            }
        }
        if phase == PodPhase::Succeeded && unknown.is_empty() {
            return cond("Initialized", true, Some("PodCompleted"), None);
        }
        if self.any_regular_started() {
            return cond("Initialized", true, None, None);
        }
        let msg = messages(&[("unknown", &unknown), ("incomplete", &incomplete)]);
        if msg.is_empty() {
            cond("Initialized", true, None, None)
        } else {
            cond(
                "Initialized",
                false,
                Some("ContainersNotInitialized"),
                Some(msg),
            )
        }
    }

    fn containers_ready(&self, phase: PodPhase) -> Condition {
        let mut unknown = Vec::new();
        let mut unready = Vec::new();
        for c in &self.containers {
            match c.record {
                None => unknown.push(c.name),
                Some(r) if !r.ready => unready.push(c.name),
                Some(_) => {}
            }
        }
        if phase == PodPhase::Succeeded && unknown.is_empty() {
            return cond("ContainersReady", false, Some("PodCompleted"), None);
        }
        if phase == PodPhase::Failed {
            return cond("ContainersReady", false, Some("PodFailed"), None);
        }
        let msg = messages(&[("unknown", &unknown), ("unready", &unready)]);
        if msg.is_empty() {
            cond("ContainersReady", true, None, None)
        } else {
            cond(
                "ContainersReady",
                false,
                Some("ContainersNotReady"),
                Some(msg),
            )
        }
    }
}

/// `containers with unready status: [a b]`, joined with `, ` (Go's `%s` of a
/// string slice).
fn messages(parts: &[(&str, &Vec<&str>)]) -> String {
    parts
        .iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(what, names)| format!("containers with {what} status: [{}]", names.join(" ")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cond(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(str::to_owned),
        message,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::state::{Terminated, WaitingReason};
    use std::time::Duration;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_557_600 + s)
    }
    fn running(name: &str) -> ContainerRecord {
        let mut r = ContainerRecord::new(name, "img");
        r.set_running(format!("bramble://{name}"), t(0));
        r
    }
    fn exited(name: &str, code: i32) -> ContainerRecord {
        let mut r = running(name);
        r.set_terminated(Terminated::from_exit(Some(code), None, false, t(0), t(1)));
        r
    }
    fn backing_off(name: &str, code: i32) -> ContainerRecord {
        let mut r = exited(name, code);
        r.set_waiting(WaitingReason::CrashLoopBackOff, None);
        r
    }
    fn creating(name: &str) -> ContainerRecord {
        ContainerRecord::new(name, "img")
    }
    fn pod<'a>(
        policy: RestartPolicy,
        init: &'a [ContainerRecord],
        regular: &'a [ContainerRecord],
    ) -> PodObserved<'a> {
        let obs = |r: &'a ContainerRecord| Observed {
            name: &r.name,
            record: Some(r),
        };
        PodObserved {
            restart_policy: policy,
            init_containers: init.iter().map(obs).collect(),
            containers: regular.iter().map(obs).collect(),
            terminal: false,
        }
    }
    use RestartPolicy::{Always, Never, OnFailure};

    #[test]
    fn pending_while_creating_or_initializing() {
        assert_eq!(
            pod(Always, &[], &[creating("a")]).phase(),
            PodPhase::Pending
        );
        assert_eq!(
            pod(Always, &[running("init")], &[creating("a")]).phase(),
            PodPhase::Pending
        );
        // A failing init container under OnFailure is retried: still Pending.
        assert_eq!(
            pod(OnFailure, &[backing_off("init", 1)], &[creating("a")]).phase(),
            PodPhase::Pending
        );
        // A container with no status at all.
        let mut p = pod(Always, &[], &[]);
        p.containers.push(Observed {
            name: "x",
            record: None,
        });
        assert_eq!(p.phase(), PodPhase::Pending);
        // One running, one still waiting for its first start.
        assert_eq!(
            pod(Always, &[], &[running("a"), creating("b")]).phase(),
            PodPhase::Pending
        );
    }

    #[test]
    fn running_when_one_runs_or_restarts() {
        assert_eq!(
            pod(Never, &[exited("i", 0)], &[running("a")]).phase(),
            PodPhase::Running
        );
        assert_eq!(
            pod(Never, &[], &[running("a"), exited("b", 1)]).phase(),
            PodPhase::Running
        );
        // In CrashLoopBackOff: restarting, so Running.
        assert_eq!(
            pod(Always, &[], &[backing_off("a", 1)]).phase(),
            PodPhase::Running
        );
        // Always restarts even a completed container.
        assert_eq!(
            pod(Always, &[], &[exited("a", 0)]).phase(),
            PodPhase::Running
        );
        // OnFailure with a failure is restarting.
        assert_eq!(
            pod(OnFailure, &[], &[exited("a", 0), exited("b", 2)]).phase(),
            PodPhase::Running
        );
    }

    #[test]
    fn succeeded_and_failed() {
        for policy in [OnFailure, Never] {
            assert_eq!(
                pod(policy, &[], &[exited("a", 0), exited("b", 0)]).phase(),
                PodPhase::Succeeded
            );
        }
        assert_eq!(
            pod(Never, &[], &[exited("a", 0), exited("b", 1)]).phase(),
            PodPhase::Failed
        );
        // A failed init container under Never fails the pod at once.
        assert_eq!(
            pod(Never, &[exited("init", 1)], &[creating("a")]).phase(),
            PodPhase::Failed
        );
        // A terminal pod ends by its exit codes whatever the policy.
        let done = [exited("a", 0)];
        let mut p = pod(Always, &[], &done);
        p.terminal = true;
        assert_eq!(p.phase(), PodPhase::Succeeded);
        let one_failed = [exited("a", 0), exited("b", 143)];
        let mut p = pod(Always, &[], &one_failed);
        p.terminal = true;
        assert_eq!(p.phase(), PodPhase::Failed);
    }

    #[test]
    fn conditions_while_initializing() {
        let init = [exited("one", 0), running("two")];
        let regular = [creating("app")];
        let p = pod(Always, &init, &regular);
        let phase = p.phase();
        let c = p.conditions(phase, &[], t(5));
        let types: Vec<&str> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
        );
        assert_eq!(c[0].status, "False");
        assert_eq!(c[0].reason.as_deref(), Some("ContainersNotInitialized"));
        assert_eq!(
            c[0].message.as_deref(),
            Some("containers with incomplete status: [two]")
        );
        assert_eq!(c[1].status, "False");
        assert_eq!(c[1].reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            c[1].message.as_deref(),
            Some("containers with unready status: [app]")
        );
        assert_eq!(c[3].status, "True");
        assert_eq!(
            c[0].last_transition_time.as_deref(),
            Some("2024-05-01T10:00:05Z")
        );
    }

    #[test]
    fn init_container_in_back_off_keeps_the_pod_pending_and_not_initialized() {
        // As the agent reports a pod whose init container is being retried:
        // the app containers wait with `PodInitializing`.
        let mut app = creating("app");
        app.set_waiting(WaitingReason::PodInitializing, None);
        let regular = [app];
        let init = [exited("one", 0), backing_off("two", 1)];
        for policy in [Always, OnFailure] {
            let p = pod(policy, &init, &regular);
            assert_eq!(p.phase(), PodPhase::Pending);
            let c = p.conditions(p.phase(), &[], t(0));
            assert_eq!(
                (c[0].status.as_str(), c[0].reason.as_deref()),
                ("False", Some("ContainersNotInitialized"))
            );
            assert_eq!(
                c[0].message.as_deref(),
                Some("containers with incomplete status: [two]")
            );
        }
        // The same failure under Never: Failed, never initialized.
        let init = [exited("one", 0), exited("two", 1)];
        let p = pod(Never, &init, &regular);
        assert_eq!(p.phase(), PodPhase::Failed);
        assert_eq!(p.conditions(p.phase(), &[], t(0))[0].status, "False");
    }

    #[test]
    fn ready_when_all_containers_ready_and_transition_time_is_kept() {
        let mut a = running("a");
        a.ready = true;
        let mut b = running("b");
        b.ready = true;
        let regular = [a, b];
        let p = pod(Always, &[], &regular);
        let first = p.conditions(p.phase(), &[], t(10));
        assert!(first.iter().all(|c| c.status == "True"), "{first:?}");
        let again = p.conditions(p.phase(), &first, t(20));
        assert_eq!(
            again[1].last_transition_time.as_deref(),
            Some("2024-05-01T10:00:10Z")
        );

        let mut regular = regular;
        regular[1].ready = false;
        let p = pod(Always, &[], &regular);
        let later = p.conditions(p.phase(), &first, t(30));
        assert_eq!(later[1].status, "False");
        assert_eq!(
            later[1].last_transition_time.as_deref(),
            Some("2024-05-01T10:00:30Z")
        );
        assert_eq!(
            later[0].last_transition_time.as_deref(),
            Some("2024-05-01T10:00:10Z")
        );
    }

    #[test]
    fn completed_and_failed_pods_are_not_ready() {
        let init = [exited("i", 0)];
        let regular = [exited("a", 0)];
        let p = pod(Never, &init, &regular);
        assert_eq!(p.phase(), PodPhase::Succeeded);
        let c = p.conditions(PodPhase::Succeeded, &[], t(0));
        assert_eq!(
            (c[0].status.as_str(), c[0].reason.as_deref()),
            ("True", Some("PodCompleted"))
        );
        assert_eq!(
            (c[1].status.as_str(), c[1].reason.as_deref()),
            ("False", Some("PodCompleted"))
        );
        let regular = [exited("a", 1)];
        let p = pod(Never, &[], &regular);
        let c = p.conditions(p.phase(), &[], t(0));
        assert_eq!(c[2].reason.as_deref(), Some("PodFailed"));
    }

    #[test]
    fn from_spec_pairs_records_by_name() {
        let spec: PodSpec = serde_json::from_value(serde_json::json!({
            "restartPolicy": "OnFailure",
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]
        }))
        .unwrap();
        let records = [exited("init", 0), exited("b", 0), exited("a", 0)];
        let p = PodObserved::from_spec(&spec, &records);
        assert_eq!(p.restart_policy, OnFailure);
        assert_eq!(p.containers[1].record.unwrap().name, "b");
        assert_eq!(p.phase(), PodPhase::Succeeded);
        let none: [ContainerRecord; 0] = [];
        let p = PodObserved::from_spec(&spec, &none);
        assert_eq!(p.phase(), PodPhase::Pending);
        let c = p.conditions(PodPhase::Pending, &[], t(0));
        assert_eq!(
            c[0].message.as_deref(),
            Some("containers with unknown status: [init]")
        );
        assert_eq!(
            c[2].message.as_deref(),
            Some("containers with unknown status: [a b]")
        );
    }
}
