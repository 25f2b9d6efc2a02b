//! The agent's reconcile loop, on the main thread: it restores the last
//! accepted desired set from `RUN_DIR/desired.json` at start (offline
//! autonomy), applies every newer set the session hands over to the
//! [`Node`] (whose pods each run on a thread of their own and wake this loop
//! with [`NodeCommand::PodsReported`]), retries pods that could not start
//! (image pulls) with back-off, and keeps the [`SharedReport`] the session
//! publishes up to date (with the pulls each pod waited for: [`PullWaits`]). It ends on a stop flag or when the hub refuses the node
//! ([`LoopEnd`]). `bramble-agent run` drives the same loop over local files
//! ([`NodeLoop::apply_local`]), its report printed as JSON lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bramble_api::objects::pod::Pod;
use bramble_api::objects::pod_status::{
    ContainerState, ContainerStateWaiting, ContainerStatus, PodStatus,
};
use bramble_api::protocol::status::Rejection;
use bramble_api::protocol::{ContainerUsage, Desired, PodReport, PodUsage};

use super::desired_file;
use super::pull_waits::PullWaits;
use super::report::{SharedReport, node_usage};
use crate::lifecycle::state::WaitingReason;
use crate::node::volume_dirs;
use crate::node::{Node, NodeEvent, StartCause};
use crate::pod::run::pod_id;
use crate::pod::{ClaimDir, PodInputs};

/// What the session hands the node loop.
#[derive(Debug)]
pub enum NodeCommand {
    /// A decoded, valid desired set (its generation not yet compared).
    Desired(Box<Desired>),
    /// A desired payload that was refused.
    Rejected(Rejection),
    /// An image pull ended: retry the pods waiting for it now.
    PullDone,
    /// A pod's thread reported (started, failed, stopped, a new status):
    /// collect it now.
    PodsReported,
    /// The hub refused this node for good (its token, or a newer agent
    /// required): the loop ends, the pods keep running.
    Refused(String),
    /// A build step wants an address of the pod network; the answer (none
    /// without a pod network) goes to the sender.
    StepAddress(std::sync::mpsc::SyncSender<Option<crate::node::build_addresses::StepAddress>>),
    /// A build step gives its address back.
    StepAddressDone(std::net::Ipv4Addr),
}

/// Why [`NodeLoop::run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopEnd {
    /// Asked to stop (a signal).
    Stopped,
    /// The hub refused the node; the message says why and what to do.
    Refused(String),
}

/// How often pod and node usage is sampled unless
/// [`NodeLoop::with_usage_every`] says otherwise.
const USAGE_EVERY: Duration = Duration::from_secs(5);
/// How often the volumes' sizes are measured (a walk of their trees, on a
/// thread of its own).
const VOLUME_USAGE_EVERY: Duration = Duration::from_secs(60);
/// First delay before retrying a pod that could not start; doubles.
const RETRY_FIRST: Duration = Duration::from_secs(2);
/// Longest delay between start attempts.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// A desired pod that could not start, and when to try again.
#[derive(Debug, Clone)]
struct StartFailure {
    error: String,
    attempts: u32,
    retry_at: Instant,
    /// Waiting for an image pull: `PullDone` retries it at once. Kept
    /// apart from `error`, which during a retried pull is still the last
    /// pull's error.
    pulling: bool,
    /// What `error` was about.
    cause: StartCause,
}

/// See the module docs.
pub struct NodeLoop {
    node: Node,
    run_dir: PathBuf,
    current: Option<Desired>,
    inputs: PodInputs,
    failures: BTreeMap<String, StartFailure>,
    pulls: PullWaits,
    statuses: BTreeMap<String, PodStatus>,
    report: Arc<SharedReport>,
    on_change: Box<dyn Fn() + Send>,
    usage_every: Option<Duration>,
    next_usage: Instant,
    refused: Option<String>,
    /// How many pulls have ended ([`NodeCommand::PullDone`]).
    pulls_ended: u64,
    /// Per pod whose start is under way: `pulls_ended` when it began. A
    /// start that reports waiting for a pull which has ended meanwhile
    /// (its `PullDone` came first) is retried at once.
    attempts: BTreeMap<String, u64>,
    /// When the volumes are measured next; set while a measurement runs.
    next_volume_usage: Instant,
    measuring: Arc<AtomicBool>,
    /// Runs the set's build jobs (agents that build).
    builder: Option<crate::build::runner::Builder>,
}

