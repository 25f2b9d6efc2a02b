//! Pod-network addresses for the `RUN` steps of image builds: a step runs
//! in a network namespace of its own, on the node's pod network as a pod
//! (docker build's `RUN` has the default network too), so its address
//! comes from the same pod CIDR, never one a pod holds. The node keeps the
//! addresses steps hold until they give them back.

use std::net::Ipv4Addr;

use super::{Node, network};
use crate::pod::PodAddress;

/// What a step's network needs from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepAddress {
    pub address: PodAddress,
    /// The cluster's DNS domain (`cluster.local`), for `resolv.conf`.
    pub cluster_domain: String,
}

impl Node {
    /// A free address of the pod CIDR for a build step; `None` without a
    /// pod network (no network config yet, or none on this agent).
    pub fn reserve_step_address(&mut self) -> Result<Option<StepAddress>, network::AllocateError> {
        let Some(cidr) = self.pod_cidr() else {
            return Ok(None);
        };
        let used = self.used_addresses();
        let address = network::allocate(cidr, &used)?;
        self.step_addresses.insert(address.ip);
        Ok(Some(StepAddress {
            address,
            cluster_domain: self.cluster_domain(),
        }))
    }

    /// Gives back a step's address.
    pub fn release_step_address(&mut self, ip: Ipv4Addr) {
        self.step_addresses.remove(&ip);
    }
}
