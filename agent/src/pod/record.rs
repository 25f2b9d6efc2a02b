//! What the agent records of a running pod ([`PodRecord`]) so that a
//! restarted agent **adopts** it ([`RunningPod::adopt`]) instead of starting
//! it twice: the pod, its directories, network namespace and volumes, and
//! per container the runtime handle (id + init pid), the runtime config
//! (for later restarts), layers, rootfs and the Kubernetes-shaped record
//! (restart count, last termination).
//!
//! The record holds each container's env, Secret values included, so it
//! lives on tmpfs next to the runtime's state (which holds the same env),
//! never on disk. What is lost with the old agent process: exit statuses
//! of containers that ended meanwhile (`ContainerStatusUnknown`, see
//! `runtime::adopted`), the exact back-off deadlines (a pending restart
//! waits one initial back-off again) and probe history (probes start over).
//!
//! Every container of the spec is recorded, those not created yet included
//! (`deleted`, no container id), so a pod adopted while its init
//! containers run carries on from their records: the current one is the
//! first that has not completed (no index is stored). An init container
//! that ended while no agent ran has an unknown status and counts as
//! failed: it runs again after a back-off (init containers must be
//! idempotent, as in Kubernetes), or under `restartPolicy: Never` the pod
//! fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bramble_api::objects::pod::Pod;
use bramble_images::Rootfs;
use serde::{Deserialize, Serialize};

use super::error::ContainerError;
use super::life::Life;
use super::netns::PodNetns;
use super::run::{PodAddress, PodContainer, PodError, PodOptions, RunningPod, grace_period};
use super::volumes::PodVolumes;
use crate::lifecycle::probe::ContainerProbes;
use crate::lifecycle::restart::{ContainerKind, ExitDecision, decide_on_exit};
use crate::lifecycle::state::{ContainerRecord, State, Terminated};
use crate::runtime::{
    ContainerConfig, ContainerHandle, ContainerState, ExitStatus, Runtime, RuntimeError,
};

/// Format version of [`PodRecord`]; a record of another version is not
/// adopted (its pod is cleaned up and started again).
pub const RECORD_VERSION: u32 = 1;

/// A running pod as the agent records it. See the module docs.
#[derive(Debug, Serialize, Deserialize)]
pub struct PodRecord {
    pub version: u32,
    pub pod: Pod,
    pub pod_id: String,
    pub dir: PathBuf,
    pub log_dir: PathBuf,
    pub netns: Option<PathBuf>,
    /// The pod's veth (host side) and address; absent in records of
    /// agents before the pod network (read as none).
    #[serde(default)]
    pub link: Option<(String, PodAddress)>,
    pub volumes: Option<PodVolumes>,
    pub failed_init: Option<(String, ExitStatus)>,
    pub start_time: SystemTime,
    pub containers: Vec<SavedContainer>,
}

/// One container of a [`PodRecord`].
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedContainer {
    pub name: String,
    pub init: bool,
    pub handle: ContainerHandle,
    pub log_path: PathBuf,
    pub state: ContainerState,
    /// The rootfs directory, if one is prepared.
    pub rootfs: Option<PathBuf>,
    pub deleted: bool,
    pub config: ContainerConfig,
    /// See `PodContainer::image_user` (absent in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_user: Option<String>,
    pub layers: Vec<PathBuf>,
    pub read_only: bool,
    pub record: ContainerRecord,
    pub restart_pending: bool,
}

impl PodRecord {
    /// Runtime ids of the containers the record says exist in the runtime.
    pub fn live_ids(&self) -> impl Iterator<Item = &str> {
        self.containers
            .iter()
            .filter(|c| !c.deleted)
            .map(|c| c.handle.id.as_str())
    }
}

impl RunningPod {
    /// `terminationGracePeriodSeconds` (default 30 s).
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The pod as given to [`RunningPod::start`].
    pub fn pod(&self) -> &Pod {
        &self.pod
    }

    /// What to record to adopt this pod later.
    pub fn to_record(&self) -> PodRecord {
        PodRecord {
            version: RECORD_VERSION,
            pod: self.pod.clone(),
            pod_id: self.pod_id.clone(),
            dir: self.dir.clone(),
            log_dir: self.log_dir.clone(),
            netns: self.netns.as_ref().map(|n| n.path().to_path_buf()),
            link: self.link.clone(),
            volumes: self.volumes.clone(),
            failed_init: self.failed_init.clone(),
            start_time: self.start_time,
            containers: self
                .containers
                .iter()
                .map(|c| SavedContainer {
                    name: c.name.clone(),
                    init: c.init,
                    handle: c.handle.clone(),
                    log_path: c.log_path.clone(),
                    state: c.state(),
                    rootfs: c.rootfs.as_ref().map(|r| r.dir().to_path_buf()),
                    deleted: !c.life.in_runtime(),
                    config: c.config.clone(),
                    image_user: c.image_user.clone(),
                    layers: c.layers.clone(),
                    read_only: c.read_only,
                    record: c.record.clone(),
                    restart_pending: c.life.backing_off(),
                })
                .collect(),
        }
    }

