//! `?watch=true`: newline-delimited JSON events, as Kubernetes streams them.
//!
//! Without a `resourceVersion` the stream starts with an `ADDED` event for every
//! existing object, then follows changes after the list's revision. A watch from
//! a revision older than the retained history gets a `410 Gone`; a watcher that
//! falls behind gets an `ERROR` event with an `Expired` status and the stream ends.
//! Each open watch holds one of its token's slots (`watch_limit`). Asked
//! with a `Table` `Accept` (`kubectl get -w`), each event carries a one-row
//! `Table`. A watch of a kind served by conversion ([`watch_shown`]) follows
//! the stored kind and shows each object in its own version.
//!
//! With `allowWatchBookmarks=true` (what informers send: `kubectl wait`,
//! `rollout status`, controllers), a plain watch that delivered nothing for
//! `--watch-bookmark-interval` gets a `BOOKMARK`: an object of the kind with
//! only `metadata.resourceVersion`, the revision the watch has read up to
//! (its kind's changes, delivered or not matching its selectors), so a
//! client that restarts from it misses no event. Watches
//! of converted kinds and `Table` watches get none (bookmarks are a hint
//! servers may leave out).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use bramble_api::ResourceInfo;
use bramble_api::field_selector::FieldSelector;
use futures_util::stream;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::query::ListQuery;
use super::table::TableRequest;
use super::watch_limit::WatchSlot;
use crate::store::{StoreError, Watch, WatchFilter};

/// Default of `--watch-bookmark-interval` (Kubernetes sends one about
/// every minute).
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

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

/// Shows a stored object in the version a watch asked for.
pub type Show = fn(&Value) -> ApiResult<Value>;

/// Starts a watch response.
pub fn watch(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    q: &ListQuery,
    table: Option<TableRequest>,
    slot: WatchSlot,
) -> ApiResult<Response> {
    let fields = q.fields(resource.kind)?;
    watch_shown(st, resource, namespace, q, fields, None, table, slot)
}

/// Starts a watch of the stored `resource` whose objects are shown by
/// `show` (`None`: as stored); `fields` selects on the stored objects.
#[allow(clippy::too_many_arguments)]
pub fn watch_shown(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: Option<&str>,
    q: &ListQuery,
    fields: FieldSelector,
    show: Option<Show>,
    table: Option<TableRequest>,
    slot: WatchSlot,
) -> ApiResult<Response> {
    // resourceVersionMatch is for lists only.
    q.check_version_match(0)?;
    let bookmarks = (q.bookmarks() && show.is_none() && table.is_none()).then_some(Bookmarks {
        resource,
        every: st.bookmark_every,
    });
    let filter = WatchFilter {
        resource,
        namespace: namespace.map(str::to_string),
        selector: q.selector()?,
        fields,
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
                    Some(o) => match event_line("ADDED", resource, &o, show, table) {
                        Ok(l) => Some((Ok(l), (Phase::Initial(items, w), shutdown))),
                        Err(status) => Some((Ok(status), (Phase::Done, shutdown))),
                    },
                    None => next_live(w, shutdown, deadline, show, table, bookmarks).await,
                },
                Phase::Live(w) => next_live(w, shutdown, deadline, show, table, bookmarks).await,
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

/// The line of one event of `object`: the object as `show` shows it, or
/// as a one-row `Table` (`kubectl get -w`). `Err` is the `ERROR` line of an
/// object that cannot be shown, which ends the stream.
fn event_line(
    kind: &str,
    resource: &ResourceInfo,
    object: &Value,
    show: Option<Show>,
    table: Option<TableRequest>,
) -> Result<Bytes, Bytes> {
    let shown = match show.map(|f| f(object)).transpose() {
        Ok(shown) => shown,
        Err(e) => {
            let status = serde_json::to_value(&*e.0).unwrap_or(Value::Null);
            return Err(line("ERROR", &status));
        }
    };
    let shown_ref = shown.as_ref().unwrap_or(object);
    Ok(match table {
        Some(t) => {
            let rv = object["metadata"]["resourceVersion"].clone();
            let table = t.table_shown(
                resource,
                std::slice::from_ref(object),
                std::slice::from_ref(shown_ref),
                json!({"resourceVersion": rv}),
                std::time::SystemTime::now(),
            );
            line(kind, &table)
        }
        None => line(kind, shown_ref),
    })
}

/// Where a watch's bookmarks come from.
#[derive(Debug, Clone, Copy)]
struct Bookmarks {
    resource: &'static ResourceInfo,
    every: Duration,
}

/// The `BOOKMARK` line of a watch of `resource` that has read up to
/// `revision`.
fn bookmark_line(resource: &ResourceInfo, revision: u64) -> Bytes {
    line(
        "BOOKMARK",
        &json!({
            "kind": resource.kind,
            "apiVersion": resource.api_version(),
            "metadata": {"resourceVersion": revision.to_string()},
        }),
    )
}

async fn next_live(
    mut w: Watch,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    deadline: Option<tokio::time::Instant>,
    show: Option<Show>,
    table: Option<TableRequest>,
    bookmarks: Option<Bookmarks>,
) -> Option<Item> {
    let quiet = async {
        match bookmarks {
            Some(b) => tokio::time::sleep(b.every).await,
            None => std::future::pending().await,
        }
    };
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    enum Next {
        Event(std::sync::Arc<crate::store::Event>),
        Bookmark,
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
        _ = quiet => Next::Bookmark,
    };
    match next {
        Next::Event(e) if show.is_none() && table.is_none() => {
            Some((Ok(e.line()), (Phase::Live(w), shutdown)))
        }
        Next::Event(e) => match event_line(e.kind.as_str(), e.resource, &e.object(), show, table) {
            Ok(l) => Some((Ok(l), (Phase::Live(w), shutdown))),
            Err(status) => Some((Ok(status), (Phase::Done, shutdown))),
        },
        Next::Bookmark => match bookmarks {
            Some(b) => {
                let l = bookmark_line(b.resource, w.progress());
                Some((Ok(l), (Phase::Live(w), shutdown)))
            }
            None => Some((Ok(Bytes::new()), (Phase::Live(w), shutdown))),
        },
        Next::Fail(e) => {
            let status = serde_json::to_value(e.to_status()).unwrap_or(Value::Null);
            Some((Ok(line("ERROR", &status)), (Phase::Done, shutdown)))
        }
        Next::Stop => None,
    }
}
