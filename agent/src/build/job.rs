//! One build job on this board, start to end, on a thread of its own: the
//! context tar is fetched from the hub's registry and unpacked, then each
//! stage is built in order — its base layers fetched and unpacked (or an
//! earlier stage's taken), each step's layer taken from the cache
//! (fetched if this board no longer has it) or made: the step runs
//! ([`super::step`], [`super::copy`]), what it changed becomes a layer
//! (`bramble_images::layer_diff`), which is pushed to the hub with the
//! job's own credential and kept unpacked for the next steps. Every step
//! is reported as it starts and ends; a failed `RUN` reports its exit code
//! and the end of its output. A cancelled job kills its running `RUN`, or
//! stops before its next step.
//! Everything is also written to the job's log ([`super::log`]): each
//! step, cached or run, the output of its process, how it and the job
//! ended.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bramble_api::protocol::{BuildJob, BuildReport, JobBase, LayerRef, StepReport};
use bramble_dockerfile::plan::{Action, Source};
use bramble_images::layer_diff::{DiffOptions, write_layer};
use bramble_images::{
    Compression, Digest, PullOptions, RegistryClient, UnpackOptions, unpack_layer,
};

use super::copy::{CopySource, copy_step, mkdir_step};
use super::log::{BuildLog, BuildLogs, seconds};
use super::mounts::MountSources;
use super::network::{StepAddresses, StepNetwork};
use super::step::{Step, run_step};
use crate::runtime::Runtime;

/// Makes the client that pushes with a grant's user and password.
pub type PushClient = Box<dyn Fn(&str, &str) -> RegistryClient + Send + Sync>;

/// What a job needs from the board.
pub struct JobEnv {
    pub runtime: Arc<dyn Runtime>,
    pub blobs: bramble_images::BlobStore,
    pub layers: bramble_images::LayerStore,
    /// A client reading from the hub's registry (the node's login, as
    /// pinned when called).
    pub read: Box<dyn Fn() -> RegistryClient + Send + Sync>,
    /// Pushes with `user`, `password` (the job's grant).
    pub push: PushClient,
    /// Where jobs keep their files (`DATA_DIR/builds`).
    pub dir: PathBuf,
    /// Where jobs' logs are kept (`DATA_DIR/build-logs`).
    pub logs: BuildLogs,
    /// Where `RUN` steps get pod-network addresses (`None`: no network).
    pub addresses: Option<Arc<dyn StepAddresses>>,
    /// Where steps' network namespace files go (`RUN_DIR/netns`).
    pub netns_dir: PathBuf,
    /// Where `RUN --mount=type=cache` directories are kept
    /// (`DATA_DIR/build-cache`).
    pub caches: PathBuf,
}

/// Why a job stopped.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("fetching {what} from the hub: {source}")]
    Fetch {
        what: String,
        #[source]
        source: Box<bramble_images::ClientError>,
    },
    #[error("unpacking {what}: {why}")]
    Unpack { what: String, why: String },
    #[error("{step}: {why}")]
    Step { step: String, why: String },
    #[error("{step}: exit code {code}{output}")]
    Exit {
        step: String,
        code: i32,
        output: String,
    },
    #[error("{step}: writing its layer: {why}")]
    Layer { step: String, why: String },
    #[error("{step}: pushing its layer to the hub: {source}")]
    Push {
        step: String,
        #[source]
        source: Box<bramble_images::ClientError>,
    },
    #[error("{0} is not in the job (a plan of the hub that does not fit it)")]
    NotInJob(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cancelled")]
    Cancelled,
}

fn digest(s: &str, what: &str) -> Result<Digest, JobError> {
    s.parse()
        .map_err(|e: bramble_images::digest::DigestError| JobError::Unpack {
            what: what.to_string(),
            why: e.to_string(),
        })
}

fn compression(media_type: &str) -> Compression {
    if media_type.ends_with("zstd") {
        Compression::Zstd
    } else if media_type.ends_with("tar") {
        Compression::None
    } else {
        Compression::Gzip
    }
}

/// The last lines of a step's output (written since `from`), for its error.
fn tail(log: &BuildLog, from: u64) -> String {
    let text = log.tail_since(from, 20);
    if text.is_empty() {
        String::new()
    } else {
        format!("; output:\n{text}")
    }
}

