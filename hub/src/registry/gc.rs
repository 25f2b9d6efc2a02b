//! Garbage collection: delete blobs no tag or manifest record reaches.
//!
//! Mark: every manifest recorded in any repository (tagged or pushed by digest)
//! and, through indexes and manifests, their configs, layers and children;
//! and every layer the build cache holds, and the context of every Build
//! that has not ended.
//! Sweep: every other blob older than the grace period — so the layers of a
//! push in progress (blobs first, manifest last) are never swept under it.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use bramble_images::Digest;
use serde::Serialize;

use super::Registry;
use super::error::{RegistryError, RegistryResult};

/// What a collection did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    pub kept: usize,
    pub deleted: usize,
    pub freed_bytes: u64,
    /// Unreferenced but younger than the grace period.
    pub spared_recent: usize,
}

impl Registry {
    /// Deletes unreferenced blobs older than `grace`.
    pub fn gc(&self, grace: Duration) -> RegistryResult<GcReport> {
        let mut live: HashSet<Digest> = HashSet::new();
        let mut todo: Vec<Digest> = self
            .meta
            .all_manifests()?
            .into_iter()
            .map(|(_, d, _)| d)
            .collect();
        todo.extend(self.meta.all_tags()?.into_iter().map(|(_, _, d)| d));
        // Layers the build cache names stay while it names them.
        live.extend(
            crate::build::cache::all_layers(self.meta.store())
                .into_iter()
                .filter_map(|l| l.digest.parse().ok()),
        );
        // A collection that cannot tell which contexts are held sweeps none.
        live.extend(
            crate::build::context::held(self.meta.store()).map_err(RegistryError::internal)?,
        );
        while let Some(d) = todo.pop() {
            if !live.insert(d.clone()) {
                continue;
            }
            let Ok(bytes) = self.blobs.read(&d) else {
                continue;
            };
            let what = format!("manifest {d}");
            let Ok((doc, _)) = bramble_images::oci::parse_manifest(&bytes, None, &what) else {
                continue;
            };
            for r in doc.references(&what).unwrap_or_default() {
                if r.kind == bramble_images::oci::BlobKind::Manifest {
                    todo.push(r.digest);
                } else {
                    live.insert(r.digest);
                }
            }
        }
        let now = SystemTime::now();
        let mut report = GcReport::default();
        for d in self.blobs.list()? {
            if live.contains(&d) {
                report.kept += 1;
                continue;
            }
            let meta = std::fs::metadata(self.blobs.path(&d)).ok();
            let age = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if age < grace {
                report.spared_recent += 1;
                continue;
            }
            if self.blobs.delete(&d)? {
                report.deleted += 1;
                report.freed_bytes += meta.map(|m| m.len()).unwrap_or(0);
            }
        }
        tracing::info!(
            kept = report.kept,
            deleted = report.deleted,
            freed_bytes = report.freed_bytes,
            "registry gc"
        );
        Ok(report)
    }
}