impl NodeLoop {
    /// A loop over `node`; `on_change` is called when the report changed.
    pub fn new(
        node: Node,
        run_dir: PathBuf,
        report: Arc<SharedReport>,
        on_change: Box<dyn Fn() + Send>,
    ) -> NodeLoop {
        NodeLoop {
            node,
            run_dir,
            current: None,
            inputs: PodInputs::default(),
            failures: BTreeMap::new(),
            pulls: PullWaits::default(),
            statuses: BTreeMap::new(),
            report,
            on_change,
            usage_every: Some(USAGE_EVERY),
            next_usage: Instant::now(),
            refused: None,
            pulls_ended: 0,
            attempts: BTreeMap::new(),
            next_volume_usage: Instant::now(),
            measuring: Arc::new(AtomicBool::new(false)),
            builder: None,
        }
    }

    /// Runs the build jobs of the sets with `builder`.
    pub fn with_builder(mut self, builder: crate::build::runner::Builder) -> Self {
        self.builder = Some(builder);
        self
    }

    /// Samples usage every `every` instead of every 5 s; `None`: never.
    pub fn with_usage_every(mut self, every: Option<Duration>) -> Self {
        self.usage_every = every;
        self
    }

    /// Applies `d` now without saving it to `RUN_DIR/desired.json` (a set
    /// given on the command line, not by a hub).
    pub fn apply_local(&mut self, d: Desired) {
        self.accept(d);
    }

    /// Applies the set saved by an earlier agent process, if any. Pods
    /// adopted by [`Node::open`] with the same uid and spec keep running.
    pub fn restore(&mut self) {
        match desired_file::load(&self.run_dir) {
            Ok(Some(d)) => {
                tracing::info!(generation = %d.generation, pods = d.pods.len(), "restoring the saved desired set");
                self.accept(d);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "ignoring the saved desired set"),
        }
    }

    /// Handles one command from the session.
    pub fn handle(&mut self, cmd: NodeCommand) {
        match cmd {
            NodeCommand::Desired(d) => {
                if !desired_file::accepts(self.current.as_ref(), &d) {
                    tracing::debug!(generation = %d.generation, "desired set not newer; ignored");
                    return;
                }
                if let Err(error) = desired_file::save(&self.run_dir, &d) {
                    tracing::warn!(%error, "saving the desired set");
                }
                self.accept(*d);
            }
            NodeCommand::Rejected(r) => {
                tracing::warn!(generation = ?r.generation, reason = %r.reason, "desired set refused");
                self.publish(|rep| rep.desired_rejected = Some(r));
            }
            NodeCommand::PullDone => {
                self.pulls_ended += 1;
                let now = Instant::now();
                let mut waiting = false;
                for f in self.failures.values_mut() {
                    if f.pulling {
                        f.retry_at = now;
                        waiting = true;
                    }
                }
                if waiting {
                    self.apply();
                }
            }
            NodeCommand::Refused(why) => self.refused = Some(why),
            NodeCommand::StepAddress(reply) => {
                let address = self.node.reserve_step_address().unwrap_or_else(|error| {
                    tracing::warn!(%error, "a build step runs without network");
                    None
                });
                if let Err(std::sync::mpsc::TrySendError::Disconnected(Some(a))) =
                    reply.try_send(address)
                {
                    // The step stopped waiting: the address is free again.
                    self.node.release_step_address(a.address.ip);
                }
            }
            NodeCommand::StepAddressDone(ip) => self.node.release_step_address(ip),
            // Collected by the round that follows every command.
            NodeCommand::PodsReported => {}
        }
    }

