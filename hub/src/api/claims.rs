//! PersistentVolumeClaims at write time, as Kubernetes' API server treats
//! them:
//!
//! - create: a claim without `storageClassName` gets the default class's
//!   name (the DefaultStorageClass admission plugin), so what `get pvc`
//!   shows is what it uses;
//! - update: the spec is immutable once created except
//!   `resources.requests` (a replace that leaves out what the hub filled
//!   in — `volumeName`, `storageClassName`, the binding annotations —
//!   keeps them: `bramble apply` of the same manifest must not unbind a
//!   claim its pod is using).

use bramble_api::objects::persistent_volume_claim::SELECTED_NODE;
use bramble_api::objects::storage_class::DEFAULT_CLASS_ANNOTATION;
use bramble_api::{ResourceInfo, Selector, Status};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::claims::BIND_COMPLETED;

/// Annotations the hub writes on claims.
const HUB_ANNOTATIONS: [&str; 3] = [
    BIND_COMPLETED,
    "pv.kubernetes.io/bound-by-controller",
    SELECTED_NODE,
];

fn is_claims(resource: &ResourceInfo) -> bool {
    resource.group.is_empty() && resource.plural == "persistentvolumeclaims"
}

/// On create: the default class for a claim that names none.
pub fn on_create(
    st: &AppState,
    resource: &'static ResourceInfo,
    object: &mut Value,
) -> ApiResult<()> {
    if !is_claims(resource) || !object["spec"]["storageClassName"].is_null() {
        return Ok(());
    }
    let classes = bramble_api::resource::by_plural("storage.k8s.io", "v1", "storageclasses")
        .expect("registered");
    let list = st.store.list(classes, None, &Selector::default())?;
    // Several defaults: the newest, as Kubernetes picks.
    let default = list
        .items
        .iter()
        .filter(|c| c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true")
        .max_by(|a, b| {
            let key = |c: &Value| {
                (
                    c["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    c["metadata"]["name"].as_str().unwrap_or("").to_string(),
                )
            };
            key(a).cmp(&key(b))
        });
    if let Some(name) = default.and_then(|c| c["metadata"]["name"].as_str()) {
        object["spec"]["storageClassName"] = name.into();
    }
    Ok(())
}

/// On update: keeps what the hub filled in, and refuses spec changes other
/// than `resources.requests`.
pub fn on_update(
    resource: &'static ResourceInfo,
    current: &Value,
    object: &mut Value,
) -> ApiResult<()> {
    if !is_claims(resource) {
        return Ok(());
    }
    for field in ["volumeName", "storageClassName"] {
        if object["spec"][field].is_null() && !current["spec"][field].is_null() {
            object["spec"][field] = current["spec"][field].clone();
        }
    }
    super::objects::keep_annotations(current, object, &HUB_ANNOTATIONS);
    let without_requests = |v: &Value| {
        let mut spec = v["spec"].clone();
        if let Some(r) = spec.get_mut("resources").and_then(Value::as_object_mut) {
            r.remove("requests");
        }
        spec
    };
    // Naming the volume of a claim not bound yet is allowed, as Kubernetes
    // allows it (a user binding it by hand).
    let mut before = without_requests(current);
    let after = without_requests(object);
    if before["volumeName"].is_null() && !after["volumeName"].is_null() {
        before["volumeName"] = after["volumeName"].clone();
    }
    if before != after {
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        return Err(ApiError::new(Status::failure(
            422,
            "Invalid",
            format!(
                "PersistentVolumeClaim {name:?} is invalid: spec: Forbidden: spec is immutable after creation except resources.requests; delete and recreate the claim to change it"
            ),
        )));
    }
    Ok(())
}
