//! The node: every pod this agent runs, kept in line with a desired set.
//!
//! [`Node::open`] adopts the pods an earlier agent process recorded
//! ([`records`]), then removes whatever else of Bramble's is on the node
//! ([`leftovers`]) — so after a crash and restart nothing runs twice and
//! nothing is left over. Each pod lives on a thread of its own
//! ([`pod_worker`]: start, supervision, record, stop), so no pod waits for
//! another. [`Node::apply`] orders the desired pods that do not run
//! started and those no longer desired stopped, and returns at once;
//! [`Node::tick`] collects what the pods' threads reported since (started,
//! failed, stopped, changed statuses). A pod recreated under the same name
//! starts once its old incarnation has stopped.
//! With the pod network on ([`Node::enable_network`], [`network`]), new
//! pods get an address from the node's pod CIDR and a veth, and every
//! apply programs the node's routes and nft table.
//! The hub connection (`session::node_loop`) or the local entry point
//! (`bramble-agent run -f pod.yaml`) drive it.

pub mod build_addresses;
pub mod dns;
pub mod images;
pub mod info;
pub mod leftovers;
pub mod manifests;
pub mod network;
pub mod pod_worker;
pub mod pull;
pub mod records;
pub mod tmpfs;
pub mod volume_dirs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bramble_api::objects::pod::Pod;
use bramble_api::objects::pod_status::PodStatus;

use crate::pod::run::pod_id;
use crate::pod::{ImageSource, PodAddress, PodDirs, PodError, PodInputs, PodOptions, RunningPod};
use crate::runtime::{ContainerStats, Runtime};
use leftovers::{Owned, Places};
use pod_worker::{Begin, Context, Order, Outbox, PodWorker, Report};
use records::Records;

/// Where a node keeps things.
#[derive(Debug, Clone)]
pub struct NodeDirs {
    /// Pods' data and logs (disk).
    pub pods: PodDirs,
    /// Pod records (tmpfs).
    pub records: PathBuf,
    /// Parent of the containers' cgroups, e.g. `/bramble`.
    pub cgroup_parent: String,
    /// `local-path` volumes, one directory each ([`volume_dirs`]).
    pub volumes: PathBuf,
}

/// Something the node did, for the log and the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    Adopted {
        pod: String,
    },
    Started {
        pod: String,
    },
    StartFailed {
        pod: String,
        error: String,
        cause: StartCause,
    },
    /// The start waits for `image`, being pulled.
    WaitsForPull {
        pod: String,
        image: String,
    },
    Stopped {
        pod: String,
    },
    StopFailed {
        pod: String,
        error: String,
    },
    LeftoverRemoved {
        what: String,
    },
    LeftoverError {
        error: String,
    },
}

/// What kept a pod from starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartCause {
    /// One of its images could not be had (a failed pull, an unknown name).
    Image,
    /// Anything else: its network, volumes, the runtime.
    Other,
}

/// Whether a desired pod is the one running: same uid and spec (a pod
/// recreated under the same name is another pod).
pub fn same_incarnation(desired: &Pod, running: &Pod) -> bool {
    desired.metadata.uid == running.metadata.uid && desired.spec == running.spec
}

/// Sets `status.hostIP` (the node's address, as the kubelet does) and, for a
/// `hostNetwork` pod, `podIP` to the same address.
pub(crate) fn set_host_ip(
    status: &mut PodStatus,
    host_ip: Option<std::net::Ipv4Addr>,
    host_network: bool,
) {
    let Some(ip) = host_ip.map(|ip| ip.to_string()) else {
        return;
    };
    let entry = || vec![bramble_api::objects::pod_status::PodIp { ip: ip.clone() }];
    status.host_ips = entry();
    if host_network && status.pod_ip.is_none() {
        status.pod_ip = Some(ip.clone());
        status.pod_ips = entry();
    }
    status.host_ip = Some(ip);
}

/// Per-pod resource usage, summed over its running containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    pub pod: String,
    pub containers: Vec<(String, ContainerStats)>,
    pub total: ContainerStats,
}

/// Where a pod is in the node's eyes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Its thread is starting it.
    Starting,
    /// Started (or adopted): supervised by its thread.
    Running,
    /// Told to stop; its thread ends when it has.
    Stopping,
}

/// A pod of this node and its thread.
struct Slot {
    pod: Pod,
    address: Option<PodAddress>,
    phase: Phase,
    worker: PodWorker,
}

