//! CRUD on objects: list, get (as JSON or as a `Table`, [`super::table`]),
//! create, replace, patch, delete.
//! Writes pass `fieldValidation` ([`super::field_validation`]), then
//! `bramble_api::admit`, then Pod Security admission
//! ([`super::pod_security`]); the warnings of both go back as `Warning`
//! headers.

use std::time::SystemTime;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bramble_api::field_selector::FieldSelector;
use bramble_api::patch::{merge_keys, server_side};
use bramble_api::{ResourceInfo, Status};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::field_manager::FieldManager;
use super::field_validation::FieldCheck;
use super::query::ListQuery;
use super::table::TableRequest;
use super::warning::with_warnings;
use crate::store::object as obj;

/// Who writes and how the body's fields are checked.
#[derive(Clone, Copy)]
pub struct Writer<'a> {
    pub fields: &'a FieldCheck,
    pub manager: &'a FieldManager,
}

/// Fields clients may send but the store owns.
pub(super) const STORE_OWNED: [&str; 4] =
    ["uid", "resourceVersion", "generation", "creationTimestamp"];

/// `GET` on a collection.
pub fn list(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    q: &ListQuery,
    table: Option<TableRequest>,
) -> ApiResult<Response> {
    let fields = q.fields(resource.kind)?;
    let (items, metadata) = list_page(st, resource, namespace, q, &fields)?;
    if let Some(t) = table {
        let body = t.table(resource, &items, metadata, SystemTime::now());
        return Ok(axum::Json(body).into_response());
    }
    let body = json!({
        "apiVersion": resource.api_version(),
        "kind": format!("{}List", resource.kind),
        "metadata": metadata,
        "items": items,
    });
    Ok(axum::Json(body).into_response())
}

/// The page of stored objects of `resource` a list asks for (its
/// `labelSelector`, `limit` and `continue`; `fields`, its field selector on
/// the stored objects) and the list's `metadata` (`resourceVersion`,
/// `continue`, `remainingItemCount`).
pub(super) fn list_page(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    q: &ListQuery,
    fields: &FieldSelector,
) -> ApiResult<(Vec<Value>, Value)> {
    let selector = q.selector()?;
    let mut result = st.store.list(resource, namespace, &selector)?;
    q.check_version_match(result.revision)?;
    if !fields.is_empty() {
        result.items.retain(|o| fields.matches(o));
    }
    let page = super::page::paginate(
        result.items,
        result.revision,
        q.limit,
        q.continue_.as_deref(),
    )?;
    let mut metadata = json!({"resourceVersion": page.revision.to_string()});
    if let Some(token) = page.continue_token {
        metadata["continue"] = token.into();
        metadata["remainingItemCount"] = page.remaining.into();
    }
    Ok((page.items, metadata))
}

/// `GET` on an object.
pub fn get(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    table: Option<TableRequest>,
) -> ApiResult<Response> {
    let Some(o) = st.store.get(resource, namespace, name)? else {
        return Err(not_found(resource, name));
    };
    match table {
        Some(t) => {
            let rv = o["metadata"]["resourceVersion"].clone();
            let body = t.table(
                resource,
                &[o],
                json!({"resourceVersion": rv}),
                SystemTime::now(),
            );
            Ok(axum::Json(body).into_response())
        }
        None => Ok(axum::Json(o).into_response()),
    }
}

pub(super) fn not_found(resource: &'static ResourceInfo, name: &str) -> ApiError {
    crate::store::StoreError::NotFound {
        resource,
        name: name.to_string(),
    }
    .into()
}

/// Parses a JSON request body, reporting line and column on syntax errors.
pub fn parse_body(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
}

/// Admits `body` as an object of `resource` in `namespace`: kind, namespace and
/// name must agree with the URL. Returns the object and the warnings of
/// field validation.
fn admit_for(
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    name: Option<&str>,
    body: Value,
    fields: &FieldCheck,
) -> ApiResult<(Value, Vec<String>)> {
    let mut body = fit_to_url(resource, namespace, body)?;
    let warnings = super::field_validation::check(resource, &mut body, fields)?;
    let admitted = bramble_api::admit(body)?;
    if !std::ptr::eq(admitted.resource, resource) {
        return Err(ApiError::bad_request(format!(
            "the API version and kind in the body ({} {}) do not match the URL ({} {})",
            admitted.resource.api_version(),
            admitted.resource.kind,
            resource.api_version(),
            resource.kind
        )));
    }
    check_name(name, admitted.name())?;
    Ok((admitted.object, warnings))
}

