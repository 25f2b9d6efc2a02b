//! Cluster DNS for the hub and the agents: [`Zone`] (service and pod names
//! from the service table), [`answer`] (one query → a response or "relay
//! it"), [`DnsServer`] (UDP + TCP on std threads, relaying other names to
//! upstream resolvers), and the pods' resolv.conf. The agent serves the
//! names of its last desired set, so they keep resolving while the hub is
//! away.

pub mod answer;
pub mod resolv;
pub mod server;
pub mod zone;

pub use resolv::pod_resolv_conf;
pub use server::{DnsOptions, DnsServer, upstreams_from_resolv_conf};
pub use zone::{Entry, Lookup, Zone};
