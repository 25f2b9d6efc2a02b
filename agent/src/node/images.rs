//! The node's local images: a blob store and a per-`diff_id` layer cache
//! under the agent's data dir, plus a small name -> digest table
//! (`refs.json`, written on change). Images arrive by import of an OCI or
//! `docker save` archive (`--image NAME=ARCHIVE`) or by a pull from the
//! hub's registry ([`LocalImages::pull`]). [`LocalImages::resolve`] gives a pod
//! the unpacked layers and config of the manifest for this node's platform.
//! The store's own failures (opening it, importing) are
//! [`ImageStoreError`]s; a pod's image that cannot be had is an
//! [`ImageError`], a failed pull a [`PullError`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bramble_images::client::{PullOptions, RegistryClient};
use bramble_images::oci::descriptor_digest;
use bramble_images::platform::select;
use bramble_images::{
    BlobError, BlobStore, Compression, Digest, ImportError, LayerError, LayerStore,
    ManifestOrIndex, Platform, Reference, ReferenceError, parse_manifest,
};
use oci_spec::image::ImageConfiguration;

use crate::pod::{ImageError, ImageSource, PullError, ResolvedImage};

/// Why the image store could not be opened or an archive imported into it.
#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error(transparent)]
    Layers(#[from] LayerError),
    #[error("reading {path}: {source}")]
    ReadRefs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source} (remove it and import the images again)")]
    CorruptRefs {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing {path}: {source}")]
    WriteRefs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("importing {path}: {source}")]
    Import {
        path: PathBuf,
        #[source]
        source: ImportError,
    },
    #[error("image name {name:?}: {source}")]
    Name {
        name: String,
        #[source]
        source: ReferenceError,
    },
    #[error("{path} has no image names; give one with --image NAME={path}")]
    NoNames { path: PathBuf },
}

/// Images on this node. See the module docs.
#[derive(Debug)]
pub struct LocalImages {
    blobs: BlobStore,
    layers: LayerStore,
    refs_path: PathBuf,
    refs: Mutex<BTreeMap<String, Digest>>,
    platform: Platform,
}

/// `name:tag` (or `name@digest`) as the table keys it.
fn key(reference: &str) -> Result<String, ReferenceError> {
    Reference::parse(reference).map(|r| key_of(&r))
}

/// [`key`] of a parsed reference.
fn key_of(r: &Reference) -> String {
    match r.digest() {
        Some(d) => format!("{}@{d}", r.name()),
        None => format!("{}:{}", r.name(), r.manifest_reference()),
    }
}

impl LocalImages {
    /// Opens (creating) the store under `dir` (`blobs/`, `layers/`,
    /// `refs.json`).
    pub fn open(dir: &Path) -> Result<LocalImages, ImageStoreError> {
        let blobs = BlobStore::open(dir.join("blobs"))?;
        let layers = LayerStore::open(dir.join("layers"))?;
        let refs_path = dir.join("refs.json");
        let refs = match std::fs::read(&refs_path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(refs) => refs,
                Err(source) => {
                    return Err(ImageStoreError::CorruptRefs {
                        path: refs_path,
                        source,
                    });
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(ImageStoreError::ReadRefs {
                    path: refs_path,
                    source,
                });
            }
        };
        Ok(LocalImages {
            blobs,
            layers,
            refs_path,
            refs: Mutex::new(refs),
            platform: Platform::current(),
        })
    }

