//! The `scale` subresource of Deployments and StatefulSets: an
//! `autoscaling/v1` `Scale` (`spec.replicas`, `status.replicas`,
//! `status.selector`), read with `GET` and written with `PUT` or `PATCH` —
//! what `kubectl scale` and outside autoscalers use. A write changes only
//! the object's `spec.replicas`; a `resourceVersion` in it is the object's
//! (`kubectl scale --resource-version`, `--current-replicas`).

use axum::response::{IntoResponse, Response};
use bramble_api::printing::columns::label_selector;
use bramble_api::{ResourceInfo, Status};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::field_manager::FieldManager;
use super::patch::PatchKind;
use super::warning::with_warnings;

/// The OpenAPI type of a `Scale` (no list of it merges by key).
const SCALE_TYPE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// `object` (a Deployment) as its `Scale`.
pub fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    let selector = match label_selector(object.pointer("/spec/selector")) {
        s if s == "<none>" => String::new(),
        s => s,
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

/// `GET .../{name}/scale`.
pub fn get(
    st: &AppState,
    resource: &'static ResourceInfo,
    ns: &str,
    name: &str,
) -> ApiResult<Response> {
    let object = st
        .store
        .get(resource, Some(ns), name)?
        .ok_or_else(|| ApiError::new(Status::not_found(&resource.display_name(), name)))?;
    Ok(axum::Json(scale_of(&object)).into_response())
}

/// `PUT` (`kind: None`, the body is the whole `Scale`) or `PATCH` of
/// `.../{name}/scale`.
pub async fn update(
    st: &AppState,
    resource: &'static ResourceInfo,
    ns: &str,
    name: &str,
    kind: Option<PatchKind>,
    body: Value,
    manager: &FieldManager,
) -> ApiResult<Response> {
    let fields = super::field_validation::FieldCheck::default();
    let (updated, warnings) =
        super::objects::patch_with(st, resource, Some(ns), name, &fields, |current| {
            let scale = scale_of(current);
            let wanted = match kind {
                Some(k) => super::patch::apply(k, SCALE_TYPE, &scale, &body)?,
                None => body.clone(),
            };
            let replicas = replicas(&wanted, resource, name)?;
            let mut next = current.clone();
            next["spec"]["replicas"] = replicas.into();
            if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str() {
                next["metadata"]["resourceVersion"] = rv.into();
            }
            manager.record(resource, Some(current), &mut next);
            Ok(next)
        })
        .await?;
    Ok(with_warnings(
        axum::Json(scale_of(&updated)).into_response(),
        &warnings,
    ))
}

/// `spec.replicas` of a written `Scale`: a number, not negative.
fn replicas(scale: &Value, resource: &ResourceInfo, name: &str) -> ApiResult<i64> {
    let invalid = |value: &Value, why: &str| {
        ApiError::new(Status::failure(
            422,
            "Invalid",
            format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {value}: {why} (scaling {} \"{name}\")",
                resource.display_name()
            ),
        ))
    };
    let v = &scale["spec"]["replicas"];
    match v.as_i64() {
        Some(n) if n >= 0 && n <= i32::MAX as i64 => Ok(n),
        Some(_) => Err(invalid(v, "must be greater than or equal to 0")),
        None => Err(invalid(v, "must be an integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployments_scale_shows_its_replicas_and_selector() {
        let d = json!({"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "9"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "front"}}},
            "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web,tier=front");
        assert_eq!(s["metadata"]["resourceVersion"], "9");
    }

    #[test]
    fn negative_replicas_are_invalid() {
        let deployments = bramble_api::resource::by_kind("apps/v1", "Deployment").unwrap();
        let e = replicas(&json!({"spec": {"replicas": -1}}), deployments, "web").unwrap_err();
        assert_eq!(e.0.code, 422);
        assert!(
            e.0.message.contains("spec.replicas: Invalid value: -1"),
            "{}",
            e.0.message
        );
        assert!(replicas(&json!({"spec": {"replicas": "2"}}), deployments, "web").is_err());
    }
}
