//! Reads through `events.k8s.io/v1`: list (in pages), get and watch of the
//! stored `core/v1` Events, each shown in this version. A `Table` prints
//! the stored Events with kubectl's event columns, as Kubernetes prints
//! both versions from one internal type.

use std::time::SystemTime;

use axum::response::{IntoResponse, Response};
use bramble_api::ResourceInfo;
use serde_json::json;

use super::super::AppState;
use super::super::error::ApiResult;
use super::super::objects;
use super::super::query::ListQuery;
use super::super::table::TableRequest;
use super::super::watch;
use super::super::watch_limit::WatchSlot;
use super::{fields, show, stored};

/// `GET` on the collection.
pub fn list(
    st: &AppState,
    served: &'static ResourceInfo,
    namespace: Option<&str>,
    q: &ListQuery,
    table: Option<TableRequest>,
) -> ApiResult<Response> {
    let (items, metadata) = objects::list_page(st, stored(), namespace, q, &fields(q)?)?;
    let shown = items.iter().map(show).collect::<ApiResult<Vec<_>>>()?;
    if let Some(t) = table {
        let body = t.table_shown(stored(), &items, &shown, metadata, SystemTime::now());
        return Ok(axum::Json(body).into_response());
    }
    let body = json!({
        "apiVersion": served.api_version(),
        "kind": "EventList",
        "metadata": metadata,
        "items": shown,
    });
    Ok(axum::Json(body).into_response())
}

/// `GET` on one Event.
pub fn get(
    st: &AppState,
    served: &'static ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    table: Option<TableRequest>,
) -> ApiResult<Response> {
    let Some(o) = st.store.get(stored(), namespace, name)? else {
        return Err(objects::not_found(served, name));
    };
    let shown = show(&o)?;
    let body = match table {
        Some(t) => {
            let rv = o["metadata"]["resourceVersion"].clone();
            t.table_shown(
                stored(),
                std::slice::from_ref(&o),
                std::slice::from_ref(&shown),
                json!({"resourceVersion": rv}),
                SystemTime::now(),
            )
        }
        None => shown,
    };
    Ok(axum::Json(body).into_response())
}

/// `GET` on the collection with `watch=true`: the stored Events' changes,
/// each shown in this version.
pub fn watch(
    st: &AppState,
    namespace: Option<&str>,
    q: &ListQuery,
    table: Option<TableRequest>,
    slot: WatchSlot,
) -> ApiResult<Response> {
    watch::watch_shown(
        st,
        stored(),
        namespace,
        q,
        fields(q)?,
        Some(show),
        table,
        slot,
    )
}
