//! The ready endpoints behind one port of the load balancer, replaced as
//! they change, and the order in which a new connection tries them: each
//! connection starts one further along (round robin), and tries the rest in
//! turn if its first choice does not answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// The endpoints of one port.
#[derive(Debug, Default)]
pub struct Backends {
    list: RwLock<Arc<[SocketAddr]>>,
    next: AtomicUsize,
}

impl Backends {
    pub fn new(list: Vec<SocketAddr>) -> Backends {
        Backends {
            list: RwLock::new(list.into()),
            next: AtomicUsize::new(0),
        }
    }

    /// Replaces the endpoints (connections already made are not touched).
    pub fn set(&self, list: Vec<SocketAddr>) {
        if let Ok(mut l) = self.list.write()
            && **l != *list
        {
            *l = list.into();
        }
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

    #[test]
    fn each_connection_starts_one_further_and_tries_them_all() {
        let b = Backends::new(addrs(&[1, 2, 3]));
        assert_eq!(b.order(), addrs(&[1, 2, 3]));
        assert_eq!(b.order(), addrs(&[2, 3, 1]));
        assert_eq!(b.order(), addrs(&[3, 1, 2]));
        assert_eq!(b.order(), addrs(&[1, 2, 3]));
        b.set(addrs(&[7]));
        assert_eq!(b.order(), addrs(&[7]));
        b.set(Vec::new());
        assert!(b.order().is_empty());
    }
}
