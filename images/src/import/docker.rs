//! Legacy `docker save` archives: `manifest.json` lists each image's config
//! file, `RepoTags` and layer tars. Bramble builds an OCI manifest for each
//! image from them; layer tars are stored as they are.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageManifestBuilder, MediaType, SCHEMA_VERSION,
};

use super::source::{Source, normalize};
use super::{ImportError, ImportedImage, MAX_JSON_BYTES, Plan, PlanItem, read_up_to};
use crate::digest::Digest;
use crate::oci::media_types as mt;
use crate::unpack::Compression;

/// One `manifest.json` entry.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// A layer's media type and size, by slot.
#[derive(Debug)]
struct Layer {
    media_type: &'static str,
    size: u64,
}

#[derive(Debug)]
struct Pending {
    names: Vec<String>,
    config: Digest,
    config_size: u64,
    slots: Vec<usize>,
}

/// What is left once the layers are stored: building and writing manifests.
#[derive(Debug)]
pub(crate) struct Deferred {
    layers: Vec<Layer>,
    images: Vec<Pending>,
}

/// The digest a path names, for `blobs/sha256/<hex>` (Docker ≥ 25) and
/// `<hex>.json` (older Docker configs).
fn digest_in_name(path: &str) -> Option<Digest> {
    let last = path.rsplit('/').next()?;
    let hex = last.strip_suffix(".json").unwrap_or(last);
    format!("sha256:{hex}").parse().ok()
}

fn read_manifest_json(src: &Source) -> Result<Vec<Entry>, ImportError> {
    let bytes = src.read_small("manifest.json", MAX_JSON_BYTES)?;
    serde_json::from_slice(&bytes).map_err(|source| ImportError::Json {
        entry: "manifest.json".into(),
        source,
    })
}

/// For Docker ≥ 25 archives read as OCI layouts: `RepoTags` by config digest,
/// used to name images whose index.json entry has no name annotation. An
/// absent or unreadable `manifest.json` just gives no names.
pub(crate) fn repo_tags_by_config(
    src: &Source,
) -> Result<HashMap<Digest, Vec<String>>, ImportError> {
    if src.size("manifest.json")?.is_none() {
        return Ok(HashMap::new());
    }
    let Ok(entries) = read_manifest_json(src) else {
        return Ok(HashMap::new());
    };
    Ok(entries
        .into_iter()
        .filter_map(|e| Some((digest_in_name(&e.config)?, e.repo_tags.unwrap_or_default())))
        .collect())
}

