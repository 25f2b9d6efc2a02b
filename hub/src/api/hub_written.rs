//! Client writes to kinds only the hub writes (ReplicaSets, see
//! `ResourceInfo::hub_written`).
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
