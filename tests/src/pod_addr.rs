//! An address in a node's pod CIDR, held by this host, for servers that
//! stand in for pods in tests with scripted nodes. The hub accepts from a
//! node only pod addresses inside its pod CIDR (never loopback), so such a
//! server listens on an address of its own: a /32 on the root network
//! namespace's `lo` (kernels without the dummy module have no better
//! place), removed on drop.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use bramble_api::cidr::Cidr;

/// One address of a pod CIDR held by `lo`; removed on drop.
pub struct PodAddr {
    pub ip: Ipv4Addr,
}

impl PodAddr {
    /// Claims an address of `pod_cidr` (as the hub assigned it to the
    /// scripted node) that no other test of this process holds. Needs root.
    pub fn claim(pod_cidr: &str) -> PodAddr {
        crate::require_root("a pod address on lo");
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let cidr: Cidr = pod_cidr.parse().expect("a pod CIDR");
        let std::net::IpAddr::V4(base) = cidr.network().addr else {
            panic!("pod CIDR {pod_cidr} is not IPv4");
        };
        let hosts = (1u32 << (32 - u32::from(cidr.prefix))) - 3;
        let offset = 2 + (std::process::id().wrapping_mul(31).wrapping_add(n)) % hosts;
        let ip = Ipv4Addr::from(u32::from(base) + offset);
        let args = ["addr", "add", &format!("{ip}/32"), "dev", "lo"];
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        PodAddr { ip }
    }
}

impl Drop for PodAddr {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["addr", "del", &format!("{}/32", self.ip), "dev", "lo"])
            .output();
    }
}
