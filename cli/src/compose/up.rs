//! `compose up`: applies a [`Plan`] as docker compose orders containers on
//! the client: the namespace, the claims and files, then each service after
//! its dependencies meet their conditions (started, healthy, completed).
//! Before anything is created each pod template is admitted with a dry run,
//! so a Pod Security refusal (a bind mount under `baseline`) stops `up`
//! with the service named and nothing half made. Then the orphans are
//! warned about or removed ([`super::orphans`]). A Job `compose stop`
//! suspended is resumed; a Deployment or DaemonSet it stopped is started
//! by the apply itself (the plan's whole spec replaces the stopped one).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::plan::{
    CONFIG_HASH, Condition, PROJECT_LABEL, Plan, SERVICE_LABEL, ServicePlan, Workload,
};
use crate::apply::apply_one;
use crate::context::Context;
use crate::manifests;

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(500);

fn manifest(o: &Value, ns: &str) -> anyhow::Result<manifests::Manifest> {
    manifests::from_object("compose", o.clone(), ns).map_err(|e| anyhow::anyhow!(e))
}

fn apply(ctx: &Context, o: &Value, ns: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let m = manifest(o, ns)?;
    let outcome = apply_one(&ctx.client, &m)
        .map_err(|e| anyhow::anyhow!(crate::apply::failure_message(&m, &e)))?;
    writeln!(out, "{} {}", m.display(), outcome.as_str())?;
    out.flush()?;
    Ok(())
}

/// A Job is created, left alone when its [`CONFIG_HASH`] matches (it ran,
/// or runs, as planned), or deleted and created again when the service
/// changed: its template cannot be replaced.
fn apply_job(ctx: &Context, o: &Value, ns: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let m = manifest(o, ns)?;
    let path = m.object_path();
    let current = match ctx.client.get(&path, &[]) {
        Err(e) if e.is_not_found() => return apply(ctx, o, ns, out),
        other => other?,
    };
    if current["metadata"]["annotations"][CONFIG_HASH] == o["metadata"]["annotations"][CONFIG_HASH]
    {
        if current["spec"]["suspend"] == true {
            // Stopped by `compose stop`: `up` starts it, as docker starts a
            // stopped container.
            let resume = crate::docker::lifecycle::start_patch("Job", &current).expect("a Job");
            ctx.client.merge_patch(&path, &resume)?;
            writeln!(out, "{} resumed", m.display())?;
        } else {
            writeln!(out, "{} unchanged", m.display())?;
        }
        return Ok(());
    }
    ctx.client.delete(&path)?;
    let start = Instant::now();
    loop {
        match ctx.client.get(&path, &[]) {
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(e.into()),
            Ok(_) if start.elapsed() > Duration::from_secs(120) => {
                bail!("{} is still being deleted after 120s", m.display())
            }
            Ok(_) => std::thread::sleep(POLL),
        }
    }
    ctx.client.create(&m.collection_path(), &m.object)?;
    writeln!(out, "{} recreated", m.display())?;
    Ok(())
}

/// Creates the namespace unless it exists (an existing one is used as it is).
fn ensure_namespace(ctx: &Context, p: &Plan, out: &mut dyn Write) -> anyhow::Result<()> {
    let m = manifest(&p.namespace_object, "")?;
    match ctx.client.get(&m.object_path(), &[]) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => {
            ctx.client.create(&m.collection_path(), &m.object)?;
            writeln!(out, "{} created", m.display())?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Admits each service's pod template with a dry run.
fn admit(ctx: &Context, p: &Plan) -> anyhow::Result<()> {
    let mut refused = Vec::new();
    for s in &p.services {
        let template = &s.objects[0]["spec"]["template"];
        let mut spec = template["spec"].clone();
        if s.workload.long_running() {
            spec["restartPolicy"] = "Always".into();
        }
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{}-admission", s.name), "namespace": p.namespace,
                         "labels": template["metadata"]["labels"],
                         "annotations": template["metadata"].get("annotations").cloned().unwrap_or(json!({}))},
            "spec": spec});
        let path = format!("/api/v1/namespaces/{}/pods", p.namespace);
        match ctx.client.dry_run_create(&path, &pod) {
            Ok(_) => {}
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) if e.code() == Some(403) => refused.push(format!(
                "services.{}: {}\n    (bind mounts are hostPath volumes, which the namespace's Pod Security level refuses: \
                 start the hub with --allowed-host-paths DIR, or label the namespace, e.g. \
                 `bramble apply` a Namespace {:?} with label pod-security.kubernetes.io/enforce=privileged; \
                 devices: annotate it bramble.dev/allowed-devices)",
                s.name,
                e.message(),
                p.namespace
            )),
            Err(e) => refused.push(format!("services.{}: {}", s.name, e.message())),
        }
    }
    if !refused.is_empty() {
        bail!("the hub refuses {}:\n  {}", p.project, refused.join("\n  "));
    }
    Ok(())
}

