//! The image a build produces, as Docker/BuildKit write it: the OCI image
//! config (platform, the planned `config`, `rootfs.diff_ids`, history: the
//! base image's, then one entry per step), the manifest listing the layers
//! (Docker's gzip layer media type becomes OCI's: same bytes), and for
//! several platforms an image index. [`config`], [`manifest`] and [`index`]
//! are pure; [`store`] writes the blobs and records them in the registry.

use bramble_api::protocol::LayerRef;
use bramble_dockerfile::ImageConfig;
use bramble_images::{Digest, Platform};
use serde_json::{Value, json};

use crate::registry::Registry;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `created` of the image and its new history entries: `SOURCE_DATE_EPOCH`
/// when given (reproducible), else now.
pub fn created(source_date_epoch: Option<u64>) -> String {
    let t = match source_date_epoch {
        Some(s) => std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
        None => std::time::SystemTime::now(),
    };
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The image config JSON.
pub fn config(
    platform: &Platform,
    image: &ImageConfig,
    layers: &[LayerRef],
    history: &[Value],
    created: &str,
) -> Value {
    let mut c = image.clone();
    let author = std::mem::take(&mut c.author);
    let mut out = json!({
        "created": created,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": c,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": history,
    });
    if let Some(v) = platform.variant.as_deref().filter(|v| !v.is_empty()) {
        out["variant"] = json!(v);
    }
    if !author.is_empty() {
        out["author"] = json!(author);
    }
    out
}

/// A history entry of a step (BuildKit's form).
pub fn history_entry(text: &str, created: &str) -> Value {
    json!({"created": created, "created_by": text, "comment": "buildkit.dockerfile.v0"})
}

fn layer_media_type(l: &LayerRef) -> &str {
    match l.media_type.as_str() {
        "" | "application/vnd.docker.image.rootfs.diff.tar.gzip" => OCI_LAYER_GZIP,
        other => other,
    }
}

/// The manifest JSON of a config blob and layers.
pub fn manifest(config_digest: &Digest, config_size: u64, layers: &[LayerRef]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config_size},
        "layers": layers.iter().map(|l| json!({
            "mediaType": layer_media_type(l), "digest": l.digest, "size": l.size,
        })).collect::<Vec<_>>(),
    })
}

/// The image index of per-platform manifests (digest, size, platform).
pub fn index(manifests: &[(Digest, u64, Platform)]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests.iter().map(|(d, size, p)| {
            let mut platform = json!({"architecture": p.architecture, "os": p.os});
            if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
                platform["variant"] = json!(v);
            }
            json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": size, "platform": platform})
        }).collect::<Vec<_>>(),
    })
}

/// Why the image could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreImageError {
    #[error("writing a blob: {0}")]
    Blob(#[from] bramble_images::BlobError),
    #[error("recording the manifest: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Writes `doc` (a manifest or index of `media_type`) into `repo`, tagged
/// `tag` if given; returns its digest and size.
pub async fn store(
    registry: &Registry,
    repo: &str,
    doc: &Value,
    media_type: &str,
    tag: Option<&str>,
) -> Result<(Digest, u64), StoreImageError> {
    let bytes = serde_json::to_vec(doc).expect("JSON serializes");
    let d = registry.blobs.put_bytes(&bytes, None)?;
    registry
        .meta
        .put_manifest(repo, &d, media_type, tag)
        .await?;
    Ok((d, bytes.len() as u64))
}

/// Writes a config blob; returns its digest and size.
pub fn store_config(registry: &Registry, config: &Value) -> Result<(Digest, u64), StoreImageError> {
    let bytes = serde_json::to_vec(config).expect("JSON serializes");
    let d = registry.blobs.put_bytes(&bytes, None)?;
    Ok((d, bytes.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_manifest_and_index_have_docker_shapes() {
        let p = Platform::new("linux", "arm", Some("v7"));
        let mut ic = ImageConfig::scratch();
        ic.cmd = Some(vec!["sh".into()]);
        ic.author = "me".into();
        let l = LayerRef {
            digest: format!("sha256:{}", "a".repeat(64)),
            diff_id: format!("sha256:{}", "b".repeat(64)),
            size: 10,
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
        };
        let c = config(
            &p,
            &ic,
            std::slice::from_ref(&l),
            &[history_entry("RUN x", "t")],
            "t",
        );
        assert_eq!(c["variant"], "v7");
        assert_eq!(c["author"], "me");
        assert!(c["config"].get("Author").is_none());
        assert_eq!(c["config"]["Cmd"], json!(["sh"]));
        assert_eq!(c["rootfs"]["diff_ids"][0], l.diff_id);
        let d = Digest::of(b"x");
        let m = manifest(&d, 1, &[l]);
        assert_eq!(m["layers"][0]["mediaType"], OCI_LAYER_GZIP);
        let i = index(&[(d, 5, p)]);
        assert_eq!(i["manifests"][0]["platform"]["variant"], "v7");
        assert_eq!(created(Some(0)), "1970-01-01T00:00:00Z");
    }
}
