//! Query parameters of list and watch requests.

use bramble_api::Selector;
use bramble_api::field_selector::FieldSelector;
use serde::Deserialize;

use bramble_api::Status;

use super::error::{ApiError, ApiResult};

/// `?labelSelector=&fieldSelector=&watch=&resourceVersion=&resourceVersionMatch=&allowWatchBookmarks=&timeoutSeconds=&includeObject=&limit=&continue=`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub watch: Option<String>,
    pub resource_version: Option<String>,
    pub timeout_seconds: Option<u64>,
    /// What the rows of a `Table` carry: `None`, `Metadata` (default), `Object`.
    pub include_object: Option<String>,
    /// Page size of a list (`0` or absent: everything).
    pub limit: Option<usize>,
    /// Where the next page starts: the `metadata.continue` of the previous one.
    #[serde(rename = "continue")]
    pub continue_: Option<String>,
    /// How a list's `resourceVersion` is read: `NotOlderThan` or `Exact`.
    pub resource_version_match: Option<String>,
    /// A watch may get `BOOKMARK` events.
    pub allow_watch_bookmarks: Option<String>,
}

impl ListQuery {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> ApiResult<ListQuery> {
        match raw {
            None | Some("") => Ok(ListQuery::default()),
            Some(q) => serde_urlencoded_from(q),
        }
    }

    /// `watch` as Go's `strconv.ParseBool` reads it, as Kubernetes does
    /// (the Python client sends `watch=True`).
    pub fn is_watch(&self) -> bool {
        matches!(
            self.watch.as_deref(),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }

    pub fn selector(&self) -> ApiResult<Selector> {
        match &self.label_selector {
            None => Ok(Selector::default()),
            Some(s) => Selector::parse(s).map_err(|e| ApiError::bad_request(e.to_string())),
        }
    }

    /// The `fieldSelector` for objects of `kind` (400 for an unknown field).
    pub fn fields(&self, kind: &str) -> ApiResult<FieldSelector> {
        FieldSelector::parse(self.field_selector.as_deref().unwrap_or(""), kind)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// Whether the watch asked for bookmarks.
    pub fn bookmarks(&self) -> bool {
        matches!(
            self.allow_watch_bookmarks.as_deref(),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }

    /// Checks `resourceVersionMatch` as Kubernetes does, for a list served
    /// at the store's `current` revision: Bramble lists only at the latest
    /// revision, so `NotOlderThan` always holds (a version from the future
    /// is a 504, as Kubernetes answers after its wait), and `Exact` holds
    /// only for the current one (an older one is `410 Expired`).
    pub fn check_version_match(&self, current: u64) -> ApiResult<()> {
        let Some(m) = self
            .resource_version_match
            .as_deref()
            .filter(|m| !m.is_empty())
        else {
            return Ok(());
        };
        if self.is_watch() {
            return Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch",
            ));
        }
        let rv = match self.resource_version.as_deref() {
            None | Some("") => {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            Some(v) => v,
        };
        let asked: u64 = rv.parse().map_err(|_| {
            ApiError::bad_request(format!("resourceVersion {rv:?} is not a number"))
        })?;
        let too_large = || {
            ApiError::new(Status::failure(
                504,
                "Timeout",
                format!("Too large resource version: {asked}, current: {current}"),
            ))
        };
        match m {
            "NotOlderThan" if asked > current => Err(too_large()),
            "NotOlderThan" => Ok(()),
            "Exact" if asked == 0 => Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
            )),
            "Exact" if asked > current => Err(too_large()),
            "Exact" if asked < current => Err(ApiError::new(Status::failure(
                410,
                "Expired",
                format!(
                    "The resourceVersion for the provided list is too old: Bramble lists at the latest resourceVersion only ({current}); list without resourceVersionMatch=Exact"
                ),
            ))),
            "Exact" => Ok(()),
            other => Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
            ))),
        }
    }

    /// `resourceVersion` as a revision; `None` for absent, empty or `0`.
    pub fn revision(&self) -> ApiResult<Option<u64>> {
        match self.resource_version.as_deref() {
            None | Some("") | Some("0") => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("resourceVersion {s:?} is not a number"))
            }),
        }
    }
}

fn serde_urlencoded_from(q: &str) -> ApiResult<ListQuery> {
    axum::extract::Query::<ListQuery>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::bad_request("malformed query string"))?,
    )
    .map(|axum::extract::Query(q)| q)
    .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
}
