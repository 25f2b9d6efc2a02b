//! The hub's load balancer for `type: LoadBalancer` Services, as k3s'
//! ServiceLB has one: the hub listens on each Service port (TCP or UDP) on
//! its load balancer address (`--lb-address`, by default the API's) and
//! forwards what arrives to the Service's ready endpoints ([`tcp`],
//! [`udp`]); the Service's `status.loadBalancer.ingress` lists the hub's
//! addresses ([`crate::controllers::load_balancer`] plans it). The pods see
//! the hub as the client (a proxy, not NAT). Which Service holds a port is
//! planned from the store ([`plan`]); [`ServiceLb::set`] then opens the
//! ports that are new, closes those no Service holds any more (their
//! connections end), and gives the others their current endpoints. A port
//! the hub cannot bind (another program, or the hub itself, listens on it) is
//! reported in [`ServiceLb::failures`] and tried again by
//! [`ServiceLb::retry`] until it binds or is no longer wanted. Boards chosen
//! by a Service's `bramble.dev/lb-nodes` serve it on their addresses too
//! ([`nodes`]).

pub mod backends;
pub mod nodes;
pub mod plan;
pub mod tcp;
pub mod udp;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bramble_api::objects::service::LoadBalancerIngress;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::conn_limits::ConnLimits;
use backends::{Backends, Target};
use plan::{PortKey, Protocol};

/// A served port: its endpoints and the task that serves it.
struct Running {
    addr: SocketAddr,
    backends: Arc<Backends>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Ports {
    running: BTreeMap<PortKey, Running>,
    /// Wanted ports that did not bind, with their endpoints.
    failed: BTreeMap<PortKey, Target>,
    /// Tasks of ports no longer wanted, aborted (their port closes when the
    /// runtime drops them).
    closing: Vec<JoinHandle<()>>,
    closed: bool,
}

/// The load balancer: its address, its ports and their bind failures.
pub struct ServiceLb {
    address: IpAddr,
    ingress: Vec<LoadBalancerIngress>,
    limits: Arc<ConnLimits>,
    ports: Mutex<Ports>,
    failures: watch::Sender<BTreeMap<PortKey, String>>,
}

impl std::fmt::Debug for ServiceLb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceLb")
            .field("address", &self.address)
            .field("ingress", &self.ingress)
            .finish_non_exhaustive()
    }
}

impl ServiceLb {
    /// A load balancer listening on `address`, reporting `ingress` as the
    /// Services' addresses, its TCP connections capped by `limits`.
    pub fn new(address: IpAddr, ingress: Vec<IpAddr>, limits: Arc<ConnLimits>) -> Arc<ServiceLb> {
        Arc::new(ServiceLb {
            address,
            ingress: ingress
                .into_iter()
                .map(|ip| LoadBalancerIngress {
                    ip: Some(ip.to_string()),
                    hostname: None,
                })
                .collect(),
            limits,
            ports: Mutex::new(Ports::default()),
            failures: watch::channel(BTreeMap::new()).0,
        })
    }

    /// The addresses reported in the Services' status.
    pub fn ingress(&self) -> &[LoadBalancerIngress] {
        &self.ingress
    }

    /// The wanted ports that could not be bound, and why.
    pub fn failures(&self) -> BTreeMap<PortKey, String> {
        self.failures.borrow().clone()
    }

    /// Changes of [`ServiceLb::failures`].
    pub fn changes(&self) -> watch::Receiver<BTreeMap<PortKey, String>> {
        self.failures.subscribe()
    }

    /// The address a served port listens on.
    pub fn local_addr(&self, key: PortKey) -> Option<SocketAddr> {
        let ports = self.ports.lock().ok()?;
        ports.running.get(&key).map(|r| r.addr)
    }

    /// Serves exactly the ports of `wanted`, each with its endpoints. Must
    /// run inside the hub's tokio runtime.
    pub fn set(&self, wanted: BTreeMap<PortKey, Target>) {
        let Ok(mut ports) = self.ports.lock() else {
            return;
        };
        if ports.closed {
            return;
        }
        ports.closing.retain(|t| !t.is_finished());
        let gone: Vec<PortKey> = ports
            .running
            .keys()
            .filter(|k| !wanted.contains_key(k))
            .copied()
            .collect();
        for key in gone {
            if let Some(r) = ports.running.remove(&key) {
                tracing::info!(port = %key, "load balancer: port closed");
                r.task.abort();
                ports.closing.push(r.task);
            }
        }
        ports.failed.clear();
        for (key, endpoints) in wanted {
            match ports.running.get(&key) {
                Some(r) => r.backends.set(endpoints),
                None => {
                    ports.failed.insert(key, endpoints);
                }
            }
        }
        self.bind_failed(&mut ports);
    }

    /// Tries again to bind the wanted ports that failed.
    pub fn retry(&self) {
        if let Ok(mut ports) = self.ports.lock()
            && !ports.closed
            && !ports.failed.is_empty()
        {
            self.bind_failed(&mut ports);
        }
    }

