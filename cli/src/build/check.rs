//! The local half of `bramble build`: parse the Dockerfile, scan the
//! context as the build will see it (`.dockerignore` applied), check that
//! every COPY/ADD source exists and plan each platform ([`prepare`]); with
//! `--check` print the plans and stop there ([`check`]). Base image configs
//! are not fetched, so what a plan takes from a base image (its ENV, CMD,
//! WORKDIR) is empty: only errors that do not depend on them are found.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bramble_dockerfile::context::Context;
use bramble_dockerfile::plan::{
    Action, Base, BuildPlan, ImageConfig, context_inputs, plan, required_images,
};
use bramble_dockerfile::{BuildRequest, Platform, parse};

use super::Request;
use crate::args::BuildArgs;

/// A build checked locally.
#[derive(Debug)]
pub struct Prepared {
    /// The context directory, absolute.
    pub dir: PathBuf,
    pub context: Context,
    pub build_args: BTreeMap<String, String>,
    /// One plan per platform, in the order given.
    pub plans: Vec<(Platform, BuildPlan)>,
}

/// `KEY=VALUE` pairs; a bare `KEY` takes its value from `env` (skipped if unset, as docker does).
pub fn build_args(
    raw: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for a in raw {
        match a.split_once('=') {
            Some(("", _)) => bail!("--build-arg {a:?} has no name: write KEY=VALUE"),
            Some((k, v)) => {
                args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Some(v) = env(a) {
                    args.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(args)
}

/// Parses, scans and plans `args` locally: every error found here stops
/// a build before anything is sent.
pub fn prepare(args: &Request) -> anyhow::Result<Prepared> {
    if let Some(tag) = &args.tag {
        crate::images::ImageRef::parse(tag)?;
    }
    let dir = args.context.as_path();
    if !dir.is_dir() {
        bail!("the build context {} is not a directory", dir.display());
    }
    let file = args.file.clone().unwrap_or_else(|| dir.join("Dockerfile"));
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the Dockerfile {}", file.display()))?;
    let shown = file.display().to_string();
    let where_ = |e: bramble_dockerfile::Error| anyhow::anyhow!(e.display_in(&shown));
    let df = parse(&text).map_err(where_)?;
    let dir = absolute(dir)?;
    let context = Context::scan(&dir, &absolute(&file)?)?;
    let build_args = args.build_args.clone();
    let mut plans = Vec::new();
    for p in &args.platforms {
        let platform = Platform::parse(p).map_err(|e| anyhow::anyhow!("--platform: {e}"))?;
        let mut req = BuildRequest::new(platform.clone());
        req.build_args = build_args.clone();
        req.target = args.target.clone();
        for image in required_images(&df, &req).map_err(where_)? {
            req.base_images.insert(image, ImageConfig::default());
        }
        let plan = plan(&df, &req).map_err(where_)?;
        for stage in &plan.stages {
            for step in &stage.steps {
                context_inputs(step, &context.files).map_err(where_)?;
            }
        }
        plans.push((platform, plan));
    }
    if plans.is_empty() {
        bail!("--platform names no platform: write e.g. linux/arm64");
    }
    Ok(Prepared {
        dir,
        context,
        build_args,
        plans,
    })
}

/// Runs `bramble build --check`.
pub fn check(
    args: &BuildArgs,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let Prepared { context, plans, .. } = prepare(&Request::from_args(args, env)?)?;
    if args.output.as_deref() == Some("json") {
        let json: Vec<_> = plans
            .iter()
            .map(|(p, plan)| serde_json::json!({"platform": p.to_string(), "plan": plan}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(true);
    }
    writeln!(
        out,
        "context: {} files{}",
        context.files.len(),
        context
            .ignore_file
            .as_ref()
            .map(|f| format!(" (after {f})"))
            .unwrap_or_default()
    )?;
    for (platform, plan) in &plans {
        print_plan(out, platform, plan)?;
    }
    writeln!(
        out,
        "note: base image configs are not fetched by --check; their ENV, CMD and WORKDIR show as empty"
    )?;
    Ok(true)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

fn print_plan(out: &mut dyn Write, platform: &Platform, plan: &BuildPlan) -> anyhow::Result<()> {
    writeln!(out, "platform {platform}:")?;
    for stage in &plan.stages {
        let name = stage
            .name
            .as_ref()
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        let base = match &stage.base {
            Base::Scratch => "scratch".to_string(),
            Base::Image(r) => r.clone(),
            Base::Stage(i) => format!("stage {i}"),
        };
        writeln!(
            out,
            "  stage {}{name} FROM {base} ({})",
            stage.index, stage.platform
        )?;
        for step in &stage.steps {
            let kind = match &step.action {
                Action::Run(_) => "run",
                Action::Copy(_) => "copy",
                Action::Mkdir { .. } => "mkdir",
            };
            let text = step.text.lines().next().unwrap_or_default();
            writeln!(out, "    {:>4}  {kind:<5} {text}", step.line)?;
        }
    }
    let config = serde_json::to_string(&plan.target().config)?;
    writeln!(out, "  config: {config}")?;
    for w in &plan.warnings {
        match w.line {
            0 => writeln!(out, "  warning: {}", w.message)?,
            l => writeln!(out, "  warning: line {l}: {}", w.message)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_take_bare_names_from_the_environment() {
        let env = |k: &str| (k == "FROM_ENV").then(|| "e".to_string());
        let raw = [
            "A=1".to_string(),
            "FROM_ENV".into(),
            "UNSET".into(),
            "B=x=y".into(),
        ];
        let args = build_args(&raw, &env).unwrap();
        let pairs: Vec<_> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(pairs, ["A=1", "B=x=y", "FROM_ENV=e"]);
        assert!(build_args(&["=v".to_string()], &env).is_err());
    }
}
