//! What a running pod reports: its coarse [`RunPhase`] as this runner sees
//! it, and its `PodStatus` as the API shows it ([`RunningPod::status`]:
//! phase and conditions as the kubelet computes them from the container
//! records, init and app `containerStatuses`, `startTime`, pod IPs).

use std::time::SystemTime;

use bramble_api::objects::pod_status::PodStatus;

use super::run::{PodContainer, RunningPod};
use crate::lifecycle::phase::PodObserved;
use crate::lifecycle::state::ContainerRecord;
use crate::runtime::ContainerState;

/// Coarse pod phase as this runner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    /// Init containers are running or being retried: no app container was
    /// created yet.
    Pending,
    /// Containers are running (or some have exited, not all).
    Running,
    /// Every container exited 0.
    Succeeded,
    /// An init container failed (`restartPolicy: Never`), or every
    /// container exited and one failed.
    Failed,
}

impl RunningPod {
    /// From the last [`RunningPod::poll`] or [`RunningPod::tick`].
    pub fn phase(&self) -> RunPhase {
        if self.failed_init.is_some() {
            return RunPhase::Failed;
        }
        let apps: Vec<&PodContainer> = self.containers.iter().filter(|c| !c.init).collect();
        if apps.iter().any(|c| c.never_started()) {
            return RunPhase::Pending;
        }
        let mut all_ok = true;
        for c in apps {
            match c.state() {
                ContainerState::Exited(s) => all_ok &= s.success(),
                _ => return RunPhase::Running,
            }
        }
        if all_ok {
            RunPhase::Succeeded
        } else {
            RunPhase::Failed
        }
    }
}

impl RunningPod {
    /// The pod's status as the API shows it: phase and conditions (as the
    /// kubelet computes them from the container records), init and app
    /// `containerStatuses`, `startTime`. Condition transition times are kept
    /// from the previous call.
    pub fn status(&mut self, now: SystemTime) -> PodStatus {
        let records: Vec<ContainerRecord> =
            self.containers.iter().map(|c| c.record.clone()).collect();
        let statuses = |init: bool| {
            self.containers
                .iter()
                .filter(|c| c.init == init)
                .map(|c| c.record.to_status())
                .collect::<Vec<_>>()
        };
        let (inits, apps) = (statuses(true), statuses(false));
        let observed = PodObserved::from_spec(&self.spec, &records);
        let phase = observed.phase();
        let conditions = observed.conditions(phase, &self.conditions, now);
        self.conditions = conditions.clone();
        PodStatus {
            phase: Some(phase.as_str().to_owned()),
            conditions,
            start_time: Some(crate::lifecycle::state::rfc3339(self.start_time)),
            init_container_statuses: inits,
            container_statuses: apps,
            pod_ip: self.address().map(|a| a.ip.to_string()),
            pod_ips: self
                .address()
                .map(|a| bramble_api::objects::pod_status::PodIp {
                    ip: a.ip.to_string(),
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }
}
