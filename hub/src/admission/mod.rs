//! Admission policies the hub applies to objects that already passed
//! `bramble_api::admit` (decoding, defaults, field validation): policies
//! that depend on the cluster's state or the hub's flags, not on the object
//! alone.
//!
//! - [`pod_security`]: Kubernetes' Pod Security admission (the
//!   `pod-security.kubernetes.io/*` namespace labels and the Pod Security
//!   Standards), plus Bramble's host devices and allowed host paths.
//! - [`job_identity`]: a new Job's uid, and its selector made from it.
//! - [`pod_status`]: a new Pod's first status (`phase: Pending`).

pub mod job_identity;
pub mod pod_security;
pub mod pod_status;
