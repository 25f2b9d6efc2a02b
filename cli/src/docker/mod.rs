//! Docker habits on the fleet: `bramble run` ([`run`], planned by
//! [`run_plan`] from flags read by [`run_spec`]), `bramble ps` ([`ps`]),
//! and `bramble rm`, `stop`, `start` ([`lifecycle`]). A run is ordinary
//! Kubernetes objects (a Deployment, Job or Pod, a `LoadBalancer` Service
//! for published ports, claims for named volumes) labelled
//! `bramble.dev/run=NAME`, so kubectl sees and manages them too.

pub mod lifecycle;
pub mod ps;
pub mod run;
pub mod run_plan;
pub mod run_spec;