/// The pods of this node. See the module docs.
pub struct Node {
    runtime: Arc<dyn Runtime>,
    images: Arc<dyn ImageSource>,
    dirs: NodeDirs,
    options: PodOptions,
    records: Arc<Mutex<Records>>,
    pods: BTreeMap<String, Slot>,
    /// The pods' threads report here, then call `wake`.
    reports: Receiver<Report>,
    outbox: Outbox,
    /// Longest pause between a pod's supervision rounds.
    max_pause: Duration,
    /// The pod network, once [`Node::enable_network`] was called.
    net: Option<network::NodeNetwork>,
    /// The node network's last error, as logged (a lasting one is warned
    /// about once).
    net_error: Option<String>,
    /// The network part of the current desired set.
    network: Option<bramble_api::protocol::NetworkConfig>,
    /// Cluster DNS for the pods (with the network on).
    dns: dns::NodeDns,
    /// Addresses build steps hold ([`build_addresses`]).
    step_addresses: std::collections::BTreeSet<std::net::Ipv4Addr>,
}

/// How the node's pods reach the node loop: `wake` is called after every
/// report a pod's thread sent (the loop then calls [`Node::tick`]), and
/// each pod is supervised at least every `max_pause`.
#[derive(Clone)]
pub struct Waker {
    pub wake: Arc<dyn Fn() + Send + Sync>,
    pub max_pause: Duration,
}

impl Waker {
    /// Nobody to wake: for callers that only [`Node::stop_all`].
    pub fn none() -> Waker {
        Waker {
            wake: Arc::new(|| {}),
            max_pause: Duration::from_millis(200),
        }
    }
}

impl Node {
    /// Adopts recorded pods (each on its thread) and cleans up leftovers.
    /// See the module docs.
    pub fn open(
        runtime: Arc<dyn Runtime>,
        images: Arc<dyn ImageSource>,
        dirs: NodeDirs,
        options: PodOptions,
        waker: Waker,
    ) -> std::io::Result<(Node, Vec<NodeEvent>)> {
        let mut records = Records::open(&dirs.records)?;
        volume_dirs::delete(volume_dirs::leftover_trash(&dirs.volumes));
        let mut events = Vec::new();
        let mut adopted = BTreeMap::new();
        for loaded in records.load_all()? {
            match loaded {
                Ok(record) => {
                    let id = record.pod_id.clone();
                    match RunningPod::adopt(runtime.clone(), record, &options) {
                        Ok(p) => {
                            tracing::info!(pod = %id, "pod adopted");
                            events.push(NodeEvent::Adopted { pod: id.clone() });
                            adopted.insert(id, p);
                        }
                        Err(e) => {
                            tracing::warn!(pod = %id, error = %e, "adopting a recorded pod failed; cleaning it up");
                            records.remove(&id)?;
                        }
                    }
                }
                Err((id, error)) => {
                    tracing::warn!(pod = %id, %error, "unusable pod record; cleaning the pod up");
                    records.remove(&id)?;
                }
            }
        }
        let mut owned = Owned::default();
        for (id, p) in &adopted {
            owned.pods.insert(id.clone());
            for c in p.containers() {
                if !c.is_deleted() {
                    owned.containers.insert(c.handle.id.clone());
                }
            }
        }
        let places = Places {
            data: &dirs.pods.data,
            netns: &dirs.pods.netns,
            cgroup_parent: &dirs.cgroup_parent,
        };
        let (removed, errors) =
            leftovers::clean(&*runtime, options.log_pump.as_deref(), &places, &owned);
        for what in removed {
            tracing::info!(%what, "removed a leftover");
            events.push(NodeEvent::LeftoverRemoved { what });
        }
        for error in errors {
            tracing::warn!(%error, "removing a leftover failed");
            events.push(NodeEvent::LeftoverError {
                error: error.to_string(),
            });
        }
        let (tx, reports): (Sender<Report>, Receiver<Report>) = std::sync::mpsc::channel();
        let mut node = Node {
            runtime,
            images,
            dirs,
            options,
            records: Arc::new(Mutex::new(records)),
            pods: BTreeMap::new(),
            reports,
            outbox: Outbox {
                tx,
                wake: waker.wake,
            },
            max_pause: waker.max_pause,
            net: None,
            net_error: None,
            network: None,
            dns: dns::NodeDns::default(),
            step_addresses: Default::default(),
        };
        for (id, p) in adopted {
            let (pod, address) = (p.pod().clone(), p.address());
            let worker = PodWorker::spawn(Begin::Adopted(Box::new(p)), node.context(&id))?;
            node.pods.insert(
                id,
                Slot {
                    pod,
                    address,
                    phase: Phase::Running,
                    worker,
                },
            );
        }
        Ok((node, events))
    }

