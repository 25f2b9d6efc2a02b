//! OCI and Docker image formats: media types, manifest/index parsing, the blobs
//! a manifest or index references, and layer compression.
//!
//! The hub's registry accepts and serves both OCI media types and Docker's v2
//! schema 2 ones (what `docker push` sends); both parse into oci-spec's
//! [`ImageIndex`] / [`ImageManifest`], which share the JSON shape. Docker
//! schema 1 manifests and the withdrawn OCI artifact manifest are refused.
//!
//! Parsing never re-serializes: a manifest's digest is the digest of the bytes
//! it arrived as, so callers keep those bytes.

use std::collections::BTreeSet;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::blobs::{BlobError, BlobStore};
use crate::digest::{Digest, DigestError};

/// Media type strings.
pub mod media_types {
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI uncompressed layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI zstd layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// OCI non-distributable layers (deprecated, still seen on Windows images).
    pub const OCI_LAYER_NONDIST_TAR: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar";
    /// OCI non-distributable gzip layer.
    pub const OCI_LAYER_NONDIST_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// OCI non-distributable zstd layer.
    pub const OCI_LAYER_NONDIST_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    /// The OCI layout file (`oci-layout`).
    pub const OCI_LAYOUT_HEADER: &str = "application/vnd.oci.layout.header.v1+json";
    /// The OCI empty JSON blob `{}`.
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// The withdrawn OCI artifact manifest (refused).
    pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
    /// Docker manifest list (multi-arch).
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker v2 schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker foreign (Windows base) layer.
    pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Docker schema 1 (refused).
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    /// Docker schema 1, signed (refused).
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

use media_types as mt;

/// Largest manifest or index accepted (what common registries allow).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Whether `media_type` is an image index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == mt::OCI_INDEX || media_type == mt::DOCKER_MANIFEST_LIST
}

/// Whether `media_type` is a single-image manifest.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == mt::OCI_MANIFEST || media_type == mt::DOCKER_MANIFEST
}

/// Whether `media_type` is an image config.
pub fn is_config(media_type: &str) -> bool {
    media_type == mt::OCI_CONFIG || media_type == mt::DOCKER_CONFIG
}

/// How a layer is compressed: the unpacker's type, so a media type maps to
/// what [`crate::unpack_layer`] takes.
pub use crate::unpack::Compression;

/// The compression of a layer from its media type (OCI and Docker layer
/// types); `None` if the media type is not a layer type Bramble can unpack.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    Compression::from_media_type(media_type)
}

/// Errors parsing or walking manifests; each names the document concerned.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(
        "{what}: unsupported media type {media_type:?}: Bramble accepts OCI image \
         indexes/manifests and Docker v2 schema 2 manifests/manifest lists{hint}"
    )]
    UnsupportedMediaType {
        what: String,
        media_type: String,
        hint: &'static str,
    },
    #[error("{what}: is not valid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: is neither an image index (`manifests`) nor a manifest (`config`, `layers`)")]
    UnknownShape { what: String },
    #[error("{what}: the content type says {declared:?} but the document's mediaType is {inner:?}")]
    MediaTypeConflict {
        what: String,
        declared: String,
        inner: String,
    },
    #[error("{what}: schemaVersion is {version}, expected 2")]
    SchemaVersion { what: String, version: u32 },
    #[error("{what}: descriptor has an unsupported digest: {source}")]
    Digest {
        what: String,
        #[source]
        source: DigestError,
    },
    #[error("{what}: is {size} bytes, more than the {MAX_MANIFEST_BYTES}-byte limit for manifests")]
    TooLarge { what: String, size: u64 },
    #[error("{what}: image indexes nest deeper than {MAX_DEPTH} levels")]
    TooDeep { what: String },
    #[error("{what}: {source}")]
    Blob {
        what: String,
        #[source]
        source: BlobError,
    },
}

/// An image index (or Docker manifest list) or a single manifest.
// Unboxed on purpose: values are short-lived, one per parsed document, and
// callers (the registry client) match and move the oci-spec types out.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestOrIndex {
    /// A multi-platform index.
    Index(ImageIndex),
    /// A single image.
    Manifest(ImageManifest),
}

/// What a referenced blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlobKind {
    /// A manifest or index referenced from an index.
    Manifest,
    /// An image config.
    Config,
    /// A layer.
    Layer,
}

/// A blob referenced by a manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub kind: BlobKind,
}

