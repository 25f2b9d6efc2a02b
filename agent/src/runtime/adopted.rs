//! Containers taken over from an earlier agent process ([`super::Runtime::adopt`]).
//!
//! A container's init is a child of the agent that created it; after that
//! agent died (kill -9, crash, upgrade) the init was reparented elsewhere,
//! so a new agent cannot `waitpid` it. It holds a **pidfd** instead: the
//! pidfd refers to exactly that process (never to a later one reusing the
//! pid), becomes readable when it ends, and signals go through it. The exit
//! status itself is gone with the old parent ([`super::ExitStatus::Unknown`]);
//! the OOM counter is still read from the cgroup before delete.

use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open, pidfd_send_signal};

use super::Signal;

/// A pidfd on an adopted container's init.
#[derive(Debug)]
pub struct Adopted {
    pidfd: OwnedFd,
}

impl Adopted {
    /// A pidfd on `pid` if it is still alive and still in the cgroup
    /// `cgroup_path` (e.g. `/bramble/ns_pod_c`), i.e. still the container's
    /// init and not a later process that got the same pid. `None` if it is
    /// gone.
    pub fn open(pid: i32, cgroup_path: &str) -> Option<Adopted> {
        let pidfd = pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
        // Opened first, checked second: if the pid was reused before the
        // open, the new process is in another cgroup and is refused here.
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let ours = cgroups
            .lines()
            .any(|l| l.rsplit_once(':').is_some_and(|(_, p)| p == cgroup_path));
        if !ours {
            return None;
        }
        let adopted = Adopted { pidfd };
        (!adopted.exited()).then_some(adopted)
    }

    /// Whether the process has ended (zombie or reaped).
    pub fn exited(&self) -> bool {
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        matches!(poll(&mut fds, Some(&rustix::event::Timespec::default())), Ok(n) if n > 0)
    }

    /// Sends `signal`; an ended process is not an error.
    pub fn signal(&self, signal: Signal) -> std::io::Result<()> {
        let Some(sig) = rustix::process::Signal::from_named_raw(signal as i32) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("signal {signal} has no rustix equivalent"),
            ));
        };
        match pidfd_send_signal(self.pidfd.as_fd(), sig) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_cgroup() -> String {
        let s = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        s.lines()
            .next()
            .unwrap()
            .splitn(3, ':')
            .nth(2)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_live_process_in_its_cgroup_is_adopted_and_its_end_seen() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let cg = own_cgroup();
        assert!(Adopted::open(pid, "/no/such/cgroup").is_none());
        let a = Adopted::open(pid, &cg).expect("adopted");
        assert!(!a.exited());
        a.signal(Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        assert!(a.exited());
        // Signalling an ended process is fine.
        a.signal(Signal::SIGTERM).unwrap();
        assert!(Adopted::open(pid, &cg).is_none());
    }
}