/// Plans a legacy `docker save`: reads and checks every config, checks every
/// layer is present, and decides each layer's media type from its first
/// bytes. Uncompressed layers are expected to hash to the config's diff_id.
pub(crate) fn plan(src: &Source) -> Result<Plan, ImportError> {
    let entries = read_manifest_json(src)?;
    if entries.is_empty() {
        return Err(ImportError::Invalid {
            entry: "manifest.json".into(),
            why: "lists no images".into(),
        });
    }
    let mut items = Vec::new();
    let mut layers: Vec<Layer> = Vec::new();
    let mut slot_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut configs_planned = BTreeMap::new();
    let mut images = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let what = format!("manifest.json[{i}]");
        let missing = |entry: &str| ImportError::Missing {
            entry: entry.to_string(),
            source_path: src.path().to_path_buf(),
            referenced_by: what.clone(),
        };
        if src.size(&e.config)?.is_none() {
            return Err(missing(&e.config));
        }
        let config_bytes = src.read_small(&e.config, MAX_JSON_BYTES)?;
        let config_digest = Digest::of(&config_bytes);
        if let Some(named) = digest_in_name(&e.config)
            && named != config_digest
        {
            return Err(ImportError::DigestMismatch {
                entry: e.config.clone(),
                expected: named,
                actual: config_digest,
            });
        }
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|source| ImportError::Json {
                entry: e.config.clone(),
                source,
            })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != e.layers.len() {
            return Err(ImportError::Invalid {
                entry: e.config.clone(),
                why: format!(
                    "rootfs.diff_ids lists {} layers but {what} lists {}",
                    diff_ids.len(),
                    e.layers.len()
                ),
            });
        }
        let mut slots = Vec::new();
        for (j, layer) in e.layers.iter().enumerate() {
            let key = normalize(layer).ok_or_else(|| missing(layer))?;
            if let Some(&slot) = slot_of.get(&key) {
                slots.push(slot);
                continue;
            }
            let size = src.size(layer)?.ok_or_else(|| missing(layer))?;
            let mut magic = [0u8; 4];
            let n = read_up_to(&mut src.open(layer)?, &mut magic).map_err(|source| {
                ImportError::Io {
                    path: src.path().join(layer),
                    source,
                }
            })?;
            let (media_type, digest) = match Compression::detect(&magic[..n]) {
                Compression::Gzip => (mt::OCI_LAYER_GZIP, None),
                Compression::Zstd => (mt::OCI_LAYER_ZSTD, None),
                _ => {
                    let diff_id =
                        diff_ids[j]
                            .parse::<Digest>()
                            .map_err(|err| ImportError::Invalid {
                                entry: e.config.clone(),
                                why: format!("rootfs.diff_ids[{j}]: {err}"),
                            })?;
                    (mt::OCI_LAYER_TAR, Some(diff_id))
                }
            };
            let slot = layers.len();
            layers.push(Layer { media_type, size });
            slot_of.insert(key, slot);
            slots.push(slot);
            items.push(PlanItem {
                entry: layer.clone(),
                digest,
                size,
                referenced_by: format!("{what} (diff_ids[{j}] of {})", e.config),
                bytes: None,
                slot: Some(slot),
            });
        }
        if configs_planned.insert(config_digest.clone(), ()).is_none() {
            items.push(PlanItem {
                entry: e.config.clone(),
                digest: Some(config_digest.clone()),
                size: config_bytes.len() as u64,
                referenced_by: what.clone(),
                bytes: Some(config_bytes.clone()),
                slot: None,
            });
        }
        images.push(Pending {
            names: e.repo_tags.clone().unwrap_or_default(),
            config: config_digest,
            config_size: config_bytes.len() as u64,
            slots,
        });
    }
    Ok(Plan {
        items,
        images: Vec::new(),
        deferred: Some(Deferred { layers, images }),
    })
}

fn oci_digest(d: &Digest) -> Result<oci_spec::image::Digest, ImportError> {
    d.to_string().parse().map_err(|e| ImportError::Invalid {
        entry: d.to_string(),
        why: format!("cannot express the digest for oci-spec: {e}"),
    })
}

impl Deferred {
    /// Builds each image's OCI manifest from the stored layer digests
    /// (`learnt`, by slot). Returns the images and the manifest bytes to store.
    pub(crate) fn finish(
        self,
        learnt: &[Option<Digest>],
    ) -> Result<Vec<(ImportedImage, Vec<u8>)>, ImportError> {
        let mut out = Vec::new();
        for img in self.images {
            let config = Descriptor::new(
                MediaType::ImageConfig,
                img.config_size,
                oci_digest(&img.config)?,
            );
            let mut layer_descs = Vec::new();
            for slot in img.slots {
                let d =
                    learnt
                        .get(slot)
                        .cloned()
                        .flatten()
                        .ok_or_else(|| ImportError::Invalid {
                            entry: "manifest.json".into(),
                            why: format!("layer slot {slot} was not stored (internal error)"),
                        })?;
                let l = &self.layers[slot];
                layer_descs.push(Descriptor::new(
                    MediaType::from(l.media_type),
                    l.size,
                    oci_digest(&d)?,
                ));
            }
            let manifest = ImageManifestBuilder::default()
                .schema_version(SCHEMA_VERSION)
                .media_type(MediaType::ImageManifest)
                .config(config)
                .layers(layer_descs)
                .build()
                .map_err(|e| ImportError::Invalid {
                    entry: "manifest.json".into(),
                    why: format!("building an OCI manifest: {e}"),
                })?;
            let bytes = serde_json::to_vec(&manifest).map_err(|source| ImportError::Json {
                entry: "manifest.json".into(),
                source,
            })?;
            out.push((
                ImportedImage {
                    names: img.names,
                    digest: Digest::of(&bytes),
                    media_type: mt::OCI_MANIFEST.to_string(),
                    size: bytes.len() as u64,
                },
                bytes,
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_in_names() {
        let hex = "a".repeat(64);
        assert_eq!(
            digest_in_name(&format!("blobs/sha256/{hex}"))
                .unwrap()
                .hex(),
            hex
        );
        assert_eq!(digest_in_name(&format!("{hex}.json")).unwrap().hex(), hex);
        assert!(digest_in_name("abc/layer.tar").is_none());
    }
}
