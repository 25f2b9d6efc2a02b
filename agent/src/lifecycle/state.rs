//! Container state as Kubernetes reports it (`waiting` / `running` /
//! `terminated`), the restart count and the last termination, and the
//! conversion into `status.containerStatuses[]`.
//!
//! Wall-clock times ([`SystemTime`]) are kept here because they are reported;
//! scheduling decisions use [`std::time::Instant`] elsewhere.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use bramble_api::objects::pod_status::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus,
};

/// Why a container is not running yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitingReason {
    /// Being created (image unpacking, rootfs, runtime create).
    ContainerCreating,
    /// Crashed and waiting for its back-off delay.
    CrashLoopBackOff,
    /// The last image pull failed.
    ErrImagePull,
    /// Waiting before retrying an image pull.
    ImagePullBackOff,
    /// The runtime refused to create the container.
    CreateContainerError,
    /// A regular container waiting for the init containers.
    PodInitializing,
}

impl WaitingReason {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContainerCreating => "ContainerCreating",
            Self::CrashLoopBackOff => "CrashLoopBackOff",
            Self::ErrImagePull => "ErrImagePull",
            Self::ImagePullBackOff => "ImagePullBackOff",
            Self::CreateContainerError => "CreateContainerError",
            Self::PodInitializing => "PodInitializing",
        }
    }
}

impl fmt::Display for WaitingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum TerminatedReason {
    /// Exit code 0.
    Completed,
    /// Non-zero exit code or killed by a signal.
    Error,
    /// Killed by the kernel's OOM killer (seen in the cgroup's `memory.events`).
    OOMKilled,
    /// Created but the process could not be started (bad command, ...).
    ContainerCannotRun,
    /// It ended while no agent watched it (the agent was down), so its exit
    /// status is lost; reported with exit code 137 as the kubelet does.
    ContainerStatusUnknown,
}

impl TerminatedReason {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "Completed",
            Self::Error => "Error",
            Self::OOMKilled => "OOMKilled",
            Self::ContainerCannotRun => "ContainerCannotRun",
            Self::ContainerStatusUnknown => "ContainerStatusUnknown",
        }
    }
}

impl fmt::Display for TerminatedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finished container instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terminated {
    /// The exit code; `128 + signal` when killed by a signal.
    pub exit_code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    pub reason: TerminatedReason,
    /// `None` when it never started (`ContainerCannotRun`).
    pub started_at: Option<SystemTime>,
    pub finished_at: SystemTime,
    /// The termination message, if any.
    pub message: Option<String>,
}

impl Terminated {
    /// Classifies how a process ended: killed by `signal` (exit code
    /// `128 + signal`) or exited with `code`; `oom_killed` comes from the
    /// cgroup and wins over everything else. Neither code nor signal means
    /// the exit status was lost (`ContainerStatusUnknown`, exit code 137).
    pub fn from_exit(
        code: Option<i32>,
        signal: Option<i32>,
        oom_killed: bool,
        started_at: SystemTime,
        finished_at: SystemTime,
    ) -> Self {
        let exit_code = match (code, signal) {
            (_, Some(sig)) => 128 + sig,
            (Some(c), None) => c,
            (None, None) => 137,
        };
        let reason = if oom_killed {
            TerminatedReason::OOMKilled
        } else if code.is_none() && signal.is_none() {
            TerminatedReason::ContainerStatusUnknown
        } else if exit_code == 0 {
            TerminatedReason::Completed
        } else {
            TerminatedReason::Error
        };
        let message = (reason == TerminatedReason::ContainerStatusUnknown).then(|| {
            "the container ended while the agent was not running; its exit status is unknown"
                .to_string()
        });
        Self {
            exit_code,
            signal,
            reason,
            started_at: Some(started_at),
            finished_at,
            message,
        }
    }

    /// A container whose process could not be started (exit code 128, as
    /// container runtimes report it).
    pub fn cannot_run(at: SystemTime, message: impl Into<String>) -> Self {
        Self {
            exit_code: 128,
            signal: None,
            reason: TerminatedReason::ContainerCannotRun,
            started_at: None,
            finished_at: at,
            message: Some(message.into()),
        }
    }

