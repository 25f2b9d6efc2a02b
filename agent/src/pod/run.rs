//! Running one pod on a [`Runtime`]: a network namespace for the pod, its
//! volumes, the `initContainers` one after the other to completion, then all
//! `containers` joining the pod's namespace with the pod's name as hostname,
//! each on its own overlay rootfs of its image, logging to a file per
//! container. [`RunningPod::stop`] undoes all of it: TERM -> grace -> KILL,
//! delete, unmount rootfses and volumes, remove the namespace.
//!
//! [`RunningPod::start`] never waits for a container: it resolves every
//! container (image, env, mounts: errors there fail the start), launches
//! the first init container (or, without init containers, the app
//! containers) and returns. The rest — the next init container, retries of
//! a failed one, the app containers once all init containers completed —
//! is [`RunningPod::tick`]'s (see [`super::supervise`]). Every container of
//! the spec is in [`RunningPod::containers`] from the start, init
//! containers first, in spec order; one not created yet is `deleted` (not
//! in the runtime) and `Waiting` (`PodInitializing` in a pod with init
//! containers, else `ContainerCreating`).
//!
//! With [`PodOptions::network`] the pod's namespace also gets `eth0`, a
//! routed veth with the pod's address (`bramble_net::veth`), removed with
//! the pod.
//!
//! Layout (`PodDirs`): `data/<pod-id>/{volumes,rootfs/<container>}` on disk,
//! `logs/<pod-id>/<container>.log`, `netns/<pod-id>{,:ipc,:uts}` (the pod's
//! network, IPC and UTS namespaces, joined by all its containers).
//! Secrets live on tmpfs only (see [`super::volumes`]); the runtime's own
//! state (which holds the env of each container, secret env included) must
//! be on tmpfs too, e.g. `/run/bramble/runtime`.
//!
//! Supervision (init containers, restarts with back-off, probes, pod
//! status) is [`super::supervise`]: [`RunningPod::tick`] and
//! [`RunningPod::status`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bramble_api::objects::PodSpec;
use bramble_api::objects::common::Condition;
use bramble_api::objects::container::Container;
use bramble_api::objects::pod::Pod;
use bramble_images::{Rootfs, process_defaults};
use oci_spec::image::ImageConfiguration;

use super::netns::{NetnsError, PodNetns};
use super::volumes::{PodInputs, PodIps, PodVolumes, VolumeError, resolve_env};
use crate::lifecycle::backoff::Backoff;
use crate::lifecycle::probe::ContainerProbes;
use crate::lifecycle::restart::RestartPolicy;
use crate::lifecycle::state::{ContainerRecord, WaitingReason};
use crate::runtime::{
    ContainerConfig, ContainerHandle, ContainerState, DeviceSpec, ExitStatus, MAX_ID_LEN,
    MountSpec, Runtime, RuntimeError,
};

/// An image ready to run: unpacked layer directories (bottom first) and its
/// config.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub layers: Vec<PathBuf>,
    pub config: ImageConfiguration,
    /// Bytes of its manifest's config and layers (the size the kubelet
    /// reports for a pull), 0 when unknown.
    pub size: u64,
}

/// Why an image could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// A pull of it is under way; the start is tried again when it ends.
    #[error("is being pulled")]
    Pulling,
    /// Not on the node and not to be had (the reason says why).
    #[error("{0}")]
    Unavailable(String),
}

impl From<String> for ImageError {
    fn from(reason: String) -> Self {
        ImageError::Unavailable(reason)
    }
}

/// Where images come from: the agent's image store, or a test fixture.
pub trait ImageSource {
    /// The image for `reference` (as written in the pod spec).
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError>;
}

impl<F: Fn(&str) -> Result<ResolvedImage, String>> ImageSource for F {
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        self(reference).map_err(ImageError::Unavailable)
    }
}

/// The agent's directories a pod uses.
#[derive(Debug, Clone)]
pub struct PodDirs {
    /// Per-pod rootfses and volumes (disk).
    pub data: PathBuf,
    /// Per-pod log directories (disk, capped by the log rotation).
    pub logs: PathBuf,
    /// Network namespace files (e.g. `/run/bramble/netns`).
    pub netns: PathBuf,
}

