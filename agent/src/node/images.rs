//! The node's local images: a blob store and a per-`diff_id` layer cache
//! under the agent's data dir, plus a small name -> digest table
//! (`refs.json`, written on change). Images arrive by import of an OCI or
//! `docker save` archive (`--image NAME=ARCHIVE`) or by a pull from the
//! hub's registry ([`LocalImages::pull`]). [`LocalImages::resolve`] gives a pod
//! the unpacked layers and config of the manifest for this node's platform.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bramble_images::client::{PullOptions, RegistryClient};
use bramble_images::oci::descriptor_digest;
use bramble_images::platform::select;
use bramble_images::{
    BlobStore, Compression, Digest, LayerStore, ManifestOrIndex, Platform, Reference,
    parse_manifest,
};
use oci_spec::image::ImageConfiguration;

use crate::pod::{ImageError, ImageSource, ResolvedImage};

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
fn key(reference: &str) -> Result<String, String> {
    let r = Reference::parse(reference).map_err(|e| e.to_string())?;
    Ok(match r.digest() {
        Some(d) => format!("{}@{d}", r.name()),
        None => format!("{}:{}", r.name(), r.manifest_reference()),
    })
}

impl LocalImages {
    /// Opens (creating) the store under `dir` (`blobs/`, `layers/`,
    /// `refs.json`).
    pub fn open(dir: &Path) -> Result<LocalImages, String> {
        let blobs = BlobStore::open(dir.join("blobs")).map_err(|e| e.to_string())?;
        let layers = LayerStore::open(dir.join("layers")).map_err(|e| e.to_string())?;
        let refs_path = dir.join("refs.json");
        let refs = match std::fs::read(&refs_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{}: {e} (remove it and import the images again)",
                    refs_path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("reading {}: {e}", refs_path.display())),
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
    pub fn import(&self, path: &Path, name: Option<&str>) -> Result<Vec<String>, String> {
        let report = bramble_images::import(&self.blobs, path, |_| {})
            .map_err(|e| format!("importing {}: {e}", path.display()))?;
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
                let k = key(n).map_err(|e| format!("image name {n:?}: {e}"))?;
                refs.insert(k.clone(), img.digest.clone());
                names.push(k);
            }
        }
        if names.is_empty() {
            return Err(format!(
                "{} has no image names; give one with --image NAME={}",
                path.display(),
                path.display()
            ));
        }
        if *refs != before {
            self.save_refs(&refs)?;
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
    pub fn pull(&self, client: &RegistryClient, reference: &str) -> Result<Digest, String> {
        let r = Reference::parse(reference).map_err(|e| format!("image {reference:?}: {e}"))?;
        if !r.is_hub_local() {
            return Err(format!(
                "image {reference}: only images of the hub's registry can be pulled \
                 (push it to the hub, or import it with --image)"
            ));
        }
        let pulled = client
            .pull(
                r.repository(),
                &r.manifest_reference(),
                &self.platform,
                &self.blobs,
                &PullOptions::default(),
            )
            .map_err(|e| format!("pulling {reference}: {e}"))?;
        let digest = pulled.index_digest.unwrap_or(pulled.manifest_digest);
        let k = key(reference)?;
        let mut refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        if refs.get(&k) != Some(&digest) {
            refs.insert(k, digest.clone());
            self.save_refs(&refs)?;
        }
        tracing::info!(image = reference, %digest, downloaded = pulled.downloaded, "image pulled");
        Ok(digest)
    }

    fn save_refs(&self, refs: &BTreeMap<String, Digest>) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(refs).map_err(|e| e.to_string())?;
        let tmp = self.refs_path.with_extension("json.tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &self.refs_path))
            .map_err(|e| format!("writing {}: {e}", self.refs_path.display()))
    }

    fn read_manifest(&self, digest: &Digest) -> Result<ManifestOrIndex, String> {
        let bytes = self
            .blobs
            .read(digest)
            .map_err(|e| format!("reading manifest {digest}: {e}"))?;
        parse_manifest(&bytes, None, &digest.to_string())
            .map(|(m, _)| m)
            .map_err(|e| e.to_string())
    }
}

impl ImageSource for LocalImages {
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        Ok(self.resolve_local(reference)?)
    }
}

impl LocalImages {
    fn resolve_local(&self, reference: &str) -> Result<ResolvedImage, String> {
        let k = key(reference)?;
        let top = self
            .refs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&k)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "image {k} is not on this node (import it with --image {reference}=ARCHIVE)"
                )
            })?;
        let manifest = match self.read_manifest(&top)? {
            ManifestOrIndex::Manifest(m) => m,
            ManifestOrIndex::Index(index) => {
                let d = select(&index, &self.platform).map_err(|e| e.for_image(&k).to_string())?;
                let digest = descriptor_digest(&d, &k).map_err(|e| e.to_string())?;
                match self.read_manifest(&digest)? {
                    ManifestOrIndex::Manifest(m) => m,
                    ManifestOrIndex::Index(_) => {
                        return Err(format!("image {k}: nested index {digest} not supported"));
                    }
                }
            }
        };
        let config_digest = descriptor_digest(manifest.config(), &k).map_err(|e| e.to_string())?;
        let config_bytes = self
            .blobs
            .read(&config_digest)
            .map_err(|e| format!("image {k}: config: {e}"))?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| format!("image {k}: config {config_digest}: {e}"))?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(format!(
                "image {k}: {} layers but {} diff_ids in the config",
                manifest.layers().len(),
                diff_ids.len()
            ));
        }
        let mut layers = Vec::new();
        for (l, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let blob = descriptor_digest(l, &k).map_err(|e| e.to_string())?;
            let compression =
                Compression::from_media_type(l.media_type().as_ref()).ok_or_else(|| {
                    format!(
                        "image {k}: layer media type {} not supported",
                        l.media_type()
                    )
                })?;
            let diff_id: Digest = diff_id
                .parse()
                .map_err(|e| format!("image {k}: diff_id {diff_id}: {e}"))?;
            let dir = self
                .layers
                .ensure(&self.blobs, &blob, compression, &diff_id)
                .map_err(|e| format!("image {k}: layer {blob}: {e}"))?;
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
