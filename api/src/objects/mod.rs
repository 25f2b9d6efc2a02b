//! The typed object model: one module per concept, one top-level struct per kind.
//!
//! Every struct a user writes uses `deny_unknown_fields`, so a field Bramble does
//! not support is reported with its full path; status structs are lenient. (The
//! hub sorts unknown fields out before decoding, by the schemas of these types:
//! `crate::schema::unknown`.)
//! [`admit_kind`] dispatches admission to the typed struct of each kind in
//! [`crate::resource::RESOURCES`]; a kind served at a second version
//! (`crate::resource::CONVERTED`: `events_v1`, the hub's only) has its own
//! admission, which converts to the stored kind.

pub mod build;
pub mod common;
pub mod container;
pub mod core;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod env;
pub mod event;
// `events.k8s.io/v1`, served by the hub only.
#[cfg(feature = "schema")]
pub mod events_v1;
pub mod hpa;
pub mod ingress;
pub mod job;
pub mod network_policy;
pub mod node;
pub mod persistent_volume;
pub mod persistent_volume_claim;
pub mod pod;
pub mod pod_status;
pub mod probe;
pub mod replicaset;
pub mod resources;
pub mod scheduling;
pub mod seccomp;
pub mod secret;
pub mod service;
pub mod statefulset;
pub mod storage_class;
pub mod template;
pub mod volume;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::admit::admit_as;
use crate::field::FieldErrors;

pub use self::core::{ConfigMap, Namespace};
pub use build::Build;
pub use cronjob::CronJob;
pub use daemonset::DaemonSet;
pub use deployment::Deployment;
pub use endpoints::Endpoints;
pub use event::Event;
pub use hpa::HorizontalPodAutoscaler;
pub use ingress::Ingress;
pub use job::Job;
pub use network_policy::NetworkPolicy;
pub use node::Node;
pub use persistent_volume::PersistentVolume;
pub use persistent_volume_claim::PersistentVolumeClaim;
pub use pod::{Pod, PodSpec};
pub use replicaset::ReplicaSet;
pub use secret::Secret;
pub use service::Service;
pub use statefulset::StatefulSet;
pub use storage_class::StorageClass;
pub use template::PodTemplateSpec;

/// Dispatches admission to the typed struct of `kind`.
pub(crate) fn admit_kind(kind: &str, value: Value) -> Result<Value, FieldErrors> {
    match kind {
        "Pod" => admit_as::<Pod>(value),
        "Service" => admit_as::<Service>(value),
        "ConfigMap" => admit_as::<ConfigMap>(value),
        "Secret" => admit_as::<Secret>(value),
        "Endpoints" => admit_as::<Endpoints>(value),
        "Node" => admit_as::<Node>(value),
        "Namespace" => admit_as::<Namespace>(value),
        "Deployment" => admit_as::<Deployment>(value),
        "DaemonSet" => admit_as::<DaemonSet>(value),
        "StatefulSet" => admit_as::<StatefulSet>(value),
        "ReplicaSet" => admit_as::<ReplicaSet>(value),
        "HorizontalPodAutoscaler" => admit_as::<HorizontalPodAutoscaler>(value),
        "Ingress" => admit_as::<Ingress>(value),
        "NetworkPolicy" => admit_as::<NetworkPolicy>(value),
        "Event" => admit_as::<Event>(value),
        "PersistentVolumeClaim" => admit_as::<PersistentVolumeClaim>(value),
        "PersistentVolume" => admit_as::<PersistentVolume>(value),
        "StorageClass" => admit_as::<StorageClass>(value),
        "Job" => admit_as::<Job>(value),
        "CronJob" => admit_as::<CronJob>(value),
        "Build" => admit_as::<Build>(value),
        other => Err(FieldErrors(vec![crate::field::FieldError::invalid(
            "kind",
            format!("{other} is not implemented yet"),
        )])),
    }
}
