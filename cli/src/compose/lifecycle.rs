//! `compose stop|start|restart [SERVICE…]` (every service of the project
//! without names), on the workloads `up` made, found by their labels (the
//! file is read only for the project's name). The patches are `bramble
//! stop`/`start`'s and `rollout restart`'s:
//!
//! - `stop`: a Deployment is scaled to 0, its count kept in
//!   `bramble.dev/run-replicas`; a DaemonSet (`deploy.mode: global`) gets
//!   a node selector no node matches; a Job is suspended, which deletes a
//!   running pod (a finished one stays, as docker keeps an exited
//!   container); waits until the pods are gone.
//! - `start`: the count comes back (a Job resumes; a finished Job is not
//!   run again, as `up` only runs it again when its service changed);
//!   waits until the Deployments and DaemonSets are Ready.
//! - `restart`: a rollout restart (a new `kubectl.kubernetes.io/restartedAt`
//!   in the pod template, so every pod is replaced), of a stopped service
//!   too (docker restarts stopped containers); waits until the new pods
//!   are Ready. A Job runs once: named, it is refused; otherwise skipped.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::plan::{
    MANAGED_LABEL, MANAGED_VALUE, PROJECT_LABEL, SERVICE_LABEL, Workload, namespace_of,
};
use super::ready;
use crate::context::Context;
use crate::docker::lifecycle::{start_patch, stop_patch};

/// A service's workload as the hub has it.
struct Live {
    service: String,
    workload: Workload,
    path: String,
    object: Value,
}

impl Live {
    fn kind(&self) -> &'static str {
        self.workload.kind()
    }
}

/// The workloads of `wanted` (all without names), by service name; a
/// named service with none is an error.
fn workloads(ctx: &Context, project: &str, wanted: &[String]) -> anyhow::Result<Vec<Live>> {
    let ns = namespace_of(project);
    let selector = format!("{PROJECT_LABEL}={project}");
    let mut all = Vec::new();
    for workload in [Workload::Deployment, Workload::DaemonSet, Workload::Job] {
        let collection = workload.collection(&ns);
        let list = match ctx.client.get(&collection, &[("labelSelector", &selector)]) {
            Ok(l) => l,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        for object in list["items"].as_array().into_iter().flatten() {
            let labels = &object["metadata"]["labels"];
            let (Some(service), Some(name)) = (
                labels[SERVICE_LABEL].as_str(),
                object["metadata"]["name"].as_str(),
            ) else {
                continue;
            };
            if labels[MANAGED_LABEL] != MANAGED_VALUE {
                continue;
            }
            all.push(Live {
                service: service.to_string(),
                workload,
                path: format!("{collection}/{name}"),
                object: object.clone(),
            });
        }
    }
    all.sort_by(|a, b| a.service.cmp(&b.service));
    for w in wanted {
        if !all.iter().any(|l| &l.service == w) {
            let have: Vec<&str> = all.iter().map(|l| l.service.as_str()).collect();
            bail!(
                "no such service: {w} (project {project} runs {}; `bramble compose up` makes them)",
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            );
        }
    }
    all.retain(|l| wanted.is_empty() || wanted.contains(&l.service));
    Ok(all)
}

fn patch(ctx: &Context, l: &Live, patch: &Value, doing: &str) -> anyhow::Result<()> {
    if patch.as_object().is_some_and(|m| !m.is_empty()) {
        ctx.client
            .merge_patch(&l.path, patch)
            .with_context(|| format!("{doing} {}", l.service))?;
    }
    Ok(())
}

/// JSON merge patch `b` laid over `a`.
fn merged(mut a: Value, b: Value) -> Value {
    match (a.as_object_mut(), b) {
        (Some(am), Value::Object(bm)) => {
            for (k, v) in bm {
                let cur = am.remove(&k).unwrap_or(Value::Null);
                am.insert(k, merged(cur, v));
            }
            a
        }
        (_, b) => b,
    }
}

/// The services of `ls` that run on, to wait for.
fn long_running(ls: &[Live]) -> Vec<(String, Workload)> {
    ls.iter()
        .filter(|l| l.workload.long_running())
        .map(|l| (l.service.clone(), l.workload))
        .collect()
}

pub fn stop(
    ctx: &Context,
    project: &str,
    services: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let ns = namespace_of(project);
    let ls = workloads(ctx, project, services)?;
    for l in &ls {
        let p = stop_patch(l.kind(), &l.object).expect("a Deployment, DaemonSet or Job");
        patch(ctx, l, &p, "stopping")?;
    }
    for l in &ls {
        let selector = format!("{PROJECT_LABEL}={project},{SERVICE_LABEL}={}", l.service);
        super::down::wait_pods_gone(ctx, &ns, &selector, false)?;
        writeln!(out, "{} stopped", l.service)?;
    }
    Ok(true)
}

pub fn start(
    ctx: &Context,
    project: &str,
    services: &[String],
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let ls = workloads(ctx, project, services)?;
    if ls.is_empty() {
        bail!("project {project} has no services on the hub: `bramble compose up` makes them");
    }
    for l in &ls {
        let p = start_patch(l.kind(), &l.object).expect("a Deployment, DaemonSet or Job");
        patch(ctx, l, &p, "starting")?;
        writeln!(out, "{} started", l.service)?;
    }
    ready::wait(
        ctx,
        &namespace_of(project),
        project,
        &long_running(&ls),
        timeout,
        out,
    )?;
    Ok(true)
}

pub fn restart(
    ctx: &Context,
    project: &str,
    services: &[String],
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let mut ls = workloads(ctx, project, services)?;
    if ls.is_empty() {
        bail!("project {project} has no services on the hub: `bramble compose up` makes them");
    }
    if let Some(j) = ls
        .iter()
        .find(|l| l.workload == Workload::Job && !services.is_empty())
    {
        bail!(
            "{0} runs once, as a Job, and cannot be restarted: `bramble compose up` runs it again when its service changed \
             (or delete it with `bramble delete job {0} -n {1}` and run `bramble compose up`)",
            j.service,
            namespace_of(project)
        );
    }
    ls.retain(|l| {
        let keep = l.workload.long_running();
        if !keep {
            eprintln!("{} runs once, as a Job: not restarted", l.service);
        }
        keep
    });
    let now = std::time::SystemTime::now();
    for l in &ls {
        let start = start_patch(l.kind(), &l.object).expect("a Deployment or DaemonSet");
        let p = merged(start, crate::rollout::restart_patch(now));
        patch(ctx, l, &p, "restarting")?;
        writeln!(out, "{} restarted", l.service)?;
    }
    ready::wait(
        ctx,
        &namespace_of(project),
        project,
        &long_running(&ls),
        timeout,
        out,
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restarting_a_stopped_service_starts_it_too() {
        let stopped = json!({"metadata": {"annotations": {crate::docker::lifecycle::REPLICAS_ANNOTATION: "2"}},
            "spec": {"replicas": 0}});
        let p = merged(
            start_patch("Deployment", &stopped).unwrap(),
            json!({"spec": {"template": {"metadata": {"annotations": {"x": "t"}}}}}),
        );
        assert_eq!(p["spec"]["replicas"], 2);
        assert_eq!(p["spec"]["template"]["metadata"]["annotations"]["x"], "t");
        assert!(
            p["metadata"]["annotations"]
                .as_object()
                .unwrap()
                .contains_key(crate::docker::lifecycle::REPLICAS_ANNOTATION)
        );
    }
}
