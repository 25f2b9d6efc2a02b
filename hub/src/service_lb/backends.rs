//! The ready endpoints behind one port of the load balancer, replaced as
//! they change, and the order in which a new connection tries them: each
//! connection starts one further along (round robin), and tries the rest in
//! turn if its first choice does not answer. Also who may connect: the
//! Service's `loadBalancerSourceRanges` (none: everyone).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bramble_api::cidr::Cidr;

/// What one port forwards to, and for whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub endpoints: Vec<SocketAddr>,
    /// Clients' addresses admitted; empty: all.
    pub sources: Vec<Cidr>,
}

/// The endpoints of one port.
#[derive(Debug, Default)]
pub struct Backends {
    list: RwLock<Arc<[SocketAddr]>>,
    sources: RwLock<Arc<[Cidr]>>,
    next: AtomicUsize,
}

impl Backends {
    pub fn new(target: Target) -> Backends {
        Backends {
            list: RwLock::new(target.endpoints.into()),
            sources: RwLock::new(target.sources.into()),
            next: AtomicUsize::new(0),
        }
    }

    /// Replaces the endpoints and sources (connections already made are
    /// not touched).
    pub fn set(&self, target: Target) {
        if let Ok(mut l) = self.list.write()
            && **l != *target.endpoints
        {
            *l = target.endpoints.into();
        }
        if let Ok(mut s) = self.sources.write()
            && **s != *target.sources
        {
            *s = target.sources.into();
        }
    }

    /// Whether a client at `ip` may connect (an IPv4 client on an IPv6
    /// socket is matched as IPv4).
    pub fn admits(&self, ip: IpAddr) -> bool {
        let Ok(sources) = self.sources.read() else {
            return false;
        };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        sources.is_empty() || sources.iter().any(|c| c.contains(ip))
    }

    /// The endpoints as a new connection tries them; empty when there are
    /// none (the connection is refused).
    pub fn order(&self) -> Vec<SocketAddr> {
        let list = match self.list.read() {
            Ok(l) => l.clone(),
            Err(_) => return Vec::new(),
        };
        if list.is_empty() {
            return Vec::new();
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % list.len();
        list[start..]
            .iter()
            .chain(&list[..start])
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(ports: &[u16]) -> Vec<SocketAddr> {
        ports
            .iter()
            .map(|p| SocketAddr::from(([10, 42, 0, 1], *p)))
            .collect()
    }

    fn target(ports: &[u16]) -> Target {
        Target {
            endpoints: addrs(ports),
            sources: Vec::new(),
        }
    }

    #[test]
    fn clients_outside_the_source_ranges_are_not_admitted() {
        let b = Backends::new(target(&[1]));
        assert!(b.admits("203.0.113.9".parse().unwrap()), "no ranges: all");
        b.set(Target {
            endpoints: addrs(&[1]),
            sources: vec!["192.168.1.0/24".parse().unwrap()],
        });
        assert!(b.admits("192.168.1.77".parse().unwrap()));
        assert!(b.admits("::ffff:192.168.1.77".parse().unwrap()));
        assert!(!b.admits("192.168.2.1".parse().unwrap()));
        assert!(!b.admits("::1".parse().unwrap()));
    }

    #[test]
    fn each_connection_starts_one_further_and_tries_them_all() {
        let b = Backends::new(target(&[1, 2, 3]));
        assert_eq!(b.order(), addrs(&[1, 2, 3]));
        assert_eq!(b.order(), addrs(&[2, 3, 1]));
        assert_eq!(b.order(), addrs(&[3, 1, 2]));
        assert_eq!(b.order(), addrs(&[1, 2, 3]));
        b.set(target(&[7]));
        assert_eq!(b.order(), addrs(&[7]));
        b.set(Target::default());
        assert!(b.order().is_empty());
    }
}
