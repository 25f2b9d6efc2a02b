//! Caps on the connections of the API/registry port: in total and per
//! client address, so that one client (a script gone wrong, or an attacker
//! opening sockets it never uses) cannot take every connection or file
//! descriptor the hub has. A connection over a cap is answered, not dropped:
//! `429 Too Many Requests` when its address holds too many, `503 Service
//! Unavailable` when the hub does, each with the numbers and what to do.
//! [`ConnLimits::admit`] decides; the [`Admitted`] guard gives the slot
//! back when the connection ends. Answering refusals is bounded too
//! ([`ConnLimits::refusing`]): beyond that, connections are closed at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Default cap on open connections in total (`--max-connections`).
pub const DEFAULT_TOTAL: usize = 2048;
/// Default cap per client address (`--max-connections-per-client`).
pub const DEFAULT_PER_CLIENT: usize = 256;
/// Refusals answered at the same time, at most.
const MAX_REFUSING: usize = 64;

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The hub holds `limit` connections.
    Total { limit: usize },
    /// `client` holds `limit` connections.
    Client { client: IpAddr, limit: usize },
}

impl Refusal {
    /// The HTTP status, its reason phrase, and a message saying what to do.
    pub fn answer(&self) -> (u16, &'static str, String) {
        match self {
            Refusal::Total { limit } => (
                503,
                "Service Unavailable",
                format!(
                    "the hub holds its maximum of {limit} connections; try again shortly (the \
                     operator can raise --max-connections)"
                ),
            ),
            Refusal::Client { client, limit } => (
                429,
                "Too Many Requests",
                format!(
                    "{client} holds {limit} connections to the hub, its maximum; close some \
                     (the operator can raise --max-connections-per-client)"
                ),
            ),
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
    refusing: usize,
}

/// The caps and the connections now open.
pub struct ConnLimits {
    total: usize,
    per_client: usize,
    counts: Mutex<Counts>,
}

impl std::fmt::Debug for ConnLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnLimits")
            .field("total", &self.total)
            .field("per_client", &self.per_client)
            .finish_non_exhaustive()
    }
}

/// An admitted connection's slot, given back on drop.
#[derive(Debug)]
pub struct Admitted {
    limits: Arc<ConnLimits>,
    client: IpAddr,
}

/// A refusal being answered, its slot given back on drop.
#[derive(Debug)]
pub struct Refusing {
    limits: Arc<ConnLimits>,
}

impl ConnLimits {
    pub fn new(total: usize, per_client: usize) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            total,
            per_client,
            counts: Mutex::default(),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a connection from `client`, or says why not.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Admitted, Refusal> {
        let mut c = self.counts();
        let mine = c.by_client.get(&client).copied().unwrap_or(0);
        if mine >= self.per_client {
            return Err(Refusal::Client {
                client,
                limit: self.per_client,
            });
        }
        if c.total >= self.total {
            return Err(Refusal::Total { limit: self.total });
        }
        c.total += 1;
        *c.by_client.entry(client).or_default() += 1;
        Ok(Admitted {
            limits: self.clone(),
            client,
        })
    }

    /// A slot for answering a refusal; `None`: close without an answer.
    pub fn refusing(self: &Arc<Self>) -> Option<Refusing> {
        let mut c = self.counts();
        if c.refusing >= MAX_REFUSING {
            return None;
        }
        c.refusing += 1;
        Some(Refusing {
            limits: self.clone(),
        })
    }

    /// Open connections: in total, and of `client`.
    pub fn open(&self, client: IpAddr) -> (usize, usize) {
        let c = self.counts();
        (c.total, c.by_client.get(&client).copied().unwrap_or(0))
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut c = self.limits.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                c.by_client.remove(&self.client);
            }
        }
    }
}

impl Drop for Refusing {
    fn drop(&mut self) {
        let mut c = self.limits.counts();
        c.refusing = c.refusing.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_over_its_share_gets_429_the_hub_over_its_total_503() {
        let l = ConnLimits::new(3, 2);
        let a1 = l.admit(ip("10.0.0.1")).unwrap();
        let _a2 = l.admit(ip("10.0.0.1")).unwrap();
        let e = l.admit(ip("10.0.0.1")).unwrap_err();
        assert_eq!(e.answer().0, 429);
        assert!(
            e.answer().2.contains("10.0.0.1 holds 2 connections"),
            "{e:?}"
        );
        let _b = l.admit(ip("10.0.0.2")).unwrap();
        let e = l.admit(ip("10.0.0.3")).unwrap_err();
        assert_eq!(e, Refusal::Total { limit: 3 });
        assert_eq!(e.answer().0, 503);
        // A closed connection gives its slot back.
        drop(a1);
        assert_eq!(l.open(ip("10.0.0.1")), (2, 1));
        assert!(l.admit(ip("10.0.0.3")).is_ok());
    }

    #[test]
    fn refusals_answered_at_once_are_bounded() {
        let l = ConnLimits::new(1, 1);
        let held: Vec<Refusing> = (0..MAX_REFUSING).map(|_| l.refusing().unwrap()).collect();
        assert!(l.refusing().is_none());
        drop(held);
        assert!(l.refusing().is_some());
    }
}