    fn accept(&mut self, d: Desired) {
        tracing::info!(generation = %d.generation, pods = d.pods.len(), "applying desired set");
        self.inputs = inputs_of(&d, self.node.volumes_dir());
        let reclaimed = volume_dirs::reclaim(self.node.volumes_dir(), &d.reclaim);
        for error in &reclaimed.errors {
            tracing::warn!(%error, "volume not reclaimed");
        }
        volume_dirs::delete(reclaimed.trash);
        self.node.set_network(d.network.clone());
        if let Some(b) = &mut self.builder {
            b.sync(&d.builds);
        }
        let generation = d.generation;
        self.current = Some(d);
        self.failures.clear();
        // Observed = accepted and converging to; statuses sent while the
        // pods start already carry it.
        self.publish(|rep| {
            rep.observed_generation = Some(generation);
            rep.desired_rejected = None;
            rep.reclaimed = reclaimed.gone;
        });
        self.apply();
    }

    /// Reconciles the node to the current set. Pods that failed to start
    /// and whose retry is not due yet are left out (they do not run, so
    /// leaving them out stops nothing). Returns at once: starts and stops
    /// are reported by the node later ([`NodeLoop::tick`]).
    fn apply(&mut self) {
        let now = Instant::now();
        let pods: Vec<Pod> = self
            .current
            .as_ref()
            .map(|d| d.pods.clone())
            .unwrap_or_default();
        let due: Vec<Pod> = pods
            .iter()
            .filter(|p| {
                self.failures
                    .get(&pod_id(p))
                    .is_none_or(|f| f.retry_at <= now)
            })
            .cloned()
            .collect();
        for p in &due {
            let id = pod_id(p);
            if self.node.pod(&id).is_none() {
                self.attempts.insert(id, self.pulls_ended);
            }
        }
        let events = self.node.apply(&due, &self.inputs);
        self.on_events(events, now);
        let wanted: Vec<String> = pods.iter().map(pod_id).collect();
        self.failures.retain(|id, _| wanted.contains(id));
        self.attempts.retain(|id, _| wanted.contains(id));
        let running = self.node.pod_ids();
        self.pulls
            .retain(|id| wanted.iter().chain(&running).any(|w| w == id));
        self.refresh(now);
    }

    /// What the node reported: starts, failed starts (retried with
    /// back-off, or when their image is pulled), stops. Returns whether a
    /// pod stopped or failed to start (a pod recreated under its name may
    /// start now).
    fn on_events(&mut self, events: Vec<NodeEvent>, now: Instant) -> bool {
        let mut ended = false;
        for e in events {
            match e {
                NodeEvent::Started { pod } => {
                    self.attempts.remove(&pod);
                    self.failures.remove(&pod);
                    let node = &self.node;
                    self.pulls.started(&pod, Instant::now(), |image| {
                        node.image_size(image).unwrap_or(0)
                    });
                }
                NodeEvent::WaitsForPull { pod, image } => {
                    ended = true;
                    // Waiting for a pull: no attempt counted, the last
                    // pull error (if any) still reported; woken by
                    // `PullDone`, polled meanwhile — at once if a pull
                    // ended while this start was under way.
                    self.pulls.waiting(&pod, &image, now);
                    let missed = self
                        .attempts
                        .remove(&pod)
                        .is_some_and(|began| began < self.pulls_ended);
                    let (attempts, error, cause) = match self.failures.get(&pod) {
                        Some(f) if f.attempts > 0 => (f.attempts, f.error.clone(), f.cause),
                        _ => (
                            0,
                            format!("image {image:?} is being pulled"),
                            StartCause::Image,
                        ),
                    };
                    self.failures.insert(
                        pod,
                        StartFailure {
                            error,
                            attempts,
                            retry_at: if missed { now } else { now + RETRY_MAX },
                            pulling: true,
                            cause,
                        },
                    );
                }
                NodeEvent::StartFailed { pod, error, cause } => {
                    ended = true;
                    self.attempts.remove(&pod);
                    self.pulls.failed(&pod);
                    let attempts = self.failures.get(&pod).map_or(0, |f| f.attempts) + 1;
                    let delay = RETRY_FIRST
                        .saturating_mul(1 << (attempts - 1).min(8))
                        .min(RETRY_MAX);
                    tracing::warn!(%pod, %error, attempts, retry_in_s = delay.as_secs(), "pod could not start");
                    self.failures.insert(
                        pod,
                        StartFailure {
                            error,
                            attempts,
                            retry_at: now + delay,
                            pulling: false,
                            cause,
                        },
                    );
                }
                NodeEvent::Stopped { pod } => {
                    ended = true;
                    self.statuses.remove(&pod);
                }
                NodeEvent::StopFailed { pod, error } => {
                    ended = true;
                    self.statuses.remove(&pod);
                    tracing::warn!(%pod, %error, "pod could not be stopped");
                }
                _ => {}
            }
        }
        ended
    }

