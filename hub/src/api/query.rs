//! Query parameters of list and watch requests.

use bramble_api::Selector;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};

/// `?labelSelector=&fieldSelector=&watch=&resourceVersion=&timeoutSeconds=&includeObject=`.
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
}

impl ListQuery {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> ApiResult<ListQuery> {
        match raw {
            None | Some("") => Ok(ListQuery::default()),
            Some(q) => serde_urlencoded_from(q),
        }
    }

    pub fn is_watch(&self) -> bool {
        matches!(self.watch.as_deref(), Some("true" | "1"))
    }

    pub fn selector(&self) -> ApiResult<Selector> {
        match &self.label_selector {
            None => Ok(Selector::default()),
            Some(s) => Selector::parse(s).map_err(|e| ApiError::bad_request(e.to_string())),
        }
    }

    /// The object name a `fieldSelector` restricts to (`metadata.name=x`).
    pub fn field_name(&self) -> ApiResult<Option<String>> {
        let Some(fs) = self.field_selector.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let mut name = None;
        for term in fs.split(',') {
            let (k, v) = term
                .split_once("==")
                .or_else(|| term.split_once('='))
                .ok_or_else(|| ApiError::bad_request(format!("invalid field selector {term:?}")))?;
            match k.trim() {
                "metadata.name" => name = Some(v.trim().to_string()),
                "metadata.namespace" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "field selector {other:?} is not supported: use metadata.name"
                    )));
                }
            }
        }
        Ok(name)
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
