//! `/openapi/v3` (the index) and `/openapi/v3/<group-version>` (the
//! documents of [`bramble_api::schema::openapi`]), serialized and hashed once,
//! at first use. The index points at each document with `?hash=`, so clients
//! cache them as immutable; `ETag`/`If-None-Match` answer 304 without a body.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{Path, Request};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::served::Served;
use crate::api::error::ApiError;

const JSON: &str = "application/json";

struct Documents {
    index: Served,
    by_path: HashMap<String, Served>,
}

fn documents() -> &'static Documents {
    static DOCS: OnceLock<Documents> = OnceLock::new();
    DOCS.get_or_init(|| {
        let by_path: HashMap<String, Served> = bramble_api::schema::openapi::documents()
            .into_iter()
            .map(|d| {
                let bytes = serde_json::to_vec(&d.document).unwrap_or_default();
                (d.path, Served::new(bytes))
            })
            .collect();
        let mut paths: Vec<(&String, &Served)> = by_path.iter().collect();
        paths.sort_by_key(|(p, _)| p.as_str());
        let index = json!({
            "paths": paths
                .into_iter()
                .map(|(p, s)| (p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", s.hash)})))
                .collect::<serde_json::Map<_, _>>(),
        });
        Documents {
            index: Served::new(serde_json::to_vec(&index).unwrap_or_default()),
            by_path,
        }
    })
}

/// `GET /openapi/v3`.
pub async fn index(headers: HeaderMap) -> Response {
    documents().index.answer(&headers, JSON, false)
}

/// `GET /openapi/v3/{group-version}`: 404 for a group version Bramble does not serve.
pub async fn document(Path(path): Path<String>, req: Request) -> Response {
    let Some(served) = documents().by_path.get(&path) else {
        return ApiError::not_found_path(req.uri().path()).into_response();
    };
    let pinned = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == format!("hash={}", served.hash)));
    served.answer(req.headers(), JSON, pinned)
}