    /// What a pod's thread is given.
    fn context(&self, id: &str) -> Context {
        Context {
            id: id.to_string(),
            records: self.records.clone(),
            outbox: self.outbox.clone(),
            max_pause: self.max_pause,
            host_ip: self.net.as_ref().and_then(|n| n.node_ip()),
        }
    }

    /// Lets desired sets' network configs program pod veths, routes and
    /// the nft table (see [`network`]); without it they are ignored.
    pub fn enable_network(&mut self, settings: network::NetSettings) {
        self.net = Some(network::NodeNetwork::new(settings));
    }

    /// The network config of the current desired set (applied by the next
    /// [`Node::apply`]).
    pub fn set_network(&mut self, cfg: Option<bramble_api::protocol::NetworkConfig>) {
        if self.net.is_some() {
            self.dns.update(cfg.as_ref());
        }
        self.network = cfg;
    }

    /// The addresses of the pod CIDR in use: pods' (stopping pods keep
    /// theirs until they are gone) and build steps'.
    fn used_addresses(&self) -> std::collections::BTreeSet<std::net::Ipv4Addr> {
        self.pods
            .values()
            .filter_map(|s| s.address)
            .map(|a| a.ip)
            .chain(self.step_addresses.iter().copied())
            .collect()
    }

    /// The cluster's DNS domain, as the network config names it.
    fn cluster_domain(&self) -> String {
        self.network
            .as_ref()
            .and_then(|n| n.dns.as_ref())
            .map_or("cluster.local".into(), |d| d.cluster_domain.clone())
    }

    /// The pod CIDR new pods get addresses from, if the network is on.
    fn pod_cidr(&self) -> Option<&str> {
        self.net.as_ref()?;
        self.network.as_ref()?.pod_cidr.as_deref()
    }

    /// Programs the node-level network for the current config and pods
    /// (`force`: even if unchanged).
    fn reconcile_network(&mut self, force: bool) {
        let Some(net) = &mut self.net else { return };
        let ports = network::host_ports(
            self.pods
                .values()
                .filter(|s| s.phase != Phase::Stopping)
                .map(|s| (&s.pod, s.address)),
        );
        let r = if force {
            net.resync(self.network.as_ref(), &ports)
        } else {
            net.reconcile(self.network.as_ref(), &ports)
        };
        // A lasting problem (retried every few seconds) is warned about once:
        // it is the same problem while it logs the same text.
        match r {
            Err(error) => {
                let logged = error.to_string();
                if self.net_error.as_ref() == Some(&logged) {
                    tracing::debug!(%error, "programming the node network");
                } else {
                    tracing::warn!(%error, "programming the node network");
                    self.net_error = Some(logged);
                }
            }
            Ok(()) => {
                if self.net_error.take().is_some() {
                    tracing::info!("node network programmed");
                }
            }
        }
    }

    /// Where the node's `local-path` volumes are.
    pub fn volumes_dir(&self) -> &std::path::Path {
        &self.dirs.volumes
    }