/// A write's body made to agree with its URL: as the Kubernetes API server
/// does, the URL names the kind when the body does not (the Python client
/// sends typed objects without them) and the namespace of a namespaced
/// object; a body that names another namespace is a 400.
pub(super) fn fit_to_url(
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    mut body: Value,
) -> ApiResult<Value> {
    if !body.is_object() {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    }
    if body["apiVersion"].is_null() {
        body["apiVersion"] = resource.api_version().into();
    }
    if body["kind"].is_null() {
        body["kind"] = resource.kind.into();
    }
    if resource.namespaced {
        match (body["metadata"]["namespace"].as_str(), namespace) {
            (Some(b), Some(p)) if b != p => {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({b}) does not match the namespace sent on the request ({p})"
                )));
            }
            (None, Some(p)) => obj::set_meta(&mut body, "namespace", p.into()),
            _ => {}
        }
    } else {
        obj::remove_meta(&mut body, "namespace");
    }
    Ok(body)
}

/// The name in the URL, if any, must be the object's.
pub(super) fn check_name(url: Option<&str>, object: &str) -> ApiResult<()> {
    match url {
        Some(n) if n != object => Err(ApiError::bad_request(format!(
            "the name of the object ({object}) does not match the name on the URL ({n})"
        ))),
        _ => Ok(()),
    }
}

/// `POST` on a collection.
pub async fn create(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    body: Value,
    by: Writer<'_>,
) -> ApiResult<Response> {
    let Writer { fields, manager } = by;
    if resource.namespaced && namespace.is_none() {
        return Err(ApiError::bad_request(format!(
            "{} are namespaced: POST to {}",
            resource.plural,
            resource.collection_path(Some("NAMESPACE"))
        )));
    }
    let (mut object, warnings) = admit_for(resource, namespace, None, body, fields)?;
    manager.record(resource, None, &mut object);
    let (created, warnings) = store_new(st, resource, object, warnings).await?;
    tracing::info!(
        kind = resource.kind,
        namespace = namespace.unwrap_or(""),
        name = obj::name(&created),
        dry_run = st.store.is_dry_run(),
        "created"
    );
    let resp = (StatusCode::CREATED, axum::Json(created)).into_response();
    Ok(with_warnings(resp, &warnings))
}

/// Stores an admitted new object (its managers recorded): the store owns
/// its identity and its status starts empty (a pod's `Pending`); Pod Security and Service
/// allocation have their say.
async fn store_new(
    st: &AppState,
    resource: &'static ResourceInfo,
    mut object: Value,
    mut warnings: Vec<String>,
) -> ApiResult<(Value, Vec<String>)> {
    for f in STORE_OWNED {
        obj::remove_meta(&mut object, f);
    }
    if let Some(m) = object.as_object_mut() {
        m.remove("status");
    }
    crate::admission::pod_status::start(&mut object);
    crate::admission::job_identity::give_identity(&mut object).map_err(|e| {
        ApiError::new(Status::internal(format!(
            "the new Job does not decode for its selector: {e}"
        )))
    })?;
    warnings.extend(super::pod_security::admit_write(
        st, resource, &object, None,
    )?);
    super::claims::on_create(st, resource, &mut object)?;
    let _allocating = super::services::prepare(st, resource, &mut object).await?;
    Ok((st.store.create(resource, object).await?, warnings))
}

