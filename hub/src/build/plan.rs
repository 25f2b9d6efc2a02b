//! One platform of a Build, planned (pure): the Dockerfile's plan
//! (`bramble_dockerfile::plan`) with the base images and the context
//! index the hub looked up, turned into the job a board runs — stages in
//! order, each step with its cache key (BuildKit's: parent, step, build
//! arguments, the digests of the context files a COPY reads, the key of a
//! `--from` stage or the manifest of a `--from` image) and, unless
//! `noCache`, the layer the cache already holds for it — plus what the
//! image will be made of: the target stage's chain of layers (known ones,
//! and the keys of steps still to run) and its config.

use std::collections::BTreeMap;

use bramble_api::protocol::{BuildJob, JobBase, JobStage, JobStep, LayerRef, PushGrant};
use bramble_dockerfile::plan::{
    Action, Base, Mount, MountKind, Source, base_key, cache_key, context_inputs,
};
use bramble_dockerfile::{BuildPlan, ImageConfig};

use super::bases::BaseImage;
use super::context::ContextIndex;

/// A layer of the image being built: known, or made by the step of that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Known(LayerRef),
    Step(String),
}

/// A step's history entry: its instruction and whether it is cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    pub key: String,
    pub name: String,
    pub text: String,
    pub cached: Option<LayerRef>,
    /// When the cached layer was made.
    pub created: Option<String>,
}

/// What one platform of a build will produce.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformPlan {
    pub platform: String,
    /// The job for a board, without its credential (`grant` empty).
    pub job: BuildJob,
    /// The target stage's layers, bottom first.
    pub layers: Vec<Slot>,
    pub config: ImageConfig,
    /// The base image's history, then one entry per step of the chain.
    pub base_history: Vec<serde_json::Value>,
    pub chain_steps: Vec<StepInfo>,
    pub source_date_epoch: Option<u64>,
}

impl PlatformPlan {
    /// Every step of every stage, in order.
    pub fn steps(&self) -> impl Iterator<Item = &JobStep> {
        self.job.stages.iter().flat_map(|s| s.steps.iter())
    }

    /// Whether every step is in the cache: nothing to run.
    pub fn all_cached(&self) -> bool {
        self.steps().all(|s| s.cached.is_some())
    }
}

/// Why a platform cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Dockerfile(String),
    #[error("Dockerfile:{line}: RUN --mount: {why}")]
    RunMount { line: usize, why: String },
    #[error(
        "Dockerfile:{line}: the stage is for {stage} but this build is for {platform}; builds run natively on a board of the platform, so FROM --platform must match it"
    )]
    ForeignStage {
        line: usize,
        stage: String,
        platform: String,
    },
    #[error("the image {0} was not looked up")]
    MissingImage(String),
}

/// Inputs of [`plan_platform`].
pub struct PlanInput<'a> {
    /// The Build's uid and `namespace/name`.
    pub uid: &'a str,
    pub build: &'a str,
    pub platform: &'a str,
    pub plan: &'a BuildPlan,
    pub context: &'a ContextIndex,
    pub context_blob: LayerRef,
    /// Every image the plan names (`plan.images`), looked up.
    pub images: &'a BTreeMap<String, BaseImage>,
    pub no_cache: bool,
}

/// A stage's chain while planning.
struct StageChain {
    key: String,
    layers: Vec<Slot>,
    history: Vec<serde_json::Value>,
    steps: Vec<StepInfo>,
}