/// Knobs not in the pod spec.
#[derive(Debug, Clone, Default)]
pub struct PodOptions {
    /// Maximum processes per container (cgroup pids); `None`: unlimited.
    pub pids_limit: Option<u64>,
    /// CrashLoopBackOff delays for restarted containers (a fresh copy per
    /// container); the default is Kubernetes' 10 s doubling to 5 min, reset
    /// after 10 min of running. Tests use e.g. 200 ms.
    pub backoff: Backoff,
    /// The agent's log pump: containers write into FIFOs it drains into
    /// rotated CRI log files. `None`: straight into the log file (tests).
    pub log_pump: Option<std::sync::Arc<crate::logs::LogPump>>,
    /// The pod's address on the node's pod network: the pod gets a veth
    /// (`eth0`) with it. `None`: only `lo` (no network configured, or a
    /// `hostNetwork` pod).
    pub network: Option<PodAddress>,
    /// The node's address (`status.hostIP`, and a `hostNetwork` pod's
    /// `status.podIP`, for env `fieldRef`s); `None` when unknown.
    pub host_ip: Option<std::net::Ipv4Addr>,
    /// Cluster DNS for pods with an address: their `/etc/resolv.conf` names
    /// the gateway (where the agent answers) and the cluster search path.
    pub dns: Option<PodDns>,
    /// Where `seccompProfile: Localhost` profiles are read from
    /// (`DATA_DIR/seccomp`); `None`: such pods fail to start.
    pub seccomp_dir: Option<PathBuf>,
}

/// What a pod's resolv.conf needs besides its gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDns {
    /// `cluster.local`.
    pub cluster_domain: String,
}

/// The file in the pod's directory bind-mounted at `/etc/resolv.conf`.
const RESOLV_CONF: &str = "resolv.conf";

/// A pod's address and its gateway (the first address of the node's pod
/// CIDR, on the host side of the pod's veth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodAddress {
    pub ip: std::net::Ipv4Addr,
    pub gateway: std::net::Ipv4Addr,
}

/// Why a pod could not be started or stopped cleanly.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("pod {pod:?}: {source}")]
    Netns {
        pod: String,
        #[source]
        source: NetnsError,
    },
    #[error("pod {pod:?}: {source}")]
    Volume {
        pod: String,
        #[source]
        source: Box<VolumeError>,
    },
    #[error("pod {pod:?}: container {container:?}: image {image:?}: {reason}")]
    Image {
        pod: String,
        container: String,
        image: String,
        reason: ImageError,
    },
    #[error("pod {pod:?}: container {container:?}: {reason}")]
    Container {
        pod: String,
        container: String,
        reason: String,
    },
    #[error("pod {pod:?}: container {container:?}: {source}")]
    Runtime {
        pod: String,
        container: String,
        #[source]
        source: RuntimeError,
    },
    #[error("pod {pod:?}: {op} {path}: {source}")]
    Io {
        pod: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pod {pod:?}: network: {source}")]
    Network {
        pod: String,
        #[source]
        source: bramble_net::NetError,
    },
    #[error("pod {pod:?}: cleanup left things behind: {}", .errors.join("; "))]
    Cleanup { pod: String, errors: Vec<String> },
}

impl PodError {
    /// Whether an image could not be had (pulling, failed, unknown).
    pub fn is_image(&self) -> bool {
        matches!(self, PodError::Image { .. })
    }