    /// Takes over a pod an earlier agent process ran, from its record:
    /// adopts its containers in the runtime (see [`Runtime::adopt`]),
    /// re-attaches their log FIFOs and carries on supervising. A container
    /// that vanished from the runtime meanwhile counts as ended with an
    /// unknown status (restarted per `restartPolicy`); one that ended
    /// meanwhile is noticed by the next [`RunningPod::tick`]. Containers
    /// left `Created` (the old agent died between create and start) are
    /// started.
    pub fn adopt(
        runtime: Arc<dyn Runtime>,
        record: PodRecord,
        options: &PodOptions,
    ) -> Result<RunningPod, PodError> {
        let now = Instant::now();
        let pod_name = record.pod.name().to_string();
        let restart_policy = record.pod.spec.restart_policy().parse().unwrap_or_default();
        let mut containers = Vec::with_capacity(record.containers.len());
        for saved in record.containers {
            let mut c = recorded_container(saved, &record.pod, options, now)?;
            if c.life.in_runtime() {
                adopt_container(&*runtime, &mut c, restart_policy, now, &pod_name)?;
            }
            containers.push(c);
        }
        Ok(RunningPod {
            runtime,
            pod_id: record.pod_id,
            dir: record.dir,
            log_dir: record.log_dir,
            netns: record.netns.map(PodNetns::existing),
            link: record.link,
            volumes: record.volumes,
            containers,
            failed_init: record.failed_init,
            spec: record.pod.spec.clone(),
            restart_policy,
            grace: grace_period(&record.pod),
            start_time: record.start_time,
            conditions: Vec::new(),
            pod: record.pod,
            log_pump: options.log_pump.clone(),
        })
    }
}

/// A recorded container as it was (before it is adopted in the runtime),
/// its log FIFOs re-attached; its spec from the recorded pod's.
fn recorded_container(
    saved: SavedContainer,
    pod: &Pod,
    options: &PodOptions,
    now: Instant,
) -> Result<PodContainer, PodError> {
    let cerr = |source: ContainerError| PodError::Container {
        pod: pod.name().to_string(),
        container: saved.name.clone(),
        source: Box::new(source),
    };
    let spec = (pod.spec.containers.iter())
        .chain(&pod.spec.init_containers)
        .find(|c| c.name == saved.name)
        .cloned()
        .ok_or_else(|| cerr(ContainerError::NotInSpec))?;
    if let Some(pump) = &options.log_pump {
        pump.attach(&saved.handle.id, &saved.log_path)
            .map_err(|e| cerr(ContainerError::ReattachLogs(e)))?;
    }
    let created = saved.record.container_id.is_some();
    let life = Life::from_record(
        saved.deleted,
        saved.restart_pending,
        created,
        saved.state,
        now,
    );
    let mut c = PodContainer {
        name: saved.name,
        init: saved.init,
        handle: saved.handle,
        log_path: saved.log_path,
        life,
        rootfs: saved
            .rootfs
            .map(|dir| Rootfs::existing(dir, saved.read_only)),
        probes: if saved.init || saved.deleted {
            ContainerProbes::default()
        } else {
            ContainerProbes::for_container(&spec, now)
        },
        spec,
        config: saved.config,
        image_user: saved.image_user,
        layers: saved.layers,
        read_only: saved.read_only,
        record: saved.record,
        backoff: options.backoff.clone(),
    };
    if c.life.backing_off() {
        // The deadline died with the old agent: wait one delay.
        c.backoff.next_delay(now, Duration::ZERO);
    }
    Ok(c)
}

/// Adopts one recorded container in the runtime and fixes up its state.
fn adopt_container(
    runtime: &dyn Runtime,
    c: &mut PodContainer,
    policy: crate::lifecycle::restart::RestartPolicy,
    now: Instant,
    pod: &str,
) -> Result<(), PodError> {
    let rt_err = |source| PodError::Runtime {
        pod: pod.to_string(),
        container: c.name.clone(),
        source,
    };
    match runtime.adopt(&c.handle) {
        Ok(ContainerState::Created) => {
            runtime.start(&c.handle).map_err(rt_err)?;
            c.life
                .observed(ContainerState::Running)
                .map_err(|r| r.of(pod, &c.name))
        }
        // Running, or ended meanwhile: the next tick's poll sees which (an
        // init container keeps its recorded exit).
        Ok(_) => Ok(()),
        Err(RuntimeError::NotFound { .. }) => vanished(c, policy, now, pod),
        Err(e) => Err(rt_err(e)),
    }
}

/// A recorded container gone from the runtime: it ended with an unknown
/// status (an init container that had completed keeps its record), and an
/// app container is restarted after a back-off if `restartPolicy` says so.
fn vanished(
    c: &mut PodContainer,
    policy: crate::lifecycle::restart::RestartPolicy,
    now: Instant,
    pod: &str,
) -> Result<(), PodError> {
    tracing::warn!(pod, container = %c.name, id = %c.handle.id,
        "recorded container is gone from the runtime");
    c.probes = ContainerProbes::default();
    if c.init && c.record.state.terminated().is_some() {
        return c.life.deleted(None).map_err(|r| r.of(pod, &c.name));
    }
    c.life
        .deleted(Some(ExitStatus::Unknown))
        .map_err(|r| r.of(pod, &c.name))?;
    let started_at = match c.record.state {
        State::Running { started_at } => started_at,
        _ => SystemTime::now(),
    };
    let t = Terminated::from_exit(None, None, false, started_at, SystemTime::now());
    let code = t.exit_code;
    c.record.set_terminated(t);
    // An init container's retry (or the pod's failure) is the next
    // tick's, in sequence.
    if c.init {
        return Ok(());
    }
    if decide_on_exit(policy, ContainerKind::Regular, code) == ExitDecision::Restart {
        // The instance "started" at `now` (see `Life::from_record`): the
        // back-off counts no run.
        c.schedule_restart(now).map_err(|r| r.of(pod, &c.name))?;
    }
    Ok(())
}
