//! A pod container's lifecycle as the pod runner sees it: one [`Life`] per
//! [`PodContainer`](super::PodContainer), changed only by the guarded
//! transitions below. (The runtime keeps its own, finer lifecycle of the
//! instance it runs, `runtime::status`; this one spans instances: a
//! container is created again after each exit it is restarted from.)
//!
//! ```text
//! NotCreated | BackingOff ─created─▶ Live ─terminate─▶ Killing
//! NotCreated | BackingOff ─create_failed─▶ BackingOff
//! Live | Killing ─deleted─▶ Ended ─back_off─▶ BackingOff
//! ```
//!
//! `Live` and `Killing` are in the runtime (`observed` records what a poll
//! saw, `Exited` included until the container is deleted); the others are
//! not. `kill_sent` moves a `Killing` container's SIGKILL time on.
//! [`Life::from_record`] rebuilds the lifecycle of a container an earlier
//! agent process recorded (as flags: deleted, restart pending).
//!
//! The back-off delay itself is the container's
//! [`Backoff`](crate::lifecycle::backoff::Backoff); `BackingOff` says only
//! that a (re-)create waits for it.

use std::time::{Duration, Instant};

use super::error::PodError;
use crate::runtime::{ContainerState, ExitStatus};

/// How long after SIGKILL was sent to a `Killing` container it would be
/// sent again: once is enough (it cannot be ignored; the exit shows up in
/// a later poll), this only keeps the time in the future.
const SIGKILL_AGAIN_AFTER: Duration = Duration::from_secs(3600);

/// Where a pod's container is in its lifecycle (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Never created and no attempt failed: waiting for its turn (an app
    /// container while the init containers run, an init container until
    /// the ones before it completed).
    NotCreated,
    /// In the runtime, `state` as last seen (`Exited` until it is deleted);
    /// the current instance started at `since`.
    Live {
        state: ContainerState,
        since: Instant,
    },
    /// In the runtime after a failed liveness or startup probe: SIGTERM was
    /// sent, SIGKILL is due at `kill_at`.
    Killing {
        state: ContainerState,
        since: Instant,
        kill_at: Instant,
    },
    /// Deleted from the runtime after it ran, no restart scheduled: how it
    /// ended (`None`: deleted before it ran, or its end was never seen); it
    /// had started at `since`.
    Ended {
        exit: Option<ExitStatus>,
        since: Instant,
    },
    /// Not in the runtime, to be created (again) once its back-off delay has
    /// passed: how its last run ended, `None` if it never ran (its first
    /// create failed).
    BackingOff { exit: Option<ExitStatus> },
}

/// A transition the current [`Life`] does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {op} a container that is {life}")]
pub struct Refused {
    /// What was asked (`create`, `terminate`, `delete`, ...).
    pub op: &'static str,
    /// The lifecycle that refused it, as [`Life::describe`] puts it.
    pub life: &'static str,
}

impl Refused {
    /// The [`PodError`] of container `container` of pod `pod`.
    pub fn of(self, pod: &str, container: &str) -> PodError {
        PodError::Container {
            pod: pod.to_string(),
            container: container.to_string(),
            source: Box::new(self.into()),
        }
    }
}