    /// The image the start waits for, when it failed only because that
    /// image is being pulled.
    pub fn waits_for_pull(&self) -> Option<&str> {
        match self {
            PodError::Image {
                image,
                reason: ImageError::Pulling,
                ..
            } => Some(image),
            _ => None,
        }
    }
}

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
    /// `Created` also before the first create (then `deleted` is set).
    pub state: ContainerState,
    pub(super) rootfs: Option<Rootfs>,
    /// Not in the runtime: not created yet, or exited and deleted.
    pub(super) deleted: bool,
    /// The spec (probes, ports) and what a re-create needs.
    pub(super) spec: Container,
    pub(super) config: ContainerConfig,
    pub(super) layers: Vec<PathBuf>,
    pub(super) read_only: bool,
    /// Kubernetes-shaped state, restart count, readiness.
    pub(super) record: ContainerRecord,
    pub(super) backoff: Backoff,
    pub(super) probes: ContainerProbes,
    /// When the current instance started (monotonic).
    pub(super) started: Instant,
    /// Waiting in CrashLoopBackOff for [`Backoff::ready_at`].
    pub(super) restart_pending: bool,
    /// SIGTERM sent (failed liveness/startup probe); SIGKILL at this time.
    pub(super) kill_deadline: Option<Instant>,
}

impl PodContainer {
    /// The container's Kubernetes-shaped record (state, lastState,
    /// restartCount, ready).
    pub fn record(&self) -> &ContainerRecord {
        &self.record
    }

    /// Never created and not waiting for a retry either: waiting for its
    /// turn (an app container while the init containers run).
    pub(super) fn never_started(&self) -> bool {
        self.deleted && !self.restart_pending && self.record.container_id.is_none()
    }
}

/// A pod started by [`RunningPod::start`]; call [`RunningPod::stop`] to
/// remove it (dropping it leaves everything in place, as after an agent
/// crash).
pub struct RunningPod<'r> {
    pub(super) runtime: &'r dyn Runtime,
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

impl std::fmt::Debug for RunningPod<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningPod")
            .field("pod_id", &self.pod_id)
            .field("containers", &self.containers)
            .finish_non_exhaustive()
    }
}

/// `namespace_name`, restricted to what container ids allow.
pub fn pod_id(pod: &Pod) -> String {
    sanitize(&format!("{}_{}", pod.namespace(), pod.name()))
}

