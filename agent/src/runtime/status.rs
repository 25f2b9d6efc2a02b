//! A container's lifecycle inside the runtime core ([`super::core`]): one
//! [`Status`] per container, changed only by the guarded transitions below.
//!
//! ```text
//! Creating ─created─▶ Created ─begin_start─▶ Starting ─started─▶ Running
//!                        ▲                       │
//!                        └─────start_failed──────┘
//! Created | Starting | Running ─exited(status)─▶ Exited ─begin_delete─▶ Deleting
//! ```
//!
//! A failed create leaves the table instead of reaching `Created`; a
//! `Deleting` container leaves it when its teardown is done. The init can
//! end in any of `Created`, `Starting` and `Running` (a kill before start,
//! a crash while `start` runs): the first exit seen is the one kept, and a
//! `start` finishing late does not revive it.
//!
//! Callers of [`super::Runtime`] see the coarser [`ContainerState`]
//! ([`Status::state`]); the finer steps here exist so that the core never
//! holds its table lock while a backend works, yet two calls cannot both
//! start, or both delete, one container.

use super::{ContainerState, ExitStatus, RuntimeError};

/// Where a container is in its lifecycle (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The id is reserved while the backend creates the container; there is
    /// no init process yet.
    Creating,
    /// The init exists and waits to exec the container's process.
    Created,
    /// The backend is starting it.
    Starting,
    /// Its process runs.
    Running,
    /// The init ended (reaped; for an adopted container, seen to end).
    Exited(ExitStatus),
    /// Being torn down by `delete`; the exit is kept for late questions.
    Deleting(ExitStatus),
}

/// A transition or operation the current [`Status`] does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// What was asked (`start`, `kill`, `exec`, `delete`, ...).
    pub op: &'static str,
    /// The status that refused it, as [`Status::describe`] puts it.
    pub state: &'static str,
}

impl Refused {
    /// The [`RuntimeError::WrongState`] of container `id`.
    pub fn of(self, id: &str) -> RuntimeError {
        RuntimeError::WrongState {
            id: id.to_string(),
            op: self.op,
            state: self.state,
        }
    }
}

