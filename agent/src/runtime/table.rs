//! The runtime core's table of containers: one [`Entry`] per container
//! this process manages, by id, and how an entry's init is reaped.
//!
//! The table's lock is held only for bookkeeping and non-blocking
//! syscalls (`waitpid(WNOHANG)`, a pidfd poll), never while a backend
//! runs. Reaping happens under it, so two threads polling one container
//! cannot race for its exit status.
//!
//! An init is watched in one of two ways. One created by this process is
//! its child (the agent is a child subreaper, so an init forked by a helper
//! or a runtime binary is reparented here), and `waitpid` reads its exit.
//! One created by an earlier agent process ([`Adopted`]) is watched through
//! a pidfd, and its exit status is [`ExitStatus::Unknown`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::adopted::Adopted;
use super::cgroup::CgroupFiles;
use super::status::{Refused, Status};
use super::{ExitStatus, Result, RuntimeError};

/// One managed container.
#[derive(Debug)]
pub struct Entry {
    pub status: Status,
    /// Host pid of the init; 0 while [`Status::Creating`].
    pub pid: i32,
    pub cgroup: CgroupFiles,
    /// Set for a container created by an earlier agent process.
    pub adopted: Option<Arc<Adopted>>,
}

/// What it takes to signal an init outside the table's lock.
#[derive(Debug, Clone)]
pub struct Init {
    pub pid: i32,
    pub adopted: Option<Arc<Adopted>>,
}

/// What one look at an init found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// Nothing new: still running, or its exit is already recorded.
    Nothing,
    /// It ended just now; the status is recorded in the entry.
    Exited(ExitStatus),
    /// `waitpid` says it is not a child of this process (`ECHILD`): the
    /// backend has to tell whether it still runs.
    NotOurChild,
}

impl Entry {
    /// A container the backend is creating.
    pub fn creating(cgroup: CgroupFiles) -> Entry {
        Entry {
            status: Status::Creating,
            pid: 0,
            cgroup,
            adopted: None,
        }
    }

    /// The init, if it may still run ([`Status::can_kill`]).
    pub fn init(&self) -> Option<Init> {
        self.status.can_kill().then(|| Init {
            pid: self.pid,
            adopted: self.adopted.clone(),
        })
    }

    /// Reads the init's exit without blocking and records it.
    pub fn reap(&mut self, id: &str) -> Result<Reaped> {
        if !self.status.can_kill() {
            return Ok(Reaped::Nothing);
        }
        let exit = match &self.adopted {
            Some(a) => a.exited().then_some(ExitStatus::Unknown),
            None => match waitpid(Pid::from_raw(self.pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => Some(ExitStatus::Code(code)),
                Ok(WaitStatus::Signaled(_, sig, _)) => Some(ExitStatus::Signal(sig as i32)),
                Ok(_) | Err(Errno::EINTR) => None,
                Err(Errno::ECHILD) => return Ok(Reaped::NotOurChild),
                Err(source) => {
                    return Err(RuntimeError::Sys {
                        id: id.to_string(),
                        op: "waitpid",
                        source,
                    });
                }
            },
        };
        let Some(status) = exit else {
            return Ok(Reaped::Nothing);
        };
        self.status.exited(status).map_err(|r| r.of(id))?;
        Ok(Reaped::Exited(status))
    }
}

/// The containers by id. Cheap to share; a panic while the lock was held
/// leaves plain data, so a poisoned lock is taken over.
#[derive(Debug, Default)]
pub struct Table {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Adds `entry` under `id`; `AlreadyExists` if the id is taken.
    pub fn insert(&self, id: &str, entry: Entry) -> Result<()> {
        let mut map = self.lock();
        if map.contains_key(id) {
            return Err(RuntimeError::AlreadyExists { id: id.to_string() });
        }
        map.insert(id.to_string(), entry);
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Option<Entry> {
        self.lock().remove(id)
    }

    /// Runs `f` on entry `id` under the lock; `NotFound` if there is none,
    /// `WrongState` if `f` refuses.
    pub fn update<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Entry) -> std::result::Result<T, Refused>,
    ) -> Result<T> {
        let mut map = self.lock();
        f(find(&mut map, id)?).map_err(|r| r.of(id))
    }
}

/// Entry `id` of `map`, or `NotFound` (not generic: shared by every
/// [`Table::update`]).
fn find<'a>(map: &'a mut HashMap<String, Entry>, id: &str) -> Result<&'a mut Entry> {
    map.get_mut(id)
        .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() })
}
