//! The controllers: pure `plan(desired, observed, now) -> Vec<Action>`
//! functions. No I/O, no store and no clock: the caller hands in api objects
//! and `now`, and one applier writes the returned [`Action`]s to redb (and so,
//! through the dispatcher, to the agents). Every plan is level-triggered and
//! idempotent: applied, re-read and planned again it converges and then
//! returns only what is still needed.
//!
//! - [`deployment`]: a Deployment's ReplicaSets ([`replicasets`], one per
//!   template it has run, numbered by [`revision`], planned by
//!   [`replicaset_plan`]) and their pods: replicas, rolling update and
//!   `Recreate` ([`rollout`]), status ([`deployment_status`]).
//!   A failed rollout may undo itself ([`rollback`]).
//! - [`daemonset`]: one pod per matching node, bound to it.
//! - [`statefulset`]: pods `NAME-i` in order, each with its own claims;
//!   status ([`statefulset_status`]).
//! - [`job`]: pods run to completion ([`job_pods`] counts them,
//!   [`job_status`] decides the conditions).
//! - [`cronjob`]: a Job at each time of a schedule.
//! - [`gc`]: pods, ReplicaSets and Jobs whose owners are gone.
//! - [`nodes`]: Ready/NotReady from heartbeats, eviction, fencing.
//! - [`endpoints`]: the ready pod addresses behind each Service.
//! - [`load_balancer`]: the status of Services the hub's load balancer
//!   serves (its addresses, or why a port is not served).
//! - [`volumes`]: claims bound to volumes, `local-path` provisioning,
//!   volume and claim phases, reclaim.

pub mod action;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod deployment_status;
pub mod endpoints;
pub mod gc;
pub mod hpa;
pub mod job;
pub mod job_pods;
pub mod job_status;
pub mod load_balancer;
pub mod naming;
pub mod nodes;
pub mod owners;
pub mod pods;
pub mod rank;
pub mod replicaset_plan;
pub mod replicasets;
pub mod revision;
pub mod rollback;
pub mod rollout;
pub mod statefulset;
pub mod statefulset_status;
mod time;
pub mod volumes;

#[cfg(test)]
mod cronjob_tests;
#[cfg(test)]
mod daemonset_tests;
#[cfg(test)]
mod deployment_tests;
#[cfg(test)]
mod hpa_tests;
#[cfg(test)]
mod job_tests;
#[cfg(test)]
mod nodes_tests;
#[cfg(test)]
mod rollback_tests;
#[cfg(test)]
mod statefulset_tests;
#[cfg(test)]
pub(crate) mod testutil;
#[cfg(test)]
mod volumes_tests;

pub use action::{Action, Garbage, Note, ObjectRef, PodRef};
pub use cronjob::{CronJobInput, plan_cronjob};
pub use daemonset::{DaemonSetInput, plan_daemonset};
pub use deployment::{DeploymentInput, plan_deployment};
pub use gc::{GcInput, plan_gc};
pub use hpa::{HpaInput, HpaPlan, PodMetrics, plan_hpa};
pub use job::{JobInput, plan_job};
pub use load_balancer::{LoadBalancerInput, plan_load_balancers};
pub use nodes::{NodeHealth, NodeLifecycleConfig, fence, plan_nodes};
pub use revision::{Revision, UndoError, undo};
pub use statefulset::{StatefulSetInput, plan_statefulset};
pub use volumes::{VolumeInput, plan_volumes};