/// Parses a manifest or index from `bytes`. `content_type` is the declared
/// media type (HTTP `Content-Type`, a descriptor's `mediaType`); when it is
/// absent or generic (`application/json`) the document's own `mediaType` field
/// decides, and failing that its shape (`manifests` vs `config`/`layers`).
/// `what` names the document in errors (a digest, a path, an upload).
///
/// Returns the parsed document and its effective media type.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
    what: &str,
) -> Result<(ManifestOrIndex, String), OciError> {
    let what = what.to_string();
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(OciError::TooLarge {
            what,
            size: bytes.len() as u64,
        });
    }
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "text/plain");
    if let Some(d) = declared {
        check_supported(d, &what)?;
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        schema_version: Option<u32>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| OciError::Json {
        what: what.clone(),
        source,
    })?;
    if let Some(v) = probe.schema_version
        && v != 2
    {
        return Err(OciError::SchemaVersion { what, version: v });
    }
    let inner = probe.media_type.filter(|m| !m.is_empty());
    if let Some(i) = &inner {
        check_supported(i, &what)?;
    }
    let media_type = match (declared, inner) {
        (Some(d), Some(i)) if d != i => {
            return Err(OciError::MediaTypeConflict {
                what,
                declared: d.to_string(),
                inner: i,
            });
        }
        (Some(d), _) => d.to_string(),
        (None, Some(i)) => i,
        (None, None) if probe.manifests.is_some() => mt::OCI_INDEX.to_string(),
        (None, None) if probe.config.is_some() => mt::OCI_MANIFEST.to_string(),
        (None, None) => return Err(OciError::UnknownShape { what }),
    };
    let json_err = |source| OciError::Json {
        what: what.clone(),
        source,
    };
    let parsed = if is_index(&media_type) {
        ManifestOrIndex::Index(serde_json::from_slice(bytes).map_err(json_err)?)
    } else {
        ManifestOrIndex::Manifest(serde_json::from_slice(bytes).map_err(json_err)?)
    };
    if parsed.schema_version() != 2 {
        return Err(OciError::SchemaVersion {
            what,
            version: parsed.schema_version(),
        });
    }
    // Every descriptor must carry a digest Bramble can address.
    parsed.references(&what)?;
    Ok((parsed, media_type))
}

fn check_supported(media_type: &str, what: &str) -> Result<(), OciError> {
    if is_index(media_type) || is_manifest(media_type) {
        return Ok(());
    }
    let hint = match media_type {
        mt::DOCKER_SCHEMA1 | mt::DOCKER_SCHEMA1_SIGNED => {
            " (Docker schema 1 is obsolete: rebuild or re-push the image with a current Docker)"
        }
        mt::OCI_ARTIFACT_MANIFEST => {
            " (the OCI artifact manifest was withdrawn: use an image manifest with artifactType)"
        }
        _ => "",
    };
    Err(OciError::UnsupportedMediaType {
        what: what.to_string(),
        media_type: media_type.to_string(),
        hint,
    })
}

impl ManifestOrIndex {
    fn schema_version(&self) -> u32 {
        match self {
            ManifestOrIndex::Index(i) => i.schema_version(),
            ManifestOrIndex::Manifest(m) => m.schema_version(),
        }
    }

    /// Every blob this document references directly: for an index its
    /// manifests, for a manifest its config and layers (in order). A `subject`
    /// is not included: a referrer does not own the image it refers to.
    /// `what` names the document in errors.
    pub fn references(&self, what: &str) -> Result<Vec<BlobRef>, OciError> {
        let mut out = Vec::new();
        match self {
            ManifestOrIndex::Index(i) => {
                for d in i.manifests() {
                    out.push(blob_ref(d, BlobKind::Manifest, what)?);
                }
            }
            ManifestOrIndex::Manifest(m) => {
                out.push(blob_ref(m.config(), BlobKind::Config, what)?);
                for d in m.layers() {
                    out.push(blob_ref(d, BlobKind::Layer, what)?);
                }
            }
        }
        Ok(out)
    }
}

/// Converts an oci-spec descriptor's digest into a Bramble [`Digest`].
pub fn descriptor_digest(d: &Descriptor, what: &str) -> Result<Digest, OciError> {
    d.digest()
        .to_string()
        .parse()
        .map_err(|source| OciError::Digest {
            what: what.to_string(),
            source,
        })
}

fn blob_ref(d: &Descriptor, kind: BlobKind, what: &str) -> Result<BlobRef, OciError> {
    Ok(BlobRef {
        digest: descriptor_digest(d, what)?,
        size: d.size(),
        media_type: d.media_type().to_string(),
        kind,
    })
}

