//! What [`RunningPod::start`](super::RunningPod::start) takes besides the
//! pod and its ConfigMap/Secret inputs: the agent's directories
//! ([`PodDirs`]), knobs not in the pod spec ([`PodOptions`]: limits,
//! back-off, log pump, pod address, DNS, seccomp profiles), and where
//! images come from ([`ImageSource`]).

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;

use super::image_error::ImageError;
use crate::lifecycle::backoff::Backoff;

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

/// Where images come from: the agent's image store, or a test fixture.
pub trait ImageSource: Send + Sync {
    /// The image for `reference` (as written in the pod spec).
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError>;
}

impl<F: Fn(&str) -> Result<ResolvedImage, ImageError> + Send + Sync> ImageSource for F {
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        self(reference)
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
pub(super) const RESOLV_CONF: &str = "resolv.conf";

/// A pod's address and its gateway (the first address of the node's pod
/// CIDR, on the host side of the pod's veth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodAddress {
    pub ip: std::net::Ipv4Addr,
    pub gateway: std::net::Ipv4Addr,
}
