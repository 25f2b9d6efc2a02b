//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (start, monolithic with
//! `?digest=`, cross-mount with `?mount=&from=`), `PATCH` (append a chunk),
//! `PUT ?digest=` (finish), `GET` (status), `DELETE` (cancel).
//!
//! Chunks go to a file in the blob store's temporary directory; the blob becomes
//! visible only when `PUT` verified its digest. Sessions live in memory: a hub
//! restart forgets them (and the blob store removes their files), so a client
//! retries the push.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bramble_images::Digest;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::error::{RegistryError, RegistryResult};
use super::{Registry, Upload};

/// Decoded query parameters of a request.
pub(super) fn query(uri: &axum::http::Uri) -> std::collections::HashMap<String, String> {
    axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

fn parse_digest(s: &str) -> RegistryResult<Digest> {
    s.parse().map_err(|e: bramble_images::digest::DigestError| {
        RegistryError::digest_invalid(e.to_string())
    })
}

/// Appends a request body to `path`; returns the bytes written.
async fn append(path: &std::path::Path, body: Body) -> RegistryResult<u64> {
    let f = tokio::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .await
        .map_err(RegistryError::internal)?;
    // Request bodies arrive in small frames; each tokio file write is a hop to
    // the blocking pool, so gather 1 MiB per write.
    let mut f = tokio::io::BufWriter::with_capacity(1024 * 1024, f);
    let mut n = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // Keep every byte received: the client resumes from the
                // size of the file (`GET` of the upload), so what is still
                // buffered must reach it first.
                f.flush().await.map_err(RegistryError::internal)?;
                return Err(RegistryError::new(
                    StatusCode::BAD_REQUEST,
                    "BLOB_UPLOAD_INVALID",
                    format!("upload body broken off after {n} bytes: {e}"),
                ));
            }
        };
        f.write_all(&chunk).await.map_err(RegistryError::internal)?;
        n += chunk.len() as u64;
    }
    f.flush().await.map_err(RegistryError::internal)?;
    Ok(n)
}

fn accepted(repo: &str, id: &str, size: u64) -> Response {
    let range = if size == 0 {
        "0-0".to_string()
    } else {
        format!("0-{}", size - 1)
    };
    (
        StatusCode::ACCEPTED,
        [
            ("location", format!("/v2/{repo}/blobs/uploads/{id}")),
            ("range", range),
            ("docker-upload-uuid", id.to_string()),
            ("content-length", "0".to_string()),
        ],
    )
        .into_response()
}

fn created(repo: &str, d: &Digest) -> Response {
    (
        StatusCode::CREATED,
        [
            ("location", format!("/v2/{repo}/blobs/{d}")),
            ("docker-content-digest", d.to_string()),
            ("content-length", "0".to_string()),
        ],
    )
        .into_response()
}

impl Registry {
    fn new_upload(&self, repo: &str) -> (String, Upload) {
        let id = uuid::Uuid::new_v4().to_string();
        let path = self.blobs.tmp_dir().join(format!("upload-{id}"));
        (
            id,
            Upload {
                repo: repo.to_string(),
                path,
                size: 0,
            },
        )
    }

    pub(super) async fn start_upload(
        &self,
        repo: &str,
        query: &std::collections::HashMap<String, String>,
        body: Body,
    ) -> RegistryResult<Response> {
        if let Some(mount) = query.get("mount").cloned() {
            let d = parse_digest(&mount)?;
            if self.blobs.has(&d) {
                return Ok(created(repo, &d));
            }
        }
        let (id, up) = self.new_upload(repo);
        if let Some(digest) = query.get("digest").cloned() {
            let d = parse_digest(&digest)?;
            let result = async {
                append(&up.path, body).await?;
                self.blobs
                    .commit_file(&up.path, &d)
                    .map_err(RegistryError::from)
            }
            .await;
            if result.is_err() {
                let _ = std::fs::remove_file(&up.path);
            }
            let size = result?;
            tracing::info!(repo, digest = %d, size, "blob pushed (monolithic)");
            return Ok(created(repo, &d));
        }
        tokio::fs::File::create(&up.path)
            .await
            .map_err(RegistryError::internal)?;
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), up);
        Ok(accepted(repo, &id, 0))
    }

    fn take_upload(&self, repo: &str, id: &str) -> RegistryResult<Upload> {
        let mut map = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        match map.remove(id) {
            Some(u) if u.repo == repo => Ok(u),
            Some(u) => {
                map.insert(id.to_string(), u);
                Err(RegistryError::upload_unknown(id))
            }
            None => Err(RegistryError::upload_unknown(id)),
        }
    }

    fn put_back(&self, id: &str, up: Upload) {
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), up);
    }

    pub(super) async fn patch_upload(
        &self,
        repo: &str,
        id: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> RegistryResult<Response> {
        let mut up = self.take_upload(repo, id)?;
        if let Some(cr) = headers.get("content-range").and_then(|v| v.to_str().ok()) {
            let start = cr
                .trim()
                .trim_start_matches("bytes ")
                .split('-')
                .next()
                .and_then(|s| s.parse::<u64>().ok());
            if start != Some(up.size) {
                let size = up.size;
                self.put_back(id, up);
                let range = if size == 0 {
                    "0-0".to_string()
                } else {
                    format!("0-{}", size - 1)
                };
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, [("range", range)]).into_response());
            }
        }
        match append(&up.path, body).await {
            Ok(n) => {
                up.size += n;
                let size = up.size;
                self.put_back(id, up);
                Ok(accepted(repo, id, size))
            }
            Err(e) => {
                // Keep what reached the disk: the client may resume from Range.
                up.size = std::fs::metadata(&up.path)
                    .map(|m| m.len())
                    .unwrap_or(up.size);
                self.put_back(id, up);
                Err(e)
            }
        }
    }

    pub(super) async fn finish_upload(
        &self,
        repo: &str,
        id: &str,
        query: &std::collections::HashMap<String, String>,
        body: Body,
    ) -> RegistryResult<Response> {
        let digest = query.get("digest").cloned().ok_or_else(|| {
            RegistryError::digest_invalid("PUT to finish an upload needs ?digest=sha256:...")
        })?;
        let d = parse_digest(&digest)?;
        let up = self.take_upload(repo, id)?;
        let result = async {
            append(&up.path, body).await?;
            self.blobs
                .commit_file(&up.path, &d)
                .map_err(RegistryError::from)
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&up.path);
        }
        let size = result?;
        tracing::info!(repo, digest = %d, size, "blob pushed");
        Ok(created(repo, &d))
    }

    pub(super) fn upload_status(&self, repo: &str, id: &str) -> RegistryResult<Response> {
        let up = self.take_upload(repo, id)?;
        let size = up.size;
        self.put_back(id, up);
        let mut r = accepted(repo, id, size);
        *r.status_mut() = StatusCode::NO_CONTENT;
        Ok(r)
    }

    pub(super) fn cancel_upload(&self, repo: &str, id: &str) -> RegistryResult<Response> {
        let up = self.take_upload(repo, id)?;
        let _ = std::fs::remove_file(&up.path);
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        let uri: axum::http::Uri = "/v2/x/blobs/uploads/?mount=sha256%3Aab&from=team%2Fweb"
            .parse()
            .unwrap();
        let q = query(&uri);
        assert_eq!(q.get("mount").map(String::as_str), Some("sha256:ab"));
        assert_eq!(q.get("from").map(String::as_str), Some("team/web"));
        assert_eq!(q.get("digest"), None);
    }
}