/// How deep indexes may nest (index → index → manifest is depth 2).
pub const MAX_DEPTH: usize = 8;

/// Every blob reachable from the manifest or index `top` in `store`, children
/// before parents, each once, `top` last (as a [`BlobKind::Manifest`] entry
/// with its detected media type). Manifests and indexes are read verified;
/// configs and layers only need to be listed. Used for export, for GC marking
/// and to plan pushes. A missing manifest is an error naming it.
pub fn reachable_blobs(store: &BlobStore, top: &Digest) -> Result<Vec<BlobRef>, OciError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let size = store
        .size(top)
        .map_err(|source| OciError::Blob {
            what: format!("manifest {top}"),
            source,
        })?
        .ok_or_else(|| OciError::Blob {
            what: format!("manifest {top}"),
            source: BlobError::NotFound(top.clone()),
        })?;
    walk(store, top, None, size, 0, &mut seen, &mut out)?;
    Ok(out)
}

fn walk(
    store: &BlobStore,
    digest: &Digest,
    media_type: Option<&str>,
    size: u64,
    depth: usize,
    seen: &mut BTreeSet<Digest>,
    out: &mut Vec<BlobRef>,
) -> Result<(), OciError> {
    let what = format!("manifest {digest}");
    if depth > MAX_DEPTH {
        return Err(OciError::TooDeep { what });
    }
    if size > MAX_MANIFEST_BYTES {
        return Err(OciError::TooLarge { what, size });
    }
    let bytes = store.read(digest).map_err(|source| OciError::Blob {
        what: what.clone(),
        source,
    })?;
    let (doc, media_type) = parse_manifest(&bytes, media_type, &what)?;
    for r in doc.references(&what)? {
        if !seen.insert(r.digest.clone()) {
            continue;
        }
        if r.kind == BlobKind::Manifest {
            walk(
                store,
                &r.digest,
                Some(&r.media_type),
                r.size,
                depth + 1,
                seen,
                out,
            )?;
        } else {
            out.push(r);
        }
    }
    out.push(BlobRef {
        digest: digest.clone(),
        size: bytes.len() as u64,
        media_type,
        kind: BlobKind::Manifest,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> String {
        Digest::of(s.as_bytes()).to_string()
    }

    fn manifest(media_type: Option<&str>) -> Vec<u8> {
        let mut m = json!({
            "schemaVersion": 2,
            "config": {"mediaType": mt::OCI_CONFIG, "digest": d("config"), "size": 6},
            "layers": [
                {"mediaType": mt::OCI_LAYER_GZIP, "digest": d("l1"), "size": 2},
                {"mediaType": mt::OCI_LAYER_TAR, "digest": d("l2"), "size": 2},
            ],
        });
        if let Some(t) = media_type {
            m["mediaType"] = json!(t);
        }
        serde_json::to_vec(&m).unwrap()
    }

    fn index(media_type: Option<&str>, children: &[(&str, u64)]) -> Vec<u8> {
        let mut i = json!({
            "schemaVersion": 2,
            "manifests": children.iter().map(|(c, size)| json!({
                "mediaType": mt::OCI_MANIFEST, "digest": c, "size": size,
                "platform": {"os": "linux", "architecture": "arm64"},
            })).collect::<Vec<_>>(),
        });
        if let Some(t) = media_type {
            i["mediaType"] = json!(t);
        }
        serde_json::to_vec(&i).unwrap()
    }

    #[test]
    fn detects_the_media_type_from_header_field_or_shape() {
        let (m, t) = parse_manifest(&manifest(None), Some(mt::OCI_MANIFEST), "m").unwrap();
        assert!(matches!(m, ManifestOrIndex::Manifest(_)));
        assert_eq!(t, mt::OCI_MANIFEST);
        let (_, t) = parse_manifest(&manifest(Some(mt::DOCKER_MANIFEST)), None, "m").unwrap();
        assert_eq!(t, mt::DOCKER_MANIFEST);
        let (_, t) = parse_manifest(&manifest(None), None, "m").unwrap();
        assert_eq!(t, mt::OCI_MANIFEST);
        let (_, t) = parse_manifest(&manifest(None), Some("application/json"), "m").unwrap();
        assert_eq!(t, mt::OCI_MANIFEST);
        let i = index(None, &[(&d("child"), 10)]);
        let (doc, t) = parse_manifest(&i, None, "i").unwrap();
        assert!(matches!(doc, ManifestOrIndex::Index(_)));
        assert_eq!(t, mt::OCI_INDEX);
        let i = index(Some(mt::DOCKER_MANIFEST_LIST), &[(&d("child"), 10)]);
        let (_, t) = parse_manifest(&i, Some(mt::DOCKER_MANIFEST_LIST), "i").unwrap();
        assert_eq!(t, mt::DOCKER_MANIFEST_LIST);
    }

    #[test]
    fn refuses_conflicts_schema1_and_garbage() {
        let e = parse_manifest(&manifest(Some(mt::OCI_MANIFEST)), Some(mt::OCI_INDEX), "up")
            .unwrap_err();
        assert!(matches!(e, OciError::MediaTypeConflict { .. }), "{e}");
        let e = parse_manifest(b"{}", Some(mt::DOCKER_SCHEMA1), "up").unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
        let e = parse_manifest(br#"{"schemaVersion":1,"fsLayers":[]}"#, None, "up").unwrap_err();
        assert!(
            matches!(e, OciError::SchemaVersion { version: 1, .. }),
            "{e}"
        );
        let e = parse_manifest(b"not json", None, "up").unwrap_err();
        assert!(matches!(e, OciError::Json { .. }) && e.to_string().starts_with("up:"));
        let e = parse_manifest(br#"{"schemaVersion":2}"#, None, "up").unwrap_err();
        assert!(matches!(e, OciError::UnknownShape { .. }), "{e}");
        let big = vec![b' '; MAX_MANIFEST_BYTES as usize + 1];
        assert!(matches!(
            parse_manifest(&big, None, "up").unwrap_err(),
            OciError::TooLarge { .. }
        ));
        let sha512 = format!("sha512:{}", "a".repeat(128));
        let e = parse_manifest(&index(None, &[(&sha512, 1)]), None, "up").unwrap_err();
        assert!(matches!(e, OciError::Digest { .. }), "{e}");
    }

    #[test]
    fn lists_references() {
        let (m, _) = parse_manifest(&manifest(None), None, "m").unwrap();
        let refs = m.references("m").unwrap();
        let kinds: Vec<_> = refs
            .iter()
            .map(|r| (r.kind, r.digest.to_string()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (BlobKind::Config, d("config")),
                (BlobKind::Layer, d("l1")),
                (BlobKind::Layer, d("l2")),
            ]
        );
        let (i, _) =
            parse_manifest(&index(None, &[(&d("a"), 1), (&d("b"), 2)]), None, "i").unwrap();
        let refs = i.references("i").unwrap();
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[1].size, 2);
        assert!(refs.iter().all(|r| r.kind == BlobKind::Manifest));
    }

    #[test]
    fn layer_compression_from_media_type() {
        assert_eq!(
            layer_compression(mt::OCI_LAYER_TAR),
            Some(Compression::None)
        );
        assert_eq!(
            layer_compression(mt::OCI_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            layer_compression(mt::DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            layer_compression(mt::OCI_LAYER_ZSTD),
            Some(Compression::Zstd)
        );
        assert_eq!(layer_compression(mt::OCI_CONFIG), None);
        for t in [
            mt::OCI_LAYER_NONDIST_TAR,
            mt::OCI_LAYER_NONDIST_GZIP,
            mt::OCI_LAYER_NONDIST_ZSTD,
            mt::DOCKER_LAYER_FOREIGN_GZIP,
        ] {
            assert!(layer_compression(t).is_some(), "{t}");
        }
        assert!(is_index(mt::DOCKER_MANIFEST_LIST) && is_manifest(mt::DOCKER_MANIFEST));
        assert!(is_config(mt::DOCKER_CONFIG) && !is_config(mt::OCI_MANIFEST));
    }

    #[test]
    fn reachable_blobs_walks_children_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let m = manifest(None);
        let md = store.put_bytes(&m, None).unwrap();
        let i = index(None, &[(&md.to_string(), m.len() as u64)]);
        let id = store.put_bytes(&i, None).unwrap();
        let all = reachable_blobs(&store, &id).unwrap();
        let order: Vec<_> = all.iter().map(|r| r.digest.to_string()).collect();
        assert_eq!(
            order,
            vec![
                d("config"),
                d("l1"),
                d("l2"),
                md.to_string(),
                id.to_string()
            ]
        );
        assert_eq!(all[4].media_type, mt::OCI_INDEX);
        assert_eq!(all[3].media_type, mt::OCI_MANIFEST);
        // A missing child manifest is an error naming it.
        store.delete(&md).unwrap();
        let e = reachable_blobs(&store, &id).unwrap_err();
        assert!(e.to_string().contains(&md.to_string()), "{e}");
    }
}