/// `PUT` on an object: full replacement of spec and metadata.
pub async fn replace(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    body: Value,
    by: Writer<'_>,
) -> ApiResult<Response> {
    let Writer { fields, manager } = by;
    let (mut object, mut warnings) = admit_for(resource, namespace, Some(name), body, fields)?;
    let current = st.store.get(resource, namespace, name)?;
    keep_hub_annotations(current.as_ref(), &mut object);
    if let Some(current) = &current {
        super::claims::on_update(resource, current, &mut object)?;
    }
    // A Service keeps its addresses before the managers are recorded: a
    // replace that leaves them out does not change them, so it must not
    // count as a change (nor move a manager's time).
    let _allocating = super::services::prepare(st, resource, &mut object).await?;
    manager.record(resource, current.as_ref(), &mut object);
    if let Some(current) = &current {
        immutable_job_fields(resource, &object, current)?;
    }
    warnings.extend(super::pod_security::admit_write(
        st,
        resource,
        &object,
        current.as_ref(),
    )?);
    let (updated, changed) = st.store.update(resource, object).await?;
    if changed {
        tracing::info!(
            kind = resource.kind,
            namespace = namespace.unwrap_or(""),
            name,
            dry_run = st.store.is_dry_run(),
            "replaced"
        );
    }
    Ok(with_warnings(
        axum::Json(updated).into_response(),
        &warnings,
    ))
}

/// A 422 when an update changes what a Job's pods were made from.
fn immutable_job_fields(
    resource: &'static ResourceInfo,
    object: &Value,
    current: &Value,
) -> ApiResult<()> {
    let errs = crate::admission::job_identity::check_update(object, current);
    if errs.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(Status::invalid(
        &resource.qualified_kind(),
        obj::name(object),
        &errs,
    )))
}

/// Annotations the hub's controllers write on objects users own.
const HUB_ANNOTATIONS: [&str; 1] = [crate::controllers::replicasets::REVISION_ANNOTATION];

/// A replace (e.g. `bramble apply` of an unchanged manifest) keeps the
/// annotations the controllers wrote unless it sets them itself, as the
/// fields a `kubectl apply` does not manage survive it.
fn keep_hub_annotations(current: Option<&Value>, object: &mut Value) {
    if let Some(current) = current {
        keep_annotations(current, object, &HUB_ANNOTATIONS);
    }
}

/// Copies each of `keys` from `current`'s annotations into `object`'s
/// unless `object` sets it.
pub(super) fn keep_annotations(current: &Value, object: &mut Value, keys: &[&str]) {
    for &key in keys {
        let old = &current["metadata"]["annotations"][key];
        if old.is_null() || !object["metadata"]["annotations"][key].is_null() {
            continue;
        }
        if !object["metadata"]["annotations"].is_object() {
            object["metadata"]["annotations"] = Value::Object(Default::default());
        }
        object["metadata"]["annotations"][key] = old.clone();
    }
}

/// `PATCH` in any of [`super::patch::PatchKind`]'s formats, retried on concurrent updates.
pub async fn patch(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    content_type: &str,
    patch: Value,
    by: Writer<'_>,
) -> ApiResult<Response> {
    let Writer { fields, manager } = by;
    let kind = super::patch::PatchKind::from_content_type(content_type)?;
    let (updated, warnings) = patch_with(st, resource, namespace, name, fields, |current| {
        let root = merge_keys::root_type(resource.group, resource.version, resource.kind);
        let mut next = super::patch::apply(kind, &root, current, &patch)?;
        manager.record(resource, Some(current), &mut next);
        Ok(next)
    })
    .await?;
    Ok(with_warnings(
        axum::Json(updated).into_response(),
        &warnings,
    ))
}

