//! Writes through `events.k8s.io/v1`: create, replace, patch, delete and
//! delete of a collection. A body goes through `fieldValidation` against
//! this version's schema, the API server's validation of this version and
//! the conversion to a `core/v1` Event ([`bramble_api::objects::events_v1::admit`]),
//! and that is what is stored; the answer shows it in this version.
//! `metadata.managedFields` record the write in the stored version's fields
//! (Bramble keeps one version of them and does not convert field sets).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bramble_api::objects::events_v1;
use bramble_api::patch::merge_keys;
use bramble_api::{ResourceInfo, Status};
use serde_json::{Value, json};

use super::super::AppState;
use super::super::error::{ApiError, ApiResult};
use super::super::field_manager::FieldManager;
use super::super::field_validation::{self, FieldCheck};
use super::super::objects;
use super::super::patch::{self, PatchKind};
use super::super::query::ListQuery;
use super::super::warning::with_warnings;
use super::{fields, show, store_error, stored};
use crate::store::object as obj;
use crate::store::{StoreError, WriteOp, WriteOutcome};

/// `body` admitted through this version as the Event `name` (`None`: a
/// create) in `namespace` over the stored `current`: fitted to the URL, its
/// unknown fields sorted out, validated and converted. The `core/v1` Event
/// to store and the warnings of field validation.
fn admit(
    served: &'static ResourceInfo,
    namespace: Option<&str>,
    name: Option<&str>,
    body: Value,
    fields: &FieldCheck,
    current: Option<&Value>,
) -> ApiResult<(Value, Vec<String>)> {
    let mut body = objects::fit_to_url(served, namespace, body)?;
    let (api_version, kind) = (body["apiVersion"].as_str(), body["kind"].as_str());
    if api_version != Some(&served.api_version()) || kind != Some(served.kind) {
        return Err(ApiError::bad_request(format!(
            "the API version and kind in the body ({} {}) do not match the URL ({} {})",
            api_version.unwrap_or("?"),
            kind.unwrap_or("?"),
            served.api_version(),
            served.kind
        )));
    }
    let warnings = field_validation::check(served, &mut body, fields)?;
    let old = current
        .map(events_v1::stored)
        .transpose()
        .map_err(|e| ApiError::new(Status::internal(e.to_string())))?;
    let core = events_v1::admit(body, old.as_ref())?;
    objects::check_name(name, obj::name(&core))?;
    Ok((core, warnings))
}

/// `POST` on the collection of a namespace.
pub async fn create(
    st: &AppState,
    served: &'static ResourceInfo,
    namespace: Option<&str>,
    body: Value,
    fields: &FieldCheck,
    manager: &FieldManager,
) -> ApiResult<Response> {
    if namespace.is_none() {
        return Err(ApiError::bad_request(format!(
            "{} are namespaced: POST to {}",
            served.plural,
            served.collection_path(Some("NAMESPACE"))
        )));
    }
    let (mut core, warnings) = admit(served, namespace, None, body, fields, None)?;
    manager.record(stored(), None, &mut core);
    for f in objects::STORE_OWNED {
        obj::remove_meta(&mut core, f);
    }
    let created = st
        .store
        .create(stored(), core)
        .await
        .map_err(|e| store_error(served, e))?;
    tracing::info!(
        kind = served.kind,
        api_version = %served.api_version(),
        namespace = namespace.unwrap_or(""),
        name = obj::name(&created),
        dry_run = st.store.is_dry_run(),
        "created"
    );
    let resp = (StatusCode::CREATED, axum::Json(show(&created)?)).into_response();
    Ok(with_warnings(resp, &warnings))
}

/// `PUT` on an Event.
pub async fn replace(
    st: &AppState,
    served: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    body: Value,
    fields: &FieldCheck,
    manager: &FieldManager,
) -> ApiResult<Response> {
    let (updated, warnings) = update_with(st, served, namespace, name, |current| {
        let (mut core, warnings) = admit(
            served,
            namespace,
            Some(name),
            body.clone(),
            fields,
            Some(current),
        )?;
        manager.record(stored(), Some(current), &mut core);
        Ok((core, warnings))
    })
    .await?;
    Ok(with_warnings(
        axum::Json(show(&updated)?).into_response(),
        &warnings,
    ))
}

