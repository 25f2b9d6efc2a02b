//! OCI image layouts (a directory, or the same in a tar): `oci-layout`,
//! `index.json` and `blobs/sha256/…`. Every manifest and index is read,
//! verified and walked before anything is written.

use std::collections::{BTreeMap, HashMap};

use super::source::Source;
use super::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, ImportError, ImportedImage, Plan, PlanItem,
    blob_path, docker,
};
use crate::digest::Digest;
use crate::oci::{self, BlobKind, ManifestOrIndex, OciError};

/// Names from an index.json descriptor's annotations.
fn annotation_names(annotations: Option<&HashMap<String, String>>) -> Vec<String> {
    let Some(a) = annotations else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for key in [ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME] {
        if let Some(v) = a.get(key).filter(|v| !v.is_empty()) {
            out.push(v.clone());
            break;
        }
    }
    out
}

/// Reads `index.json` and walks every image, verifying each manifest and
/// index and checking that every blob is present with the declared size.
pub(super) fn plan(src: &Source) -> Result<Plan, ImportError> {
    check_layout_file(src)?;
    let bytes = src.read_small("index.json", oci::MAX_MANIFEST_BYTES)?;
    let (doc, _) = oci::parse_manifest(&bytes, None, "index.json")?;
    let ManifestOrIndex::Index(top) = doc else {
        return Err(ImportError::Invalid {
            entry: "index.json".into(),
            why: "is an image manifest, but an OCI layout's index.json must be an image index"
                .into(),
        });
    };
    let repo_tags = docker::repo_tags_by_config(src)?;
    let mut images: Vec<ImportedImage> = Vec::new();
    let mut walker = Walker {
        src,
        items: Vec::new(),
        seen: BTreeMap::new(),
    };
    for (i, d) in top.manifests().iter().enumerate() {
        let what = format!("index.json manifests[{i}]");
        let digest = oci::descriptor_digest(d, &what)?;
        let media_type = d.media_type().to_string();
        let config = walker.walk(&digest, &media_type, d.size(), &what, 0)?;
        let mut names = annotation_names(d.annotations().as_ref());
        if names.is_empty()
            && let Some(c) = config.and_then(|c| repo_tags.get(&c))
        {
            names = c.clone();
        }
        if let Some(img) = images.iter_mut().find(|m| m.digest == digest) {
            for n in names {
                if !img.names.contains(&n) {
                    img.names.push(n);
                }
            }
            continue;
        }
        images.push(ImportedImage {
            names,
            digest,
            media_type,
            size: d.size(),
        });
    }
    if images.is_empty() {
        return Err(ImportError::Invalid {
            entry: "index.json".into(),
            why: "lists no images".into(),
        });
    }
    Ok(Plan {
        items: walker.items,
        images,
        deferred: None,
    })
}

fn check_layout_file(src: &Source) -> Result<(), ImportError> {
    let bytes = src.read_small("oci-layout", 4096)?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layout {
        image_layout_version: String,
    }
    let l: Layout = serde_json::from_slice(&bytes).map_err(|source| ImportError::Json {
        entry: "oci-layout".into(),
        source,
    })?;
    if l.image_layout_version != "1.0.0" {
        return Err(ImportError::Invalid {
            entry: "oci-layout".into(),
            why: format!(
                "imageLayoutVersion is {:?}; Bramble reads version 1.0.0",
                l.image_layout_version
            ),
        });
    }
    Ok(())
}

struct Walker<'a> {
    src: &'a Source,
    items: Vec<PlanItem>,
    /// Blobs already planned, with the config digest when it is a manifest.
    seen: BTreeMap<Digest, Option<Digest>>,
}

impl Walker<'_> {
    /// Plans a manifest or index and everything below it, children first.
    /// Returns the config digest when `digest` is a single manifest.
    fn walk(
        &mut self,
        digest: &Digest,
        media_type: &str,
        size: u64,
        referenced_by: &str,
        depth: usize,
    ) -> Result<Option<Digest>, ImportError> {
        if let Some(config) = self.seen.get(digest) {
            return Ok(config.clone());
        }
        let entry = blob_path(digest);
        if depth > oci::MAX_DEPTH {
            return Err(OciError::TooDeep { what: entry }.into());
        }
        self.check_present(&entry, size, referenced_by)?;
        if size > oci::MAX_MANIFEST_BYTES {
            return Err(ImportError::TooLarge {
                entry,
                size,
                limit: oci::MAX_MANIFEST_BYTES,
            });
        }
        let bytes = self.src.read_small(&entry, size)?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(ImportError::DigestMismatch {
                entry,
                expected: digest.clone(),
                actual,
            });
        }
        let (doc, _) = oci::parse_manifest(&bytes, Some(media_type), &entry)?;
        let mut config = None;
        for r in doc.references(&entry)? {
            match r.kind {
                BlobKind::Manifest => {
                    self.walk(&r.digest, &r.media_type, r.size, &entry, depth + 1)?;
                }
                BlobKind::Config | BlobKind::Layer => {
                    if r.kind == BlobKind::Config {
                        config = Some(r.digest.clone());
                    }
                    if self.seen.contains_key(&r.digest) {
                        continue;
                    }
                    let child = blob_path(&r.digest);
                    self.check_present(&child, r.size, &entry)?;
                    self.seen.insert(r.digest.clone(), None);
                    self.items.push(PlanItem {
                        entry: child,
                        digest: Some(r.digest),
                        size: r.size,
                        referenced_by: entry.clone(),
                        bytes: None,
                        slot: None,
                    });
                }
            }
        }
        self.seen.insert(digest.clone(), config.clone());
        self.items.push(PlanItem {
            entry,
            digest: Some(digest.clone()),
            size,
            referenced_by: referenced_by.to_string(),
            bytes: Some(bytes),
            slot: None,
        });
        Ok(config)
    }

    fn check_present(
        &self,
        entry: &str,
        size: u64,
        referenced_by: &str,
    ) -> Result<(), ImportError> {
        match self.src.size(entry)? {
            None => Err(ImportError::Missing {
                entry: entry.to_string(),
                source_path: self.src.path().to_path_buf(),
                referenced_by: referenced_by.to_string(),
            }),
            Some(actual) if actual != size => Err(ImportError::SizeMismatch {
                entry: entry.to_string(),
                referenced_by: referenced_by.to_string(),
                expected: size,
                actual,
            }),
            Some(_) => Ok(()),
        }
    }
}
