//! A pod running on a [`Runtime`]: the [`RunningPod`] type, its containers
//! ([`PodContainer`]), and what can be asked of it (accessors,
//! [`RunningPod::poll`], [`RunningPod::wait_container`]). Its life is in
//! the modules beside this one, one concept each:
//!
//! - [`super::start`]: set-up (directories, namespaces, network, volumes),
//!   [`super::prepare`] resolves each container (its env:
//!   [`super::env`]), [`super::launch`] creates and starts one on a fresh
//!   rootfs;
//! - [`super::life`]: each container's lifecycle ([`Life`]), one enum with
//!   guarded transitions;
//! - [`super::supervise`]: init containers, exits, restarts with back-off,
//!   [`super::probes`]; [`super::status`]: phase and `PodStatus`;
//! - [`super::teardown`]: stop, TERM -> grace -> KILL, delete, unmount
//!   rootfses and volumes, remove the namespaces;
//! - [`super::record`]: what is recorded to adopt the pod after an agent
//!   restart.
//!
//! Every container of the spec is in [`RunningPod::containers`] from the
//! start, init containers first, in spec order; one not created yet is
//! [`Life::NotCreated`] (not in the runtime) and `Waiting`
//! (`PodInitializing` in a pod with init containers, else
//! `ContainerCreating`).
//!
//! Layout (`PodDirs`): `data/<pod-id>/{volumes,rootfs/<container>}` on disk,
//! `logs/<pod-id>/<container>.log`, `netns/<pod-id>{,:ipc,:uts}` (the pod's
//! network, IPC and UTS namespaces, joined by all its containers).
//! Secrets live on tmpfs only (see [`super::volumes`]); the runtime's own
//! state (which holds the env of each container, secret env included) must
//! be on tmpfs too, e.g. `/run/bramble/runtime`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bramble_api::objects::PodSpec;
use bramble_api::objects::common::Condition;
use bramble_api::objects::container::Container;
use bramble_api::objects::pod::Pod;
use bramble_images::Rootfs;

pub use super::error::{ContainerError, PodError};
pub use super::image_error::ImageError;
pub use super::life::Life;
use super::netns::PodNetns;
pub use super::options::{ImageSource, PodAddress, PodDirs, PodDns, PodOptions, ResolvedImage};
pub use super::status::RunPhase;
use super::volumes::PodVolumes;
use crate::lifecycle::backoff::Backoff;
use crate::lifecycle::probe::ContainerProbes;
use crate::lifecycle::restart::RestartPolicy;
use crate::lifecycle::state::ContainerRecord;
use crate::runtime::{ContainerConfig, ContainerHandle, ContainerState, ExitStatus, Runtime};

/// One container of a running pod.
#[derive(Debug)]
pub struct PodContainer {
    /// The name in the pod spec.
    pub name: String,
    pub init: bool,
    /// The runtime handle of the current instance (pid 0 before the first
    /// create).
    pub handle: ContainerHandle,
    /// stdout and stderr, interleaved.
    pub log_path: PathBuf,
    /// Where it is in its lifecycle: not created yet, in the runtime
    /// (maybe being killed), ended, or backing off before a restart.
    pub(super) life: Life,
    pub(super) rootfs: Option<Rootfs>,
    /// The spec (probes, ports) and what a re-create needs.
    pub(super) spec: Container,
    pub(super) config: ContainerConfig,
    /// The user (`user[:group]`, with a name) to look up in the image's
    /// `/etc/passwd` and `/etc/group` at every create, into `config`'s
    /// ids; `None`: `config`'s ids are final.
    pub(super) image_user: Option<String>,
    pub(super) layers: Vec<PathBuf>,
    pub(super) read_only: bool,
    /// Kubernetes-shaped state, restart count, readiness.
    pub(super) record: ContainerRecord,
    pub(super) backoff: Backoff,
    pub(super) probes: ContainerProbes,
}

impl PodContainer {
    /// The container's Kubernetes-shaped record (state, lastState,
    /// restartCount, ready).
    pub fn record(&self) -> &ContainerRecord {
        &self.record
    }

    /// Where it is in its lifecycle.
    pub fn life(&self) -> Life {
        self.life
    }

    /// As the runtime last saw it while it is there, else how it last
    /// ended (`Created` before it ever ran).
    pub fn state(&self) -> ContainerState {
        self.life.state()
    }

    /// Deleted from the runtime (exited; maybe waiting for a restart), or
    /// not created yet.
    pub fn is_deleted(&self) -> bool {
        !self.life.in_runtime()
    }

    /// Never created and not waiting for a retry either: waiting for its
    /// turn (an app container while the init containers run).
    pub(super) fn never_started(&self) -> bool {
        self.life.never_created()
    }
}