    /// Ids (`namespace_name`) of the pods started or starting here (not
    /// those stopping).
    pub fn pod_ids(&self) -> Vec<String> {
        self.pods
            .iter()
            .filter(|(_, s)| s.phase != Phase::Stopping)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The size of the image `reference` as the kubelet reports a pull's,
    /// if it is on the node.
    pub fn image_size(&self, reference: &str) -> Option<u64> {
        self.images.resolve(reference).ok().map(|i| i.size)
    }

    /// The pod `id` as given, if it is started or starting here.
    pub fn pod(&self, id: &str) -> Option<&Pod> {
        self.pods
            .get(id)
            .filter(|s| s.phase != Phase::Stopping)
            .map(|s| &s.pod)
    }

    /// Orders the pods of `desired` that do not run (or run another
    /// incarnation: another uid or spec) started and the running pods that
    /// are not desired stopped, and returns without waiting for either
    /// (their outcomes come from [`Node::tick`]). A pod desired again with
    /// the same uid and spec keeps running; only its configMap/secret
    /// volumes follow `inputs`, which are keyed `namespace/name` (see
    /// [`PodInputs::scoped`]). A pod whose old incarnation is still stopping
    /// is started by an apply after that stop.
    pub fn apply(&mut self, desired: &[Pod], inputs: &PodInputs) -> Vec<NodeEvent> {
        let mut events = Vec::new();
        let want: BTreeMap<String, &Pod> = desired.iter().map(|p| (pod_id(p), p)).collect();
        for (id, slot) in &mut self.pods {
            let stale = want.get(id).is_none_or(|w| !same_incarnation(w, &slot.pod));
            if stale && slot.phase != Phase::Stopping {
                tracing::info!(pod = %id, "stopping the pod");
                slot.phase = Phase::Stopping;
                slot.worker.order(Order::Stop);
            }
        }
        for (id, pod) in want {
            let inputs = inputs.scoped(pod.namespace());
            match self.pods.get(&id) {
                Some(slot) if slot.phase == Phase::Stopping => continue,
                Some(slot) => {
                    // Kept: ConfigMap/Secret changes reach its volumes in place.
                    slot.worker.order(Order::Inputs(inputs));
                    continue;
                }
                None => {}
            }
            if let Err(error) = self.start(&id, pod, inputs) {
                tracing::warn!(pod = %id, %error, "pod start failed");
                events.push(NodeEvent::StartFailed {
                    error: format!("pod {:?}: {error}", pod.name()),
                    pod: id,
                    cause: StartCause::Other,
                });
            }
        }
        self.reconcile_network(false);
        events
    }

    /// Gives the pod an address (if the network is on) and a thread that
    /// starts it.
    fn start(&mut self, id: &str, pod: &Pod, inputs: PodInputs) -> Result<(), StartSetupError> {
        let mut options = self.options.clone();
        options.host_ip = self.net.as_ref().and_then(|n| n.node_ip());
        if let Some(cidr) = self.pod_cidr().filter(|_| !pod.spec.host_network) {
            options.network = Some(network::allocate(cidr, &self.used_addresses())?);
            options.dns = Some(crate::pod::PodDns {
                cluster_domain: self.cluster_domain(),
            });
        }
        let address = options.network;
        let begin = Begin::Start {
            pod: Box::new(pod.clone()),
            inputs,
            images: self.images.clone(),
            dirs: self.dirs.pods.clone(),
            options: Box::new(options),
            runtime: self.runtime.clone(),
        };
        let worker = PodWorker::spawn(begin, self.context(id)).map_err(StartSetupError::Thread)?;
        self.pods.insert(
            id.to_string(),
            Slot {
                pod: pod.clone(),
                address,
                phase: Phase::Starting,
                worker,
            },
        );
        Ok(())
    }

    /// Removes the node-level network the agent programmed (`reset`).
    pub fn remove_network(&self) -> Result<(), network::NetworkError> {
        self.net.as_ref().map_or(Ok(()), |n| n.remove())
    }

    /// Stops every pod and waits until each has stopped (`bramble-agent
    /// reset`).
    pub fn stop_all(&mut self) -> Vec<NodeEvent> {
        for slot in self.pods.values_mut() {
            if slot.phase != Phase::Stopping {
                slot.phase = Phase::Stopping;
                slot.worker.order(Order::Stop);
            }
        }
        let mut events = Vec::new();
        while !self.pods.is_empty() {
            let Ok(report) = self.reports.recv() else {
                break;
            };
            self.on_report(report, &mut Vec::new(), &mut events);
        }
        events
    }

    /// Collects what the pods' threads reported since the last call: the
    /// pods whose status changed, and what happened (started, failed,
    /// stopped). Also reprograms the node network when it is due.
    pub fn tick(&mut self, now: Instant) -> (Vec<(String, PodStatus)>, Vec<NodeEvent>) {
        if self.net.as_ref().is_some_and(|n| n.due(now)) {
            self.reconcile_network(true);
        }
        let (mut statuses, mut events) = (Vec::new(), Vec::new());
        let mut stopped = false;
        while let Ok(report) = self.reports.try_recv() {
            stopped |= matches!(report, Report::Stopped { .. } | Report::StartFailed { .. });
            self.on_report(report, &mut statuses, &mut events);
        }
        if stopped {
            self.reconcile_network(false);
        }
        (statuses, events)
    }

    fn on_report(
        &mut self,
        report: Report,
        statuses: &mut Vec<(String, PodStatus)>,
        events: &mut Vec<NodeEvent>,
    ) {
        match report {
            Report::Started { pod } => {
                if let Some(slot) = self.pods.get_mut(&pod)
                    && slot.phase == Phase::Starting
                {
                    slot.phase = Phase::Running;
                }
                events.push(NodeEvent::Started { pod });
            }
            Report::Status { pod, status } => {
                if self
                    .pods
                    .get(&pod)
                    .is_some_and(|s| s.phase != Phase::Stopping)
                {
                    statuses.push((pod, status));
                }
            }
            Report::StartFailed { pod, error } => {
                // Its thread has ended: dropping the slot joins it.
                drop(self.pods.remove(&pod));
                events.push(start_failure(pod, &error));
            }
            Report::Stopped { pod, result } => {
                // Its thread has ended: dropping the slot joins it.
                drop(self.pods.remove(&pod));
                match result {
                    Ok(()) => {
                        tracing::info!(%pod, "pod stopped");
                        events.push(NodeEvent::Stopped { pod });
                    }
                    Err(error) => {
                        tracing::warn!(%pod, %error, "stopping the pod");
                        events.push(NodeEvent::StopFailed {
                            pod,
                            error: error.to_string(),
                        });
                    }
                }
            }
        }
    }

    /// CPU and memory of every pod's running containers, from the cgroups.
    pub fn usage(&self) -> Vec<PodUsage> {
        self.pods
            .iter()
            .filter(|(_, s)| s.phase == Phase::Running)
            .map(|(id, s)| {
                let mut containers = Vec::new();
                let mut total = ContainerStats::default();
                for c in s.worker.live() {
                    if let Ok(st) = self.runtime.stats(&c.handle) {
                        total.memory_bytes += st.memory_bytes;
                        total.cpu_usage_ns += st.cpu_usage_ns;
                        containers.push((c.name, st));
                    }
                }
                PodUsage {
                    pod: id.clone(),
                    containers,
                    total,
                }
            })
            .collect()
    }
}

/// Why a pod's start could not even be handed to its thread.
#[derive(Debug, thiserror::Error)]
enum StartSetupError {
    #[error(transparent)]
    Address(#[from] network::AllocateError),
    #[error("starting the pod's thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The event of a pod that could not start: waiting for a pull, or failed
/// (for its image, or anything else).
fn start_failure(pod: String, e: &PodError) -> NodeEvent {
    match e.waits_for_pull() {
        Some(image) => {
            tracing::debug!(%pod, image, "pod start waits for a pull");
            NodeEvent::WaitsForPull {
                pod,
                image: image.to_string(),
            }
        }
        None => {
            tracing::warn!(%pod, error = %e, "pod start failed");
            NodeEvent::StartFailed {
                pod,
                error: e.to_string(),
                cause: if e.is_image() {
                    StartCause::Image
                } else {
                    StartCause::Other
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, image: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": "c", "image": image}]},
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_is_its_uid_and_spec() {
        let running = pod("u-1", "busybox");
        // The same pod desired again (a higher generation, labels changed)
        // keeps running.
        let mut again = pod("u-1", "busybox");
        again.metadata.labels.insert("x".into(), "y".into());
        assert!(same_incarnation(&again, &running));
        // Recreated under the same name, or another spec: another pod.
        assert!(!same_incarnation(&pod("u-2", "busybox"), &running));
        assert!(!same_incarnation(&pod("u-1", "busybox:2"), &running));
    }

    #[test]
    fn statuses_name_the_node_address_and_host_network_pods_share_it() {
        let node = Some(std::net::Ipv4Addr::new(10, 77, 0, 11));
        let mut st = PodStatus {
            pod_ip: Some("10.42.0.5".into()),
            ..Default::default()
        };
        set_host_ip(&mut st, node, false);
        assert_eq!(st.host_ip.as_deref(), Some("10.77.0.11"));
        assert_eq!(st.host_ips[0].ip, "10.77.0.11");
        assert_eq!(st.pod_ip.as_deref(), Some("10.42.0.5"));

        let mut host = PodStatus::default();
        set_host_ip(&mut host, node, true);
        assert_eq!(host.pod_ip.as_deref(), Some("10.77.0.11"));
        assert_eq!(host.pod_ips[0].ip, "10.77.0.11");

        let mut unknown = PodStatus::default();
        set_host_ip(&mut unknown, None, true);
        assert_eq!(unknown, PodStatus::default());
    }
}
