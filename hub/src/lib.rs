//! The Bramble hub: cluster state in redb and the Kubernetes-style HTTP API
//! (scheduler, controllers, broker, registry, ingress and DNS arrive with later
//! milestones).

pub mod api;
pub mod metrics;
pub mod registry;
pub mod server;
pub mod store;
pub mod testing;
pub mod token;

pub use server::{Hub, HubConfig};