pub fn run(
    ctx: &Context,
    p: &Plan,
    timeout: Duration,
    remove_orphans: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    ensure_namespace(ctx, p, out)?;
    admit(ctx, p)?;
    super::orphans::run(ctx, p, remove_orphans, out)?;
    for o in &p.shared {
        apply(ctx, o, &p.namespace, out)?;
    }
    for s in &p.services {
        wait_dependencies(ctx, p, s, timeout, out)?;
        // A service whose `deploy.mode` changed: its other kind goes first.
        let other = match s.workload {
            Workload::Deployment => Some(("apps/v1", "DaemonSet")),
            Workload::DaemonSet => Some(("apps/v1", "Deployment")),
            Workload::Job => None,
        };
        if let Some(kind) = other {
            let selector = format!("{PROJECT_LABEL}={},{SERVICE_LABEL}={}", p.project, s.name);
            super::down::delete_kind(ctx, &p.namespace, &selector, kind, out)?;
        }
        for o in &s.objects {
            if o["kind"] == "Job" {
                apply_job(ctx, o, &p.namespace, out)?;
            } else {
                apply(ctx, o, &p.namespace, out)?;
            }
        }
    }
    Ok(())
}

/// Waits until each dependency of `s` (among `p`'s services) meets its
/// condition.
pub fn wait_dependencies(
    ctx: &Context,
    p: &Plan,
    s: &ServicePlan,
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    for (dep, cond) in &s.waits {
        let d = p
            .services
            .iter()
            .find(|x| &x.name == dep)
            .expect("planned dependency");
        writeln!(out, "waiting for {dep} to be {}", word(*cond))?;
        out.flush()?;
        wait(ctx, p, d, *cond, timeout)
            .with_context(|| format!("services.{}.depends_on.{dep}", s.name))?;
    }
    Ok(())
}

fn word(c: Condition) -> &'static str {
    match c {
        Condition::Started => "started",
        Condition::Healthy => "healthy",
        Condition::CompletedSuccessfully => "completed successfully",
    }
}

/// The pods of one service.
pub fn service_pods(
    ctx: &Context,
    ns: &str,
    project: &str,
    service: &str,
) -> anyhow::Result<Vec<Value>> {
    let sel = format!("{PROJECT_LABEL}={project},{SERVICE_LABEL}={service}");
    let v = ctx.client.get(
        &format!("/api/v1/namespaces/{ns}/pods"),
        &[("labelSelector", &sel)],
    )?;
    Ok(v["items"].as_array().cloned().unwrap_or_default())
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Whether `dep` meets `cond` now: `Err` when it never will.
fn met(ctx: &Context, p: &Plan, dep: &ServicePlan, cond: Condition) -> anyhow::Result<bool> {
    let live = |pod: &&Value| pod["metadata"]["deletionTimestamp"].is_null();
    match (cond, dep.workload) {
        (Condition::CompletedSuccessfully, _) | (_, Workload::Job) => {
            let job = ctx.client.get(
                &format!(
                    "/apis/batch/v1/namespaces/{}/jobs/{}",
                    p.namespace, dep.name
                ),
                &[],
            )?;
            let conds = job["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if conds
                .iter()
                .any(|c| c["type"] == "Failed" && c["status"] == "True")
            {
                bail!("{} failed: {}", dep.name, job["status"]["conditions"]);
            }
            if cond == Condition::CompletedSuccessfully {
                return Ok(job["status"]["succeeded"].as_i64().unwrap_or(0) >= 1);
            }
            let pods = service_pods(ctx, &p.namespace, &p.project, &dep.name)?;
            Ok(job["status"]["succeeded"].as_i64().unwrap_or(0) >= 1
                || pods.iter().filter(live).any(|pod| match cond {
                    Condition::Healthy => ready(pod),
                    _ => pod["status"]["phase"] == "Running",
                }))
        }
        (Condition::Healthy, Workload::Deployment | Workload::DaemonSet) => {
            Ok(service_pods(ctx, &p.namespace, &p.project, &dep.name)?
                .iter()
                .filter(live)
                .any(ready))
        }
        (Condition::Started, Workload::Deployment | Workload::DaemonSet) => {
            Ok(service_pods(ctx, &p.namespace, &p.project, &dep.name)?
                .iter()
                .filter(live)
                .any(|pod| pod["status"]["phase"] == "Running"))
        }
    }
}

fn wait(
    ctx: &Context,
    p: &Plan,
    dep: &ServicePlan,
    cond: Condition,
    timeout: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if met(ctx, p, dep, cond)? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!(
                "{} did not become {} within {} (see `bramble compose ps` and `bramble compose logs {}`; raise --wait-timeout to wait longer)",
                dep.name,
                word(cond),
                humantime::format_duration(timeout),
                dep.name
            );
        }
        std::thread::sleep(POLL);
    }
}
