//! Image builds on the boards: the hub hands a node the plan of one
//! platform of a `Build` in its desired set ([`BuildJob`]), and the node
//! reports how far it got in its status ([`BuildReport`]). The hub plans
//! (stages, steps, cache keys, which steps the layer cache already holds);
//! the agent runs the rest, pushes each new layer as a blob to the hub's
//! registry with the job's own credential (blob uploads to one repository,
//! for the job's lifetime: no manifests, no tags), and reports the layers.
//! The hub checks each reported layer against its registry and writes the
//! image's config, manifest and tag itself. A job absent from the set is
//! cancelled.

use serde::{Deserialize, Serialize};

pub use bramble_dockerfile::plan::Step;

/// The feature an agent announces in `hello` when it runs builds.
pub const FEATURE_BUILD: &str = "build";

/// A layer blob in the hub's registry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRef {
    /// `sha256:…` of the blob (compressed).
    pub digest: String,
    /// `sha256:…` of the uncompressed tar.
    pub diff_id: String,
    pub size: u64,
    /// The blob's media type (gzip tar unless an image says otherwise).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
}

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobBase {
    /// `FROM scratch`: nothing.
    Scratch,
    /// The result of an earlier stage of the job (its Dockerfile index).
    Stage(usize),
    /// An image's layers, bottom first.
    Layers(Vec<LayerRef>),
}

/// One step of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStep {
    /// The step's cache key (also how reports name it).
    pub key: String,
    /// `[stage 2/3] RUN make`, as the build prints it.
    pub name: String,
    pub step: Step,
    /// The layer the cache holds for this step: not run, only fetched when
    /// a later step needs the filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<LayerRef>,
}

/// One stage of a job, in the order they are built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStage {
    /// Its index in the Dockerfile (what `COPY --from=N` names).
    pub index: usize,
    pub base: JobBase,
    pub steps: Vec<JobStep>,
}

/// Blob uploads to one repository of the hub's registry (basic auth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushGrant {
    pub repository: String,
    pub user: String,
    pub password: String,
}

/// One platform of a Build, for the node that builds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildJob {
    /// The Build's uid and the platform: the job's identity.
    pub uid: String,
    pub platform: String,
    /// `namespace/name` of the Build, for logs.
    pub build: String,
    /// The build context: a tar blob in `grant.repository`.
    pub context: LayerRef,
    /// Files of the context tar a build may not read (the Dockerfile and
    /// the ignore file when `.dockerignore` excludes them: sent, invisible).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_hidden: Vec<String>,
    /// Images `COPY --from=IMAGE` reads, by reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<(String, Vec<LayerRef>)>,
    pub stages: Vec<JobStage>,
    pub grant: PushGrant,
    /// Timestamps of files and layers (`SOURCE_DATE_EPOCH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_date_epoch: Option<u64>,
}

/// How far a job got, in the agent's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildReport {
    pub uid: String,
    pub platform: String,
    /// `Running`, `Succeeded` or `Failed`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The steps that started, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
}

/// One step of a [`BuildReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub key: String,
    /// `Running`, `Succeeded` or `Failed`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_millis: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The pushed layer of a step that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerRef>,
}
