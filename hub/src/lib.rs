//! The Bramble hub: cluster state in redb, the Kubernetes-style HTTP API, the
//! registry, the MQTT broker and session with the agents, the controllers, the
//! scheduler and the dispatcher (ingress and DNS arrive with M1-5).

pub mod api;
pub mod broker;
pub mod control;
pub mod controllers;
pub mod dispatch;
pub mod dynsec;
pub mod fleet;
pub mod identity;
pub mod ingest;
pub mod ingress;
pub mod mdns;
pub mod metrics;
pub mod mqtt;
pub mod network;
pub mod registry;
pub mod rpc;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod testing;
pub mod token;

pub use server::{Hub, HubConfig};