/// `PATCH` with `application/apply-patch+yaml`: server-side apply of
/// `config`, the whole intent of `manager` (which the request must name),
/// creating the object when it does not exist. A field another manager owns
/// with another value is a 409 naming each conflict, unless `force=true`.
pub async fn apply(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    config: Value,
    by: Writer<'_>,
) -> ApiResult<Response> {
    let Writer { fields, manager } = by;
    if !manager.named {
        return Err(ApiError::bad_request(
            "fieldManager is required for apply requests: add ?fieldManager=NAME",
        ));
    }
    if config["apiVersion"].is_null() || config["kind"].is_null() {
        return Err(ApiError::bad_request(
            "an apply configuration needs apiVersion and kind",
        ));
    }
    let at = super::field_manager::WriteContext::now(resource);
    let w = manager.writer(&at);
    let applied = |current: Option<&Value>| {
        server_side::apply(current, &config, w, manager.force).map_err(apply_error)
    };
    if st.store.get(resource, namespace, name)?.is_none() {
        let object = applied(None)?;
        let (object, warnings) = admit_for(resource, namespace, Some(name), object, fields)?;
        match store_new(st, resource, object, warnings).await {
            Ok((created, warnings)) => {
                let resp = (StatusCode::CREATED, axum::Json(created)).into_response();
                return Ok(with_warnings(resp, &warnings));
            }
            // Created meanwhile: apply to it.
            Err(e) if e.0.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let (updated, warnings) = patch_with(st, resource, namespace, name, fields, |current| {
        applied(Some(current))
    })
    .await?;
    Ok(with_warnings(
        axum::Json(updated).into_response(),
        &warnings,
    ))
}

/// An apply's refusal as Kubernetes words it: 409 with one
/// `FieldManagerConflict` cause per field.
fn apply_error(e: server_side::ApplyError) -> ApiError {
    match &e {
        server_side::ApplyError::Conflicts(conflicts) => {
            let causes = conflicts
                .iter()
                .map(|c| bramble_api::status::StatusCause {
                    reason: "FieldManagerConflict".into(),
                    message: c.message(),
                    field: c.field(),
                })
                .collect();
            let mut status = Status::failure(409, "Conflict", e.to_string());
            status.details = Some(bramble_api::status::StatusDetails {
                causes,
                ..Default::default()
            });
            ApiError::new(status)
        }
        server_side::ApplyError::Merge(_) => {
            ApiError::new(Status::failure(422, "Invalid", e.to_string()))
        }
    }
}

/// Writes `change(current)` over the stored object through admission; when
/// another write came between read and write, reads again and retries,
/// unless the changed object names a `resourceVersion` other than the one it
/// was built from (a precondition: then 409). Returns the stored object and
/// admission's warnings.
pub async fn patch_with(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    fields: &FieldCheck,
    change: impl Fn(&Value) -> ApiResult<Value>,
) -> ApiResult<(Value, Vec<String>)> {
    for _ in 0..8 {
        let Some(current) = st.store.get(resource, namespace, name)? else {
            return Err(not_found(resource, name));
        };
        let mut next = change(&current)?;
        // The patched object is checked against the version it was built
        // from, or against the one the patch names (a precondition: 409 if stale).
        let current_rv = current["metadata"]["resourceVersion"].clone();
        if next["metadata"]["resourceVersion"].is_null() {
            obj::set_meta(&mut next, "resourceVersion", current_rv.clone());
        }
        let names_version = next["metadata"]["resourceVersion"] != current_rv;
        let (mut object, mut warnings) = admit_for(resource, namespace, Some(name), next, fields)?;
        super::claims::on_update(resource, &current, &mut object)?;
        immutable_job_fields(resource, &object, &current)?;
        warnings.extend(super::pod_security::admit_write(
            st,
            resource,
            &object,
            Some(&current),
        )?);
        let _allocating = super::services::prepare(st, resource, &mut object).await?;
        match st.store.update(resource, object).await {
            Ok((updated, _)) => return Ok((updated, warnings)),
            Err(crate::store::StoreError::Conflict { .. }) if !names_version => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(Status::failure(
        409,
        "Conflict",
        format!("{name}: too many concurrent updates, try again"),
    )))
}

/// `DELETE` on an object. Honors `preconditions.resourceVersion` in a
/// `DeleteOptions` body.
pub async fn delete(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    body: Option<Value>,
) -> ApiResult<Response> {
    if resource.plural == "namespaces" && matches!(name, "default" | "kube-system") {
        return Err(ApiError::new(Status::failure(
            403,
            "Forbidden",
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        )));
    }
    let precondition = precondition(body.as_ref())?;
    let gone = st
        .store
        .delete(resource, namespace, name, precondition)
        .await?;
    tracing::info!(
        kind = resource.kind,
        namespace = namespace.unwrap_or(""),
        name,
        dry_run = st.store.is_dry_run(),
        "deleted"
    );
    Ok(axum::Json(gone).into_response())
}

/// The `preconditions.resourceVersion` of a delete's `DeleteOptions`.
pub(super) fn precondition(options: Option<&Value>) -> ApiResult<Option<u64>> {
    match options.and_then(|b| b["preconditions"]["resourceVersion"].as_str()) {
        Some(rv) => rv.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "preconditions.resourceVersion {rv:?} is not a number"
            ))
        }),
        None => Ok(None),
    }
}
