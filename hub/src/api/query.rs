//! Query parameters of list and watch requests.

use bramble_api::Selector;
use bramble_api::field_selector::FieldSelector;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};

/// `?labelSelector=&fieldSelector=&watch=&resourceVersion=&timeoutSeconds=&includeObject=&limit=&continue=`.
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
