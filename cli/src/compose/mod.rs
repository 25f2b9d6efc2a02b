//! `bramble compose`: Docker Compose projects on the fleet.
//!
//! [`load`] finds, interpolates ([`interpolate`], [`dotenv`]) and merges
//! the files; [`keys`] judges every key (refused with its path, or accepted
//! with a warning); [`model`] types what is left; [`plan`] (with [`pod`],
//! [`ports`], [`volumes`]) turns it into Kubernetes objects without I/O.
//! [`build_spec`] reads a service's `build:`. The commands with side
//! effects are [`build`] (through `bramble build`), [`up`] (with
//! [`orphans`], and [`ready`] for `--wait`), [`down`], [`ps`], [`logs`],
//! [`lifecycle`] (`stop`, `start`, `restart`), [`exec`] and [`run`];
//! `config` needs no hub.

pub mod build;
pub mod build_spec;
pub mod dotenv;
pub mod down;
pub mod exec;
pub mod interpolate;
pub mod keys;
pub mod lifecycle;
pub mod load;
pub mod logs;
pub mod model;
pub mod orphans;
pub mod plan;
pub mod pod;
pub mod ports;
pub mod ps;
pub mod ready;
pub mod run;
pub mod up;
pub mod volumes;

#[cfg(test)]
mod corpus_tests;

use std::io::Write;

use anyhow::bail;

use crate::args::{ComposeArgs, ComposeCommand};
use crate::context::Context;

/// Loads the project the command line names.
pub fn load_project(a: &ComposeArgs) -> anyhow::Result<load::Loaded> {
    let opts = load::Options {
        files: a.files.clone(),
        project_name: a.project_name.clone(),
        profiles: a.profiles.clone(),
        cwd: std::env::current_dir()?,
        env: std::env::vars().collect(),
    };
    load::load(&opts)
}

/// Loads and plans the project (`services`: only these and their
/// dependencies); prints the warnings.
pub fn plan_project(a: &ComposeArgs, services: &[String]) -> anyhow::Result<plan::Plan> {
    let l = load_project(a)?;
    for w in &l.warnings {
        eprintln!("WARN[0000] {w}");
    }
    let p = plan::plan(
        &l.doc,
        plan::PlanInput {
            project: &l.name,
            dir: &l.dir,
            vars: &l.vars,
            profiles: &l.profiles,
            services,
            read: &plan::read_file,
        },
    )?;
    for w in &p.warnings {
        eprintln!("WARN[0000] {w}");
    }
    Ok(p)
}

/// The project's name (for the commands that act on what `up` made, found
/// by its labels): `-p`, else the files'.
pub fn project_name(a: &ComposeArgs) -> anyhow::Result<String> {
    match &a.project_name {
        Some(p) => Ok(load::normalize_name(p)),
        None => Ok(load_project(a)?.name),
    }
}

pub fn run(ctx: &Context, a: &ComposeArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    match &a.command {
        ComposeCommand::Config => {
            let l = load_project(a)?;
            for w in &l.warnings {
                eprintln!("WARN[0000] {w}");
            }
            // Judge the keys too, so `config` shows what `up` would refuse.
            let mut v = keys::check(&l.doc);
            for w in &v.warnings {
                eprintln!("WARN[0000] {w}");
            }
            let doc = resolved_builds(&l, &mut v.refused);
            out.write_all(serde_yaml_ng::to_string(&doc)?.as_bytes())?;
            if !v.refused.is_empty() {
                bail!(
                    "{} cannot run on Bramble:\n  {}",
                    l.name,
                    v.refused.join("\n  ")
                );
            }
            Ok(true)
        }
        ComposeCommand::Build { services } => {
            let mut p = plan_project(a, services)?;
            build::run(
                ctx,
                &mut p,
                services,
                build::When::Always,
                &mut std::io::stderr(),
            )?;
            Ok(true)
        }
        ComposeCommand::Up {
            detach,
            build: b,
            wait,
            wait_timeout,
            remove_orphans,
            services,
        } => {
            let mut p = plan_project(a, services)?;
            let when = if *b {
                build::When::Always
            } else {
                build::When::IfMissing
            };
            build::run(ctx, &mut p, &[], when, &mut std::io::stderr())?;
            let timeout = (*wait_timeout).into();
            up::run(ctx, &p, timeout, *remove_orphans, out)?;
            if *wait {
                let started: Vec<_> = p
                    .services
                    .iter()
                    .map(|s| (s.name.clone(), s.workload))
                    .collect();
                ready::wait(ctx, &p.namespace, &p.project, &started, timeout, out)?;
            } else if !*detach {
                logs::run(ctx, &p.project, &[], true, out)?;
            }
            Ok(true)
        }
        ComposeCommand::Stop { services } => lifecycle::stop(ctx, &project_name(a)?, services, out),
        ComposeCommand::Start {
            wait_timeout,
            services,
        } => lifecycle::start(
            ctx,
            &project_name(a)?,
            services,
            (*wait_timeout).into(),
            out,
        ),
        ComposeCommand::Restart {
            wait_timeout,
            services,
        } => lifecycle::restart(
            ctx,
            &project_name(a)?,
            services,
            (*wait_timeout).into(),
            out,
        ),
        ComposeCommand::Run {
            rm,
            detach,
            name,
            env,
            entrypoint,
            workdir,
            labels,
            no_tty: _,
            no_deps,
            wait_timeout,
            service,
            command,
        } => {
            let mut p = plan_project(a, std::slice::from_ref(service))?;
            let only: &[String] = if *no_deps {
                std::slice::from_ref(service)
            } else {
                &[]
            };
            build::run(
                ctx,
                &mut p,
                only,
                build::When::IfMissing,
                &mut std::io::stderr(),
            )?;
            let r = run::Request {
                service,
                rm: *rm,
                detach: *detach,
                no_deps: *no_deps,
                timeout: (*wait_timeout).into(),
                name: name.clone(),
                change: run::Change::parse(
                    command,
                    env,
                    entrypoint.as_deref(),
                    workdir.as_deref(),
                    labels,
                    &|k| std::env::var(k).ok(),
                )?,
            };
            run::run(ctx, p, &r, out)
        }
        ComposeCommand::Exec {
            no_tty: _,
            index,
            service,
            command,
        } => exec::run(ctx, &project_name(a)?, service, *index, command, out),
        ComposeCommand::Down { volumes } => down::run(ctx, &project_name(a)?, *volumes, out),
        ComposeCommand::Ps => ps::run(ctx, &project_name(a)?, out),
        ComposeCommand::Logs { follow, services } => {
            logs::run(ctx, &project_name(a)?, services, *follow, out)
        }
    }
}

/// The document with each service's `build` resolved as `up` would
/// build it (the long form, absolute context) and the `image` it names;
/// a `build` that cannot be
/// resolved is left as written and its problems go to `refused`.
fn resolved_builds(l: &load::Loaded, refused: &mut Vec<String>) -> serde_yaml_ng::Value {
    let mut doc = l.doc.clone();
    // A document that does not read as a model is reported by `up`.
    let Ok(model) = serde_yaml_ng::from_value::<model::Project>(l.doc.clone()) else {
        return doc;
    };
    for (name, svc) in &model.services {
        let spec = build_spec::resolve(&l.name, name, svc, &l.dir, &l.vars, refused);
        if let Some(spec) = spec
            && let Some(s) = doc
                .get_mut("services")
                .and_then(|m| m.get_mut(name.as_str()))
        {
            s["build"] = spec.to_yaml();
            // What the build names and the pods run (a key the file may have).
            s["image"] = spec.image.into();
        }
    }
    doc
}
