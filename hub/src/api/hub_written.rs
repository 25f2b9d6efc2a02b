//! Client writes to kinds only the hub writes (ReplicaSets, see
//! `ResourceInfo::hub_written`), and deletes whose `propagationPolicy` the
//! hub does not implement.
//!
//! A client may not create, replace or patch a ReplicaSet (`405`, as for
//! any verb a kind does not serve: discovery lists only `get`, `list`,
//! `watch` and `delete`); it may delete one that no Deployment controls (one
//! an older Bramble or a manual edit left behind), never one a Deployment
//! controls (`403`): that Deployment would make it again at once.

use bramble_api::{ResourceInfo, Status};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::controllers::gc::OWNER_KINDS;

/// The refusal of a create, replace or patch of a hub-written kind.
pub fn refuse_write(resource: &ResourceInfo, name: Option<&str>) -> ApiError {
    let what = match name {
        Some(n) => format!("{} {n:?}", resource.display_name()),
        None => resource.plural.to_string(),
    };
    ApiError::new(Status::failure(
        405,
        "MethodNotAllowed",
        format!(
            "{what}: {} are written by the hub only, as the revisions of a Deployment; \
             change the Deployment instead (kubectl apply, set image, scale, rollout undo)",
            resource.plural
        ),
    ))
}

/// Refuses deleting a hub-written object that a Deployment controls.
pub fn check_delete(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
) -> ApiResult<()> {
    let Some(current) = st.store.get(resource, namespace, name)? else {
        return Ok(());
    };
    let controller = current["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["controller"] == Value::Bool(true)));
    let Some(owner) = controller else {
        return Ok(());
    };
    let kind = owner["kind"].as_str().unwrap_or("").to_ascii_lowercase();
    let owner = owner["name"].as_str().unwrap_or("");
    Err(ApiError::new(Status::failure(
        403,
        "Forbidden",
        format!(
            "{} {name:?} is forbidden: it is controlled by {kind} {owner:?}, which would make it \
             again; delete {kind}/{owner}, or roll it out (kubectl rollout undo, \
             revisionHistoryLimit prunes old ones)",
            resource.display_name()
        ),
    )))
}

/// Refuses `propagationPolicy: Orphan` (and the older `orphanDependents:
/// true`) on kinds whose dependents the garbage collector deletes: the
/// hub cannot leave them behind, and deleting them anyway would not be
/// what was asked. `Foreground` is served as `Background`.
pub fn check_propagation(resource: &ResourceInfo, options: Option<&Value>) -> ApiResult<()> {
    let Some(o) = options else {
        return Ok(());
    };
    let orphan = o["propagationPolicy"] == "Orphan" || o["orphanDependents"] == true;
    let owner_kind = OWNER_KINDS
        .iter()
        .any(|(v, k)| *v == resource.api_version() && *k == resource.kind);
    if orphan && owner_kind {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy Orphan is not supported for {}: the hub deletes what one \
             owns (its ReplicaSets, Jobs or pods) with it; delete with the default (background) cascade",
            resource.plural
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_write_is_refused_naming_the_object() {
        let rs = bramble_api::resource::resolve("rs").unwrap();
        let e = refuse_write(rs, Some("web-5d8f7c9b4x"));
        assert_eq!((e.0.code, e.0.reason.as_str()), (405, "MethodNotAllowed"));
        assert!(
            e.0.message.starts_with(
                "replicaset.apps \"web-5d8f7c9b4x\": replicasets are written by the hub only"
            ),
            "{}",
            e.0.message
        );
    }

    #[test]
    fn only_orphaning_an_owner_is_refused() {
        let rs = bramble_api::resource::resolve("rs").unwrap();
        let cm = bramble_api::resource::resolve("cm").unwrap();
        let orphan = json!({"propagationPolicy": "Orphan"});
        assert_eq!(
            check_propagation(rs, Some(&orphan)).unwrap_err().0.code,
            400
        );
        let old = json!({"orphanDependents": true});
        assert!(check_propagation(rs, Some(&old)).is_err());
        assert!(check_propagation(cm, Some(&orphan)).is_ok());
        let foreground = json!({"propagationPolicy": "Foreground"});
        assert!(check_propagation(rs, Some(&foreground)).is_ok());
        assert!(check_propagation(rs, None).is_ok());
    }
}
