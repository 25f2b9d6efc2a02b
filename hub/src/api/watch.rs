//! `?watch=true`: newline-delimited JSON events, as Kubernetes streams them.
//!
//! Without a `resourceVersion` the stream starts with an `ADDED` event for every
//! existing object, then follows changes after the list's revision. A watch from
//! a revision older than the retained history gets a `410 Gone`; a watcher that
//! falls behind gets an `ERROR` event with an `Expired` status and the stream ends.
//! Each open watch holds one of its token's slots (`watch_limit`). Asked
//! with a `Table` `Accept` (`kubectl get -w`), each event carries a one-row `Table`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use bramble_api::ResourceInfo;
use futures_util::stream;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::query::ListQuery;
use super::table::TableRequest;
use super::watch_limit::WatchSlot;
use crate::store::{StoreError, Watch, WatchFilter};

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .expect("JSON values always serialize");
    v.push(b'\n');
    Bytes::from(v)
}

enum Phase {
    Initial(std::vec::IntoIter<Value>, Watch),
    Live(Watch),
    Done,
}

/// Starts a watch response.
pub fn watch(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    q: &ListQuery,
    table: Option<TableRequest>,
    slot: WatchSlot,
) -> ApiResult<Response> {
    let filter = WatchFilter {
        resource,
        namespace: namespace.map(str::to_string),
        selector: q.selector()?,
        fields: q.fields(resource.kind)?,
    };
    let phase = match q.revision()? {
        Some(rev) => Phase::Live(st.store.watch(filter, rev)?),
        None => {
            let list = st.store.list(resource, namespace, &filter.selector)?;
            let items: Vec<Value> = list
                .items
                .into_iter()
                .filter(|o| filter.fields.matches(o))
                .collect();
            let w = st.store.watch(filter, list.revision)?;
            Phase::Initial(items.into_iter(), w)
        }
    };
    let timeout = q.timeout_seconds.map(Duration::from_secs);
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let shutdown = st.shutdown.clone();
    let s = stream::unfold((phase, shutdown), move |(phase, shutdown)| {
        // The stream owns the slot: it is given back when the stream ends
        // or the client goes away.
        let _held = &slot;
        async move {
            match phase {
                Phase::Done => None,
                Phase::Initial(mut items, w) => match items.next() {
                    Some(o) => {
                        let o = match table {
                            Some(t) => as_table(t, resource, &o),
                            None => o,
                        };
                        Some((Ok(line("ADDED", &o)), (Phase::Initial(items, w), shutdown)))
                    }
                    None => next_live(w, shutdown, deadline, table).await,
                },
                Phase::Live(w) => next_live(w, shutdown, deadline, table).await,
            }
        }
    });
    tracing::debug!(
        kind = resource.kind,
        watchers = st.store.watchers(),
        "watch started"
    );
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(s))
        .unwrap_or_else(|_| ().into_response()))
}

type Item = (
    Result<Bytes, std::io::Error>,
    (Phase, tokio::sync::watch::Receiver<bool>),
);

/// One object as a one-row `Table`, what each event of a watch asked as a
/// table carries (`kubectl get -w`).
fn as_table(t: TableRequest, resource: &ResourceInfo, object: &Value) -> Value {
    let rv = object["metadata"]["resourceVersion"].clone();
    t.table(
        resource,
        std::slice::from_ref(object),
        json!({"resourceVersion": rv}),
        std::time::SystemTime::now(),
    )
}

async fn next_live(
    mut w: Watch,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    deadline: Option<tokio::time::Instant>,
    table: Option<TableRequest>,
) -> Option<Item> {
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    enum Next {
        Event(std::sync::Arc<crate::store::Event>),
        Fail(StoreError),
        Stop,
    }
    let next = tokio::select! {
        ev = w.next() => match ev {
            Ok(e) => Next::Event(e),
            Err(StoreError::Closed) => Next::Stop,
            Err(e) => Next::Fail(e),
        },
        _ = shutdown.wait_for(|stop| *stop) => Next::Stop,
        _ = sleep => Next::Stop,
    };
    match next {
        Next::Event(e) => {
            let bytes = match table {
                Some(t) => line(e.kind.as_str(), &as_table(t, e.resource, &e.object())),
                None => e.line(),
            };
            Some((Ok(bytes), (Phase::Live(w), shutdown)))
        }
        Next::Fail(e) => {
            let status = serde_json::to_value(e.to_status()).unwrap_or(Value::Null);
            Some((Ok(line("ERROR", &status)), (Phase::Done, shutdown)))
        }
        Next::Stop => None,
    }
}
