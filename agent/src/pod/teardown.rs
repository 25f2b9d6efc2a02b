//! Tearing a pod down ([`RunningPod::stop`], and after a failed start):
//! TERM to its running containers, their grace period (concurrently), then
//! KILL; every container deleted and its rootfs removed; log FIFOs
//! detached, volumes unmounted and removed, the pod's link and namespaces
//! removed, and its directory. Every step is attempted even if an earlier
//! one fails; what failed is reported together ([`CleanupError`]s).

use std::time::{Duration, Instant};

use super::error::{CleanupError, PodError};
use super::options::RESOLV_CONF;
use super::run::{PodContainer, RunningPod};
use crate::runtime::{ContainerState, ExitStatus, Signal};

impl RunningPod {
    /// Stops the pod and removes everything it had on the node except its
    /// logs: app containers get SIGTERM, `grace` to exit, then SIGKILL;
    /// then every container is deleted, rootfses and volumes unmounted and
    /// removed, the network namespace removed. Returns how each container
    /// that ran ended (its last instance, init containers included), in
    /// spec order. Every step is attempted even if an earlier one fails.
    pub fn stop(mut self, grace: Duration) -> Result<Vec<(String, ExitStatus)>, PodError> {
        self.tear_down(grace)
    }

    /// [`RunningPod::stop`]'s work, also undoing a failed start.
    pub(super) fn tear_down(
        &mut self,
        grace: Duration,
    ) -> Result<Vec<(String, ExitStatus)>, PodError> {
        let mut errors = Vec::new();
        self.stop_containers(grace, &mut errors);
        let ended = self.delete_containers(&mut errors);
        if let Some(pump) = &self.log_pump {
            self.detach_logs(pump, &mut errors);
        }
        self.remove_pod_parts(&mut errors);
        if errors.is_empty() {
            Ok(ended)
        } else {
            Err(PodError::Cleanup {
                pod: self.pod_id.clone(),
                errors,
            })
        }
    }

    /// SIGTERM to every running container first, so that their grace
    /// periods run concurrently; then each gets what is left of `grace`
    /// before SIGKILL.
    fn stop_containers(&self, grace: Duration, errors: &mut Vec<CleanupError>) {
        let live: Vec<&PodContainer> = self
            .containers
            .iter()
            .filter(|c| {
                c.life.in_runtime()
                    && matches!(
                        self.runtime.poll_exit(&c.handle),
                        Ok(ContainerState::Running)
                    )
            })
            .collect();
        for c in &live {
            let _ = self.runtime.kill(&c.handle, Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        for c in &live {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(e) = self.runtime.stop(&c.handle, left) {
                errors.push(CleanupError::Stop {
                    container: c.name.clone(),
                    source: e,
                });
            }
        }
    }

    /// Deletes every container still in the runtime (last first) and removes
    /// every rootfs; returns how each container that ran ended, in spec
    /// order.
    fn delete_containers(&mut self, errors: &mut Vec<CleanupError>) -> Vec<(String, ExitStatus)> {
        let mut ended = Vec::new();
        for c in self.containers.iter_mut().rev() {
            if c.life.in_runtime() {
                match self.runtime.delete(&c.handle) {
                    Ok(report) => {
                        if let Err(r) = c.life.deleted(report.exit) {
                            errors.push(CleanupError::Deleted {
                                container: c.name.clone(),
                                source: r,
                            });
                        }
                        if let Some(s) = report.exit {
                            ended.push((c.name.clone(), s));
                        }
                    }
                    Err(e) => errors.push(CleanupError::Delete {
                        container: c.name.clone(),
                        source: e,
                    }),
                }
            } else if let ContainerState::Exited(s) = c.state() {
                ended.push((c.name.clone(), s));
            }
            if let Some(r) = c.rootfs.take()
                && let Err(e) = r.remove()
            {
                errors.push(CleanupError::RemoveRootfs {
                    container: c.name.clone(),
                    source: e,
                });
            }
        }
        ended.reverse();
        ended
    }

    /// Unmounts and removes the volumes, removes the pod's link and
    /// namespaces, and, if nothing failed so far, the pod's directory.
    fn remove_pod_parts(&mut self, errors: &mut Vec<CleanupError>) {
        if let Some(v) = &self.volumes {
            match v.remove() {
                Ok(()) => self.volumes = None,
                Err(e) => errors.push(CleanupError::Volumes(Box::new(e))),
            }
        }
        if let Some((host_if, _)) = &self.link {
            match bramble_net::veth::remove(None, host_if) {
                Ok(()) => self.link = None,
                Err(e) => errors.push(CleanupError::Link {
                    host_if: host_if.clone(),
                    source: e,
                }),
            }
        }
        if let Some(n) = &self.netns {
            match n.remove() {
                Ok(()) => self.netns = None,
                Err(e) => errors.push(CleanupError::Netns(e)),
            }
        }
        if errors.is_empty() && self.dir.exists() {
            let rootfs_dir = self.dir.join("rootfs");
            let _ = std::fs::remove_dir(&rootfs_dir);
            let _ = std::fs::remove_file(self.dir.join(RESOLV_CONF));
            if let Err(e) = std::fs::remove_dir(&self.dir) {
                errors.push(CleanupError::RemoveDir {
                    path: self.dir.clone(),
                    source: e,
                });
            }
        }
    }

    /// Detaches the log FIFOs of this pod's containers (`<pod-id>_<name>`;
    /// pod and container names have no `_`, so the prefix is unambiguous).
    fn detach_logs(&self, pump: &crate::logs::LogPump, errors: &mut Vec<CleanupError>) {
        let prefix = format!("{}_", self.pod_id);
        let keys = match pump.fifo_keys() {
            Ok(k) => k,
            Err(e) => {
                errors.push(CleanupError::ListFifos(e));
                return;
            }
        };
        for key in keys.into_iter().filter(|k| k.starts_with(&prefix)) {
            if let Err(e) = pump.detach(&key) {
                errors.push(CleanupError::DetachFifos { key, source: e });
            }
        }
    }
}
