//! Which platforms an image in this registry is available for, as the
//! scheduler's platform filter needs them: an index lists its manifests'
//! platforms; a single manifest has its config's. Only images the pods
//! name without a registry host (or the hub's own) live here; others are
//! unknown (`None`: the filter lets them run anywhere).

use bramble_images::oci::{ManifestOrIndex, parse_manifest};
use bramble_images::platform::index_platforms;
use bramble_images::{Digest, Platform, Reference};

use super::Registry;

impl Registry {
    /// The manifest digest `reference` resolves to here and its platforms.
    pub fn platforms_of(&self, reference: &str) -> Option<(Digest, Vec<Platform>)> {
        let r = Reference::parse(reference).ok()?;
        if !r.is_hub_local() {
            return None;
        }
        let (digest, media_type) = self.resolve(r.repository(), &r.manifest_reference()).ok()?;
        let bytes = self.blobs.read(&digest).ok()?;
        let (parsed, _) = parse_manifest(&bytes, Some(&media_type), reference).ok()?;
        let platforms = match parsed {
            ManifestOrIndex::Index(index) => index_platforms(&index),
            ManifestOrIndex::Manifest(m) => {
                let d: Digest = m.config().digest().to_string().parse().ok()?;
                let c: serde_json::Value =
                    serde_json::from_slice(&self.blobs.read(&d).ok()?).ok()?;
                vec![Platform::new(
                    c["os"].as_str().unwrap_or("linux"),
                    c["architecture"].as_str()?,
                    c["variant"].as_str(),
                )]
            }
        };
        Some((digest, platforms))
    }
}