impl Status {
    /// The status as the end of a [`RuntimeError::WrongState`] message
    /// ("cannot exec while exited").
    pub fn describe(self) -> &'static str {
        match self {
            Status::Creating => "being created",
            Status::Created => "created but not started",
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Exited(_) => "exited",
            Status::Deleting(_) => "being deleted",
        }
    }

    /// What callers of the runtime see.
    pub fn state(self) -> ContainerState {
        match self {
            Status::Creating | Status::Created | Status::Starting => ContainerState::Created,
            Status::Running => ContainerState::Running,
            Status::Exited(status) | Status::Deleting(status) => ContainerState::Exited(status),
        }
    }

    /// How the init ended, once it has.
    pub fn exit(self) -> Option<ExitStatus> {
        match self {
            Status::Exited(status) | Status::Deleting(status) => Some(status),
            Status::Creating | Status::Created | Status::Starting | Status::Running => None,
        }
    }

    /// Only a created container is started, once.
    pub fn can_start(self) -> bool {
        match self {
            Status::Created => true,
            Status::Creating
            | Status::Starting
            | Status::Running
            | Status::Exited(_)
            | Status::Deleting(_) => false,
        }
    }

    /// The init exists and may still run: it can be signalled, and its exit
    /// is to be watched for.
    pub fn can_kill(self) -> bool {
        match self {
            Status::Created | Status::Starting | Status::Running => true,
            Status::Creating | Status::Exited(_) | Status::Deleting(_) => false,
        }
    }

    /// A process can join the container only while its own runs.
    pub fn can_exec(self) -> bool {
        match self {
            Status::Running => true,
            Status::Creating
            | Status::Created
            | Status::Starting
            | Status::Exited(_)
            | Status::Deleting(_) => false,
        }
    }

    /// The backend's state may be removed only once the init has ended (a
    /// running container is killed first), and by one delete.
    pub fn can_delete(self) -> bool {
        match self {
            Status::Exited(_) => true,
            Status::Creating
            | Status::Created
            | Status::Starting
            | Status::Running
            | Status::Deleting(_) => false,
        }
    }

    /// The refusal of `op` in this status.
    pub fn refuse(self, op: &'static str) -> Refused {
        Refused {
            op,
            state: self.describe(),
        }
    }

    /// `Creating -> Created`: the backend made the init.
    pub fn created(&mut self) -> Result<(), Refused> {
        match self {
            Status::Creating => {
                *self = Status::Created;
                Ok(())
            }
            _ => Err(self.refuse("finish creating")),
        }
    }

    /// `Created -> Starting`, guarded by [`Status::can_start`].
    pub fn begin_start(&mut self) -> Result<(), Refused> {
        if !self.can_start() {
            return Err(self.refuse("start"));
        }
        *self = Status::Starting;
        Ok(())
    }

    /// `Starting -> Running`; an exit seen meanwhile stays.
    pub fn started(&mut self) -> Result<(), Refused> {
        match self {
            Status::Starting => {
                *self = Status::Running;
                Ok(())
            }
            Status::Exited(_) | Status::Deleting(_) => Ok(()),
            Status::Creating | Status::Created | Status::Running => {
                Err(self.refuse("finish starting"))
            }
        }
    }

    /// `Starting -> Created` when the backend could not start it; an exit
    /// seen meanwhile stays.
    pub fn start_failed(&mut self) -> Result<(), Refused> {
        match self {
            Status::Starting => {
                *self = Status::Created;
                Ok(())
            }
            Status::Exited(_) | Status::Deleting(_) => Ok(()),
            Status::Creating | Status::Created | Status::Running => {
                Err(self.refuse("fail starting"))
            }
        }
    }

    /// The init ended with `status`: `Exited` from any status that
    /// [`Status::can_kill`]. An exit already recorded is kept (the first
    /// one seen is the true one).
    pub fn exited(&mut self, status: ExitStatus) -> Result<(), Refused> {
        match self {
            Status::Created | Status::Starting | Status::Running => {
                *self = Status::Exited(status);
                Ok(())
            }
            Status::Exited(_) | Status::Deleting(_) => Ok(()),
            Status::Creating => Err(self.refuse("exit")),
        }
    }

    /// `Exited -> Deleting`, guarded by [`Status::can_delete`]; returns the
    /// exit.
    pub fn begin_delete(&mut self) -> Result<ExitStatus, Refused> {
        match self {
            Status::Exited(status) => {
                let status = *status;
                *self = Status::Deleting(status);
                Ok(status)
            }
            _ => Err(self.refuse("delete")),
        }
    }

    /// The status of a container taken over from an earlier agent: what its
    /// backend recorded (`recorded`), unless its init is gone (`alive`
    /// false), whose exit status nobody can read any more.
    pub fn adopted(recorded: ContainerState, alive: bool) -> Status {
        match (recorded, alive) {
            (_, false) => Status::Exited(ExitStatus::Unknown),
            (ContainerState::Created, true) => Status::Created,
            (ContainerState::Running | ContainerState::Exited(_), true) => Status::Running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE0: ExitStatus = ExitStatus::Code(0);

    fn all() -> [Status; 6] {
        [
            Status::Creating,
            Status::Created,
            Status::Starting,
            Status::Running,
            Status::Exited(CODE0),
            Status::Deleting(CODE0),
        ]
    }

    #[test]
    fn the_usual_life_runs_through_every_step() {
        let mut s = Status::Creating;
        s.created().unwrap();
        assert_eq!(s.state(), ContainerState::Created);
        s.begin_start().unwrap();
        assert_eq!(s.state(), ContainerState::Created);
        s.started().unwrap();
        assert_eq!(s, Status::Running);
        s.exited(ExitStatus::Signal(15)).unwrap();
        assert_eq!(s.state(), ContainerState::Exited(ExitStatus::Signal(15)));
        assert_eq!(s.begin_delete().unwrap(), ExitStatus::Signal(15));
        assert_eq!(s, Status::Deleting(ExitStatus::Signal(15)));
        assert_eq!(s.exit(), Some(ExitStatus::Signal(15)));
    }

    #[test]
    fn only_a_created_container_starts_and_only_once() {
        for s in all() {
            let mut t = s;
            assert_eq!(t.begin_start().is_ok(), s == Status::Created, "{s:?}");
        }
        let mut s = Status::Created;
        s.begin_start().unwrap();
        let err = s.begin_start().unwrap_err();
        assert_eq!(
            (err.op, err.state),
            ("start", "starting"),
            "a second start is refused while the first runs"
        );
    }

    #[test]
    fn a_failed_start_can_be_retried() {
        let mut s = Status::Created;
        s.begin_start().unwrap();
        s.start_failed().unwrap();
        assert_eq!(s, Status::Created);
        assert!(s.can_start());
    }

    #[test]
    fn an_exit_while_starting_is_kept_when_start_returns() {
        for finish in [Status::started, Status::start_failed] {
            let mut s = Status::Created;
            s.begin_start().unwrap();
            s.exited(ExitStatus::Code(2)).unwrap();
            finish(&mut s).unwrap();
            assert_eq!(s, Status::Exited(ExitStatus::Code(2)));
        }
    }

    #[test]
    fn the_first_exit_seen_is_kept() {
        let mut s = Status::Running;
        s.exited(ExitStatus::Code(1)).unwrap();
        s.exited(ExitStatus::Unknown).unwrap();
        assert_eq!(s, Status::Exited(ExitStatus::Code(1)));
        assert!(Status::Creating.clone().exited(CODE0).is_err());
    }

    #[test]
    fn the_guards_split_the_statuses() {
        for s in all() {
            let live = matches!(s, Status::Created | Status::Starting | Status::Running);
            assert_eq!(s.can_kill(), live, "{s:?}");
            assert_eq!(s.exit().is_none(), live || s == Status::Creating, "{s:?}");
            assert_eq!(s.can_exec(), s == Status::Running, "{s:?}");
            assert_eq!(s.can_delete(), s == Status::Exited(CODE0), "{s:?}");
        }
    }

    #[test]
    fn only_an_exited_container_is_deleted_and_only_once() {
        for s in all() {
            let mut t = s;
            assert_eq!(t.begin_delete().is_ok(), s.can_delete(), "{s:?}");
        }
        let mut s = Status::Exited(CODE0);
        s.begin_delete().unwrap();
        assert_eq!(s.begin_delete().unwrap_err().state, "being deleted");
    }

    #[test]
    fn only_a_creating_container_becomes_created() {
        for s in all() {
            let mut t = s;
            assert_eq!(t.created().is_ok(), s == Status::Creating, "{s:?}");
        }
    }

    #[test]
    fn refusals_name_the_container_and_the_status() {
        let err = Status::Exited(CODE0).refuse("exec").of("pod_c").to_string();
        assert_eq!(err, "container \"pod_c\": cannot exec while exited");
    }

    #[test]
    fn an_adopted_container_is_what_its_backend_recorded_while_it_lives() {
        use ContainerState as S;
        assert_eq!(Status::adopted(S::Created, true), Status::Created);
        assert_eq!(Status::adopted(S::Running, true), Status::Running);
        assert_eq!(
            Status::adopted(S::Exited(ExitStatus::Unknown), true),
            Status::Running
        );
        for recorded in [S::Created, S::Running] {
            assert_eq!(
                Status::adopted(recorded, false),
                Status::Exited(ExitStatus::Unknown)
            );
        }
    }
}
