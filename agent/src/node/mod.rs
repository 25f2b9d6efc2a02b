//! The node: every pod this agent runs, kept in line with a desired set.
//!
//! [`Node::open`] adopts the pods an earlier agent process recorded
//! ([`records`]), then removes whatever else of Bramble's is on the node
//! ([`leftovers`]) — so after a crash and restart nothing runs twice and
//! nothing is left over. [`Node::apply`] starts the desired pods that do
//! not run and stops those no longer desired; [`Node::tick`] supervises
//! (restarts, probes), saves changed records and returns changed statuses.
//! With the pod network on ([`Node::enable_network`], [`network`]), new
//! pods get an address from the node's pod CIDR and a veth, and every
//! apply programs the node's routes and nft table.
//! The hub connection (`session::node_loop`) or the local entry point
//! (`bramble-agent run -f pod.yaml`) drive it.

pub mod dns;
pub mod images;
pub mod info;
pub mod leftovers;
pub mod manifests;
pub mod network;
pub mod pull;
pub mod records;
pub mod tmpfs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bramble_api::objects::pod::Pod;
use bramble_api::objects::pod_status::PodStatus;

use crate::pod::run::pod_id;
use crate::pod::{ImageSource, PodDirs, PodError, PodInputs, PodOptions, RunningPod};
use crate::runtime::{ContainerStats, Runtime};
use leftovers::{Owned, Places};
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

/// Why a pod could not be stopped cleanly.
#[derive(Debug, thiserror::Error)]
enum StopError {
    #[error(transparent)]
    Pod(PodError),
    /// The thread stopping it panicked (what was left is cleaned up at the
    /// next start, as leftovers).
    #[error("stop panicked")]
    Panicked,
}

/// Whether a desired pod is the one running: same uid and spec (a pod
/// recreated under the same name is another pod).
pub fn same_incarnation(desired: &Pod, running: &Pod) -> bool {
    desired.metadata.uid == running.metadata.uid && desired.spec == running.spec
}

