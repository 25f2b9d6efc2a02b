//! Supervising a running pod: [`RunningPod::tick`] is one step the agent loop
//! calls periodically (no threads of its own besides a short-lived one per
//! network probe, see [`super::probes`]).
//!
//! - **Exits.** An exited app container is deleted at once (the runtime's
//!   delete report says whether it was OOM-killed), its termination recorded
//!   (exit code, signal, reason `Completed`/`Error`/`OOMKilled`), and
//!   `decide_on_exit` applied with the pod's `restartPolicy`.
//! - **Restarts.** A container to restart goes to `Waiting{CrashLoopBackOff}`
//!   for its [`Backoff`](crate::lifecycle::backoff::Backoff) delay (doubling
//!   per consecutive crash, from [`super::PodOptions::backoff`]); once the
//!   delay has passed it is re-created under the **same container id** (the
//!   old one was deleted) on a **fresh overlay rootfs** (the old upper dir
//!   is removed, like a new container in Kubernetes, see [`super::launch`]),
//!   and `restartCount` goes up.
//! - **Probes** run when due ([`super::probes`]); after a failed liveness or
//!   startup probe, SIGKILL follows SIGTERM once the grace period is over.
//! - **Init containers** run one at a time, in spec order, driven by
//!   `next_init_step` (`lifecycle::restart`): one that exited 0 is deleted
//!   (its `Completed` termination stays in its record) and the next one is
//!   launched in the same tick, after the last one the app containers. A
//!   failed one fails the pod under `restartPolicy: Never` (the app
//!   containers are never created); under `Always`/`OnFailure` it is
//!   re-created after its back-off (CrashLoopBackOff, fresh rootfs,
//!   `restartCount` + 1), as the kubelet does. Nothing here waits for a
//!   container: a tick polls, so one slow init container never blocks the
//!   agent loop. The position in the sequence is not stored: it follows
//!   from the containers' records, so an adopted pod carries on where the
//!   old agent left it. Once an app container was created, init
//!   containers are not looked at again.

use std::time::{Duration, Instant, SystemTime};

use super::error::PodError;
use super::life::Refused;
use super::run::{PodContainer, RunningPod, exit_parts};
use crate::lifecycle::probe::{ContainerProbes, ProbeKind};
use crate::lifecycle::restart::{
    ContainerKind, ExitDecision, InitObserved, InitStep, decide_on_exit, next_init_step,
};
use crate::lifecycle::state::{State, Terminated, WaitingReason};
use crate::runtime::{ContainerState, ExitStatus, Signal};

/// Something [`RunningPod::tick`] observed or did (for logs and events).
#[derive(Debug, Clone, PartialEq)]
pub enum PodEvent {
    /// A container was created and started for the first time (the next
    /// init container, or an app container once the init containers
    /// completed).
    Started { container: String },
    /// An init container failed under `restartPolicy: Never`: the pod is
    /// `Failed`, its app containers are never started.
    InitFailed { container: String, exit_code: i32 },
    /// A container exited (and was deleted).
    Exited {
        container: String,
        terminated: Terminated,
    },
    /// A container will be restarted after `delay` (CrashLoopBackOff).
    BackOff { container: String, delay: Duration },
    /// A container was re-created and started.
    Restarted {
        container: String,
        restart_count: u32,
    },
    /// Creating or re-creating a container failed; it is retried after a
    /// back-off (`CreateContainerError`).
    RestartFailed { container: String, error: String },
    /// A probe attempt failed.
    Unhealthy {
        container: String,
        probe: ProbeKind,
        message: String,
    },
    /// A failed liveness/startup probe: the container is being killed.
    Killing { container: String, probe: ProbeKind },
    /// The container's readiness changed.
    Ready { container: String, ready: bool },
}