/// Runs `job`; `report` gets the report after every change.
pub fn run(
    env: &JobEnv,
    job: &BuildJob,
    cancel: &Arc<AtomicBool>,
    report: &dyn Fn(&BuildReport),
) -> Result<(), JobError> {
    let mut state = BuildReport {
        uid: job.uid.clone(),
        platform: job.platform.clone(),
        phase: "Running".into(),
        message: None,
        steps: Vec::new(),
    };
    report(&state);
    // A directory of this run's own: a job started over (a new plan) never
    // shares one with the run it replaces, which may still be ending.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let dir = env.dir.join(format!(
        "{}-{}-{run}",
        job.uid,
        job.platform.replace('/', "-")
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let mut log = env.logs.create(&job.uid, &job.platform)?;
    let started = Instant::now();
    let result = build(env, job, cancel, &dir, &mut state, &mut log, report);
    match &result {
        Ok(()) => log.line(&format!("DONE {}", seconds(started.elapsed()))),
        Err(JobError::Cancelled) => log.line("CANCELLED"),
        // The output is in the log already.
        Err(JobError::Exit { step, code, .. }) => {
            log.line(&format!("ERROR: {step}: exit code {code}"))
        }
        Err(e) => log.line(&format!("ERROR: {e}")),
    }
    // Nothing of a job outlives it but its layers (in the layer store)
    // and its log.
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn build(
    env: &JobEnv,
    job: &BuildJob,
    cancel: &Arc<AtomicBool>,
    dir: &Path,
    state: &mut BuildReport,
    log: &mut BuildLog,
    report: &dyn Fn(&BuildReport),
) -> Result<(), JobError> {
    let repo = job.grant.repository.as_str();
    let read = (env.read)();
    let ensure = |l: &LayerRef| -> Result<PathBuf, JobError> {
        let diff_id = digest(&l.diff_id, "a layer's diff_id")?;
        if env.layers.has(&diff_id) {
            return Ok(env.layers.path(&diff_id));
        }
        let blob = digest(&l.digest, "a layer's digest")?;
        read.fetch_blob(
            repo,
            &blob,
            Some(l.size),
            &env.blobs,
            &PullOptions::default(),
        )
        .map_err(|source| JobError::Fetch {
            what: format!("layer {blob}"),
            source: Box::new(source),
        })?;
        env.layers
            .ensure(&env.blobs, &blob, compression(&l.media_type), &diff_id)
            .map_err(|e| JobError::Unpack {
                what: format!("layer {blob}"),
                why: e.to_string(),
            })
    };
    // The context, unpacked; what a build may read.
    log.line(&format!(
        "#0 [internal] fetching the build context ({} bytes)",
        job.context.size
    ));
    let ctx_started = Instant::now();
    let ctx_digest = digest(&job.context.digest, "the context digest")?;
    read.fetch_blob(
        repo,
        &ctx_digest,
        Some(job.context.size),
        &env.blobs,
        &PullOptions::default(),
    )
    .map_err(|source| JobError::Fetch {
        what: "the build context".into(),
        source: Box::new(source),
    })?;
    let context = dir.join("context");
    let blob = env
        .blobs
        .open_verified(&ctx_digest)
        .map_err(|e| JobError::Unpack {
            what: "the build context".into(),
            why: e.to_string(),
        })?;
    unpack_layer(
        blob,
        Compression::None,
        &context,
        &ctx_digest,
        &UnpackOptions::default(),
    )
    .map_err(|e| JobError::Unpack {
        what: "the build context".into(),
        why: e.to_string(),
    })?;
    let mut visible = Vec::new();
    list_files(&context, "", &mut visible)?;
    visible.retain(|f| !job.context_hidden.contains(f));
    visible.sort();
    log.line(&format!("#0 DONE {}", seconds(ctx_started.elapsed())));
    let mut seq = 0usize;
    let push = (env.push)(&job.grant.user, &job.grant.password);
    let mut stages: BTreeMap<usize, Vec<PathBuf>> = Default::default();
    // The layers of a stage built before, or of an image the job names.
    let tree_layers =
        |from: &Source, stages: &BTreeMap<usize, Vec<PathBuf>>| -> Result<Vec<PathBuf>, JobError> {
            match from {
                Source::Context => Ok(Vec::new()),
                Source::Stage(i) => stages
                    .get(i)
                    .cloned()
                    .ok_or_else(|| JobError::NotInJob(format!("stage {i}"))),
                Source::Image(r) => job
                    .images
                    .iter()
                    .find(|(name, _)| name == r)
                    .ok_or_else(|| JobError::NotInJob(format!("image {r}")))?
                    .1
                    .iter()
                    .map(&ensure)
                    .collect(),
            }
        };
    let mut n = 0usize;
    for stage in &job.stages {
        let mut layers: Vec<PathBuf> = match &stage.base {
            JobBase::Scratch => Vec::new(),
            JobBase::Stage(i) => stages.get(i).cloned().unwrap_or_default(),
            JobBase::Layers(ls) => ls.iter().map(&ensure).collect::<Result<_, _>>()?,
        };
        for step in &stage.steps {
            if cancel.load(Ordering::Relaxed) {
                return Err(JobError::Cancelled);
            }
            seq += 1;
            log.line(&format!("#{seq} {}", step.name));
            if let Some(l) = &step.cached {
                log.line(&format!("#{seq} CACHED"));
                layers.push(ensure(l)?);
                continue;
            }
            n += 1;
            state.steps.push(StepReport {
                key: step.key.clone(),
                phase: "Running".into(),
                ..StepReport::default()
            });
            report(state);
            let started = Instant::now();
            let step_dir = dir.join(format!("step-{n}"));
            let fail = |why: String| JobError::Step {
                step: step.name.clone(),
                why,
            };
            let output_from = log.len();
            let upper = match &step.step.action {
                Action::Run(r) => {
                    // `RUN --network=none` gets an empty namespace.
                    let reserved = env
                        .addresses
                        .as_ref()
                        .filter(|_| r.network != bramble_dockerfile::plan::Network::None)
                        .and_then(|a| a.reserve());
                    let namespace = job.build.split_once('/').map_or("default", |(ns, _)| ns);
                    let network = reserved.as_ref().map(|r| StepNetwork {
                        netns_dir: env.netns_dir.clone(),
                        address: r.address,
                        resolv_conf: bramble_dns::pod_resolv_conf(
                            r.address.gateway.into(),
                            namespace,
                            &r.cluster_domain,
                        ),
                    });
                    // `_held` keeps caches locked and trees mounted until the step ends.
                    let views = dir.join(format!("mounts-{n}"));
                    let (mounts, _held) = super::mounts::step_mounts(
                        &r.mounts,
                        &MountSources {
                            caches: &env.caches,
                            context: &context,
                            visible: &visible,
                            views: &views,
                            layers: &|from: &Source| {
                                tree_layers(from, &stages).map_err(|e| e.to_string())
                            },
                        },
                    )
                    .map_err(|e| fail(e.to_string()))?;
                    let mounts = [
                        mounts,
                        super::mounts::inline_files(
                            &r.inline_files,
                            &dir.join(format!("inline-{n}")),
                        )
                        .map_err(|e| fail(e.to_string()))?,
                    ]
                    .concat();
                    let outcome = run_step(
                        env.runtime.as_ref(),
                        &Step {
                            id: format!("build-{}-{n}", &job.uid[..job.uid.len().min(8)]),
                            layers: layers.clone(),
                            dir: step_dir.clone(),
                            argv: r.argv.clone(),
                            env: r.env.clone(),
                            cwd: r.workdir.clone(),
                            uid: 0,
                            gid: 0,
                            user: Some(r.user.clone()),
                            log: log.path().to_path_buf(),
                            timeout: None,
                            cancel: Some(cancel.clone()),
                            network,
                            mounts,
                        },
                    );
                    if let (Some(a), Some(r)) = (&env.addresses, &reserved) {
                        a.release(r.address.ip);
                    }
                    let outcome = outcome.map_err(|e| fail(e.to_string()))?;
                    if cancel.load(Ordering::Relaxed) {
                        return Err(JobError::Cancelled);
                    }
                    let code = outcome.exit.as_ref().map_or(137, |e| e.code());
                    if code != 0 {
                        if let Some(s) = state.steps.last_mut() {
                            s.phase = "Failed".into();
                            s.exit_code = Some(code);
                            s.duration_millis = Some(started.elapsed().as_millis() as u64);
                        }
                        report(state);
                        let output = tail(log, output_from);
                        log.line(&format!("#{seq} ERROR: exit code {code}"));
                        return Err(JobError::Exit {
                            step: step.name.clone(),
                            code,
                            output,
                        });
                    }
                    outcome.upper
                }
                Action::Copy(c) => {
                    let from_layers = tree_layers(&c.from, &stages)?;
                    if c.from == Source::Context {
                        copy_step(
                            &layers,
                            &step_dir,
                            c,
                            &CopySource {
                                root: &context,
                                visible: Some(visible.as_slice()),
                            },
                        )
                        .map_err(|e| fail(e.to_string()))?
                    } else {
                        copy_from(
                            &layers,
                            &from_layers,
                            &step_dir,
                            &dir.join(format!("from-{n}")),
                            c,
                        )
                        .map_err(fail)?
                    }
                }
                Action::Mkdir { path, user } => {
                    mkdir_step(&layers, &step_dir, path, user).map_err(|e| fail(e.to_string()))?
                }
            };
            let layer = commit_layer(env, &push, repo, &step.name, &upper, job.source_date_epoch)?;
            let _ = std::fs::remove_dir_all(&step_dir);
            layers.push(env.layers.path(&digest(&layer.diff_id, "diff_id")?));
            log.line(&format!("#{seq} DONE {}", seconds(started.elapsed())));
            if let Some(s) = state.steps.last_mut() {
                s.phase = "Succeeded".into();
                s.duration_millis = Some(started.elapsed().as_millis() as u64);
                s.layer = Some(layer);
            }
            report(state);
        }
        stages.insert(stage.index, layers);
    }
    Ok(())
}

/// A COPY from the tree `from` (an earlier stage's or an image's layers),
/// mounted read-only for the copy.
fn copy_from(
    layers: &[PathBuf],
    from: &[PathBuf],
    step_dir: &Path,
    from_dir: &Path,
    step: &bramble_dockerfile::plan::CopyStep,
) -> Result<PathBuf, String> {
    if from.is_empty() {
        // An empty stage (scratch, nothing added): an empty tree.
        let empty = from_dir.join("empty");
        std::fs::create_dir_all(&empty).map_err(|e| e.to_string())?;
        let source = CopySource {
            root: &empty,
            visible: None,
        };
        return copy_step(layers, step_dir, step, &source).map_err(|e| e.to_string());
    }
    let tree = bramble_images::Rootfs::prepare(from, from_dir, true).map_err(|e| e.to_string())?;
    let root = tree.path();
    let source = CopySource {
        root: &root,
        visible: None,
    };
    let copied = copy_step(layers, step_dir, step, &source).map_err(|e| e.to_string());
    let unmounted = tree.unmount().map_err(|e| e.to_string());
    let upper = copied?;
    unmounted?;
    Ok(upper)
}

/// Turns `upper` into a layer: written to the blob store, pushed, and
/// moved into the layer store unpacked (it is the tree the layer holds).
fn commit_layer(
    env: &JobEnv,
    push: &RegistryClient,
    repo: &str,
    step: &str,
    upper: &Path,
    source_date_epoch: Option<u64>,
) -> Result<LayerRef, JobError> {
    let layer_err = |why: String| JobError::Layer {
        step: step.to_string(),
        why,
    };
    let writer = env.blobs.writer().map_err(|e| layer_err(e.to_string()))?;
    let mut writer = writer;
    let info = write_layer(
        upper,
        &mut writer,
        &DiffOptions {
            source_date_epoch,
            level: None,
        },
    )
    .map_err(|e| layer_err(e.to_string()))?;
    writer
        .commit(Some(&info.digest))
        .map_err(|e| layer_err(e.to_string()))?;
    push.push_blob(repo, &env.blobs, &info.digest, &|_| {})
        .map_err(|source| JobError::Push {
            step: step.to_string(),
            source: Box::new(source),
        })?;
    let dest = env.layers.path(&info.diff_id);
    if env.layers.has(&info.diff_id) {
        let _ = std::fs::remove_dir_all(upper);
    } else {
        // Unpack from the blob rather than trusting the upper directory's
        // overlay marks to be what an unpacked layer holds.
        env.layers
            .ensure(&env.blobs, &info.digest, Compression::Gzip, &info.diff_id)
            .map_err(|e| layer_err(e.to_string()))?;
        let _ = std::fs::remove_dir_all(upper);
    }
    let _ = dest;
    Ok(LayerRef {
        digest: info.digest.to_string(),
        diff_id: info.diff_id.to_string(),
        size: info.size,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    })
}

/// Context-relative paths of the files and symlinks under `dir`.
fn list_files(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if entry.file_type()?.is_dir() {
            list_files(&entry.path(), &path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Removes what jobs of an earlier agent process left in `dir` (an agent
/// stopped mid-step leaves its overlays mounted): every mount under it is
/// detached, then the directories go.
pub fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if let Ok(steps) = std::fs::read_dir(&path) {
            for step in steps.flatten() {
                let rootfs = step.path().join("rootfs");
                if rootfs.is_dir() {
                    let _ = rustix::mount::unmount(&rootfs, rustix::mount::UnmountFlags::DETACH);
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&path) {
            tracing::warn!(path = %path.display(), error = %e, "a build's leftovers stay");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            compression("application/vnd.oci.image.layer.v1.tar+gzip"),
            Compression::Gzip
        );
        assert_eq!(compression("application/x-tar"), Compression::None);
    }
}
