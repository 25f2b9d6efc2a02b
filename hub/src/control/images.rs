//! The platforms of the images the control round needs (pending pods,
//! DaemonSet templates), from the hub's registry, cached per reference for
//! a few seconds so a tag moved by a push is seen soon without reading
//! manifests every round.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bramble_images::Platform;

use super::snapshot::Snapshot;
use crate::registry::Registry;
use crate::scheduler::ImagePlatforms;

/// How long a looked-up reference is trusted.
const TTL: Duration = Duration::from_secs(10);

/// Cached lookups. See the module docs.
#[derive(Default)]
pub struct ImageCache {
    registry: Option<Arc<Registry>>,
    known: HashMap<String, (Instant, Option<Vec<Platform>>)>,
}

impl ImageCache {
    pub fn new(registry: Option<Arc<Registry>>) -> Self {
        ImageCache {
            registry,
            known: HashMap::new(),
        }
    }

    /// Platforms of every image of unscheduled pods and DaemonSet templates
    /// that the registry has (others are absent: they run anywhere).
    pub fn for_round(&mut self, snap: &Snapshot, now: Instant) -> ImagePlatforms {
        let mut refs: Vec<&str> = Vec::new();
        for p in snap
            .pods
            .iter()
            .filter(|p| p.node_name().is_none_or(str::is_empty))
        {
            refs.extend(p.spec.all_containers().map(|c| c.image.as_str()));
        }
        for ds in &snap.daemonsets {
            refs.extend(
                ds.spec
                    .template
                    .spec
                    .all_containers()
                    .map(|c| c.image.as_str()),
            );
        }
        let mut out = ImagePlatforms::new();
        let Some(registry) = &self.registry else {
            return out;
        };
        self.known
            .retain(|_, (at, _)| now.duration_since(*at) < TTL);
        for r in refs {
            let entry = self
                .known
                .entry(r.to_string())
                .or_insert_with(|| (now, registry.platforms_of(r).map(|(_, p)| p)));
            if let Some(p) = &entry.1 {
                out.insert(r.to_string(), p.clone());
            }
        }
        out
    }
}
