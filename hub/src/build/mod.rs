//! Image builds on the boards (`bramble.dev/v1 Build`). The CLI uploads a
//! context tar to the registry and creates a Build; the [`controller`]
//! reads the context ([`context`]), looks up base images ([`bases`]),
//! picks a Ready node of each platform that runs builds, plans the job
//! with that node's layer [`cache`] ([`plan`]), hands it to the node
//! through its desired set (the dispatcher reads [`Builds::jobs_for`])
//! with a push-only registry credential ([`grants`]), follows the node's
//! reports ([`progress`]) and writes the image ([`image`]) when the last
//! layer is in. A platform whose node is [`lost`] is planned again on
//! another. Deleting a Build cancels its jobs.

pub mod bases;
pub mod cache;
pub mod context;
pub mod controller;
pub mod grants;
pub mod image;
pub mod lost;
pub mod plan;
pub mod progress;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bramble_api::protocol::{BuildJob, BuildReport};
use tokio::sync::Notify;

/// What the build controller shares with the dispatcher, the status
/// ingest and the registry.
#[derive(Debug, Default)]
pub struct Builds {
    /// Jobs by node.
    jobs: Mutex<BTreeMap<String, Vec<BuildJob>>>,
    /// Bumped whenever `jobs` changes (the dispatcher recomputes sets).
    version: AtomicU64,
    /// The newest reports of each node.
    reports: Mutex<HashMap<String, Vec<BuildReport>>>,
    /// Wakes the controller (a report arrived).
    pub(crate) wake: Notify,
    pub grants: grants::Grants,
}

impl Builds {
    /// The jobs `node` runs, sorted.
    pub fn jobs_for(&self, node: &str) -> Vec<BuildJob> {
        self.jobs
            .lock()
            .expect("jobs lock")
            .get(node)
            .cloned()
            .unwrap_or_default()
    }

    /// Changes whenever any node's jobs change.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub(crate) fn set_jobs(&self, jobs: BTreeMap<String, Vec<BuildJob>>) {
        let mut current = self.jobs.lock().expect("jobs lock");
        if *current != jobs {
            *current = jobs;
            self.version.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Takes a node's build reports from its status.
    pub fn report(&self, node: &str, reports: Vec<BuildReport>) {
        let mut all = self.reports.lock().expect("reports lock");
        let changed = all.get(node) != Some(&reports);
        if changed {
            all.insert(node.to_string(), reports);
            drop(all);
            self.wake.notify_one();
        }
    }

    pub(crate) fn report_of(&self, node: &str, uid: &str, platform: &str) -> Option<BuildReport> {
        self.reports
            .lock()
            .expect("reports lock")
            .get(node)?
            .iter()
            .find(|r| r.uid == uid && r.platform == platform)
            .cloned()
    }
}
