//! `GET|HEAD /v2/<name>/blobs/<digest>`, with `Range` support.

use std::io::SeekFrom;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bramble_images::Digest;
use futures_util::stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::Registry;
use super::error::{RegistryError, RegistryResult};

/// Read size when streaming a blob.
const CHUNK: usize = 1024 * 1024;

/// Parses `bytes=START-END` / `bytes=START-` against a blob of `len` bytes.
pub fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (s, "") => (s.parse().ok()?, len.checked_sub(1)?),
        (s, e) => (
            s.parse().ok()?,
            e.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (start <= end && end < len).then_some((start, end))
}

impl Registry {
    pub(super) async fn get_blob(
        &self,
        method: &Method,
        digest: &str,
        headers: &HeaderMap,
    ) -> RegistryResult<Response> {
        let digest: Digest = digest
            .parse()
            .map_err(|e: bramble_images::digest::DigestError| {
                RegistryError::digest_invalid(e.to_string())
            })?;
        let file = self.blobs.open_blob(&digest)?;
        let len = file.metadata().map_err(RegistryError::internal)?.len();
        let range = headers.get("range").and_then(|v| v.to_str().ok());
        let (status, start, end) = match range {
            None => (StatusCode::OK, 0, len.saturating_sub(1)),
            Some(r) => match parse_range(r, len) {
                Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
                None => {
                    return Ok((
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        [("content-range", format!("bytes */{len}"))],
                    )
                        .into_response());
                }
            },
        };
        let count = if len == 0 { 0 } else { end - start + 1 };
        let mut resp = Response::builder()
            .status(status)
            .header("content-type", "application/octet-stream")
            .header("docker-content-digest", digest.to_string())
            .header("accept-ranges", "bytes")
            .header("content-length", count.to_string());
        if status == StatusCode::PARTIAL_CONTENT {
            resp = resp.header("content-range", format!("bytes {start}-{end}/{len}"));
        }
        let body = if method == Method::HEAD || count == 0 {
            Body::empty()
        } else {
            let mut f = tokio::fs::File::from_std(file);
            f.seek(SeekFrom::Start(start))
                .await
                .map_err(RegistryError::internal)?;
            let s = stream::unfold((f, count), |(mut f, left)| async move {
                if left == 0 {
                    return None;
                }
                let mut buf = vec![0u8; CHUNK.min(left as usize)];
                match f.read(&mut buf).await {
                    Ok(0) => Some((
                        Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
                        (f, 0),
                    )),
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Bytes::from(buf)), (f, left - n as u64)))
                    }
                    Err(e) => Some((Err(e), (f, 0))),
                }
            });
            Body::from_stream(s)
        };
        resp.body(body).map_err(RegistryError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=95-200", 100), Some((95, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,4-5", 100), None);
    }
}
