//! Who writes: `?fieldManager=` (else the client's `User-Agent` up to its
//! first `/`, as the Kubernetes API server names managers: `kubectl`,
//! `OpenAPI-Generator`, `bramble`) and `?force=` of a server-side apply.
//! Every write records its manager's fields in `metadata.managedFields`
//! ([`bramble_api::patch::server_side`]).

use axum::extract::Query;
use axum::http::{HeaderMap, Uri};
use bramble_api::ResourceInfo;
use bramble_api::patch::merge_keys;
use bramble_api::patch::server_side::Writer;
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// Longest manager name Kubernetes accepts.
const MAX_NAME: usize = 128;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManagerQuery {
    field_manager: Option<String>,
    force: Option<String>,
}

/// The writer of one request.
#[derive(Debug, Clone)]
pub struct FieldManager {
    pub name: String,
    /// Whether the request named its manager (an apply must).
    pub named: bool,
    /// `force=true`: an apply takes conflicting fields over.
    pub force: bool,
}

impl FieldManager {
    /// From a request's query and headers.
    pub fn from_request(uri: &Uri, headers: &HeaderMap) -> ApiResult<FieldManager> {
        let q = Query::<ManagerQuery>::try_from_uri(uri)
            .map(|Query(q)| q)
            .unwrap_or_default();
        let force = match q.force.as_deref() {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "force={other:?} is not a boolean: use true or false"
                )));
            }
        };
        let named = q.field_manager.as_deref().is_some_and(|m| !m.is_empty());
        let name = match q.field_manager.filter(|m| !m.is_empty()) {
            Some(m) => m,
            None => headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .and_then(|ua| ua.split('/').next())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .chars()
                .take(MAX_NAME)
                .collect(),
        };
        if name.len() > MAX_NAME || name.chars().any(|c| c.is_control()) {
            return Err(ApiError::bad_request(format!(
                "fieldManager must be at most {MAX_NAME} printable characters"
            )));
        }
        Ok(FieldManager { name, named, force })
    }

    /// Records this manager's non-apply write of `next` over `old`.
    pub fn record(&self, resource: &ResourceInfo, old: Option<&Value>, next: &mut Value) {
        let at = WriteContext::now(resource);
        bramble_api::patch::server_side::record_update(old, next, self.writer(&at));
    }

    /// The pure layer's view of this write.
    pub fn writer<'a>(&'a self, at: &'a WriteContext) -> Writer<'a> {
        Writer {
            manager: &self.name,
            api_version: &at.api_version,
            root_type: &at.root_type,
            now: &at.now,
        }
    }
}

/// What a write records besides its manager: the kind's API version and
/// OpenAPI type, and the time.
#[derive(Debug, Clone)]
pub struct WriteContext {
    pub api_version: String,
    pub root_type: String,
    pub now: String,
}

impl WriteContext {
    pub fn now(resource: &ResourceInfo) -> WriteContext {
        WriteContext {
            api_version: resource.api_version(),
            root_type: merge_keys::root_type(resource.group, resource.version, resource.kind),
            now: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }
}