/// Sets `status.hostIP` (the node's address, as the kubelet does) and, for a
/// `hostNetwork` pod, `podIP` to the same address.
fn set_host_ip(status: &mut PodStatus, host_ip: Option<std::net::Ipv4Addr>, host_network: bool) {
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

/// The pods of this node. See the module docs.
pub struct Node {
    runtime: Arc<dyn Runtime>,
    images: Arc<dyn ImageSource>,
    dirs: NodeDirs,
    options: PodOptions,
    records: Records,
    pods: BTreeMap<String, RunningPod>,
    /// The last status reported per pod (JSON), to report only changes.
    reported: BTreeMap<String, String>,
    /// The pod network, once [`Node::enable_network`] was called.
    net: Option<network::NodeNetwork>,
    /// The node network's last error, as logged (a lasting one is warned
    /// about once).
    net_error: Option<String>,
    /// The network part of the current desired set.
    network: Option<bramble_api::protocol::NetworkConfig>,
    /// Cluster DNS for the pods (with the network on).
    dns: dns::NodeDns,
}

impl Node {
    /// Adopts recorded pods and cleans up leftovers. See the module docs.
    pub fn open(
        runtime: Arc<dyn Runtime>,
        images: Arc<dyn ImageSource>,
        dirs: NodeDirs,
        options: PodOptions,
    ) -> std::io::Result<(Node, Vec<NodeEvent>)> {
        let mut records = Records::open(&dirs.records)?;
        let mut events = Vec::new();
        let mut pods = BTreeMap::new();
        for loaded in records.load_all()? {
            match loaded {
                Ok(record) => {
                    let id = record.pod_id.clone();
                    match RunningPod::adopt(runtime.clone(), record, &options) {
                        Ok(p) => {
                            tracing::info!(pod = %id, "pod adopted");
                            events.push(NodeEvent::Adopted { pod: id.clone() });
                            pods.insert(id, p);
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
        for (id, p) in &pods {
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
        Ok((
            Node {
                runtime,
                images,
                dirs,
                options,
                records,
                pods,
                reported: BTreeMap::new(),
                net: None,
                net_error: None,
                network: None,
                dns: dns::NodeDns::default(),
            },
            events,
        ))
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

    /// The pod CIDR new pods get addresses from, if the network is on.
    fn pod_cidr(&self) -> Option<&str> {
        self.net.as_ref()?;
        self.network.as_ref()?.pod_cidr.as_deref()
    }

    /// Programs the node-level network for the current config and pods
    /// (`force`: even if unchanged).
    fn reconcile_network(&mut self, force: bool) {
        let Some(net) = &mut self.net else { return };
        let ports = network::host_ports(self.pods.values().map(|p| (p.pod(), p.address())));
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

    /// Ids (`namespace_name`) of the pods running here.
    pub fn pod_ids(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    /// The size of the image `reference` as the kubelet reports a pull's,
    /// if it is on the node.
    pub fn image_size(&self, reference: &str) -> Option<u64> {
        self.images.resolve(reference).ok().map(|i| i.size)
    }

    /// The running pod `id`.
    pub fn pod(&self, id: &str) -> Option<&RunningPod> {
        self.pods.get(id)
    }

    /// Starts the pods of `desired` that do not run (or run another
    /// incarnation: another uid or spec) and stops the running pods that are
    /// not desired. A pod desired again with the same uid and spec keeps
    /// running; only its configMap/secret volumes follow `inputs`, which are
    /// keyed `namespace/name` (see [`PodInputs::scoped`]).
    pub fn apply(&mut self, desired: &[Pod], inputs: &PodInputs) -> Vec<NodeEvent> {
        let mut events = Vec::new();
        let want: BTreeMap<String, &Pod> = desired.iter().map(|p| (pod_id(p), p)).collect();
        let stale: Vec<String> = self
            .pods
            .iter()
            .filter(|(id, p)| want.get(*id).is_none_or(|w| !same_incarnation(w, p.pod())))
            .map(|(id, _)| id.clone())
            .collect();
        events.extend(self.stop_many(&stale));
        for (id, pod) in want {
            let inputs = &inputs.scoped(pod.namespace());
            if let Some(running) = self.pods.get(&id) {
                // Kept: ConfigMap/Secret changes reach its volumes in place.
                running.update_volumes(inputs);
                continue;
            }
            let t = Instant::now();
            let mut options = self.options.clone();
            options.host_ip = self.net.as_ref().and_then(|n| n.node_ip());
            if let Some(cidr) = self.pod_cidr().filter(|_| !pod.spec.host_network) {
                let used = self
                    .pods
                    .values()
                    .filter_map(|p| p.address())
                    .map(|a| a.ip)
                    .collect();
                match network::allocate(cidr, &used) {
                    Ok(a) => {
                        options.network = Some(a);
                        options.dns = Some(crate::pod::PodDns {
                            cluster_domain: self
                                .network
                                .as_ref()
                                .and_then(|n| n.dns.as_ref())
                                .map_or("cluster.local".into(), |d| d.cluster_domain.clone()),
                        });
                    }
                    Err(error) => {
                        tracing::warn!(pod = %id, %error, "pod start failed");
                        events.push(NodeEvent::StartFailed {
                            error: format!("pod {:?}: {error}", pod.name()),
                            pod: id,
                            cause: StartCause::Other,
                        });
                        continue;
                    }
                }
            }
            match RunningPod::start(
                self.runtime.clone(),
                pod,
                inputs,
                &*self.images,
                &self.dirs.pods,
                &options,
            ) {
                Ok(p) => {
                    tracing::info!(pod = %id, elapsed_ms = t.elapsed().as_millis() as u64, "pod started");
                    if let Err(e) = self.records.save(&p.to_record()) {
                        tracing::warn!(pod = %id, error = %e, "saving the pod record");
                    }
                    self.pods.insert(id.clone(), p);
                    events.push(NodeEvent::Started { pod: id });
                }
                Err(e) => match e.waits_for_pull() {
                    Some(image) => {
                        tracing::debug!(pod = %id, image, "pod start waits for a pull");
                        events.push(NodeEvent::WaitsForPull {
                            pod: id,
                            image: image.to_string(),
                        });
                    }
                    None => {
                        tracing::warn!(pod = %id, error = %e, "pod start failed");
                        events.push(NodeEvent::StartFailed {
                            pod: id,
                            error: e.to_string(),
                            cause: if e.is_image() {
                                StartCause::Image
                            } else {
                                StartCause::Other
                            },
                        });
                    }
                },
            }
        }
        self.reconcile_network(false);
        events
    }

    /// Removes the node-level network the agent programmed (`reset`).
    pub fn remove_network(&self) -> Result<(), network::NetworkError> {
        self.net.as_ref().map_or(Ok(()), |n| n.remove())
    }

    /// Stops the pods `ids` concurrently (their grace periods overlap),
    /// removing their records.
    fn stop_many(&mut self, ids: &[String]) -> Vec<NodeEvent> {
        let pods: Vec<(String, RunningPod)> = ids
            .iter()
            .filter_map(|id| self.pods.remove(id).map(|p| (id.clone(), p)))
            .collect();
        let results: Vec<(String, Result<(), StopError>)> = std::thread::scope(|s| {
            let handles: Vec<_> = pods
                .into_iter()
                .map(|(id, p)| {
                    let stopping = s.spawn(move || {
                        let grace = p.grace();
                        p.stop(grace).map(drop)
                    });
                    (id, stopping)
                })
                .collect();
            handles
                .into_iter()
                .map(|(id, h)| {
                    let r = match h.join() {
                        Ok(stopped) => stopped.map_err(StopError::Pod),
                        Err(_) => Err(StopError::Panicked),
                    };
                    (id, r)
                })
                .collect()
        });
        let mut events = Vec::new();
        for (id, r) in results {
            self.reported.remove(&id);
            match r {
                Ok(()) => {
                    if let Err(e) = self.records.remove(&id) {
                        tracing::warn!(pod = %id, error = %e, "removing the pod record");
                    }
                    tracing::info!(pod = %id, "pod stopped");
                    events.push(NodeEvent::Stopped { pod: id });
                }
                Err(error) => {
                    tracing::warn!(pod = %id, %error, "stopping the pod");
                    events.push(NodeEvent::StopFailed {
                        pod: id,
                        error: error.to_string(),
                    });
                }
            }
        }
        events
    }

    /// Stops every pod (`bramble-agent reset`).
    pub fn stop_all(&mut self) -> Vec<NodeEvent> {
        let ids: Vec<String> = self.pods.keys().cloned().collect();
        self.stop_many(&ids)
    }

    /// One supervision round over all pods at `now`; saves changed records
    /// and returns the pods whose status changed.
    pub fn tick(&mut self, now: Instant) -> Vec<(String, PodStatus)> {
        if self.net.as_ref().is_some_and(|n| n.due(now)) {
            self.reconcile_network(true);
        }
        let host_ip = self.net.as_ref().and_then(|n| n.node_ip());
        let mut changed = Vec::new();
        for (id, p) in &mut self.pods {
            if let Err(e) = p.tick(now) {
                tracing::warn!(pod = %id, error = %e, "supervising the pod");
            }
            if let Err(e) = self.records.save(&p.to_record()) {
                tracing::warn!(pod = %id, error = %e, "saving the pod record");
            }
            let mut status = p.status(SystemTime::now());
            set_host_ip(&mut status, host_ip, p.pod().spec.host_network);
            let json = serde_json::to_string(&status).unwrap_or_default();
            if self.reported.get(id) != Some(&json) {
                self.reported.insert(id.clone(), json);
                changed.push((id.clone(), status));
            }
        }
        changed
    }

    /// When to tick next: the earliest scheduled probe or restart, at most
    /// `max` from now (exits are only seen by polling).
    pub fn next_wake(&self, now: Instant, max: Duration) -> Instant {
        self.pods
            .values()
            .filter_map(RunningPod::next_wake)
            .min()
            .map_or(now + max, |t| t.min(now + max))
    }

    /// CPU and memory of every pod's running containers, from the cgroups.
    pub fn usage(&self) -> Vec<PodUsage> {
        self.pods
            .iter()
            .map(|(id, p)| {
                let mut containers = Vec::new();
                let mut total = ContainerStats::default();
                for c in p.containers().iter().filter(|c| !c.init && !c.is_deleted()) {
                    if let Ok(s) = self.runtime.stats(&c.handle) {
                        total.memory_bytes += s.memory_bytes;
                        total.cpu_usage_ns += s.cpu_usage_ns;
                        containers.push((c.name.clone(), s));
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
