//! The Bramble hub: cluster state in redb, the Kubernetes-style HTTP API, and
//! (in later milestones) scheduler, controllers, broker, registry, ingress, DNS.

pub mod store;