/// Plans one platform; `cached` answers what the layer cache holds.
pub fn plan_platform(
    input: &PlanInput<'_>,
    cached: &dyn Fn(&str) -> Option<super::cache::Entry>,
) -> Result<PlatformPlan, PlanError> {
    let paths = input.context.paths();
    let image = |r: &str| {
        input
            .images
            .get(r)
            .ok_or_else(|| PlanError::MissingImage(r.to_string()))
    };
    let mut chains: BTreeMap<usize, StageChain> = BTreeMap::new();
    let mut stages = Vec::new();
    let stage_count = input.plan.stages.len();
    for (pos, stage) in input.plan.stages.iter().enumerate() {
        if stage.platform.to_string() != input.platform {
            return Err(PlanError::ForeignStage {
                line: stage.line,
                stage: stage.platform.to_string(),
                platform: input.platform.to_string(),
            });
        }
        let (base, mut chain) = match &stage.base {
            Base::Scratch => (
                JobBase::Scratch,
                StageChain {
                    key: base_key("scratch", &stage.platform),
                    layers: Vec::new(),
                    history: Vec::new(),
                    steps: Vec::new(),
                },
            ),
            Base::Image(r) => {
                let b = image(r)?;
                (
                    JobBase::Layers(b.layers.clone()),
                    StageChain {
                        key: base_key(&b.manifest, &stage.platform),
                        layers: b.layers.iter().cloned().map(Slot::Known).collect(),
                        history: b.history.clone(),
                        steps: Vec::new(),
                    },
                )
            }
            Base::Stage(i) => {
                let parent = &chains[i];
                (
                    JobBase::Stage(*i),
                    StageChain {
                        key: parent.key.clone(),
                        layers: parent.layers.clone(),
                        history: parent.history.clone(),
                        steps: parent.steps.clone(),
                    },
                )
            }
        };
        let label = match (&stage.name, stage_count) {
            (Some(n), _) => format!("{n} "),
            (None, 1) => String::new(),
            (None, _) => format!("stage-{} ", stage.index),
        };
        let mut steps = Vec::new();
        for (k, step) in stage.steps.iter().enumerate() {
            let mut inputs: Vec<(String, String)> = Vec::new();
            match &step.action {
                Action::Run(run) => {
                    for m in &run.mounts {
                        let files = mount_inputs(m, &paths).map_err(|why| PlanError::RunMount {
                            line: step.line,
                            why,
                        })?;
                        for f in files {
                            inputs.push((
                                format!("mount {} {f}", m.target),
                                input.context.files[f].clone(),
                            ));
                        }
                        // A stage's or an image's tree, keyed as COPY --from keys it.
                        match &m.from {
                            Some(Source::Stage(i)) => inputs
                                .push((format!("mount {} stage", m.target), chains[i].key.clone())),
                            Some(Source::Image(r)) => inputs.push((
                                format!("mount {} image", m.target),
                                image(r)?.manifest.clone(),
                            )),
                            _ => {}
                        }
                    }
                }
                Action::Copy(copy) => match &copy.from {
                    Source::Context => {
                        for p in context_inputs(step, &paths)
                            .map_err(|e| PlanError::Dockerfile(e.to_string()))?
                        {
                            inputs.push((p.to_string(), input.context.files[p].clone()));
                        }
                    }
                    Source::Stage(i) => {
                        inputs.push(("stage".into(), chains[i].key.clone()));
                    }
                    Source::Image(r) => {
                        inputs.push(("image".into(), image(r)?.manifest.clone()));
                    }
                },
                _ => {}
            }
            let key = cache_key(&chain.key, step, &inputs);
            let entry = if input.no_cache { None } else { cached(&key) };
            let (hit, created) = match entry {
                Some(e) => (Some(e.layer), Some(e.created)),
                None => (None, None),
            };
            let name = format!("[{label}{}/{}] {}", k + 2, stage.steps.len() + 1, step.text);
            chain.key = key.clone();
            chain.layers.push(match &hit {
                Some(l) => Slot::Known(l.clone()),
                None => Slot::Step(key.clone()),
            });
            let info = StepInfo {
                key: key.clone(),
                name: name.clone(),
                text: step.text.clone(),
                cached: hit.clone(),
                created,
            };
            chain.steps.push(info);
            steps.push(JobStep {
                key,
                name,
                step: step.clone(),
                cached: hit,
            });
        }
        stages.push(JobStage {
            index: stage.index,
            base,
            steps,
        });
        let last = pos + 1 == stage_count;
        if last {
            let images = input
                .plan
                .images
                .iter()
                .filter(|r| {
                    let named = |from: &Source| matches!(from, Source::Image(i) if i == *r);
                    input.plan.stages.iter().any(|s| {
                        s.steps.iter().any(|st| match &st.action {
                            Action::Copy(c) => named(&c.from),
                            Action::Run(run) => run
                                .mounts
                                .iter()
                                .any(|m| m.from.as_ref().is_some_and(named)),
                            _ => false,
                        })
                    })
                })
                .map(|r| Ok((r.clone(), image(r)?.layers.clone())))
                .collect::<Result<Vec<_>, PlanError>>()?;
            let job = BuildJob {
                uid: input.uid.to_string(),
                platform: input.platform.to_string(),
                build: input.build.to_string(),
                context: input.context_blob.clone(),
                context_hidden: input.context.hidden.clone(),
                images,
                stages,
                grant: PushGrant {
                    repository: String::new(),
                    user: String::new(),
                    password: String::new(),
                },
                source_date_epoch: input.plan.source_date_epoch,
            };
            return Ok(PlatformPlan {
                platform: input.platform.to_string(),
                job,
                layers: chain.layers,
                config: stage.config.clone(),
                base_history: chain.history,
                chain_steps: chain.steps,
                source_date_epoch: input.plan.source_date_epoch,
            });
        }
        chains.insert(stage.index, chain);
    }
    Err(PlanError::Dockerfile("the Dockerfile has no stage".into()))
}