    /// Imports the archive at `path`; the images get their names from the
    /// archive, and the first one also `name` if given. Returns the names.
    pub fn import(&self, path: &Path, name: Option<&str>) -> Result<Vec<String>, ImageStoreError> {
        let report = bramble_images::import(&self.blobs, path, |_| {}).map_err(|source| {
            ImageStoreError::Import {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let mut refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        let before = refs.clone();
        let mut names = Vec::new();
        for (i, img) in report.images.iter().enumerate() {
            let mut all: Vec<&str> = img.names.iter().map(String::as_str).collect();
            if i == 0
                && let Some(n) = name
            {
                all.push(n);
            }
            for n in all {
                let k = key(n).map_err(|source| ImageStoreError::Name {
                    name: n.to_string(),
                    source,
                })?;
                refs.insert(k.clone(), img.digest.clone());
                names.push(k);
            }
        }
        if names.is_empty() {
            return Err(ImageStoreError::NoNames {
                path: path.to_path_buf(),
            });
        }
        if *refs != before {
            self.save_refs(&refs)
                .map_err(|source| ImageStoreError::WriteRefs {
                    path: self.refs_path.clone(),
                    source,
                })?;
        }
        Ok(names)
    }

    /// Whether `reference` names an image on this node.
    pub fn has(&self, reference: &str) -> bool {
        key(reference).is_ok_and(|k| {
            self.refs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&k)
        })
    }

    /// Pulls `reference` (a repository of the hub's registry, e.g. `web:1`)
    /// for this node's platform from `client` into the store and names it
    /// `reference`. Blobs already here are not downloaded again.
    pub fn pull(&self, client: &RegistryClient, reference: &str) -> Result<Digest, PullError> {
        let r = Reference::parse(reference).map_err(|source| PullError::Reference {
            reference: reference.to_string(),
            source,
        })?;
        if !r.is_hub_local() {
            return Err(PullError::NotHubLocal {
                reference: reference.to_string(),
            });
        }
        let pulled = client
            .pull(
                r.repository(),
                &r.manifest_reference(),
                &self.platform,
                &self.blobs,
                &PullOptions::default(),
            )
            .map_err(|e| PullError::Registry {
                reference: reference.to_string(),
                source: Box::new(e),
            })?;
        let digest = pulled.index_digest.unwrap_or(pulled.manifest_digest);
        let k = key_of(&r);
        let mut refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        if refs.get(&k) != Some(&digest) {
            refs.insert(k, digest.clone());
            self.save_refs(&refs)
                .map_err(|source| PullError::WriteRefs {
                    path: self.refs_path.clone(),
                    source,
                })?;
        }
        tracing::info!(image = reference, %digest, downloaded = pulled.downloaded, "image pulled");
        Ok(digest)
    }

    /// Writes the name table (`refs.json`, via a temp file).
    fn save_refs(&self, refs: &BTreeMap<String, Digest>) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(refs)?;
        let tmp = self.refs_path.with_extension("json.tmp");
        std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &self.refs_path))
    }

    fn read_manifest(&self, digest: &Digest) -> Result<ManifestOrIndex, ImageError> {
        let bytes = self
            .blobs
            .read(digest)
            .map_err(|source| ImageError::ReadManifest {
                digest: digest.clone(),
                source,
            })?;
        Ok(parse_manifest(&bytes, None, &digest.to_string()).map(|(m, _)| m)?)
    }
}

impl ImageSource for LocalImages {
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        let k = key(reference)?;
        let top = self
            .refs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&k)
            .cloned()
            .ok_or_else(|| ImageError::NotOnNode {
                image: k.clone(),
                reference: reference.to_string(),
            })?;
        let manifest = match self.read_manifest(&top)? {
            ManifestOrIndex::Manifest(m) => m,
            ManifestOrIndex::Index(index) => {
                let d = select(&index, &self.platform).map_err(|e| e.for_image(&k))?;
                let digest = descriptor_digest(&d, &k)?;
                match self.read_manifest(&digest)? {
                    ManifestOrIndex::Manifest(m) => m,
                    ManifestOrIndex::Index(_) => {
                        return Err(ImageError::NestedIndex { image: k, digest });
                    }
                }
            }
        };
        let config_digest = descriptor_digest(manifest.config(), &k)?;
        let config_bytes =
            self.blobs
                .read(&config_digest)
                .map_err(|source| ImageError::ReadConfig {
                    image: k.clone(),
                    source,
                })?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|source| ImageError::ParseConfig {
                image: k.clone(),
                digest: config_digest.clone(),
                source,
            })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(ImageError::LayerCount {
                image: k,
                layers: manifest.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::new();
        for (l, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let blob = descriptor_digest(l, &k)?;
            let compression =
                Compression::from_media_type(l.media_type().as_ref()).ok_or_else(|| {
                    ImageError::LayerMediaType {
                        image: k.clone(),
                        media_type: l.media_type().to_string(),
                    }
                })?;
            let diff_id: Digest = diff_id.parse().map_err(|source| ImageError::DiffId {
                image: k.clone(),
                diff_id: diff_id.clone(),
                source,
            })?;
            let dir = self
                .layers
                .ensure(&self.blobs, &blob, compression, &diff_id)
                .map_err(|e| ImageError::Layer {
                    image: k.clone(),
                    blob: blob.clone(),
                    source: Box::new(e),
                })?;
            layers.push(dir);
        }
        let size =
            manifest.config().size() + manifest.layers().iter().map(|l| l.size()).sum::<u64>();
        Ok(ResolvedImage {
            layers,
            config,
            size,
        })
    }
}
