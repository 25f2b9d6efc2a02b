//! `events.k8s.io/v1` Events: the store's `core/v1` Events served at a
//! second group version, as Kubernetes serves one storage at two versions.
//! Reads ([`read`]) show each stored Event in this version; writes
//! ([`write`]) are validated as the API server validates this version and
//! stored as `core/v1` Events (the conversion and the rules are
//! [`bramble_api::objects::events_v1`]'s). Field selectors take this
//! version's labels (`regarding.name`, `reportingController`...). Not served:
//! server-side apply (415) and protobuf bodies.

mod read;
mod write;

use axum::body::Body;
use axum::http::Method;
use axum::http::request::Parts;
use axum::response::Response;
use bramble_api::field_selector::FieldSelector;
use bramble_api::objects::events_v1;
use bramble_api::{ResourceInfo, Status};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::field_manager::FieldManager;
use super::query::ListQuery;
use super::{AppState, content, dry_run, field_validation, patch};
use crate::store::StoreError;

/// The kind that stores these Events.
fn stored() -> &'static ResourceInfo {
    bramble_api::resource::by_plural("", "v1", "events").expect("events are registered")
}

/// A stored `core/v1` Event in this version (a 500 if it does not decode).
fn show(object: &Value) -> ApiResult<Value> {
    events_v1::show(object).map_err(|e| {
        tracing::error!(error = %e, "stored event cannot be shown as events.k8s.io/v1");
        ApiError::new(Status::internal(e.to_string()))
    })
}

/// The `fieldSelector` of a read, in this version's labels.
fn fields(q: &ListQuery) -> ApiResult<FieldSelector> {
    FieldSelector::parse_converted(
        q.field_selector.as_deref().unwrap_or(""),
        events_v1::QUALIFIED_KIND,
        events_v1::FIELD_LABELS,
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A store error naming the Event as this version's resource
/// (`events.events.k8s.io "x" not found`).
fn store_error(served: &'static ResourceInfo, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { name, .. } => StoreError::NotFound {
            resource: served,
            name,
        },
        StoreError::AlreadyExists { name, .. } => StoreError::AlreadyExists {
            resource: served,
            name,
        },
        StoreError::Conflict {
            name,
            given,
            current,
            ..
        } => StoreError::Conflict {
            resource: served,
            name,
            given,
            current,
        },
        other => other,
    }
    .into()
}

/// Serves one request under `/apis/events.k8s.io/v1`.
pub(super) async fn handle(
    st: &AppState,
    parts: &Parts,
    body: Body,
    served: &'static ResourceInfo,
    namespace: Option<String>,
    name: Option<String>,
) -> ApiResult<Response> {
    let ns = namespace.as_deref();
    let content_type = parts
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let manager = || FieldManager::from_request(&parts.uri, &parts.headers);
    match (&parts.method, name.as_deref()) {
        (&Method::GET, None) => {
            let q = ListQuery::parse(parts.uri.query())?;
            let table = super::table_request(parts, &q)?;
            if q.is_watch() {
                let slot = super::watch_slot(st, parts)?;
                read::watch(st, ns, &q, table, slot)
            } else {
                read::list(st, served, ns, &q, table)
            }
        }
        (&Method::GET, Some(n)) => {
            let table = super::table_request(parts, &ListQuery::parse(parts.uri.query())?)?;
            read::get(st, served, ns, n, table)
        }
        (&Method::POST, None) => {
            let raw = super::read_body(body).await?;
            let (body, fields) = field_validation::parse_write(&parts.uri, content_type, &raw)?;
            write::create(st, served, ns, body, &fields, &manager()?).await
        }
        (&Method::PUT, Some(n)) => {
            let raw = super::read_body(body).await?;
            let (body, fields) = field_validation::parse_write(&parts.uri, content_type, &raw)?;
            write::replace(st, served, ns, n, body, &fields, &manager()?).await
        }
        (&Method::PATCH, Some(n)) => {
            let ct = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if patch::is_apply(ct) {
                return Err(ApiError::new(Status::failure(
                    415,
                    "UnsupportedMediaType",
                    "server-side apply is not served for events.k8s.io/v1 Events: \
                     apply them as core/v1 Events (apiVersion: v1), or patch them",
                )));
            }
            let kind = patch::PatchKind::from_content_type(ct)?;
            let raw = super::read_body(body).await?;
            // Every other patch format is JSON, whatever its Content-Type says.
            let (body, fields) = field_validation::parse_write(&parts.uri, None, &raw)?;
            write::patch(st, served, ns, n, kind, body, &fields, &manager()?).await
        }
        (&Method::DELETE, name) => {
            let raw = super::read_body(body).await?;
            let opts = if raw.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(content::decode(content_type, &raw)?)
            };
            // kubectl sends the dry run of a delete in its DeleteOptions.
            let dry;
            let st = if dry_run::in_delete_options(opts.as_ref())? {
                dry = dry_run::state(st);
                &dry
            } else {
                st
            };
            match name {
                Some(n) => write::delete(st, served, ns, n, opts.as_ref()).await,
                None => {
                    let q = ListQuery::parse(parts.uri.query())?;
                    write::delete_collection(st, served, ns, &q).await
                }
            }
        }
        (method, _) => Err(ApiError::method_not_allowed(
            method.as_str(),
            parts.uri.path(),
        )),
    }
}