    /// One round: what the pods reported, retries that are due, the report.
    pub fn tick(&mut self, now: Instant) {
        let (statuses, events) = self.node.tick(now);
        for (id, status) in statuses {
            self.statuses.insert(id, status);
        }
        let ended = self.on_events(events, now);
        if ended || self.failures.values().any(|f| f.retry_at <= now) {
            self.apply();
        } else {
            self.refresh(now);
        }
    }

    /// Collects statuses (and usage every [`USAGE_EVERY`]) into the report.
    /// Starts a measurement of the volumes' sizes when one is due; the
    /// thread writes the figures into the report (sent with the next status).
    fn measure_volumes(&mut self, now: Instant) {
        if now < self.next_volume_usage || self.measuring.swap(true, Ordering::SeqCst) {
            return;
        }
        self.next_volume_usage = now + VOLUME_USAGE_EVERY;
        let dir = self.node.volumes_dir().to_path_buf();
        let report = self.report.clone();
        let measuring = self.measuring.clone();
        let spawned = std::thread::Builder::new()
            .name("volume-usage".into())
            .spawn(move || {
                let usage = volume_dirs::usage(&dir);
                report.update(|r| r.volume_usage = usage);
                measuring.store(false, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.measuring.store(false, Ordering::SeqCst);
        }
    }

    fn refresh(&mut self, now: Instant) {
        if self.usage_every.is_some() {
            self.measure_volumes(now);
        }
        let running = self.node.pod_ids();
        self.statuses.retain(|id, _| running.contains(id));
        let usage = match self.usage_every {
            Some(every) if now >= self.next_usage => {
                self.next_usage = now + every;
                Some((self.node.usage(), node_usage()))
            }
            _ => None,
        };
        let mut pods = BTreeMap::new();
        for id in &running {
            let (Some(p), Some(status)) = (self.node.pod(id), self.statuses.get(id)) else {
                continue;
            };
            let mut report = report_of(p, status.clone());
            report.pulls = self.pulls.report(id);
            pods.insert(id.clone(), report);
        }
        if let Some(d) = &self.current {
            for p in &d.pods {
                let id = pod_id(p);
                if let (false, Some(f)) = (pods.contains_key(&id), self.failures.get(&id)) {
                    let mut report = report_of(p, failed_status(p, f));
                    report.pulls = self.pulls.report(&id);
                    pods.insert(id, report);
                }
            }
        }
        let builds = self
            .builder
            .as_ref()
            .map(|b| b.reports())
            .unwrap_or_default();
        self.publish(|rep| {
            rep.builds = builds
                .into_iter()
                .map(|r| ((r.uid.clone(), r.platform.clone()), r))
                .collect();
            let old = std::mem::take(&mut rep.pods);
            for (id, mut pod) in pods {
                pod.usage = old.get(&id).and_then(|o| o.usage.clone());
                rep.pods.insert(id, pod);
            }
            if let Some((pod_usage, node)) = usage {
                for u in pod_usage {
                    if let Some(p) = rep.pods.get_mut(&u.pod) {
                        p.usage = Some(PodUsage {
                            cpu_nanos: u.total.cpu_usage_ns,
                            memory_bytes: u.total.memory_bytes,
                            containers: u
                                .containers
                                .iter()
                                .map(|(name, s)| ContainerUsage {
                                    name: name.clone(),
                                    cpu_nanos: s.cpu_usage_ns,
                                    memory_bytes: s.memory_bytes,
                                })
                                .collect(),
                        });
                    }
                }
                rep.node_usage = node;
                rep.usage_at = Some(now);
            }
        });
    }

    fn publish(&self, f: impl FnOnce(&mut super::report::NodeReport)) {
        if self.report.update(f) {
            (self.on_change)();
        }
    }

    /// Runs until `stop` or until the hub refuses the node: commands from
    /// `rx` as they come, supervision at least every `max`. Returns with
    /// the pods still running.
    pub fn run(&mut self, stop: &AtomicBool, rx: &Receiver<NodeCommand>, max: Duration) -> LoopEnd {
        let end = loop {
            if stop.load(Ordering::SeqCst) {
                break LoopEnd::Stopped;
            }
            if let Some(why) = self.refused.take() {
                break LoopEnd::Refused(why);
            }
            let now = Instant::now();
            self.tick(now);
            let mut wake = now + max;
            if let Some(f) = self.failures.values().map(|f| f.retry_at).min() {
                wake = wake.min(f.max(now));
            }
            let wait = wake.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(cmd) => {
                    self.handle(cmd);
                    while let Ok(cmd) = rx.try_recv() {
                        self.handle(cmd);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // No session (`bramble-agent run`): only the clock wakes.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        };
        tracing::info!(
            pods = self.node.pod_ids().len(),
            "exiting; pods keep running"
        );
        end
    }
}

/// The ConfigMaps, Secrets and claims' volumes of a desired set as pods
/// consume them; `local-path` volumes are in `volumes_dir`.
pub fn inputs_of(d: &Desired, volumes_dir: &Path) -> PodInputs {
    let mut inputs = PodInputs::default();
    for c in &d.volumes {
        let dir = match &c.path {
            Some(p) => Some(ClaimDir {
                path: PathBuf::from(p),
                provisioned: false,
            }),
            None => volume_dirs::path_of(volumes_dir, &c.volume).map(|path| ClaimDir {
                path,
                provisioned: true,
            }),
        };
        if let Some(dir) = dir {
            inputs
                .claims
                .insert(format!("{}/{}", c.namespace, c.claim), dir);
        }
    }
    for cm in &d.config_maps {
        inputs.config_maps.insert(
            cm.metadata.key().to_string(),
            cm.data
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect(),
        );
    }
    for s in &d.secrets {
        let mut data = s.decoded_data();
        for (k, v) in &s.string_data {
            data.insert(k.clone(), v.clone().into_bytes());
        }
        let key = s.metadata.key().to_string();
        inputs.secrets.insert(key, data);
    }
    inputs
}

fn report_of(pod: &Pod, status: PodStatus) -> PodReport {
    PodReport {
        namespace: pod.namespace().to_string(),
        name: pod.name().to_string(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        status,
        usage: None,
        pulls: Vec::new(),
    }
}

/// The status of a desired pod that could not start: Pending, its
/// containers waiting with `ErrImagePull` (just failed) or
/// `ImagePullBackOff` (waiting to retry) for image errors,
/// `ContainerCreating` while the image is being pulled, else
/// `CreateContainerError`.
fn failed_status(pod: &Pod, f: &StartFailure) -> PodStatus {
    let reason = match (f.cause, f.attempts) {
        _ if f.pulling && f.attempts == 0 => WaitingReason::ContainerCreating,
        (StartCause::Image, 1) => WaitingReason::ErrImagePull,
        (StartCause::Image, _) => WaitingReason::ImagePullBackOff,
        (StartCause::Other, _) => WaitingReason::CreateContainerError,
    };
    PodStatus {
        phase: Some("Pending".into()),
        container_statuses: pod
            .spec
            .containers
            .iter()
            .map(|c| ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone(),
                state: Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason.as_str().into()),
                        message: Some(f.error.clone()),
                    }),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            })
            .collect(),
        ..PodStatus::default()
    }
}
