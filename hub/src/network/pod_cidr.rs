//! One pod CIDR per node out of the cluster CIDR: the lowest block no other
//! node holds, so the first node gets `10.42.0.0/26` (`10.42.0.0/24` with
//! k3s' `--node-cidr-mask-size 24`). Blocks of another size that nodes
//! already hold (an earlier mask size) are kept and never overlapped.

use std::net::{IpAddr, Ipv4Addr};

use bramble_api::cidr::Cidr;

use super::NetworkSettings;

/// Every block of the cluster CIDR is taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no free pod CIDR: all {blocks} /{prefix} blocks of --cluster-cidr {cluster} are held by nodes; \
     delete unused nodes or use a larger --cluster-cidr or a smaller --node-cidr-mask-size"
)]
pub struct PodCidrExhausted {
    pub cluster: Cidr,
    pub prefix: u8,
    pub blocks: u64,
}

/// The lowest block of `settings.cluster_cidr` of size `/node_cidr_prefix`
/// that overlaps none of `used`.
pub fn allocate(
    settings: &NetworkSettings,
    used: impl IntoIterator<Item = Cidr>,
) -> Result<Cidr, PodCidrExhausted> {
    let used: Vec<Cidr> = used.into_iter().collect();
    let cluster = settings.cluster_cidr.network();
    let prefix = settings.node_cidr_prefix;
    let IpAddr::V4(base) = cluster.addr else {
        unreachable!("validated IPv4")
    };
    let blocks = 1u64 << (prefix - cluster.prefix);
    let step = 1u64 << (32 - prefix);
    for i in 0..blocks {
        let addr = u64::from(base.to_bits()) + i * step;
        let block = Cidr {
            addr: IpAddr::V4(Ipv4Addr::from_bits(addr as u32)),
            prefix,
        };
        if !used
            .iter()
            .any(|u| u.contains_cidr(&block) || block.contains_cidr(&u.network()))
        {
            return Ok(block);
        }
    }
    Err(PodCidrExhausted {
        cluster,
        prefix,
        blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn a_thousand_nodes_fit_the_defaults() {
        let s = NetworkSettings::default();
        let mut held = Vec::new();
        for _ in 0..1_000 {
            held.push(allocate(&s, held.iter().copied()).unwrap());
        }
        assert_eq!(held[0], c("10.42.0.0/26"));
        assert_eq!(held[1], c("10.42.0.64/26"));
        assert_eq!(held[999], c("10.42.249.192/26"));
        // /24s a k3s-sized hub gave earlier are kept clear of.
        assert_eq!(
            allocate(&s, [c("10.42.0.0/24"), c("10.42.1.0/26")]).unwrap(),
            c("10.42.1.64/26")
        );
    }

    #[test]
    fn lowest_free_block_first() {
        let s = NetworkSettings {
            node_cidr_prefix: 24,
            ..NetworkSettings::default()
        };
        assert_eq!(allocate(&s, []).unwrap(), c("10.42.0.0/24"));
        assert_eq!(
            allocate(&s, [c("10.42.0.0/24"), c("10.42.2.0/24")]).unwrap(),
            c("10.42.1.0/24")
        );
        // A foreign, larger block held by a node hides everything inside it.
        assert_eq!(
            allocate(&s, [c("10.42.0.0/23")]).unwrap(),
            c("10.42.2.0/24")
        );
    }

    #[test]
    fn exhaustion_says_what_to_change() {
        let s = NetworkSettings {
            cluster_cidr: c("10.42.0.0/23"),
            node_cidr_prefix: 24,
            ..NetworkSettings::default()
        };
        let e = allocate(&s, [c("10.42.0.0/24"), c("10.42.1.0/24")]).unwrap_err();
        assert_eq!(e.blocks, 2);
        assert!(e.to_string().contains("--cluster-cidr 10.42.0.0/23"), "{e}");
    }
}
