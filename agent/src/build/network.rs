//! A `RUN` step's network, as `docker build` gives one by default: the
//! step runs in a network namespace of its own with an address of the
//! node's pod network (from the node, [`StepAddresses`]), a veth as a pod
//! has (`bramble_net::veth`), and `/etc/resolv.conf` naming the cluster
//! DNS with the Build's namespace's search path — so a step reaches the
//! LAN and the internet the node routes to, and the cluster's Services by
//! name. Without a pod network (none configured, or the CIDR full) a step
//! gets an empty namespace, as before.
//!
//! The namespace and veth are [`StepNet::connect`]ed before the step's
//! container starts and [`StepNet::remove`]d after it ended (an agent that
//! dies meanwhile leaves the namespace file, which the next agent's
//! leftover clean-up removes; the veth goes with the namespace).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, sync_channel};
use std::time::Duration;

use crate::node::build_addresses::StepAddress;
use crate::pod::PodAddress;
use crate::pod::netns::{NetnsError, PodNetns};
use crate::session::node_loop::NodeCommand;

/// Where steps get their addresses.
pub trait StepAddresses: Send + Sync {
    /// An address for a step; `None`: run it without network.
    fn reserve(&self) -> Option<StepAddress>;
    /// Gives `ip` back.
    fn release(&self, ip: Ipv4Addr);
}

/// The node loop's addresses, asked through its command channel.
pub struct NodeAddresses {
    tx: Mutex<Sender<NodeCommand>>,
}

/// How long a step waits for the node loop's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

impl NodeAddresses {
    pub fn new(tx: Sender<NodeCommand>) -> NodeAddresses {
        NodeAddresses { tx: Mutex::new(tx) }
    }

    fn send(&self, cmd: NodeCommand) -> bool {
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(cmd)
            .is_ok()
    }
}

impl StepAddresses for NodeAddresses {
    fn reserve(&self) -> Option<StepAddress> {
        let (tx, rx) = sync_channel(1);
        if !self.send(NodeCommand::StepAddress(tx)) {
            return None;
        }
        // An answer that comes too late finds no receiver: the node loop
        // frees the address again.
        rx.recv_timeout(ANSWER_WITHIN).ok().flatten()
    }

    fn release(&self, ip: Ipv4Addr) {
        self.send(NodeCommand::StepAddressDone(ip));
    }
}

/// What a step's network is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepNetwork {
    /// Where namespace files go (`RUN_DIR/netns`, the pods').
    pub netns_dir: PathBuf,
    pub address: PodAddress,
    /// The step's `/etc/resolv.conf`.
    pub resolv_conf: String,
}

/// A step's namespace and veth, while the step runs.
#[derive(Debug)]
pub struct StepNet {
    ns: PodNetns,
    host_if: String,
}

/// Why a step's network could not be made.
#[derive(Debug, thiserror::Error)]
pub enum StepNetError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("the step's link: {0}")]
    Link(#[from] bramble_net::NetError),
}

impl StepNet {
    /// Makes the namespace `build-{id}` with `eth0` at `net.address`.
    pub fn connect(net: &StepNetwork, id: &str) -> Result<StepNet, StepNetError> {
        let ns = PodNetns::create(&net.netns_dir, &format!("build-{id}"), "buildkitsandbox")?;
        let key = ns.path().to_string_lossy().into_owned();
        let host_if = bramble_net::veth::host_ifname(&key);
        let made =
            bramble_net::veth::create(None, ns.path(), &key, net.address.ip, net.address.gateway);
        if let Err(e) = made {
            let _ = ns.remove();
            return Err(e.into());
        }
        Ok(StepNet { ns, host_if })
    }

    /// The network namespace's file, for the step's container to join.
    pub fn path(&self) -> &Path {
        self.ns.path()
    }

    /// Removes the veth and the namespace; failures are logged (the next
    /// agent's clean-up removes what stays).
    pub fn remove(self) {
        if let Err(e) = bramble_net::veth::remove(None, &self.host_if) {
            tracing::warn!(link = %self.host_if, error = %e, "removing a build step's link");
        }
        if let Err(e) = self.ns.remove() {
            tracing::warn!(error = %e, "removing a build step's namespace");
        }
    }
}
