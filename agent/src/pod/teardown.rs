//! Tearing a pod down ([`RunningPod::stop`], and after a failed start):
//! TERM to its running containers, their grace period (concurrently), then
//! KILL; every container deleted and its rootfs removed; log FIFOs
//! detached, volumes unmounted and removed, the pod's link and namespaces
//! removed, and its directory. Every step is attempted even if an earlier
//! one fails; what failed is reported together.

use std::time::Duration;

use super::error::PodError;
use super::options::RESOLV_CONF;
use super::run::RunningPod;
use crate::runtime::{ContainerState, ExitStatus};

impl RunningPod<'_> {
    /// Stops the pod and removes everything it had on the node except its
    /// logs: app containers get SIGTERM, `grace` to exit, then SIGKILL;
    /// then every container is deleted, rootfses and volumes unmounted and
    /// removed, the network namespace removed. Returns how each container
    /// that ran ended (its last instance, init containers included), in
    /// spec order. Every step is attempted even if an earlier one fails.
    pub fn stop(mut self, grace: Duration) -> Result<Vec<(String, ExitStatus)>, PodError> {
        self.tear_down(grace)
    }

    pub(super) fn tear_down(
        &mut self,
        grace: Duration,
    ) -> Result<Vec<(String, ExitStatus)>, PodError> {
        let mut errors = Vec::new();
        let mut ended = Vec::new();
        // Signal all first, so the grace periods run concurrently.
        let live: Vec<usize> = (0..self.containers.len())
            .filter(|&i| {
                let c = &self.containers[i];
                !c.deleted
                    && matches!(
                        self.runtime.poll_exit(&c.handle),
                        Ok(ContainerState::Running)
                    )
            })
            .collect();
        for &i in &live {
            let _ = self
                .runtime
                .kill(&self.containers[i].handle, crate::runtime::Signal::SIGTERM);
        }
        let deadline = std::time::Instant::now() + grace;
        for &i in &live {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if let Err(e) = self.runtime.stop(&self.containers[i].handle, left) {
                errors.push(format!("stopping {}: {e}", self.containers[i].name));
            }
        }
        for c in self.containers.iter_mut().rev() {
            if !c.deleted {
                match self.runtime.delete(&c.handle) {
                    Ok(report) => {
                        c.deleted = true;
                        if let Some(s) = report.exit {
                            c.state = ContainerState::Exited(s);
                            ended.push((c.name.clone(), s));
                        }
                    }
                    Err(e) => errors.push(format!("deleting {}: {e}", c.name)),
                }
            } else if let ContainerState::Exited(s) = c.state {
                ended.push((c.name.clone(), s));
            }
            if let Some(r) = c.rootfs.take()
                && let Err(e) = r.remove()
            {
                errors.push(format!("removing the rootfs of {}: {e}", c.name));
            }
        }
        ended.reverse();
        if let Some(pump) = &self.log_pump {
            self.detach_logs(pump, &mut errors);
        }
        if let Some(v) = &self.volumes {
            match v.remove() {
                Ok(()) => self.volumes = None,
                Err(e) => errors.push(e.to_string()),
            }
        }
        if let Some((host_if, _)) = &self.link {
            match bramble_net::veth::remove(None, host_if) {
                Ok(()) => self.link = None,
                Err(e) => errors.push(format!("removing the pod's link {host_if}: {e}")),
            }
        }
        if let Some(n) = &self.netns {
            match n.remove() {
                Ok(()) => self.netns = None,
                Err(e) => errors.push(e.to_string()),
            }
        }
        if errors.is_empty() && self.dir.exists() {
            let rootfs_dir = self.dir.join("rootfs");
            let _ = std::fs::remove_dir(&rootfs_dir);
            let _ = std::fs::remove_file(self.dir.join(RESOLV_CONF));
            if let Err(e) = std::fs::remove_dir(&self.dir) {
                errors.push(format!("removing {}: {e}", self.dir.display()));
            }
        }
        if errors.is_empty() {
            Ok(ended)
        } else {
            Err(PodError::Cleanup {
                pod: self.pod_id.clone(),
                errors,
            })
        }
    }
}

impl RunningPod<'_> {
    /// Detaches the log FIFOs of this pod's containers (`<pod-id>_<name>`;
    /// pod and container names have no `_`, so the prefix is unambiguous).
    fn detach_logs(&self, pump: &crate::logs::LogPump, errors: &mut Vec<String>) {
        let prefix = format!("{}_", self.pod_id);
        let keys = match pump.fifo_keys() {
            Ok(k) => k,
            Err(e) => {
                errors.push(format!("listing log FIFOs: {e}"));
                return;
            }
        };
        for key in keys.into_iter().filter(|k| k.starts_with(&prefix)) {
            if let Err(e) = pump.detach(&key) {
                errors.push(format!("detaching the log FIFOs of {key}: {e}"));
            }
        }
    }
}
