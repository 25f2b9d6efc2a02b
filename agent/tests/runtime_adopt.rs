//! A restarted agent's view of the runtime, on both backends with real
//! containers: a second runtime instance on the same state directories
//! (what a new agent process opens) adopts a running container, sees its
//! end through a pidfd (the exit status is gone with the old parent:
//! `ExitStatus::Unknown`), and removes leftovers it does not manage so that
//! no process, state dir, bundle or cgroup remains.

mod common;

use std::time::Duration;

use bramble_agent::runtime::{ContainerHandle, ContainerState, ExitStatus, RuntimeError, Signal};
use common::{Backend, Sandbox, TestRuntime, process_exists};

const WAIT: Option<Duration> = Some(Duration::from_secs(30));

fn assert_gone(rt: &dyn TestRuntime, h: &ContainerHandle) {
    assert!(!rt.state_dir(&h.id).exists(), "state dir left");
    assert!(!rt.bundle_dir(&h.id).exists(), "bundle left");
    assert!(
        rt.cgroup_files(&h.id).unwrap().existing_dirs().is_empty(),
        "cgroup left"
    );
    assert!(!process_exists(h.pid), "process {} left", h.pid);
}

fn a_running_container_is_adopted_and_its_end_seen(backend: Backend) {
    let sb = Sandbox::with_backend("adopt", backend);
    let cfg = sb.config("c", &["sleep", "1000"]);
    let h = sb.run(&cfg);
    let rt2 = sb.fresh_runtime();
    assert_eq!(rt2.list().unwrap(), vec![h.id.clone()]);
    assert_eq!(rt2.adopt(&h).unwrap(), ContainerState::Running);
    assert!(matches!(
        rt2.adopt(&h),
        Err(RuntimeError::AlreadyExists { .. })
    ));
    assert!(matches!(
        rt2.remove_leftover(&h.id),
        Err(RuntimeError::WrongState { .. })
    ));
    assert_eq!(rt2.poll_exit(&h).unwrap(), ContainerState::Running);
    assert!(rt2.stats(&h).unwrap().memory_bytes > 0);
    rt2.kill(&h, Signal::SIGKILL).unwrap();
    assert_eq!(rt2.wait(&h, WAIT).unwrap(), Some(ExitStatus::Unknown));
    let report = rt2.delete(&h).unwrap();
    assert_eq!(report.exit, Some(ExitStatus::Unknown));
    assert!(!report.oom_killed);
    sb.deleted(&h);
    // The first instance (the "old agent", still its parent here) reaps it.
    assert_eq!(
        sb.runtime.poll_exit(&h).unwrap(),
        ContainerState::Exited(ExitStatus::Signal(9))
    );
    assert_gone(rt2.as_ref(), &h);
}

fn a_container_that_ended_meanwhile_is_adopted_as_exited(backend: Backend) {
    let sb = Sandbox::with_backend("adoptend", backend);
    let cfg = sb.config("c", &["true"]);
    let h = sb.run(&cfg);
    assert_eq!(
        sb.runtime.wait(&h, WAIT).unwrap(),
        Some(ExitStatus::Code(0))
    );
    let rt2 = sb.fresh_runtime();
    assert_eq!(
        rt2.adopt(&h).unwrap(),
        ContainerState::Exited(ExitStatus::Unknown)
    );
    rt2.delete(&h).unwrap();
    sb.deleted(&h);
    assert_gone(rt2.as_ref(), &h);
    let missing = ContainerHandle {
        id: sb.id("missing"),
        pid: 1,
    };
    assert!(matches!(
        rt2.adopt(&missing),
        Err(RuntimeError::NotFound { .. })
    ));
}

fn a_leftover_is_killed_and_removed(backend: Backend) {
    let sb = Sandbox::with_backend("leftover", backend);
    let cfg = sb.config("c", &["sh", "-c", "sleep 1000 & sleep 1000"]);
    let h = sb.run(&cfg);
    let rt2 = sb.fresh_runtime();
    rt2.remove_leftover(&h.id).unwrap();
    assert_eq!(
        sb.runtime.wait(&h, WAIT).unwrap(),
        Some(ExitStatus::Signal(9))
    );
    sb.deleted(&h);
    assert_gone(rt2.as_ref(), &h);
    assert!(rt2.list().unwrap().is_empty());
    // Idempotent.
    rt2.remove_leftover(&h.id).unwrap();
}

macro_rules! both {
    ($($name:ident),*) => {
        mod libcontainer {
            $(#[test] fn $name() { super::$name(super::Backend::Libcontainer) })*
        }
        mod runc {
            $(#[test] fn $name() { super::$name(super::Backend::Runc) })*
        }
    };
}

both!(
    a_running_container_is_adopted_and_its_end_seen,
    a_container_that_ended_meanwhile_is_adopted_as_exited,
    a_leftover_is_killed_and_removed
);
