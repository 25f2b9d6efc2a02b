//! The three patch formats of `PATCH` (`kubectl patch --type=...`, `kubectl
//! apply`, `kubectl label`...), chosen by `Content-Type`: JSON merge patch
//! (RFC 7386), JSON patch (RFC 6902) and Kubernetes' strategic merge patch;
//! server-side apply's YAML configurations are parsed here and applied by
//! [`super::objects::apply`].
//! Pure: the current object and the patch in, the patched object out.

use bramble_api::Status;
#[cfg(doc)]
use bramble_api::patch::merge_keys;
use bramble_api::patch::strategic;
use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// A patch format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
}

impl PatchKind {
    /// The format named by a request's `Content-Type`, or 415 as Kubernetes answers.
    pub fn from_content_type(content_type: &str) -> ApiResult<PatchKind> {
        let ct = content_type.split(';').next().unwrap_or("").trim();
        match ct {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            _ => Err(ApiError::new(Status::failure(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format ({ct:?}): accepted media \
                     types include: application/json-patch+json, application/merge-patch+json, \
                     application/apply-patch+yaml, application/strategic-merge-patch+json"
                ),
            ))),
        }
    }
}

/// The `Content-Type` of server-side apply (`kubectl apply --server-side`).
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// Whether `content_type` is a server-side apply.
pub fn is_apply(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or("").trim() == APPLY_PATCH
}

/// An apply configuration: YAML (JSON is YAML too), one object.
pub fn parse_apply(body: &[u8]) -> ApiResult<Value> {
    let config: Value = serde_yaml_ng::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the apply configuration is not valid YAML: {e}"))
    })?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be one object (a YAML mapping)",
        ));
    }
    Ok(config)
}

/// `patch` applied to `current`, an object of OpenAPI type `root_type`
/// ([`merge_keys::root_type`]: how a strategic patch merges its lists).
pub fn apply(kind: PatchKind, root_type: &str, current: &Value, patch: &Value) -> ApiResult<Value> {
    match kind {
        PatchKind::Merge => {
            let mut next = current.clone();
            json_patch::merge(&mut next, patch);
            Ok(next)
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                ApiError::bad_request(format!(
                    "the JSON patch is not a list of RFC 6902 operations: {e}"
                ))
            })?;
            let mut next = current.clone();
            json_patch::patch(&mut next, &ops).map_err(|e| {
                ApiError::new(Status::failure(
                    422,
                    "Invalid",
                    format!(
                        "the JSON patch cannot be applied: operation {} ({}): {}",
                        e.operation, e.path, e.kind
                    ),
                ))
            })?;
            Ok(next)
        }
        PatchKind::Strategic => strategic::apply(current, patch, root_type).map_err(|e| match e {
            strategic::StrategicError::NotAnObject(_) => ApiError::bad_request(e.to_string()),
            _ => ApiError::new(Status::failure(422, "Invalid", e.to_string())),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

    #[test]
    fn content_types_choose_the_format() {
        for (ct, kind) in [
            ("application/merge-patch+json", PatchKind::Merge),
            (
                "application/json-patch+json; charset=utf-8",
                PatchKind::Json,
            ),
            (
                "application/strategic-merge-patch+json",
                PatchKind::Strategic,
            ),
        ] {
            assert_eq!(PatchKind::from_content_type(ct).unwrap(), kind);
        }
        let e = PatchKind::from_content_type("text/plain").unwrap_err();
        assert_eq!(e.0.code, 415);
    }

    #[test]
    fn a_json_patch_adds_and_a_failing_test_changes_nothing() {
        let current = json!({"spec": {"replicas": 1}, "metadata": {"labels": {"a": "b"}}});
        let ok = json!([{"op": "replace", "path": "/spec/replicas", "value": 3},
                        {"op": "add", "path": "/metadata/labels/c", "value": "d"}]);
        let out = apply(PatchKind::Json, DEPLOYMENT, &current, &ok).unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["metadata"]["labels"]["c"], "d");
        let failing = json!([{"op": "test", "path": "/spec/replicas", "value": 9}]);
        let e = apply(PatchKind::Json, DEPLOYMENT, &current, &failing).unwrap_err();
        assert_eq!(e.0.code, 422);
        let e = apply(PatchKind::Json, DEPLOYMENT, &current, &json!({"op": "add"})).unwrap_err();
        assert_eq!(e.0.code, 400);
    }

    #[test]
    fn a_strategic_patch_merges_containers_by_name() {
        let current = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}});
        let out = apply(PatchKind::Strategic, DEPLOYMENT, &current, &patch).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])
        );
    }
}
