//! The images a build starts from (`FROM`, `COPY --from=IMAGE`), looked up
//! in the hub's own registry for one platform: the manifest (an index is
//! narrowed to the platform), its layers with their `diff_id`s, and the
//! image config the planner continues from. Builds have no network: an
//! image the registry does not hold is an error saying how to get it in.

use bramble_api::protocol::LayerRef;
use bramble_dockerfile::ImageConfig;
use bramble_images::oci::{ManifestOrIndex, parse_manifest};
use bramble_images::{Digest, Platform, Reference};
use serde_json::Value;

use crate::registry::Registry;

/// A base image for one platform.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseImage {
    /// The platform manifest's digest (what cache keys start from).
    pub manifest: String,
    pub config: ImageConfig,
    /// Layers bottom first, with `diff_id`s from the config.
    pub layers: Vec<LayerRef>,
    /// The config's `history` (kept in the built image).
    pub history: Vec<Value>,
}

/// Why a base image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error(
        "{image}: builds use only images in the hub's registry and {image} names another registry; copy it in first (skopeo copy … docker://HUB/NAME:TAG, or bramble images import) and write FROM NAME:TAG"
    )]
    Remote { image: String },
    #[error("{image} is not a valid image reference: {why}")]
    Reference { image: String, why: String },
    #[error(
        "{image} is not in the hub's registry; push it first (bramble images import, or skopeo copy … docker://HUB/{image})"
    )]
    Missing { image: String },
    #[error("{image} has no image for {platform} (it has {available})")]
    Platform {
        image: String,
        platform: String,
        available: String,
    },
    #[error(
        "{image} has ONBUILD triggers, which Bramble does not run; build from the image it is based on and write the triggers' instructions in your Dockerfile"
    )]
    OnBuild { image: String },
    #[error("{image}: {why}")]
    Broken { image: String, why: String },
}

fn broken(image: &str, why: impl std::fmt::Display) -> BaseError {
    BaseError::Broken {
        image: image.to_string(),
        why: why.to_string(),
    }
}

/// Looks `image` up for `platform`.
pub fn resolve(
    registry: &Registry,
    image: &str,
    platform: &Platform,
) -> Result<BaseImage, BaseError> {
    let r = Reference::parse(image).map_err(|e| BaseError::Reference {
        image: image.to_string(),
        why: e.to_string(),
    })?;
    if !r.is_hub_local() {
        return Err(BaseError::Remote {
            image: image.to_string(),
        });
    }
    let missing = || BaseError::Missing {
        image: image.to_string(),
    };
    let (digest, media_type) = registry
        .resolve(r.repository(), &r.manifest_reference())
        .map_err(|_| missing())?;
    let bytes = registry.blobs.read(&digest).map_err(|_| missing())?;
    let (parsed, _) =
        parse_manifest(&bytes, Some(&media_type), image).map_err(|e| broken(image, e))?;
    let (manifest_digest, manifest) = match parsed {
        ManifestOrIndex::Manifest(m) => (digest, m),
        ManifestOrIndex::Index(index) => {
            let d = bramble_images::platform::select(&index, platform).map_err(|_| {
                BaseError::Platform {
                    image: image.to_string(),
                    platform: platform.to_string(),
                    available: bramble_images::platform::index_platforms(&index)
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?;
            let d: Digest = d
                .digest()
                .to_string()
                .parse()
                .map_err(|e| broken(image, e))?;
            let bytes = registry.blobs.read(&d).map_err(|_| missing())?;
            match parse_manifest(&bytes, None, image)
                .map_err(|e| broken(image, e))?
                .0
            {
                ManifestOrIndex::Manifest(m) => (d, m),
                ManifestOrIndex::Index(_) => return Err(broken(image, "an index inside an index")),
            }
        }
    };
    let config_digest: Digest = manifest
        .config()
        .digest()
        .to_string()
        .parse()
        .map_err(|e| broken(image, e))?;
    let config: Value =
        serde_json::from_slice(&registry.blobs.read(&config_digest).map_err(|_| missing())?)
            .map_err(|e| broken(image, format!("its config is not JSON: {e}")))?;
    let arch = config["architecture"].as_str().unwrap_or("");
    let have = Platform::new(
        config["os"].as_str().unwrap_or("linux"),
        arch,
        config["variant"].as_str(),
    );
    if !platform.accepts(&have) {
        return Err(BaseError::Platform {
            image: image.to_string(),
            platform: platform.to_string(),
            available: have.to_string(),
        });
    }
    if config["config"]["OnBuild"]
        .as_array()
        .is_some_and(|t| !t.is_empty())
    {
        return Err(BaseError::OnBuild {
            image: image.to_string(),
        });
    }
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() != manifest.layers().len() {
        return Err(broken(
            image,
            format!(
                "{} layers but {} diff_ids in its config",
                manifest.layers().len(),
                diff_ids.len()
            ),
        ));
    }
    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(l, diff_id)| LayerRef {
            digest: l.digest().to_string(),
            diff_id,
            size: l.size(),
            media_type: l.media_type().to_string(),
        })
        .collect();
    let mut image_config: ImageConfig = match config.get("config") {
        Some(c) if !c.is_null() => serde_json::from_value(c.clone())
            .map_err(|e| broken(image, format!("its config does not read: {e}")))?,
        _ => ImageConfig::default(),
    };
    if let Some(a) = config["author"].as_str() {
        image_config.author = a.to_string();
    }
    Ok(BaseImage {
        manifest: manifest_digest.to_string(),
        config: image_config,
        layers,
        history: config["history"].as_array().cloned().unwrap_or_default(),
    })
}