    /// Whether it ended with exit code 0.
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0
    }

    /// The API shape.
    pub fn to_api(&self, container_id: Option<&str>) -> ContainerStateTerminated {
        ContainerStateTerminated {
            exit_code: self.exit_code,
            signal: self.signal,
            reason: Some(self.reason.as_str().to_owned()),
            message: self.message.clone(),
            started_at: self.started_at.map(rfc3339),
            finished_at: Some(rfc3339(self.finished_at)),
            container_id: container_id.map(str::to_owned),
        }
    }
}

/// The current state of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Waiting {
        reason: WaitingReason,
        message: Option<String>,
    },
    Running {
        started_at: SystemTime,
    },
    Terminated(Terminated),
}

impl State {
    /// `Waiting` with no message.
    pub fn waiting(reason: WaitingReason) -> Self {
        Self::Waiting {
            reason,
            message: None,
        }
    }

    /// Whether it is `Running`.
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running { .. })
    }

    /// The termination, if it is `Terminated`.
    pub fn terminated(&self) -> Option<&Terminated> {
        match self {
            Self::Terminated(t) => Some(t),
            _ => None,
        }
    }

    /// The API shape.
    pub fn to_api(&self, container_id: Option<&str>) -> ContainerState {
        match self {
            Self::Waiting { reason, message } => ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.as_str().to_owned()),
                    message: message.clone(),
                }),
                ..Default::default()
            },
            Self::Running { started_at } => ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(rfc3339(*started_at)),
                }),
                ..Default::default()
            },
            Self::Terminated(t) => ContainerState {
                terminated: Some(t.to_api(container_id)),
                ..Default::default()
            },
        }
    }
}

/// Everything the agent tracks about one container of a pod, across its
/// restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub name: String,
    pub image: String,
    /// `sha256:...` of the image config, once known.
    pub image_id: String,
    /// `bramble://<id>` of the current instance, once created.
    pub container_id: Option<String>,
    pub state: State,
    /// The previous instance's termination.
    pub last_termination: Option<Terminated>,
    pub restart_count: u32,
    /// Readiness (probe verdict and running).
    pub ready: bool,
    /// Startup-probe verdict (`true` when there is no startup probe and it runs).
    pub started: bool,
    /// Whether any instance was ever started (the next start is a restart).
    ever_started: bool,
}

impl ContainerRecord {
    /// A container about to be created.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            image_id: String::new(),
            container_id: None,
            state: State::waiting(WaitingReason::ContainerCreating),
            last_termination: None,
            restart_count: 0,
            ready: false,
            started: false,
            ever_started: false,
        }
    }

    /// Moves a current termination into `last_termination` (a new instance is
    /// about to replace it).
    fn retire_termination(&mut self) {
        if let State::Terminated(t) = &self.state {
            self.last_termination = Some(t.clone());
        }
    }

    /// Sets `Waiting` (`ContainerCreating`, `CrashLoopBackOff`, ...). A current
    /// termination becomes the last termination.
    pub fn set_waiting(&mut self, reason: WaitingReason, message: Option<String>) {
        self.retire_termination();
        self.state = State::Waiting { reason, message };
        self.ready = false;
    }

    /// A new instance started: `Running`, and the restart count grows if an
    /// instance ran before.
    pub fn set_running(&mut self, container_id: impl Into<String>, started_at: SystemTime) {
        self.retire_termination();
        if self.ever_started {
            self.restart_count += 1;
        }
        self.ever_started = true;
        self.container_id = Some(container_id.into());
        self.state = State::Running { started_at };
        self.ready = false;
        self.started = false;
    }

    /// The current instance ended. A container that never started
    /// (`ContainerCannotRun`) still counts as a run for the restart count.
    pub fn set_terminated(&mut self, t: Terminated) {
        self.retire_termination();
        self.ever_started = true;
        self.state = State::Terminated(t);
        self.ready = false;
        self.started = false;
    }

    /// `status.containerStatuses[]` / `initContainerStatuses[]` entry.
    pub fn to_status(&self) -> ContainerStatus {
        let id = self.container_id.as_deref();
        ContainerStatus {
            name: self.name.clone(),
            state: Some(self.state.to_api(id)),
            last_state: Some(self.last_termination.as_ref().map_or_else(
                ContainerState::default,
                |t| ContainerState {
                    terminated: Some(t.to_api(None)),
                    ..Default::default()
                },
            )),
            ready: self.ready,
            restart_count: i32::try_from(self.restart_count).unwrap_or(i32::MAX),
            image: self.image.clone(),
            image_id: self.image_id.clone(),
            container_id: self.container_id.clone(),
            started: Some(self.state.is_running() && self.started),
        }
    }
}

