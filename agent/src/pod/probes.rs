//! Probes of a running pod's containers. Due probes run one after the
//! other, each bounded by its `timeoutSeconds`. `httpGet`/`tcpSocket`
//! connect to `127.0.0.1` *inside the pod's network namespace*: the pod has
//! only its own loopback, which the host cannot reach, so a short-lived
//! thread `setns(2)`s into the namespace file and connects from there (the
//! thread exits afterwards, so no other thread's namespace changes)
//! ([`probe_in_netns`]). `exec` probes run the command in the container
//! through [`crate::runtime::Runtime::exec`] (as its own process runs); a
//! non-zero exit fails, and so does running past `timeoutSeconds` (the
//! command is then killed), as in Kubernetes; a runtime error reports
//! `Unknown` (which neither passes nor fails).
//!
//! A failed liveness (or startup) verdict sends SIGTERM, then SIGKILL after
//! `terminationGracePeriodSeconds` (checked by later ticks, never blocking,
//! see [`super::supervise`]); the exit then counts as a crash (back-off
//! applies). The readiness verdict is the container's `ready` flag, and
//! through `PodObserved::conditions` the pod's `Ready` condition.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use bramble_api::objects::container::ContainerPort;
use bramble_api::objects::probe::Probe;

use super::run::RunningPod;
use super::supervise::PodEvent;
use crate::lifecycle::probe::{ProbeAction, ProbeKind, ProbeResult};
use crate::lifecycle::probe_exec::{ExecProbe, ProbeOutcome, run_probe};
use crate::runtime::{ContainerHandle, Runtime, Signal};

/// No container to run `exec` probes in ([`probe_in_netns`]): `Unknown`.
struct NoExec;

impl ExecProbe for NoExec {
    fn exec(&self, _command: &[String], _timeout: Duration) -> std::io::Result<i32> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "exec probes are not supported by this agent yet",
        ))
    }
}

/// `exec` probes in a running container, through the runtime.
struct ContainerExec<'a> {
    runtime: &'a dyn Runtime,
    handle: &'a ContainerHandle,
}

impl ExecProbe for ContainerExec<'_> {
    fn exec(&self, command: &[String], timeout: Duration) -> std::io::Result<i32> {
        let out = self
            .runtime
            .exec(self.handle, command, timeout)
            .map_err(std::io::Error::other)?;
        if out.timed_out {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("command {command:?} timed out after {timeout:?}"),
            ));
        }
        if out.exit_code() != 0 {
            tracing::debug!(container = %self.handle.id, ?command, code = out.exit_code(),
                stdout = %String::from_utf8_lossy(&out.stdout),
                stderr = %String::from_utf8_lossy(&out.stderr), "exec probe failed");
        }
        Ok(out.exit_code())
    }
}

/// Runs `probe` against `127.0.0.1` in the network namespace at `netns`
/// (the host's namespace if `None`): a thread joins the namespace, probes
/// and exits. `exec` probes need a container and report `Unknown` here
/// ([`RunningPod::tick`] runs them in theirs).
pub fn probe_in_netns(
    netns: Option<&Path>,
    probe: &Probe,
    ports: &[ContainerPort],
    timeout: Duration,
) -> ProbeOutcome {
    let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (Some(path), None) = (netns, &probe.exec) else {
        return run_probe(probe, host, ports, &NoExec, timeout);
    };
    match super::netns::in_network(path, || run_probe(probe, host, ports, &NoExec, timeout)) {
        Ok(outcome) => outcome,
        Err(e) => ProbeOutcome {
            result: ProbeResult::Unknown,
            message: e.to_string(),
        },
    }
}

impl RunningPod {
    pub(super) fn run_probes(&mut self, i: usize, now: Instant, events: &mut Vec<PodEvent>) {
        let netns = self.netns.as_ref().map(|n| n.path().to_path_buf());
        let grace = self.grace;
        let rt = self.runtime.clone();
        let c = &mut self.containers[i];
        for kind in c.probes.due(now) {
            let (probe, tracker) = match kind {
                ProbeKind::Startup => (&c.spec.startup_probe, &c.probes.startup),
                ProbeKind::Liveness => (&c.spec.liveness_probe, &c.probes.liveness),
                ProbeKind::Readiness => (&c.spec.readiness_probe, &c.probes.readiness),
            };
            let (Some(probe), Some(tracker)) = (probe, tracker) else {
                continue;
            };
            let timeout = tracker.timing().timeout;
            let outcome = if probe.exec.is_some() {
                let exec = ContainerExec {
                    runtime: &*rt,
                    handle: &c.handle,
                };
                let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
                run_probe(probe, host, &c.spec.ports, &exec, timeout)
            } else {
                probe_in_netns(netns.as_deref(), probe, &c.spec.ports, timeout)
            };
            if outcome.result != ProbeResult::Success {
                tracing::debug!(container = %c.name, ?kind, result = ?outcome.result,
                    message = %outcome.message, "probe did not pass");
            }
            if outcome.result == ProbeResult::Failure {
                events.push(PodEvent::Unhealthy {
                    container: c.name.clone(),
                    probe: kind,
                    message: outcome.message.clone(),
                });
            }
            c.probes.record(kind, outcome.result, now);
        }
        if let ProbeAction::Restart(kind) = c.probes.action()
            && c.life.terminate(now + grace).is_ok()
        {
            tracing::info!(pod = %self.pod_id, container = %c.name, ?kind,
                "probe failed; killing the container");
            if let Err(e) = rt.kill(&c.handle, Signal::SIGTERM) {
                tracing::warn!(container = %c.name, error = %e, "SIGTERM after a failed probe");
            }
            events.push(PodEvent::Killing {
                container: c.name.clone(),
                probe: kind,
            });
        }
        let ready = c.probes.ready() && c.life.kill_at().is_none();
        c.record.started = c.probes.started();
        if ready != c.record.ready {
            c.record.ready = ready;
            events.push(PodEvent::Ready {
                container: c.name.clone(),
                ready,
            });
        }
    }
}
