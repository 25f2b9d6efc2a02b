//! A served OpenAPI document: its bytes, hashed once (SHA-256), answered with
//! an `ETag` and `304` for a matching `If-None-Match`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub struct Served {
    pub bytes: Vec<u8>,
    pub hash: String,
}

impl Served {
    pub fn new(bytes: Vec<u8>) -> Served {
        let hash = format!("{:X}", Sha256::digest(&bytes));
        Served { bytes, hash }
    }

    /// The answer to a GET with `headers`: the bytes as `content_type`, or
    /// `304`; `immutable` when the request pinned this hash.
    pub fn answer(
        &self,
        headers: &HeaderMap,
        content_type: &'static str,
        immutable: bool,
    ) -> Response {
        let etag = format!("\"{}\"", self.hash);
        let cache = if immutable {
            "public, immutable, max-age=31536000"
        } else {
            "no-cache, private"
        };
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
        let mut resp = if matches {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            ([(header::CONTENT_TYPE, content_type)], self.bytes.clone()).into_response()
        };
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        resp
    }
}