/// The context files a `RUN --mount` shows (their digests join the step's
/// cache key, as BuildKit keys a bind mount by its content), or why the
/// boards cannot mount it: `tmpfs`, `cache` (a directory the board keeps)
/// and a `bind` (read-only, or `rw` with its writes thrown away) of the
/// context, a stage or an image are supported; a stage's or an image's
/// key is the caller's to add.
pub fn mount_inputs<'a>(m: &Mount, context_files: &'a [String]) -> Result<Vec<&'a str>, String> {
    match (&m.kind, &m.from) {
        (MountKind::Tmpfs { .. }, None) => Ok(Vec::new()),
        (MountKind::Cache { .. }, None) => Ok(Vec::new()),
        (MountKind::Bind { .. }, Some(Source::Stage(_) | Source::Image(_))) => Ok(Vec::new()),
        (MountKind::Bind { .. }, Some(Source::Context)) => {
            let files: Vec<&str> = context_files
                .iter()
                .map(String::as_str)
                .filter(|f| under(f, &m.source))
                .collect();
            if files.is_empty() {
                return Err(format!(
                    "source {:?} is not in the build context (check .dockerignore)",
                    m.source
                ));
            }
            Ok(files)
        }
        (MountKind::Bind { .. }, None) => Err("a bind mount needs a source tree".into()),
        (_, Some(_)) => Err(
            "from= on a cache or tmpfs mount is not supported by the boards' builder yet".into(),
        ),
    }
}

/// Whether context path `file` is `source` or inside it (`""`, `.` and
/// `/`: the whole context).
pub fn under(file: &str, source: &str) -> bool {
    let source = source.trim_matches('/');
    let source = source.strip_prefix("./").unwrap_or(source);
    source.is_empty()
        || source == "."
        || file == source
        || file
            .strip_prefix(source)
            .is_some_and(|r| r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(kind: MountKind, source: &str, from: Option<Source>) -> Mount {
        Mount {
            kind,
            target: "/m".into(),
            source: source.into(),
            from,
            mode: None,
            uid: None,
            gid: None,
        }
    }

    #[test]
    fn a_context_bind_is_keyed_by_the_files_under_its_source_and_from_on_a_cache_refused() {
        let files: Vec<String> = ["go.mod", "src/a.go", "src/sub/b.go", "srcs/c.go"]
            .map(String::from)
            .to_vec();
        let bind = |s: &str| mount(MountKind::Bind { readonly: true }, s, Some(Source::Context));
        assert_eq!(
            mount_inputs(&bind("src"), &files).unwrap(),
            ["src/a.go", "src/sub/b.go"]
        );
        assert_eq!(mount_inputs(&bind("./go.mod"), &files).unwrap(), ["go.mod"]);
        assert_eq!(mount_inputs(&bind("."), &files).unwrap().len(), 4);
        assert!(
            mount_inputs(&bind("nope"), &files)
                .unwrap_err()
                .contains("not in the build context")
        );
        let rw = mount(
            MountKind::Bind { readonly: false },
            "src",
            Some(Source::Context),
        );
        assert_eq!(mount_inputs(&rw, &files).unwrap().len(), 2);
        let stage = mount(
            MountKind::Bind { readonly: true },
            "/out",
            Some(Source::Stage(0)),
        );
        assert!(
            mount_inputs(&stage, &files).unwrap().is_empty(),
            "keyed by the stage"
        );
        let cache_from = mount(
            MountKind::Cache {
                id: "x".into(),
                sharing: "shared".into(),
            },
            "",
            Some(Source::Stage(0)),
        );
        assert!(
            mount_inputs(&cache_from, &files)
                .unwrap_err()
                .contains("from=")
        );
        let cache = mount(
            MountKind::Cache {
                id: "x".into(),
                sharing: "locked".into(),
            },
            "",
            None,
        );
        assert!(mount_inputs(&cache, &files).unwrap().is_empty());
        assert!(
            mount_inputs(&mount(MountKind::Tmpfs { size: None }, "", None), &files)
                .unwrap()
                .is_empty()
        );
    }
}
