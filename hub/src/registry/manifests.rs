//! `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<tag-or-digest>`.

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bramble_images::Digest;

use super::Registry;
use super::error::{RegistryError, RegistryResult};

/// Largest manifest accepted (the distribution spec suggests 4 MiB).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

impl Registry {
    /// Resolves a tag or digest to a manifest of `repo` and its media type.
    pub fn resolve(&self, repo: &str, reference: &str) -> RegistryResult<(Digest, String)> {
        let digest = if reference.starts_with("sha256:") || reference.contains(':') {
            reference
                .parse::<Digest>()
                .map_err(|e| RegistryError::digest_invalid(e.to_string()))?
        } else {
            self.meta
                .tag(repo, reference)?
                .ok_or_else(|| RegistryError::manifest_unknown(repo, reference))?
        };
        let media_type = self
            .meta
            .manifest(repo, &digest)?
            .ok_or_else(|| RegistryError::manifest_unknown(repo, reference))?;
        Ok((digest, media_type))
    }

    pub(super) async fn get_manifest(
        &self,
        method: &Method,
        repo: &str,
        reference: &str,
    ) -> RegistryResult<Response> {
        let (digest, media_type) = self.resolve(repo, reference)?;
        let bytes = self.blobs.read(&digest)?;
        let len = bytes.len();
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(bytes)
        };
        Ok((
            [
                ("content-type", media_type),
                ("docker-content-digest", digest.to_string()),
                ("content-length", len.to_string()),
            ],
            body,
        )
            .into_response())
    }

    pub(super) async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> RegistryResult<Response> {
        let bytes = axum::body::to_bytes(body, MAX_MANIFEST)
            .await
            .map_err(|_| {
                RegistryError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "SIZE_INVALID",
                    "manifest larger than 4 MiB",
                )
            })?;
        let digest = Digest::of(&bytes);
        let tag = if reference.contains(':') {
            let want: Digest =
                reference
                    .parse()
                    .map_err(|e: bramble_images::digest::DigestError| {
                        RegistryError::digest_invalid(e.to_string())
                    })?;
            if want != digest {
                return Err(RegistryError::digest_invalid(format!(
                    "manifest pushed as {want} hashes to {digest}"
                )));
            }
            None
        } else {
            if !valid_tag(reference) {
                return Err(RegistryError::new(
                    StatusCode::BAD_REQUEST,
                    "TAG_INVALID",
                    format!("invalid tag {reference:?}: use [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}"),
                ));
            }
            Some(reference)
        };
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        let what = format!("manifest {repo}:{reference}");
        let (doc, media_type) = bramble_images::oci::parse_manifest(&bytes, content_type, &what)
            .map_err(|e| RegistryError::manifest_invalid(e.to_string()))?;
        let refs = doc
            .references(&what)
            .map_err(|e| RegistryError::manifest_invalid(e.to_string()))?;
        let (children, blobs): (Vec<_>, Vec<_>) = refs
            .into_iter()
            .partition(|r| r.kind == bramble_images::oci::BlobKind::Manifest);
        for b in blobs.iter().map(|r| &r.digest) {
            if !self.blobs.has(b) {
                return Err(RegistryError::new(
                    StatusCode::BAD_REQUEST,
                    "MANIFEST_BLOB_UNKNOWN",
                    format!(
                        "manifest refers to blob {b}, which was not pushed: push blobs before the manifest"
                    ),
                ));
            }
        }
        for m in children.iter().map(|r| &r.digest) {
            if self.meta.manifest(repo, m)?.is_none() {
                return Err(RegistryError::new(
                    StatusCode::BAD_REQUEST,
                    "MANIFEST_BLOB_UNKNOWN",
                    format!("index refers to manifest {m}, which is not in {repo}: push it first"),
                ));
            }
        }
        self.blobs.put_bytes(&bytes, Some(&digest))?;
        self.meta
            .put_manifest(repo, &digest, &media_type, tag)
            .await?;
        tracing::info!(repo, reference, %digest, media_type, "manifest pushed");
        Ok((
            StatusCode::CREATED,
            [
                ("location", format!("/v2/{repo}/manifests/{digest}")),
                ("docker-content-digest", digest.to_string()),
            ],
        )
            .into_response())
    }

    pub(super) async fn delete_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> RegistryResult<Response> {
        if reference.contains(':') {
            let (digest, _) = self.resolve(repo, reference)?;
            self.meta.delete_manifest(repo, &digest).await?;
        } else {
            if self.meta.tag(repo, reference)?.is_none() {
                return Err(RegistryError::manifest_unknown(repo, reference));
            }
            self.meta.delete_tag(repo, reference).await?;
        }
        tracing::info!(repo, reference, "manifest deleted");
        Ok(StatusCode::ACCEPTED.into_response())
    }
}

/// Tag grammar of the distribution spec.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}