impl RunningPod {
    /// One supervision step at `now`: advances the init containers (see the
    /// module docs), then — once they all completed — notices app container
    /// exits (records them, decides on restarts), (re-)creates containers
    /// whose turn or back-off has come, runs due probes and acts on their
    /// verdicts. Call it periodically (e.g. every 100 ms - 1 s); it never
    /// waits for a container, and blocks at most for the due probes'
    /// timeouts. A runtime error on one container is returned after the
    /// others were handled (the first one).
    pub fn tick(&mut self, now: Instant) -> Result<Vec<PodEvent>, PodError> {
        let mut events = Vec::new();
        let mut first_err = None;
        let initialized = match self.tick_init(now, &mut events) {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(pod = %self.pod_id, error = %e, "supervising the init containers");
                first_err = Some(e);
                false
            }
        };
        if initialized {
            for i in 0..self.containers.len() {
                if self.containers[i].init {
                    continue;
                }
                if let Err(e) = self.supervise(i, now, &mut events) {
                    tracing::warn!(pod = %self.pod_id, error = %e, "supervising a container");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(events),
        }
    }

    /// The earliest time something is scheduled (a probe, a restart or an
    /// init container's retry); exits are only seen by polling, so tick at
    /// least that often anyway.
    pub fn next_wake(&self) -> Option<Instant> {
        self.containers
            .iter()
            .filter_map(|c| {
                let restart = c.life.backing_off().then(|| c.backoff.ready_at()).flatten();
                [restart, c.probes.next_wake(), c.life.kill_at()]
                    .into_iter()
                    .flatten()
                    .min()
            })
            .min()
    }

    /// Advances the init containers; `true` once they all completed (or an
    /// app container was already created: initialization is over for good).
    fn tick_init(&mut self, now: Instant, events: &mut Vec<PodEvent>) -> Result<bool, PodError> {
        if self.failed_init.is_some() {
            return Ok(false);
        }
        if self
            .containers
            .iter()
            .any(|c| !c.init && !c.never_started())
        {
            return Ok(true);
        }
        loop {
            // Init containers come first in `containers`, in spec order.
            let observed: Vec<InitObserved> = self
                .containers
                .iter()
                .take_while(|c| c.init)
                .map(init_observed)
                .collect();
            match next_init_step(self.restart_policy, &observed) {
                InitStep::Done => return Ok(true),
                InitStep::Wait(i) => {
                    let ContainerState::Exited(status) = self.poll_state(i)? else {
                        return Ok(false);
                    };
                    // Completed: the loop launches the next one at once.
                    self.reap(i, status, events)?;
                }
                InitStep::Start(i) => {
                    let c = &self.containers[i];
                    if !c.life.backing_off() || c.backoff.is_ready(now) {
                        self.relaunch(i, now, events);
                    }
                    return Ok(false);
                }
                InitStep::Retry(i) => {
                    if !self.containers[i].life.backing_off() {
                        self.back_off(i, now, events)?;
                    }
                    if self.containers[i].backoff.is_ready(now) {
                        self.relaunch(i, now, events);
                    }
                    return Ok(false);
                }
                InitStep::FailPod(i) => {
                    self.fail_pod(i, events);
                    return Ok(false);
                }
            }
        }
    }

    /// Init container `i` failed under `restartPolicy: Never`: so did the
    /// pod.
    fn fail_pod(&mut self, i: usize, events: &mut Vec<PodEvent>) {
        let c = &self.containers[i];
        let exit_code = c.record.state.terminated().map_or(137, |t| t.exit_code);
        let status = match c.state() {
            ContainerState::Exited(s) => s,
            _ => ExitStatus::Code(exit_code),
        };
        tracing::info!(pod = %self.pod_id, container = %c.name, exit_code,
            "init container failed; restartPolicy Never: the pod failed");
        events.push(PodEvent::InitFailed {
            container: c.name.clone(),
            exit_code,
        });
        self.failed_init = Some((c.name.clone(), status));
    }

    /// Polls container `i` (in the runtime) and records what it saw.
    pub(super) fn poll_state(&mut self, i: usize) -> Result<ContainerState, PodError> {
        let c = &mut self.containers[i];
        let state = self
            .runtime
            .poll_exit(&c.handle)
            .map_err(|source| PodError::Runtime {
                pod: self.pod_id.clone(),
                container: c.name.clone(),
                source,
            })?;
        c.life
            .observed(state)
            .map_err(|r| r.of(&self.pod_id, &c.name))?;
        Ok(state)
    }

    /// One step for app container `i`: (re-)creates it when its turn or
    /// back-off has come, else polls it: an exit is handled, a running
    /// container probed (and SIGKILLed once its grace period after a failed
    /// probe is over).
    fn supervise(
        &mut self,
        i: usize,
        now: Instant,
        events: &mut Vec<PodEvent>,
    ) -> Result<(), PodError> {
        let c = &self.containers[i];
        if !c.life.in_runtime() {
            if c.never_started() || (c.life.backing_off() && c.backoff.is_ready(now)) {
                self.relaunch(i, now, events);
            }
            return Ok(());
        }
        match self.poll_state(i)? {
            ContainerState::Exited(status) => self.on_exit(i, status, now, events),
            ContainerState::Running => {
                self.run_probes(i, now, events);
                self.kill_if_due(i, now)
            }
            ContainerState::Created => Ok(()),
        }
    }

    /// SIGKILL to container `i` if its grace period after a failed probe
    /// is over (once: see [`Life::kill_sent`](super::life::Life::kill_sent)).
    fn kill_if_due(&mut self, i: usize, now: Instant) -> Result<(), PodError> {
        let c = &mut self.containers[i];
        if !c.life.kill_due(now) {
            return Ok(());
        }
        tracing::info!(pod = %self.pod_id, container = %c.name,
            "grace period over after a failed probe; SIGKILL");
        self.runtime
            .kill(&c.handle, Signal::SIGKILL)
            .map_err(|source| PodError::Runtime {
                pod: self.pod_id.clone(),
                container: c.name.clone(),
                source,
            })?;
        c.life
            .kill_sent(now)
            .map_err(|r| r.of(&self.pod_id, &c.name))
    }

    /// An app container exited: records it and applies `restartPolicy`.
    fn on_exit(
        &mut self,
        i: usize,
        status: ExitStatus,
        now: Instant,
        events: &mut Vec<PodEvent>,
    ) -> Result<(), PodError> {
        let exit_code = self.reap(i, status, events)?;
        if decide_on_exit(self.restart_policy, ContainerKind::Regular, exit_code)
            == ExitDecision::Restart
        {
            self.back_off(i, now, events)?;
        }
        Ok(())
    }

    /// Deletes exited container `i` (the delete report says whether it was
    /// OOM-killed) and records its termination; returns its exit code.
    fn reap(
        &mut self,
        i: usize,
        status: ExitStatus,
        events: &mut Vec<PodEvent>,
    ) -> Result<i32, PodError> {
        let rt = self.runtime.clone();
        let pod = self.pod_id.clone();
        let c = &mut self.containers[i];
        let report = rt.delete(&c.handle).map_err(|source| PodError::Runtime {
            pod: pod.clone(),
            container: c.name.clone(),
            source,
        })?;
        let status = report.exit.unwrap_or(status);
        c.life
            .deleted(Some(status))
            .map_err(|r| r.of(&pod, &c.name))?;
        c.probes = ContainerProbes::default();
        let started_at = match c.record.state {
            State::Running { started_at } => started_at,
            _ => SystemTime::now(),
        };
        let (code, signal) = exit_parts(status);
        let t = Terminated::from_exit(
            code,
            signal,
            report.oom_killed,
            started_at,
            SystemTime::now(),
        );
        tracing::info!(%pod, container = %c.name, init = c.init, exit_code = t.exit_code,
            reason = %t.reason, "container exited");
        c.record.set_terminated(t.clone());
        let exit_code = t.exit_code;
        events.push(PodEvent::Exited {
            container: c.name.clone(),
            terminated: t,
        });
        Ok(exit_code)
    }

    /// Schedules a restart of exited container `i` after its back-off
    /// delay: `Waiting{CrashLoopBackOff}` until then.
    fn back_off(
        &mut self,
        i: usize,
        now: Instant,
        events: &mut Vec<PodEvent>,
    ) -> Result<(), PodError> {
        let c = &mut self.containers[i];
        let delay = c
            .schedule_restart(now)
            .map_err(|r| r.of(&self.pod_id, &c.name))?;
        events.push(PodEvent::BackOff {
            container: c.name.clone(),
            delay,
        });
        Ok(())
    }

    /// Creates container `i` for the first time, or again on a fresh rootfs
    /// under the same id; a failure is retried after a back-off.
    fn relaunch(&mut self, i: usize, now: Instant, events: &mut Vec<PodEvent>) {
        let first = self.containers[i].record.container_id.is_none();
        let result = self.create_and_start(i, now);
        let c = &mut self.containers[i];
        match result {
            Ok(()) if first => {
                tracing::info!(pod = %self.pod_id, container = %c.name, init = c.init,
                    "container started");
                events.push(PodEvent::Started {
                    container: c.name.clone(),
                });
            }
            Ok(()) => {
                tracing::info!(pod = %self.pod_id, container = %c.name,
                    restarts = c.record.restart_count, "container restarted");
                events.push(PodEvent::Restarted {
                    container: c.name.clone(),
                    restart_count: c.record.restart_count,
                });
            }
            Err(e) => {
                let delay = c.backoff.next_delay(now, Duration::ZERO);
                let error = e.to_string();
                tracing::warn!(pod = %self.pod_id, container = %c.name, %error,
                    ?delay, "creating a container failed");
                if let Err(r) = c.life.create_failed() {
                    tracing::error!(pod = %self.pod_id, container = %c.name, error = %r,
                        "no retry scheduled");
                }
                c.record
                    .set_waiting(WaitingReason::CreateContainerError, Some(error.clone()));
                events.push(PodEvent::RestartFailed {
                    container: c.name.clone(),
                    error,
                });
            }
        }
    }
}

/// What `next_init_step` needs to know of init container `c`.
fn init_observed(c: &super::run::PodContainer) -> InitObserved {
    if c.life.in_runtime() {
        return InitObserved::Running;
    }
    match (&c.record.state, &c.record.last_termination) {
        (State::Terminated(t), _) | (State::Waiting { .. }, Some(t)) => {
            InitObserved::Exited(t.exit_code)
        }
        _ => InitObserved::NotStarted,
    }
}

impl PodContainer {
    /// An ended container is to be restarted: `Waiting{CrashLoopBackOff}`
    /// until its next back-off delay (after the run it ended) has passed;
    /// returns the delay.
    pub(super) fn schedule_restart(&mut self, now: Instant) -> Result<Duration, Refused> {
        let ran_for = self.life.back_off(now)?;
        let delay = self.backoff.next_delay(now, ran_for);
        self.record.set_waiting(
            WaitingReason::CrashLoopBackOff,
            Some(format!(
                "back-off {delay:?} restarting failed container={}",
                self.name
            )),
        );
        Ok(delay)
    }
}
