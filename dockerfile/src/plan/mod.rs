//! The build plan (pure): a parsed Dockerfile, build arguments, a target
//! stage and a platform → the stages the target needs, in dependency order,
//! each a list of resolved [`Step`]s and the image config it ends with,
//! exactly as Docker/BuildKit would compute them.
//!
//! Base image configs are an input ([`BuildRequest::base_images`]): later
//! instructions expand `$PATH` and friends from them. [`required_images`]
//! tells the caller which ones to fetch first.

mod cache_key;
mod config;
mod dispatch;
mod inputs;
mod stages;
mod step;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use cache_key::{base_key, cache_key};
pub use config::{DEFAULT_PATH, HealthConfig, ImageConfig};
pub use inputs::context_inputs;
pub use stages::Base;
pub use step::{Action, CopyStep, InlineFile, Mount, MountKind, Network, RunStep, Source, Step};

use crate::expand::Lexer;
use crate::instruction::Dockerfile;
use crate::platform::Platform;
use crate::{Error, ErrorKind, Warning};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target STAGE` (None: the last stage).
    pub target: Option<String>,
    /// The platform of the image being built (`TARGETPLATFORM`).
    pub platform: Platform,
    /// The platform the build runs on (`BUILDPLATFORM`); builds are native,
    /// so None means the same as `platform`.
    pub build_platform: Option<Platform>,
    /// Config of every base image (`FROM` reference after expansion, as
    /// [`required_images`] lists it). Missing ones are an error.
    pub base_images: BTreeMap<String, ImageConfig>,
}

impl BuildRequest {
    /// A request for `platform` with no build arguments.
    pub fn new(platform: Platform) -> BuildRequest {
        BuildRequest {
            build_args: BTreeMap::new(),
            target: None,
            platform,
            build_platform: None,
            base_images: BTreeMap::new(),
        }
    }
}

/// One stage of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagePlan {
    /// Index in the Dockerfile (what `COPY --from=N` names).
    pub index: usize,
    pub name: Option<String>,
    /// Line of its FROM.
    pub line: usize,
    pub base: Base,
    /// The platform it runs on (`FROM --platform=…` or the target's).
    pub platform: Platform,
    pub steps: Vec<Step>,
    /// The image config at the end of the stage.
    pub config: ImageConfig,
}

/// The plan of a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildPlan {
    /// The stages the target needs, dependencies first; the last is the target.
    pub stages: Vec<StagePlan>,
    /// Image references the build pulls: bases, `COPY --from` and mount sources.
    pub images: Vec<String>,
    /// Parser and planner warnings (unused build arguments, …).
    pub warnings: Vec<Warning>,
    /// `--build-arg SOURCE_DATE_EPOCH=…`: the timestamp (seconds) for files
    /// and history of the image, for reproducible builds.
    pub source_date_epoch: Option<u64>,
}

impl BuildPlan {
    /// The stage that produces the image.
    pub fn target(&self) -> &StagePlan {
        self.stages.last().expect("a plan has at least one stage")
    }
}

/// Build arguments every build knows without an ARG in global scope.
pub fn predefined_args(request: &BuildRequest) -> Vec<(String, String)> {
    let build = request.build_platform.as_ref().unwrap_or(&request.platform);
    let mut args = request.platform.build_args("TARGET");
    args.extend(build.build_args("BUILD"));
    args
}

/// Build arguments that are never reported as unused (proxies and the
/// ones BuildKit consumes itself).
fn always_allowed(name: &str) -> bool {
    matches!(
        name.to_ascii_uppercase().as_str(),
        "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY" | "SOURCE_DATE_EPOCH"
    ) || name.starts_with("BUILDKIT_")
}

/// Resolved stage layout shared by [`required_images`] and [`plan`].
struct Layout<'a> {
    globals: stages::GlobalArgs,
    stages: Vec<stages::RawStage<'a>>,
    order: Vec<usize>,
}

fn layout<'a>(df: &'a Dockerfile, request: &BuildRequest) -> Result<Layout<'a>, Error> {
    let lexer = Lexer::new(df.escape);
    let (globals, stages) =
        stages::split(df, &request.build_args, &predefined_args(request), &lexer)?;
    let target = stages::target_index(&stages, request.target.as_deref())?;
    let deps = |i: usize| -> Vec<(usize, usize)> {
        let s = &stages[i];
        let mut out = Vec::new();
        if let Base::Stage(b) = s.base {
            out.push((b, s.line));
        }
        for ins in s.body {
            for from in dispatch::from_references(ins, &lexer, &globals) {
                if let Some(d) = stages::find_stage(&stages, &from) {
                    out.push((d, ins.line));
                }
            }
        }
        out
    };
    let order = stages::dependency_order(target, &deps)?;
    Ok(Layout {
        globals,
        stages,
        order,
    })
}

/// The image references whose configs [`plan`] needs (`FROM` bases of the
/// stages the target uses), sorted.
pub fn required_images(df: &Dockerfile, request: &BuildRequest) -> Result<Vec<String>, Error> {
    let layout = layout(df, request)?;
    let set: BTreeSet<String> = layout
        .order
        .iter()
        .filter_map(|i| match &layout.stages[*i].base {
            Base::Image(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    Ok(set.into_iter().collect())
}

/// Plans the build of `request.target` for `request.platform`.
pub fn plan(df: &Dockerfile, request: &BuildRequest) -> Result<BuildPlan, Error> {
    let source_date_epoch = match request.build_args.get("SOURCE_DATE_EPOCH") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            Error::new(
                ErrorKind::Request,
                0,
                format!("SOURCE_DATE_EPOCH {v:?} is not a number of seconds"),
            )
            .hint("pass e.g. --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)")
        })?),
    };
    let layout = layout(df, request)?;
    let lexer = Lexer::new(df.escape);
    let mut done: BTreeMap<usize, StagePlan> = BTreeMap::new();
    let mut images = BTreeSet::new();
    let mut used_args: BTreeSet<String> = layout.globals.declared.iter().cloned().collect();
    let mut warnings = df.warnings.clone();
    for &i in &layout.order {
        let raw = &layout.stages[i];
        let platform = match &raw.platform {
            Some(p) => Platform::parse(p)
                .map_err(|e| Error::new(ErrorKind::Request, raw.line, e.message).hint(e.hint))?,
            None => request.platform.clone(),
        };
        let base_config = match &raw.base {
            Base::Scratch => ImageConfig::scratch(),
            Base::Stage(b) => done[b].config.clone(),
            Base::Image(r) => {
                images.insert(r.clone());
                request.base_images.get(r).cloned().ok_or_else(|| {
                    Error::new(
                        ErrorKind::Request,
                        raw.line,
                        format!("no image config given for base image {r}"),
                    )
                    .hint("pass every image that required_images() lists in BuildRequest::base_images")
                })?
            }
        };
        let ctx = dispatch::StageContext {
            lexer: &lexer,
            globals: &layout.globals,
            build_args: &request.build_args,
            stages: &layout.stages,
            current: i,
        };
        let out = dispatch::run_stage(&ctx, raw, base_config)?;
        used_args.extend(out.declared_args);
        images.extend(out.images);
        warnings.extend(out.warnings);
        done.insert(
            i,
            StagePlan {
                index: i,
                name: raw.name.clone(),
                line: raw.line,
                base: raw.base.clone(),
                platform,
                steps: out.steps,
                config: out.config,
            },
        );
    }
    let unused: Vec<&String> = request
        .build_args
        .keys()
        .filter(|k| !used_args.contains(*k) && !always_allowed(k))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        warnings.push(Warning {
            line: 0,
            message: format!(
                "one or more build arguments [{}] were not consumed (declare them with ARG in a stage that uses them, or drop --build-arg)",
                names.join(" ")
            ),
        });
    }
    let stages = layout
        .order
        .iter()
        .map(|i| done.remove(i).expect("planned"))
        .collect();
    Ok(BuildPlan {
        stages,
        images: images.into_iter().collect(),
        warnings,
        source_date_epoch,
    })
}

/// Joins `path` to `workdir` unless absolute, cleaned (no trailing `/`).
pub(crate) fn resolve_path(workdir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!(
            "{}/{}",
            if workdir.is_empty() { "/" } else { workdir },
            path
        )
    };
    crate::ignore::go_clean(&joined)
}
