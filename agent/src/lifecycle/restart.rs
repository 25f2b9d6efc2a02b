//! `restartPolicy` decisions: what to do when a container exits, and which
//! init container runs next.
//!
//! Init containers run one at a time, in order, each to completion. A failed
//! init container fails the pod under `Never`; under `Always` and `OnFailure`
//! it is retried (with back-off) and the ones after it wait.

use std::fmt;
use std::str::FromStr;

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::OnFailure => "OnFailure",
            Self::Never => "Never",
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RestartPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Always" => Ok(Self::Always),
            "OnFailure" => Ok(Self::OnFailure),
            "Never" => Ok(Self::Never),
            other => Err(format!("unknown restartPolicy {other:?}")),
        }
    }
}

/// Whether a container is an init container or a regular one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    Regular,
}

/// What to do with a container that just exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitDecision {
    /// Start it again once its back-off allows.
    Restart,
    /// Leave it terminated (finished for good).
    LeaveTerminated,
    /// An init container failed for good: the pod is `Failed`.
    FailPod,
}

/// Decides what follows the exit of a container with `exit_code` (a liveness
/// kill is an exit too, usually 137). The kubelet's rules:
///
/// - init container: exit 0 is done; a failure restarts it unless the
///   policy is `Never`, in which case the pod fails;
/// - regular container: `Always` restarts, `OnFailure` restarts on a non-zero
///   exit, `Never` never restarts.
pub fn decide_on_exit(policy: RestartPolicy, kind: ContainerKind, exit_code: i32) -> ExitDecision {
    let failed = exit_code != 0;
    match (kind, policy) {
        (ContainerKind::Init, _) if !failed => ExitDecision::LeaveTerminated,
        (ContainerKind::Init, RestartPolicy::Never) => ExitDecision::FailPod,
        (ContainerKind::Init, _) => ExitDecision::Restart,
        (ContainerKind::Regular, RestartPolicy::Always) => ExitDecision::Restart,
        (ContainerKind::Regular, RestartPolicy::OnFailure) if failed => ExitDecision::Restart,
        (ContainerKind::Regular, _) => ExitDecision::LeaveTerminated,
    }
}

/// What the agent observed of one init container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitObserved {
    /// No instance yet.
    NotStarted,
    /// An instance is running (or being created).
    Running,
    /// The last instance exited with this code.
    Exited(i32),
}

/// The next step for a pod's init containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitStep {
    /// Start init container `i` (its first run).
    Start(usize),
    /// Init container `i` is running: wait for it.
    Wait(usize),
    /// Init container `i` failed and is to be started again after its back-off.
    Retry(usize),
    /// Init container `i` failed under `Never`: the pod is `Failed`.
    FailPod(usize),
    /// All init containers completed: start the regular containers.
    Done,
}

/// Plans the init containers: the first one that has not completed decides.
pub fn next_init_step(policy: RestartPolicy, inits: &[InitObserved]) -> InitStep {
    for (i, obs) in inits.iter().enumerate() {
        match *obs {
            InitObserved::Exited(0) => {}
            InitObserved::NotStarted => return InitStep::Start(i),
            InitObserved::Running => return InitStep::Wait(i),
            InitObserved::Exited(code) => {
                return match decide_on_exit(policy, ContainerKind::Init, code) {
                    ExitDecision::FailPod => InitStep::FailPod(i),
                    _ => InitStep::Retry(i),
                };
            }
        }
    }
    InitStep::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContainerKind::{Init, Regular};
    use ExitDecision::{FailPod, LeaveTerminated, Restart};
    use RestartPolicy::{Always, Never, OnFailure};

    #[test]
    fn parses_and_prints_policies() {
        for p in [Always, OnFailure, Never] {
            assert_eq!(p.as_str().parse::<RestartPolicy>(), Ok(p));
        }
        assert!("always".parse::<RestartPolicy>().is_err());
        assert_eq!(RestartPolicy::default(), Always);
    }

    #[test]
    fn regular_containers_follow_the_policy() {
        let table = [
            (Always, 0, Restart),
            (Always, 1, Restart),
            (OnFailure, 0, LeaveTerminated),
            (OnFailure, 137, Restart),
            (Never, 0, LeaveTerminated),
            (Never, 2, LeaveTerminated),
        ];
        for (policy, code, want) in table {
            assert_eq!(
                decide_on_exit(policy, Regular, code),
                want,
                "{policy} {code}"
            );
        }
    }

    #[test]
    fn init_containers_complete_or_retry_or_fail_the_pod() {
        for policy in [Always, OnFailure, Never] {
            assert_eq!(decide_on_exit(policy, Init, 0), LeaveTerminated);
        }
        assert_eq!(decide_on_exit(Always, Init, 1), Restart);
        assert_eq!(decide_on_exit(OnFailure, Init, 1), Restart);
        assert_eq!(decide_on_exit(Never, Init, 1), FailPod);
    }

    #[test]
    fn init_containers_run_in_order() {
        use InitObserved::{Exited, NotStarted, Running};
        assert_eq!(next_init_step(Always, &[]), InitStep::Done);
        assert_eq!(
            next_init_step(Always, &[NotStarted, NotStarted]),
            InitStep::Start(0)
        );
        assert_eq!(
            next_init_step(Always, &[Running, NotStarted]),
            InitStep::Wait(0)
        );
        assert_eq!(
            next_init_step(Always, &[Exited(0), NotStarted]),
            InitStep::Start(1)
        );
        assert_eq!(
            next_init_step(OnFailure, &[Exited(0), Exited(3)]),
            InitStep::Retry(1)
        );
        assert_eq!(
            next_init_step(Never, &[Exited(0), Exited(3), NotStarted]),
            InitStep::FailPod(1)
        );
        assert_eq!(
            next_init_step(Never, &[Exited(0), Exited(0)]),
            InitStep::Done
        );
    }
}