impl Life {
    /// The lifecycle as the end of a [`Refused`] message.
    pub fn describe(self) -> &'static str {
        match self {
            Life::NotCreated => "not created yet",
            Life::Live { .. } => "in the runtime",
            Life::Killing { .. } => "being killed",
            Life::Ended { .. } => "ended",
            Life::BackingOff { .. } => "backing off",
        }
    }

    /// The refusal of `op` in this lifecycle.
    pub fn refuse(self, op: &'static str) -> Refused {
        Refused {
            op,
            life: self.describe(),
        }
    }

    /// The container's state for callers of the pod: what the runtime last
    /// said while it is in it, else its last exit (`Created` if none).
    pub fn state(self) -> ContainerState {
        match self {
            Life::Live { state, .. } | Life::Killing { state, .. } => state,
            Life::Ended { exit, .. } | Life::BackingOff { exit } => {
                exit.map_or(ContainerState::Created, ContainerState::Exited)
            }
            Life::NotCreated => ContainerState::Created,
        }
    }

    /// In the runtime: it can be polled, waited for, probed, signalled and
    /// deleted.
    pub fn in_runtime(self) -> bool {
        match self {
            Life::Live { .. } | Life::Killing { .. } => true,
            Life::NotCreated | Life::Ended { .. } | Life::BackingOff { .. } => false,
        }
    }

    /// Never created, and no attempt pending: waiting for its turn.
    pub fn never_created(self) -> bool {
        match self {
            Life::NotCreated => true,
            Life::Live { .. }
            | Life::Killing { .. }
            | Life::Ended { .. }
            | Life::BackingOff { .. } => false,
        }
    }

    /// A (re-)create waits for the back-off delay.
    pub fn backing_off(self) -> bool {
        match self {
            Life::BackingOff { .. } => true,
            Life::NotCreated | Life::Live { .. } | Life::Killing { .. } | Life::Ended { .. } => {
                false
            }
        }
    }

    /// Only a container waiting for its first create, or for a retry after
    /// its back-off, is created (an ended one backs off first).
    pub fn can_create(self) -> bool {
        match self {
            Life::NotCreated | Life::BackingOff { .. } => true,
            Life::Live { .. } | Life::Killing { .. } | Life::Ended { .. } => false,
        }
    }

    /// When SIGKILL is due, while it is being killed.
    pub fn kill_at(self) -> Option<Instant> {
        match self {
            Life::Killing { kill_at, .. } => Some(kill_at),
            Life::NotCreated | Life::Live { .. } | Life::Ended { .. } | Life::BackingOff { .. } => {
                None
            }
        }
    }

    /// SIGKILL is due at `now`.
    pub fn kill_due(self, now: Instant) -> bool {
        self.kill_at().is_some_and(|t| now >= t)
    }

    /// `NotCreated | BackingOff -> Live`: created and started at `now`.
    pub fn created(&mut self, now: Instant) -> Result<(), Refused> {
        if !self.can_create() {
            return Err(self.refuse("create"));
        }
        *self = Life::Live {
            state: ContainerState::Running,
            since: now,
        };
        Ok(())
    }

    /// `NotCreated | BackingOff -> BackingOff`: creating it failed; it is
    /// tried again after a back-off (a last exit is kept).
    pub fn create_failed(&mut self) -> Result<(), Refused> {
        match *self {
            Life::NotCreated => {
                *self = Life::BackingOff { exit: None };
                Ok(())
            }
            Life::BackingOff { .. } => Ok(()),
            Life::Live { .. } | Life::Killing { .. } | Life::Ended { .. } => {
                Err(self.refuse("fail creating"))
            }
        }
    }

    /// A poll saw `seen`; only a container in the runtime is polled.
    pub fn observed(&mut self, seen: ContainerState) -> Result<(), Refused> {
        match self {
            Life::Live { state, .. } | Life::Killing { state, .. } => {
                *state = seen;
                Ok(())
            }
            Life::NotCreated | Life::Ended { .. } | Life::BackingOff { .. } => {
                Err(self.refuse("observe"))
            }
        }
    }

    /// `Live -> Killing`: SIGTERM (after a failed probe), SIGKILL due at
    /// `kill_at`. Refused while already being killed: the first grace
    /// period holds.
    pub fn terminate(&mut self, kill_at: Instant) -> Result<(), Refused> {
        match *self {
            Life::Live { state, since } => {
                *self = Life::Killing {
                    state,
                    since,
                    kill_at,
                };
                Ok(())
            }
            Life::NotCreated
            | Life::Killing { .. }
            | Life::Ended { .. }
            | Life::BackingOff { .. } => Err(self.refuse("terminate")),
        }
    }

    /// SIGKILL was sent at `now` to a `Killing` container: not again for
    /// [`SIGKILL_AGAIN_AFTER`].
    pub fn kill_sent(&mut self, now: Instant) -> Result<(), Refused> {
        match self {
            Life::Killing { kill_at, .. } => {
                *kill_at = now + SIGKILL_AGAIN_AFTER;
                Ok(())
            }
            Life::NotCreated | Life::Live { .. } | Life::Ended { .. } | Life::BackingOff { .. } => {
                Err(self.refuse("kill"))
            }
        }
    }

    /// `Live | Killing -> Ended`: deleted from the runtime (or found gone
    /// from it), having ended with `exit`; without one, the exit a poll saw
    /// is kept.
    pub fn deleted(&mut self, exit: Option<ExitStatus>) -> Result<(), Refused> {
        match *self {
            Life::Live { state, since } | Life::Killing { state, since, .. } => {
                let seen = match state {
                    ContainerState::Exited(s) => Some(s),
                    ContainerState::Created | ContainerState::Running => None,
                };
                *self = Life::Ended {
                    exit: exit.or(seen),
                    since,
                };
                Ok(())
            }
            Life::NotCreated | Life::Ended { .. } | Life::BackingOff { .. } => {
                Err(self.refuse("delete"))
            }
        }
    }

    /// `Ended -> BackingOff`: to be restarted after a back-off; returns how
    /// long the last instance ran until `now` (a long run resets the
    /// back-off).
    pub fn back_off(&mut self, now: Instant) -> Result<Duration, Refused> {
        match *self {
            Life::Ended { exit, since } => {
                *self = Life::BackingOff { exit };
                Ok(now.saturating_duration_since(since))
            }
            Life::NotCreated
            | Life::Live { .. }
            | Life::Killing { .. }
            | Life::BackingOff { .. } => Err(self.refuse("back off")),
        }
    }

    /// The lifecycle of a container an earlier agent recorded: `deleted`
    /// (not in the runtime), `restart_pending`, whether it was ever
    /// `created`, its last `state`; `now` stands for when its instance
    /// started (the real time died with the old agent), and a pending
    /// kill is forgotten, as its probe history is.
    pub fn from_record(
        deleted: bool,
        restart_pending: bool,
        created: bool,
        state: ContainerState,
        now: Instant,
    ) -> Life {
        let exit = match state {
            ContainerState::Exited(s) => Some(s),
            ContainerState::Created | ContainerState::Running => None,
        };
        match (deleted, restart_pending, created) {
            (false, _, _) => Life::Live { state, since: now },
            (true, true, _) => Life::BackingOff { exit },
            (true, false, true) => Life::Ended { exit, since: now },
            (true, false, false) => Life::NotCreated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE1: ExitStatus = ExitStatus::Code(1);

    fn all(t: Instant) -> [Life; 5] {
        [
            Life::NotCreated,
            Life::Live {
                state: ContainerState::Running,
                since: t,
            },
            Life::Killing {
                state: ContainerState::Running,
                since: t,
                kill_at: t + Duration::from_secs(30),
            },
            Life::Ended {
                exit: Some(CODE1),
                since: t,
            },
            Life::BackingOff { exit: Some(CODE1) },
        ]
    }

    #[test]
    fn a_crashing_container_runs_through_every_step() {
        let t0 = Instant::now();
        let mut life = Life::NotCreated;
        assert_eq!(life.state(), ContainerState::Created);
        life.created(t0).unwrap();
        assert_eq!(life.state(), ContainerState::Running);
        life.observed(ContainerState::Exited(CODE1)).unwrap();
        assert!(life.in_runtime());
        life.deleted(None).unwrap();
        assert_eq!(
            life,
            Life::Ended {
                exit: Some(CODE1),
                since: t0
            },
            "the exit a poll saw is kept"
        );
        let ran_for = life.back_off(t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(ran_for, Duration::from_secs(5));
        assert!(life.backing_off());
        assert_eq!(life.state(), ContainerState::Exited(CODE1));
        let t1 = t0 + Duration::from_secs(20);
        life.created(t1).unwrap();
        assert_eq!(
            life,
            Life::Live {
                state: ContainerState::Running,
                since: t1
            }
        );
    }

    #[test]
    fn a_delete_report_wins_over_the_polled_exit() {
        let t0 = Instant::now();
        let mut life = Life::Live {
            state: ContainerState::Exited(ExitStatus::Unknown),
            since: t0,
        };
        life.deleted(Some(ExitStatus::Signal(9))).unwrap();
        assert_eq!(life.state(), ContainerState::Exited(ExitStatus::Signal(9)));
        let mut created = Life::Live {
            state: ContainerState::Created,
            since: t0,
        };
        created.deleted(None).unwrap();
        assert_eq!(created.state(), ContainerState::Created, "it never ran");
    }

    #[test]
    fn a_failed_create_backs_off_and_keeps_the_last_exit() {
        let mut life = Life::NotCreated;
        life.create_failed().unwrap();
        assert_eq!(life, Life::BackingOff { exit: None });
        assert_eq!(life.state(), ContainerState::Created);
        assert!(!life.never_created(), "a retry is pending");
        let mut again = Life::BackingOff { exit: Some(CODE1) };
        again.create_failed().unwrap();
        assert_eq!(again, Life::BackingOff { exit: Some(CODE1) });
    }

    #[test]
    fn the_guards_split_the_lifecycles() {
        let t = Instant::now();
        for life in all(t) {
            let in_rt = matches!(life, Life::Live { .. } | Life::Killing { .. });
            assert_eq!(life.in_runtime(), in_rt, "{life:?}");
            assert_eq!(
                life.can_create(),
                matches!(life, Life::NotCreated | Life::BackingOff { .. }),
                "{life:?}"
            );
            assert_eq!(life.never_created(), life == Life::NotCreated, "{life:?}");
            assert_eq!(
                life.backing_off(),
                matches!(life, Life::BackingOff { .. }),
                "{life:?}"
            );
            assert_eq!(
                life.kill_at().is_some(),
                matches!(life, Life::Killing { .. }),
                "{life:?}"
            );
        }
    }

    #[test]
    fn each_transition_is_refused_where_the_guards_say() {
        let t = Instant::now();
        for life in all(t) {
            // Each transition on a copy of `life`: allowed?
            let ok = |f: &dyn Fn(&mut Life) -> bool| f(&mut { life });
            let seen = ContainerState::Exited(CODE1);
            let in_rt = life.in_runtime();
            assert_eq!(ok(&|l| l.created(t).is_ok()), life.can_create(), "{life:?}");
            assert_eq!(
                ok(&|l| l.create_failed().is_ok()),
                life.can_create(),
                "{life:?}"
            );
            assert_eq!(ok(&|l| l.observed(seen).is_ok()), in_rt, "{life:?}");
            assert_eq!(ok(&|l| l.deleted(None).is_ok()), in_rt, "{life:?}");
            let live = matches!(life, Life::Live { .. });
            assert_eq!(ok(&|l| l.terminate(t).is_ok()), live, "{life:?}");
            let killing = matches!(life, Life::Killing { .. });
            assert_eq!(ok(&|l| l.kill_sent(t).is_ok()), killing, "{life:?}");
            let ended = matches!(life, Life::Ended { .. });
            assert_eq!(ok(&|l| l.back_off(t).is_ok()), ended, "{life:?}");
            let refused = ok(&|l| l.created(t).err() == Some(l.refuse("create")));
            assert_eq!(
                refused,
                !life.can_create(),
                "{life:?}: the refusal names it"
            );
        }
    }

    #[test]
    fn a_failed_probe_terminates_once_then_kills_once() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(30);
        let mut life = Life::Live {
            state: ContainerState::Running,
            since: t0,
        };
        life.terminate(t0 + grace).unwrap();
        assert!(
            life.terminate(t0 + 2 * grace).is_err(),
            "the first grace period holds"
        );
        assert_eq!(life.kill_at(), Some(t0 + grace));
        assert!(!life.kill_due(t0 + grace - Duration::from_millis(1)));
        assert!(life.kill_due(t0 + grace));
        life.kill_sent(t0 + grace).unwrap();
        assert!(!life.kill_due(t0 + grace + Duration::from_secs(60)));
        life.observed(ContainerState::Exited(ExitStatus::Signal(9)))
            .unwrap();
        assert!(life.kill_at().is_some(), "until it is deleted");
        life.deleted(None).unwrap();
        assert_eq!(life.kill_at(), None);
        assert_eq!(life.state(), ContainerState::Exited(ExitStatus::Signal(9)));
    }

    #[test]
    fn refusals_name_the_container_and_the_lifecycle() {
        let err = Life::NotCreated
            .refuse("delete")
            .of("web", "app")
            .to_string();
        assert_eq!(
            err,
            "pod \"web\": container \"app\": cannot delete a container that is not created yet"
        );
    }

    #[test]
    fn a_recorded_container_gets_its_lifecycle_back() {
        use ContainerState as S;
        let t = Instant::now();
        let exited = S::Exited(CODE1);
        assert_eq!(
            Life::from_record(false, false, true, S::Running, t),
            Life::Live {
                state: S::Running,
                since: t
            }
        );
        assert_eq!(
            Life::from_record(true, true, true, exited, t),
            Life::BackingOff { exit: Some(CODE1) }
        );
        assert_eq!(
            Life::from_record(true, true, false, S::Created, t),
            Life::BackingOff { exit: None }
        );
        assert_eq!(
            Life::from_record(true, false, true, exited, t),
            Life::Ended {
                exit: Some(CODE1),
                since: t
            }
        );
        assert_eq!(
            Life::from_record(true, false, false, S::Created, t),
            Life::NotCreated
        );
        // And back: what `to_record` writes of each.
        for life in all(t) {
            let back = Life::from_record(
                !life.in_runtime(),
                life.backing_off(),
                !life.never_created(),
                life.state(),
                t,
            );
            let forgotten_kill = match life {
                Life::Killing { state, since, .. } => Life::Live { state, since },
                other => other,
            };
            assert_eq!(back, forgotten_kill, "{life:?}");
        }
    }
}