fn sanitize(s: &str) -> String {
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

impl<'r> RunningPod<'r> {
    /// Sets the pod up and launches its first init container, or its app
    /// containers if it has none, without waiting for any of them; the
    /// following steps are [`RunningPod::tick`]'s (see the module docs).
    /// On an error everything made so far is removed.
    pub fn start(
        runtime: &'r dyn Runtime,
        pod: &Pod,
        inputs: &PodInputs,
        images: &dyn ImageSource,
        dirs: &PodDirs,
        options: &PodOptions,
    ) -> Result<RunningPod<'r>, PodError> {
        let pod_id = pod_id(pod);
        let mut running = RunningPod {
            runtime,
            dir: dirs.data.join(&pod_id),
            log_dir: dirs.logs.join(&pod_id),
            pod_id,
            netns: None,
            link: None,
            volumes: None,
            containers: Vec::new(),
            failed_init: None,
            spec: pod.spec.clone(),
            restart_policy: pod.spec.restart_policy().parse().unwrap_or_default(),
            grace: Duration::from_secs(
                pod.spec
                    .termination_grace_period_seconds
                    .and_then(|s| u64::try_from(s).ok())
                    .unwrap_or(30),
            ),
            start_time: SystemTime::now(),
            pod: pod.clone(),
            log_pump: options.log_pump.clone(),
            conditions: Vec::new(),
        };
        match running.set_up(pod, inputs, images, dirs, options) {
            Ok(()) => Ok(running),
            Err(e) => {
                if let Err(c) = running.tear_down(Duration::ZERO) {
                    tracing::warn!(error = %c, "cleanup after a failed pod start");
                }
                Err(e)
            }
        }
    }

    fn set_up(
        &mut self,
        pod: &Pod,
        inputs: &PodInputs,
        images: &dyn ImageSource,
        dirs: &PodDirs,
        options: &PodOptions,
    ) -> Result<(), PodError> {
        let name = pod.name().to_string();
        for d in [&self.dir, &self.log_dir] {
            std::fs::create_dir_all(d).map_err(|source| PodError::Io {
                pod: name.clone(),
                op: "create",
                path: d.clone(),
                source,
            })?;
        }
        self.netns = Some(
            PodNetns::create(&dirs.netns, &self.pod_id, &pod_hostname(pod)).map_err(|source| {
                PodError::Netns {
                    pod: name.clone(),
                    source,
                }
            })?,
        );
        if let (Some(addr), Some(ns)) = (options.network, &self.netns)
            && !pod.spec.host_network
        {
            let key = ns.path().to_string_lossy();
            let host_if = bramble_net::veth::host_ifname(&key);
            // Recorded first: a failed create is undone by the tear-down.
            self.link = Some((host_if, addr));
            bramble_net::veth::create(None, ns.path(), &key, addr.ip, addr.gateway).map_err(
                |source| PodError::Network {
                    pod: name.clone(),
                    source,
                },
            )?;
            if let Some(dns) = &options.dns {
                let text = bramble_dns::pod_resolv_conf(
                    addr.gateway.into(),
                    pod.namespace(),
                    &dns.cluster_domain,
                );
                let path = self.dir.join(RESOLV_CONF);
                std::fs::write(&path, text).map_err(|source| PodError::Io {
                    pod: name.clone(),
                    op: "write",
                    path,
                    source,
                })?;
            }
        }
        self.volumes = Some(
            PodVolumes::materialize(&self.dir, &pod.spec.volumes, inputs).map_err(|e| {
                PodError::Volume {
                    pod: name.clone(),
                    source: Box::new(e),
                }
            })?,
        );
        let has_init = !pod.spec.init_containers.is_empty();
        for c in &pod.spec.init_containers {
            self.prepare(pod, c, true, has_init, inputs, images, options)?;
        }
        for c in &pod.spec.containers {
            self.prepare(pod, c, false, has_init, inputs, images, options)?;
        }
        let now = Instant::now();
        let first = if has_init {
            0..1
        } else {
            0..self.containers.len()
        };
        for i in first {
            self.create_and_start(i, now)?;
        }
        Ok(())
    }

    /// Resolves one container (image, env, mounts, devices, log FIFOs) into
    /// its runtime config and adds it, not created yet (see the module docs).
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &mut self,
        pod: &Pod,
        c: &Container,
        init: bool,
        has_init: bool,
        inputs: &PodInputs,
        images: &dyn ImageSource,
        options: &PodOptions,
    ) -> Result<(), PodError> {
        let pod_name = pod.name().to_string();
        let cerr = |reason: String| PodError::Container {
            pod: pod_name.clone(),
            container: c.name.clone(),
            reason,
        };
        let image = images.resolve(&c.image).map_err(|reason| PodError::Image {
            pod: pod_name.clone(),
            container: c.name.clone(),
            image: c.image.clone(),
            reason,
        })?;
        let volumes = self.volumes.as_ref().expect("volumes before containers");
        let ips = PodIps {
            pod: match (pod.spec.host_network, options.network) {
                (true, _) => options.host_ip,
                (false, a) => a.map(|a| a.ip),
            },
            host: options.host_ip,
        };
        let env = resolve_env(pod, c, inputs, ips).map_err(|e| PodError::Volume {
            pod: pod_name.clone(),
            source: Box::new(e),
        })?;
        let defaults = process_defaults(&image.config, c, &env).map_err(|e| cerr(e.to_string()))?;
        let mut mounts = volumes.mounts_for(c).map_err(|e| PodError::Volume {
            pod: pod_name.clone(),
            source: Box::new(e),
        })?;
        let resolv = self.dir.join(RESOLV_CONF);
        let user_resolv = c
            .volume_mounts
            .iter()
            .any(|m| m.mount_path.trim_end_matches('/') == "/etc/resolv.conf");
        if resolv.is_file() && !user_resolv {
            mounts.push(MountSpec::Bind {
                source: resolv,
                destination: "/etc/resolv.conf".into(),
                read_only: true,
            });
        }
        let mut devices = Vec::new();
        for d in pod.devices() {
            devices.push(DeviceSpec::from_host(d).map_err(|e| cerr(e.to_string()))?);
        }
        let read_only = c
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false);
        let id = format!("{}_{}", self.pod_id, sanitize(&c.name));
        if id.len() > MAX_ID_LEN {
            return Err(cerr(format!(
                "container id {id:?} is longer than {MAX_ID_LEN} bytes"
            )));
        }
        // Where `create_and_start` prepares the rootfs.
        let rootfs_path = Rootfs::existing(self.dir.join("rootfs").join(&c.name), read_only).path();
        let log_path = self.log_dir.join(format!("{}.log", c.name));
        let (out, err) = match &self.log_pump {
            Some(pump) => match pump.attach(&id, &log_path) {
                Ok(f) => (f.stdout, f.stderr),
                Err(e) => return Err(cerr(format!("attaching the log FIFOs: {e}"))),
            },
            None => (log_path.clone(), log_path.clone()),
        };
        let mut cfg = ContainerConfig::new(id.clone(), rootfs_path, defaults.argv, out, err);
        cfg.env = defaults.env;
        cfg.cwd = defaults.cwd;
        cfg.uid = defaults.uid;
        cfg.gid = defaults.gid;
        cfg.hostname = Some(pod_hostname(pod));
        cfg.memory_limit_bytes = c.resources.memory_limit_bytes();
        cfg.cpu_limit_millis = c.resources.cpu_limit_millis();
        cfg.pids_limit = options.pids_limit;
        cfg.read_only_root = read_only;
        cfg.netns_path = self.netns.as_ref().map(|n| n.path().to_path_buf());
        cfg.ipc_path = self.netns.as_ref().map(|n| n.ipc_path());
        cfg.uts_path = self.netns.as_ref().map(|n| n.uts_path());
        cfg.mounts = mounts;
        cfg.devices = devices;
        if let Some(sc) = &c.security_context {
            cfg.privileged = sc.privileged.unwrap_or(false);
            if let Some(caps) = &sc.capabilities {
                cfg.capabilities_add = caps.add.clone();
                cfg.capabilities_drop = caps.drop.clone();
            }
        }
        cfg.seccomp =
            super::seccomp_profile::policy(pod, c, options.seccomp_dir.as_deref()).map_err(cerr)?;
        let mut record = ContainerRecord::new(&c.name, &c.image);
        if has_init {
            record.set_waiting(WaitingReason::PodInitializing, None);
        }
        self.containers.push(PodContainer {
            name: c.name.clone(),
            init,
            handle: ContainerHandle { id, pid: 0 },
            log_path,
            state: ContainerState::Created,
            rootfs: None,
            deleted: true,
            spec: c.clone(),
            config: cfg,
            layers: image.layers,
            read_only,
            record,
            backoff: options.backoff.clone(),
            probes: ContainerProbes::default(),
            started: Instant::now(),
            restart_pending: false,
            kill_deadline: None,
        });
        Ok(())
    }

    /// Creates and starts container `i` (first run or a restart, under its
    /// container id) on a fresh overlay rootfs: the previous instance's
    /// rootfs, upper dir included, is removed first, as Kubernetes gives a
    /// restarted container a new writable layer. On an error nothing of the
    /// attempt is left in the runtime or mounted.
    pub(super) fn create_and_start(&mut self, i: usize, now: Instant) -> Result<(), PodError> {
        let rt = self.runtime;
        let pod = self.pod.name().to_string();
        let runtime_id = self.container_id(&self.containers[i].config.id);
        let c = &mut self.containers[i];
        let name = c.name.clone();
        let cerr = |reason: String| PodError::Container {
            pod: pod.clone(),
            container: name.clone(),
            reason,
        };
        let rt_err = |source| PodError::Runtime {
            pod: pod.clone(),
            container: name.clone(),
            source,
        };
        if let Some(r) = c.rootfs.take() {
            r.remove()
                .map_err(|e| cerr(format!("removing the old rootfs: {e}")))?;
            // A restart: the last run's log becomes `--previous`.
            if let Some(pump) = &self.log_pump
                && let Err(e) = pump.new_run(&c.config.id)
            {
                tracing::warn!(pod = %pod, container = %name, error = %e,
                    "keeping the previous run's log");
            }
        }
        let dir = c
            .config
            .rootfs
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| c.config.rootfs.clone());
        let rootfs = Rootfs::prepare(&c.layers, &dir, c.read_only).map_err(|e| {
            if let Err(e) = bramble_images::rootfs::cleanup(&dir) {
                tracing::warn!(error = %e, "removing a half-prepared rootfs");
            }
            cerr(format!("preparing the rootfs: {e}"))
        })?;
        c.config.rootfs = rootfs.path();
        let handle = rt.create(&c.config).map_err(|e| {
            if let Err(e) = rootfs.clone().remove() {
                tracing::warn!(error = %e, "removing the rootfs of a failed create");
            }
            rt_err(e)
        })?;
        c.rootfs = Some(rootfs);
        if let Err(e) = rt.start(&handle) {
            match rt.delete(&handle) {
                Ok(_) => {
                    if let Some(r) = c.rootfs.take()
                        && let Err(e) = r.remove()
                    {
                        tracing::warn!(error = %e, "removing the rootfs of a failed start");
                    }
                }
                Err(d) => {
                    tracing::warn!(error = %d, "deleting a container that failed to start");
                }
            }
            return Err(rt_err(e));
        }
        c.handle = handle;
        c.deleted = false;
        c.restart_pending = false;
        c.kill_deadline = None;
        c.state = ContainerState::Running;
        c.started = now;
        c.record.set_running(runtime_id, SystemTime::now());
        c.probes = if c.init {
            ContainerProbes::default()
        } else {
            ContainerProbes::for_container(&c.spec, now)
        };
        tracing::debug!(pod = %self.pod_id, container = %c.name,
            restarts = c.record.restart_count, "container started");
        Ok(())
    }

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
        for c in self.containers.iter_mut().filter(|c| !c.init && !c.deleted) {
            let s = self
                .runtime
                .poll_exit(&c.handle)
                .map_err(|source| PodError::Runtime {
                    pod: self.pod_id.clone(),
                    container: c.name.clone(),
                    source,
                })?;
            if s != c.state {
                c.state = s;
                changed.push((c.name.clone(), s));
            }
        }
        Ok(changed)
    }

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
            match c.state {
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

    /// Blocks until `container` exits or `timeout` passes. A container that
    /// is not in the runtime (not created yet, or exited and deleted by
    /// [`RunningPod::tick`]) is not waited for: its last exit, or an error
    /// if it never ran.
    pub fn wait_container(
        &mut self,
        container: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<ExitStatus>, PodError> {
        let rt = self.runtime;
        let pod = self.pod_id.clone();
        let c = self
            .containers
            .iter_mut()
            .rev()
            .find(|c| c.name == container)
            .ok_or_else(|| PodError::Container {
                pod: pod.clone(),
                container: container.into(),
                reason: "no such container".into(),
            })?;
        if c.deleted {
            return match c.state {
                ContainerState::Exited(s) => Ok(Some(s)),
                _ => Err(PodError::Container {
                    pod,
                    container: container.into(),
                    reason: "not created yet".into(),
                }),
            };
        }
        let status = rt
            .wait(&c.handle, timeout)
            .map_err(|source| PodError::Runtime {
                pod,
                container: container.into(),
                source,
            })?;
        if let Some(s) = status {
            c.state = ContainerState::Exited(s);
        }
        Ok(status)
    }

    /// Stops the pod and removes everything it had on the node except its
    /// logs: app containers get SIGTERM, `grace` to exit, then SIGKILL;
    /// then every container is deleted, rootfses and volumes unmounted and
    /// removed, the network namespace removed. Returns how each container
    /// that ran ended (its last instance, init containers included), in
    /// spec order. Every step is attempted even if an earlier one fails.
    pub fn stop(mut self, grace: Duration) -> Result<Vec<(String, ExitStatus)>, PodError> {
        self.tear_down(grace)
    }

    fn tear_down(&mut self, grace: Duration) -> Result<Vec<(String, ExitStatus)>, PodError> {
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

/// The pod's hostname: `spec.hostname`, else the pod's name.
fn pod_hostname(pod: &Pod) -> String {
    pod.spec
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod.name().to_string())
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