    /// Closes every port and ends every connection; later calls to
    /// [`ServiceLb::set`] do nothing.
    pub async fn close(&self) {
        let tasks: Vec<JoinHandle<()>> = match self.ports.lock() {
            Ok(mut ports) => {
                ports.closed = true;
                ports.failed.clear();
                let mut tasks = std::mem::take(&mut ports.closing);
                tasks.extend(
                    std::mem::take(&mut ports.running)
                        .into_values()
                        .map(|r| r.task),
                );
                tasks
            }
            Err(_) => return,
        };
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    /// Binds the failed ports; those that bind start serving.
    fn bind_failed(&self, ports: &mut Ports) {
        let mut failures = BTreeMap::new();
        for (key, endpoints) in std::mem::take(&mut ports.failed) {
            let addr = SocketAddr::new(self.address, key.port);
            let backends = Arc::new(Backends::new(endpoints.clone()));
            let started = match key.protocol {
                Protocol::Tcp => bind_tcp(addr)
                    .map(|l| tokio::spawn(tcp::serve(l, backends.clone(), self.limits.clone()))),
                Protocol::Udp => {
                    bind_udp(addr).map(|s| tokio::spawn(udp::serve(s, backends.clone())))
                }
            };
            match started {
                Ok(task) => {
                    tracing::info!(port = %key, %addr, "load balancer: port open");
                    ports.running.insert(
                        key,
                        Running {
                            addr,
                            backends,
                            task,
                        },
                    );
                }
                Err(e) => {
                    failures.insert(key, bind_failure(addr, &e));
                    ports.failed.insert(key, endpoints);
                }
            }
        }
        self.failures.send_if_modified(|f| {
            let changed = *f != failures;
            if changed {
                for (key, why) in &failures {
                    tracing::warn!(port = %key, reason = %why, "load balancer: port not served");
                }
                *f = failures;
            }
            changed
        });
    }
}

/// The addresses the Services' status reports for a load balancer on
/// `address`: that address, or for an unspecified one (`0.0.0.0`) the
/// host's ([`reported`] of its interfaces' addresses).
pub fn ingress_addresses(
    address: IpAddr,
    network: &crate::network::NetworkSettings,
) -> Vec<IpAddr> {
    if !address.is_unspecified() {
        return vec![address];
    }
    let host: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifs| ifs.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "listing the host's addresses for LoadBalancer Services failed");
            Vec::new()
        });
    reported(&host, network)
}

/// Of the host's addresses, those the LAN reaches: IPv4, not loopback or
/// link-local, not in the cluster's pod or service ranges (a board beside
/// the hub puts pod gateways on the host); loopback if nothing else is left.
pub fn reported(host: &[IpAddr], network: &crate::network::NetworkSettings) -> Vec<IpAddr> {
    let mut lan: Vec<IpAddr> = host
        .iter()
        .copied()
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
            IpAddr::V6(_) => false,
        })
        .filter(|ip| !network.cluster_cidr.contains(*ip) && !network.service_cidr.contains(*ip))
        .collect();
    lan.sort();
    lan.dedup();
    if lan.is_empty() {
        lan.push(std::net::Ipv4Addr::LOCALHOST.into());
    }
    lan
}

/// What to tell the Service's owner when its port did not bind.
fn bind_failure(addr: SocketAddr, e: &std::io::Error) -> String {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another program on the hub (or the hub itself: API, MQTT, ingress, DNS) listens on it; \
             choose another port"
        }
        std::io::ErrorKind::PermissionDenied => {
            "the hub may not bind ports below 1024 (run it as root or with CAP_NET_BIND_SERVICE)"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "the address is not on this host (check --lb-address)"
        }
        _ => "tried again every second",
    };
    format!("binding {addr} failed: {e}; {hint}")
}

/// A non-blocking TCP listener on `addr`, for tokio.
fn bind_tcp(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(l)
}

/// A non-blocking UDP socket on `addr`, for tokio.
fn bind_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lan_addresses_of_the_host_are_reported() {
        let network = crate::network::NetworkSettings::default();
        let host: Vec<IpAddr> = [
            "127.0.0.1",
            "192.168.1.5",
            "169.254.3.4",
            "10.42.0.1",
            "10.43.0.1",
            "::1",
            "fe80::1",
            "10.0.0.9",
            "192.168.1.5",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let want: Vec<IpAddr> = vec!["10.0.0.9".parse().unwrap(), "192.168.1.5".parse().unwrap()];
        assert_eq!(reported(&host, &network), want);
        let lonely: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        assert_eq!(reported(&lonely, &network), lonely);
        let fixed: IpAddr = "127.9.8.7".parse().unwrap();
        assert_eq!(ingress_addresses(fixed, &network), vec![fixed]);
    }

    #[tokio::test]
    async fn a_taken_port_is_reported_and_bound_once_free() {
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        let lb = ServiceLb::new(addr, vec![addr], ConnLimits::new(8, 8));
        let holder = std::net::TcpListener::bind((addr, 0)).unwrap();
        let port = holder.local_addr().unwrap().port();
        let key = PortKey {
            protocol: Protocol::Tcp,
            port,
        };
        let mut changes = lb.changes();
        lb.set(BTreeMap::from([(key, Target::default())]));
        let failures = lb.failures();
        assert!(
            failures[&key].contains("another program on the hub"),
            "{failures:?}"
        );
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(lb.local_addr(key), None);
        drop(holder);
        lb.retry();
        assert!(lb.failures().is_empty());
        assert!(changes.has_changed().unwrap());
        assert_eq!(lb.local_addr(key), Some(SocketAddr::new(addr, port)));
        // No longer wanted: closed (the port can be bound again).
        lb.set(BTreeMap::new());
        assert_eq!(lb.local_addr(key), None);
        lb.close().await;
        std::net::TcpListener::bind((addr, port)).expect("the port is free again");
    }
}
