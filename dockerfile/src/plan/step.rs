//! The resolved steps of a stage: what the builder executes (RUN), copies
//! (COPY/ADD) or creates (WORKDIR), with everything expanded and made
//! absolute, plus RUN's `--mount` / `--network` / `--security` parsed and
//! checked against what Bramble supports.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Where files of a COPY, ADD or mount come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// The build context.
    Context,
    /// The result of an earlier stage (index in the Dockerfile).
    Stage(usize),
    /// An image reference (`COPY --from=nginx:1.27`).
    Image(String),
}

/// A file the builder writes itself (COPY heredocs, RUN shebang heredocs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineFile {
    /// Absolute path in the container (COPY) or under `/dev/pipes/` (RUN).
    pub path: String,
    pub content: String,
    pub mode: u32,
}

/// RUN's network (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// The build's usual network.
    Default,
    /// No network at all.
    None,
}

/// `RUN --mount=type=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// Read-only (unless `rw`) view of `source` in `from`.
    Bind { readonly: bool },
    /// A persistent cache directory shared between builds.
    Cache { id: String, sharing: String },
    /// A fresh tmpfs.
    Tmpfs { size: Option<u64> },
}

/// One `--mount` of a RUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub kind: MountKind,
    /// Absolute path in the container.
    pub target: String,
    /// Path inside `from` (bind and cache).
    pub source: String,
    /// Bind: the context unless `from=`; cache and tmpfs: only with `from=`.
    pub from: Option<Source>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// A resolved RUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStep {
    /// The process to start (shell prepended for shell form).
    pub argv: Vec<String>,
    /// `KEY=value` (image env and build arguments in scope).
    pub env: Vec<String>,
    pub workdir: String,
    /// Empty: root.
    pub user: String,
    pub mounts: Vec<Mount>,
    pub network: Network,
    /// Files mounted read-only before the command runs (shebang heredocs).
    pub inline_files: Vec<InlineFile>,
}

/// A resolved COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyStep {
    pub add: bool,
    pub from: Source,
    /// Source paths or globs (Go `filepath.Match`), relative to the source root.
    pub sources: Vec<String>,
    /// Heredoc sources, already expanded, with their final paths.
    pub inline: Vec<InlineFile>,
    /// Absolute destination; ends in `/` when it must be a directory.
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<u32>,
    pub link: bool,
    /// ADD: local tar archives are extracted into `dest`.
    pub unpack_archives: bool,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Run(RunStep),
    Copy(CopyStep),
    /// WORKDIR: create the directory (with parents) as `user`.
    Mkdir {
        path: String,
        user: String,
    },
}

/// One step that changes the filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// 1-based line of the instruction.
    pub line: usize,
    /// The instruction after expansion, as BuildKit names the step
    /// (`RUN apt-get update`, `COPY --from=build /out /usr/bin/`).
    pub text: String,
    /// Build arguments in scope (`KEY=value`, sorted): part of the cache key.
    pub args: Vec<String>,
    pub action: Action,
}

fn octal(line: usize, what: &str, v: &str) -> Result<u32, Error> {
    u32::from_str_radix(v, 8).map_err(|_| {
        Error::syntax(line, format!("invalid {what} {v:?}: not an octal number"))
            .hint(format!("write e.g. {what}=0755"))
    })
}

/// Parses one expanded `--mount` value. `resolve` maps `from=` to a source.
pub(crate) fn parse_mount(
    line: usize,
    value: &str,
    workdir: &str,
    resolve: &dyn Fn(&str) -> Source,
) -> Result<Mount, Error> {
    let mut typ = "bind".to_string();
    let mut target = None;
    let mut source = String::new();
    let mut from = None;
    let mut readonly = None;
    let mut id = None;
    let mut sharing = "shared".to_string();
    let mut mode = None;
    let mut uid = None;
    let mut gid = None;
    let mut size = None;
    for field in value.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (field.trim().to_ascii_lowercase(), String::new()),
        };
        let number = |v: &str| {
            v.parse::<u32>().map_err(|_| {
                Error::syntax(line, format!("--mount {k}={v}: not a number"))
                    .hint("uid and gid are numbers")
            })
        };
        match k.as_str() {
            "type" => typ = v.to_ascii_lowercase(),
            "target" | "dst" | "destination" => target = Some(v),
            "source" | "src" => source = v,
            "from" => from = Some(v),
            "readonly" | "ro" => readonly = Some(v.is_empty() || v == "true"),
            "readwrite" | "rw" => readonly = Some(!(v.is_empty() || v == "true")),
            "id" => id = Some(v),
            "sharing" => {
                if !matches!(v.as_str(), "shared" | "private" | "locked") {
                    return Err(
                        Error::syntax(line, format!("--mount sharing={v} is not valid"))
                            .hint("use sharing=shared, private or locked"),
                    );
                }
                sharing = v;
            }
            "mode" => mode = Some(octal(line, "mode", &v)?),
            "uid" => uid = Some(number(&v)?),
            "gid" => gid = Some(number(&v)?),
            "size" => {
                size = Some(v.parse::<u64>().map_err(|_| {
                    Error::syntax(line, format!("--mount size={v}: not a number of bytes"))
                })?)
            }
            "" => {}
            _ => {
                return Err(Error::syntax(line, format!("unknown --mount option {k:?}"))
                    .hint("options are type, target, source, from, readonly, rw, id, sharing, mode, uid, gid, size"));
            }
        }
    }
    let kind = match typ.as_str() {
        "bind" => MountKind::Bind {
            readonly: readonly.unwrap_or(true),
        },
        "cache" => MountKind::Cache {
            id: String::new(),
            sharing,
        },
        "tmpfs" => MountKind::Tmpfs { size },
        "secret" | "ssh" => {
            return Err(Error::unsupported(
                line,
                format!("RUN --mount=type={typ} is not supported by bramble build yet"),
            )
            .hint("pass what the step needs as a build argument or a file in the context, and keep it out of the final stage"));
        }
        other => {
            return Err(Error::syntax(line, format!("unknown mount type {other:?}"))
                .hint("use type=bind, cache or tmpfs"));
        }
    };
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return Err(
            Error::syntax(line, format!("--mount={value} has no target"))
                .hint("add target=/path/in/container"),
        );
    };
    let target = super::resolve_path(workdir, &target);
    let kind = match kind {
        MountKind::Cache { sharing, .. } => MountKind::Cache {
            id: id.unwrap_or_else(|| target.clone()),
            sharing,
        },
        k => k,
    };
    let from = match (&kind, from) {
        (_, Some(f)) => Some(resolve(&f)),
        (MountKind::Bind { .. }, None) => Some(Source::Context),
        (_, None) => None,
    };
    Ok(Mount {
        kind,
        target,
        source,
        from,
        mode,
        uid,
        gid,
    })
}

pub(crate) fn parse_chmod(line: usize, v: &str) -> Result<u32, Error> {
    let m = octal(line, "--chmod", v)?;
    if m > 0o7777 {
        return Err(Error::syntax(
            line,
            format!("invalid --chmod {v}: larger than 07777"),
        ));
    }
    Ok(m)
}