/// RFC 3339 with second precision, as Kubernetes reports times.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        // 2024-05-01T10:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_557_600 + secs)
    }

    #[test]
    fn exit_classification() {
        let t = Terminated::from_exit(Some(0), None, false, at(0), at(5));
        assert_eq!((t.exit_code, t.reason), (0, TerminatedReason::Completed));
        let t = Terminated::from_exit(Some(3), None, false, at(0), at(5));
        assert_eq!((t.exit_code, t.reason), (3, TerminatedReason::Error));
        let t = Terminated::from_exit(None, Some(9), true, at(0), at(5));
        assert_eq!(
            (t.exit_code, t.signal, t.reason),
            (137, Some(9), TerminatedReason::OOMKilled)
        );
        let t = Terminated::from_exit(None, Some(15), false, at(0), at(5));
        assert_eq!((t.exit_code, t.reason), (143, TerminatedReason::Error));
        let t = Terminated::cannot_run(at(1), "exec: \"nope\": not found");
        assert_eq!((t.exit_code, t.started_at), (128, None));
        assert_eq!(t.reason.as_str(), "ContainerCannotRun");
    }

    #[test]
    fn waiting_container_status_json() {
        let r = ContainerRecord::new("web", "nginx:1.27");
        let v = serde_json::to_value(r.to_status()).unwrap();
        assert_eq!(
            v,
            json!({
                "name": "web", "image": "nginx:1.27", "imageID": "", "ready": false,
                "restartCount": 0, "started": false,
                "state": {"waiting": {"reason": "ContainerCreating"}},
                "lastState": {}
            })
        );
    }

    #[test]
    fn crash_and_restart_moves_termination_to_last_state() {
        let mut r = ContainerRecord::new("app", "busybox");
        r.image_id = "sha256:aa".into();
        r.set_running("bramble://one", at(0));
        r.started = true;
        r.ready = true;
        let v = serde_json::to_value(r.to_status()).unwrap();
        assert_eq!(
            v["state"],
            json!({"running": {"startedAt": "2024-05-01T10:00:00Z"}})
        );
        assert_eq!(
            (v["ready"].clone(), v["started"].clone()),
            (json!(true), json!(true))
        );

        r.set_terminated(Terminated::from_exit(None, Some(9), true, at(0), at(30)));
        assert!(!r.ready);
        r.set_waiting(
            WaitingReason::CrashLoopBackOff,
            Some("back-off 10s restarting failed container=app".into()),
        );
        let v = serde_json::to_value(r.to_status()).unwrap();
        assert_eq!(v["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(
            v["lastState"],
            json!({"terminated": {"exitCode": 137, "signal": 9, "reason": "OOMKilled",
                "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:00:30Z"}})
        );
        assert_eq!(v["restartCount"], 0);

        r.set_running("bramble://two", at(40));
        let s = r.to_status();
        assert_eq!(s.restart_count, 1);
        assert_eq!(s.container_id.as_deref(), Some("bramble://two"));
        assert_eq!(
            s.last_state.unwrap().terminated.unwrap().reason.as_deref(),
            Some("OOMKilled")
        );
    }

    #[test]
    fn terminated_state_carries_container_id_and_round_trips() {
        let mut r = ContainerRecord::new("job", "busybox");
        r.set_running("bramble://j1", at(0));
        r.set_terminated(Terminated::from_exit(Some(0), None, false, at(0), at(2)));
        let s = r.to_status();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["state"],
            json!({"terminated": {"exitCode": 0, "reason": "Completed",
                "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:00:02Z",
                "containerID": "bramble://j1"}})
        );
        let back: ContainerStatus = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        // A terminated container starting again counts a restart.
        r.set_running("bramble://j2", at(3));
        assert_eq!(r.restart_count, 1);
    }
}
