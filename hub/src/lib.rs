//! The Bramble hub: cluster state in redb, the Kubernetes-style HTTP API with
//! Pod Security admission, the registry, the MQTT broker and session with the
//! agents, the controllers, the scheduler and the dispatcher, the event
//! recorder, the ingress, the load balancer of `LoadBalancer` Services,
//! cluster DNS and mDNS, and the cluster CA behind
//! HTTPS and MQTT over TLS. `docs/architecture.md` maps the modules.

pub mod admission;
pub mod api;
pub mod broker;
pub mod build;
pub mod claims;
pub mod conn_limits;
pub mod control;
pub mod controllers;
pub mod data_dir;
pub mod dispatch;
pub mod dynsec;
pub mod events;
pub mod fleet;
pub mod identity;
pub mod ingest;
pub mod ingress;
pub mod kubeconfig;
pub mod listener;
pub mod mdns;
pub mod metrics;
pub mod mqtt;
pub mod network;
pub mod registry;
pub mod rpc;
pub mod scheduler;
pub mod secrets_key;
pub mod server;
pub mod service_lb;
pub mod store;
pub mod testing;
pub mod tls;
pub mod token;

pub use server::{Hub, HubConfig};
