//! The cluster network as the hub plans it: address ranges ([`NetworkSettings`]),
//! a pod CIDR per node ([`pod_cidr`]), ClusterIPs and node ports for Services
//! ([`service_ips`]), NetworkPolicies resolved to addresses ([`policy`]),
//! the names of pods behind headless Services ([`pod_hosts`]), and each
//! node's share of it all sent in its desired set ([`table`]). Pure, except [`host_network`]: the hub host's own routes
//! and service table; the agents program links, routes and nftables.

pub mod host_network;
pub mod host_routes;
pub mod pod_cidr;
pub mod pod_hosts;
pub mod policy;
pub mod service_ips;
pub mod table;

use bramble_api::cidr::Cidr;

/// Default `--cluster-cidr` (every node's pods).
pub const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";
/// Default `--node-cidr-mask-size`: one node's pods in a /26 (61 pods, the
/// node's capacity; a board runs tens), so the default `--cluster-cidr`
/// holds 1,024 nodes. k3s' /24 (110 pods, 256 nodes) is the flag away.
pub const DEFAULT_NODE_CIDR_PREFIX: u8 = 26;
/// Default `--service-cidr`.
pub const DEFAULT_SERVICE_CIDR: &str = "10.43.0.0/16";
/// Default `--cluster-domain`.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// The cluster's address plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    pub cluster_cidr: Cidr,
    pub node_cidr_prefix: u8,
    pub service_cidr: Cidr,
    pub cluster_domain: String,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            cluster_cidr: DEFAULT_CLUSTER_CIDR.parse().expect("valid default"),
            node_cidr_prefix: DEFAULT_NODE_CIDR_PREFIX,
            service_cidr: DEFAULT_SERVICE_CIDR.parse().expect("valid default"),
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_string(),
        }
    }
}

/// Why an address plan is refused; each names the flag to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkConfigError {
    #[error("--cluster-cidr {cluster} and --service-cidr {service} must be IPv4")]
    NotIpv4 { cluster: Cidr, service: Cidr },
    #[error("--cluster-cidr {cidr} has host bits set: did you mean {}?", .cidr.network())]
    ClusterHostBits { cidr: Cidr },
    #[error("--service-cidr {cidr} has host bits set: did you mean {}?", .cidr.network())]
    ServiceHostBits { cidr: Cidr },
    #[error(
        "--node-cidr-mask-size {prefix} must be between the cluster CIDR's prefix ({cluster_prefix}) and 30"
    )]
    NodeCidrPrefix { prefix: u8, cluster_prefix: u8 },
    #[error("--service-cidr {cidr} is too small: use /28 or larger")]
    ServiceTooSmall { cidr: Cidr },
    #[error("--cluster-cidr {cluster} and --service-cidr {service} overlap")]
    Overlap { cluster: Cidr, service: Cidr },
    #[error("--cluster-domain {domain:?}: give a domain like cluster.local (no trailing dot)")]
    ClusterDomain { domain: String },
}

impl NetworkSettings {
    /// Checks the ranges against each other, naming the flag to fix.
    pub fn validate(&self) -> Result<(), NetworkConfigError> {
        let (c, s) = (self.cluster_cidr, self.service_cidr);
        if !c.addr.is_ipv4() || !s.addr.is_ipv4() {
            return Err(NetworkConfigError::NotIpv4 {
                cluster: c,
                service: s,
            });
        }
        if c.network() != c {
            return Err(NetworkConfigError::ClusterHostBits { cidr: c });
        }
        if s.network() != s {
            return Err(NetworkConfigError::ServiceHostBits { cidr: s });
        }
        if self.node_cidr_prefix < c.prefix || self.node_cidr_prefix > 30 {
            return Err(NetworkConfigError::NodeCidrPrefix {
                prefix: self.node_cidr_prefix,
                cluster_prefix: c.prefix,
            });
        }
        if s.prefix > 28 {
            return Err(NetworkConfigError::ServiceTooSmall { cidr: s });
        }
        if c.contains_cidr(&s) || s.contains_cidr(&c) {
            return Err(NetworkConfigError::Overlap {
                cluster: c,
                service: s,
            });
        }
        if self.cluster_domain.is_empty() || self.cluster_domain.ends_with('.') {
            return Err(NetworkConfigError::ClusterDomain {
                domain: self.cluster_domain.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_plans_name_the_flag() {
        NetworkSettings::default().validate().unwrap();
        let bad = |f: fn(&mut NetworkSettings)| {
            let mut s = NetworkSettings::default();
            f(&mut s);
            s.validate().unwrap_err().to_string()
        };
        assert!(bad(|s| s.service_cidr = "10.42.0.0/20".parse().unwrap()).contains("overlap"));
        assert!(bad(|s| s.cluster_cidr = "10.42.1.0/16".parse().unwrap()).contains("10.42.0.0/16"));
        assert!(bad(|s| s.node_cidr_prefix = 8).contains("--node-cidr-mask-size"));
        assert!(bad(|s| s.cluster_domain = "x.".into()).contains("--cluster-domain"));
    }
}