/// `PATCH` (JSON, merge or strategic merge) of an Event as this version
/// shows it.
#[allow(clippy::too_many_arguments)]
pub async fn patch(
    st: &AppState,
    served: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    kind: PatchKind,
    patch: Value,
    fields: &FieldCheck,
    manager: &FieldManager,
) -> ApiResult<Response> {
    let root = merge_keys::root_type(served.group, served.version, served.kind);
    let (updated, warnings) = update_with(st, served, namespace, name, |current| {
        let next = patch::apply(kind, &root, &show(current)?, &patch)?;
        let (mut core, warnings) =
            admit(served, namespace, Some(name), next, fields, Some(current))?;
        manager.record(stored(), Some(current), &mut core);
        Ok((core, warnings))
    })
    .await?;
    Ok(with_warnings(
        axum::Json(show(&updated)?).into_response(),
        &warnings,
    ))
}

/// Writes `change(current)` over the stored Event; when another write came
/// between read and write, reads again and retries, unless the change names
/// a `resourceVersion` other than the one it was built from (a
/// precondition: then 409). Returns the stored Event and the warnings.
async fn update_with(
    st: &AppState,
    served: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    change: impl Fn(&Value) -> ApiResult<(Value, Vec<String>)>,
) -> ApiResult<(Value, Vec<String>)> {
    for _ in 0..8 {
        let Some(current) = st.store.get(stored(), namespace, name)? else {
            return Err(objects::not_found(served, name));
        };
        let (mut next, warnings) = change(&current)?;
        let current_rv = current["metadata"]["resourceVersion"].clone();
        if next["metadata"]["resourceVersion"].is_null() {
            obj::set_meta(&mut next, "resourceVersion", current_rv.clone());
        }
        let names_version = next["metadata"]["resourceVersion"] != current_rv;
        match st.store.update(stored(), next).await {
            Ok((updated, _)) => return Ok((updated, warnings)),
            Err(StoreError::Conflict { .. }) if !names_version => continue,
            Err(e) => return Err(store_error(served, e)),
        }
    }
    Err(ApiError::new(Status::failure(
        409,
        "Conflict",
        format!("{name}: too many concurrent updates, try again"),
    )))
}

/// `DELETE` on an Event (with `preconditions.resourceVersion` in its
/// `DeleteOptions`); answers the Event as it was.
pub async fn delete(
    st: &AppState,
    served: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    options: Option<&Value>,
) -> ApiResult<Response> {
    let precondition = objects::precondition(options)?;
    let gone = st
        .store
        .delete(stored(), namespace, name, precondition)
        .await
        .map_err(|e| store_error(served, e))?;
    tracing::info!(
        kind = served.kind,
        api_version = %served.api_version(),
        namespace = namespace.unwrap_or(""),
        name,
        dry_run = st.store.is_dry_run(),
        "deleted"
    );
    Ok(axum::Json(show(&gone)?).into_response())
}

/// `DELETE` on a namespace's collection: every Event its `labelSelector`
/// and `fieldSelector` pick, in one transaction; answers the list of those
/// deleted (one deleted meanwhile is left out).
pub async fn delete_collection(
    st: &AppState,
    served: &'static ResourceInfo,
    namespace: Option<&str>,
    q: &ListQuery,
) -> ApiResult<Response> {
    let Some(ns) = namespace else {
        return Err(ApiError::method_not_allowed(
            "DELETE",
            &served.collection_path(None),
        ));
    };
    // Every Event selected, whatever `limit` says.
    let fields = fields(q)?;
    let listed = st.store.list(stored(), Some(ns), &q.selector()?)?;
    let items: Vec<Value> = listed
        .items
        .into_iter()
        .filter(|o| fields.matches(o))
        .collect();
    let ops = items
        .iter()
        .map(|o| WriteOp::Delete {
            resource: stored(),
            namespace: Some(ns.to_string()),
            name: obj::name(o).to_string(),
            precondition: None,
        })
        .collect();
    let mut deleted = Vec::new();
    for outcome in st.store.write_all(ops).await {
        match outcome {
            Ok(WriteOutcome::Deleted(gone)) => deleted.push(show(&gone)?),
            Ok(other) => {
                return Err(ApiError::new(Status::internal(format!(
                    "the store answered a delete with {other:?}"
                ))));
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(store_error(served, e)),
        }
    }
    tracing::info!(
        kind = served.kind,
        api_version = %served.api_version(),
        namespace = ns,
        deleted = deleted.len(),
        dry_run = st.store.is_dry_run(),
        "deleted collection"
    );
    let body = json!({
        "apiVersion": served.api_version(),
        "kind": "EventList",
        "metadata": {"resourceVersion": listed.revision.to_string()},
        "items": deleted,
    });
    Ok(axum::Json(body).into_response())
}