/// A pod started by [`RunningPod::start`]; call [`RunningPod::stop`] to
/// remove it (dropping it leaves everything in place, as after an agent
/// crash).
pub struct RunningPod {
    pub(super) runtime: Arc<dyn Runtime>,
    pub(super) pod_id: String,
    pub(super) dir: PathBuf,
    pub(super) log_dir: PathBuf,
    pub(super) netns: Option<PodNetns>,
    /// The pod's veth (host side name) and address, if it has one.
    pub(super) link: Option<(String, PodAddress)>,
    pub(super) volumes: Option<PodVolumes>,
    /// Init containers first, then app containers, each in spec order.
    pub(super) containers: Vec<PodContainer>,
    /// The init container that failed under `restartPolicy: Never`.
    pub(super) failed_init: Option<(String, ExitStatus)>,
    /// The pod as given (metadata for the agent's record and status).
    pub(super) pod: Pod,
    /// Where container output goes, if not straight into files.
    pub(super) log_pump: Option<std::sync::Arc<crate::logs::LogPump>>,
    pub(super) spec: PodSpec,
    pub(super) restart_policy: RestartPolicy,
    /// `terminationGracePeriodSeconds` (default 30 s).
    pub(super) grace: Duration,
    pub(super) start_time: SystemTime,
    /// The last conditions [`RunningPod::status`] reported (keeps their
    /// transition times).
    pub(super) conditions: Vec<Condition>,
}

impl std::fmt::Debug for RunningPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningPod")
            .field("pod_id", &self.pod_id)
            .field("containers", &self.containers)
            .finish_non_exhaustive()
    }
}

/// `terminationGracePeriodSeconds` (default 30 s).
pub(super) fn grace_period(pod: &Pod) -> Duration {
    Duration::from_secs(
        pod.spec
            .termination_grace_period_seconds
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(30),
    )
}

/// `namespace_name`, restricted to what container ids allow.
pub fn pod_id(pod: &Pod) -> String {
    sanitize(&format!("{}_{}", pod.namespace(), pod.name()))
}

pub(super) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl RunningPod {
    /// `containerID` as reported in statuses: `<runtime>://<id>`.
    pub(super) fn container_id(&self, id: &str) -> String {
        format!("{}://{id}", self.runtime.name())
    }

    /// `namespace_name` of the pod.
    pub fn id(&self) -> &str {
        &self.pod_id
    }

    /// The pod's network namespace file.
    pub fn netns_path(&self) -> Option<&Path> {
        self.netns.as_ref().map(|n| n.path())
    }

    /// The pod's address on the pod network, if it has one.
    pub fn address(&self) -> Option<PodAddress> {
        self.link.as_ref().map(|(_, a)| *a)
    }

    /// The pod's data directory (rootfses, volumes).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pod's volumes.
    pub fn volumes(&self) -> Option<&PodVolumes> {
        self.volumes.as_ref()
    }

    /// Init and app containers in start order.
    pub fn containers(&self) -> &[PodContainer] {
        &self.containers
    }

    /// The container named `name` (an app container wins over an init one).
    pub fn container(&self, name: &str) -> Option<&PodContainer> {
        self.containers.iter().rev().find(|c| c.name == name)
    }

    /// The init container that failed, and how.
    pub fn failed_init(&self) -> Option<(&str, ExitStatus)> {
        self.failed_init.as_ref().map(|(n, s)| (n.as_str(), *s))
    }

    /// Refreshes the app containers' states; returns those that changed
    /// (name, new state).
    pub fn poll(&mut self) -> Result<Vec<(String, ContainerState)>, PodError> {
        let mut changed = Vec::new();
        for i in 0..self.containers.len() {
            let c = &self.containers[i];
            if c.init || !c.life.in_runtime() {
                continue;
            }
            let before = c.state();
            let s = self.poll_state(i)?;
            if s != before {
                changed.push((self.containers[i].name.clone(), s));
            }
        }
        Ok(changed)
    }

    /// Blocks until `container` exits or `timeout` passes. A container that
    /// is not in the runtime (not created yet, or exited and deleted by
    /// [`RunningPod::tick`]) is not waited for: its last exit, or an error
    /// if it never ran.
    pub fn wait_container(
        &mut self,
        container: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<ExitStatus>, PodError> {
        let rt = self.runtime.clone();
        let pod = self.pod_id.clone();
        let c = self
            .containers
            .iter_mut()
            .rev()
            .find(|c| c.name == container)
            .ok_or_else(|| PodError::Container {
                pod: pod.clone(),
                container: container.into(),
                source: Box::new(ContainerError::NoSuchContainer),
            })?;
        if !c.life.in_runtime() {
            return match c.state() {
                ContainerState::Exited(s) => Ok(Some(s)),
                _ => Err(PodError::Container {
                    pod,
                    container: container.into(),
                    source: Box::new(ContainerError::NotCreated),
                }),
            };
        }
        let status = rt
            .wait(&c.handle, timeout)
            .map_err(|source| PodError::Runtime {
                pod: pod.clone(),
                container: container.into(),
                source,
            })?;
        if let Some(s) = status {
            c.life
                .observed(ContainerState::Exited(s))
                .map_err(|r| r.of(&pod, container))?;
        }
        Ok(status)
    }
}

/// (exit code, signal) as
/// [`Terminated::from_exit`](crate::lifecycle::state::Terminated::from_exit)
/// takes them.
pub(super) fn exit_parts(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    match status {
        ExitStatus::Code(c) => (Some(c), None),
        ExitStatus::Signal(s) => (None, Some(s)),
        ExitStatus::Unknown => (None, None),
    }
}
