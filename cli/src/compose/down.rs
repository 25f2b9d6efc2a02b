//! `compose down [-v]`: deletes what `up` made for a project, found by its
//! [`PROJECT_LABEL`], and `compose run`'s one-off pods, and waits until the
//! pods are gone. Named volumes
//! (their claims, and so their data) survive unless `-v`, which also
//! deletes the namespace if `up` created it.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::plan::{MANAGED_LABEL, MANAGED_VALUE, PROJECT_LABEL, namespace_of};
use super::run::ONEOFF_LABEL;
use crate::context::Context;

/// What `down` (and `up --remove-orphans`, for one service) deletes, in
/// order: workloads first, so no pod is replaced.
pub const KINDS: &[(&str, &str)] = &[
    ("apps/v1", "Deployment"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
];
const CLAIMS: (&str, &str) = ("v1", "PersistentVolumeClaim");

/// How long `down` waits for the project's pods (and claims) to go.
const GONE_TIMEOUT: Duration = Duration::from_secs(180);

/// Deletes the objects of `kind` in `ns` that `selector` selects.
pub fn delete_kind(
    ctx: &Context,
    ns: &str,
    selector: &str,
    kind: (&str, &str),
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let r = bramble_api::resource::by_kind(kind.0, kind.1).expect("a built-in kind");
    let list = ctx
        .client
        .get(&r.collection_path(Some(ns)), &[("labelSelector", selector)])?;
    for item in list["items"].as_array().into_iter().flatten() {
        let name = item["metadata"]["name"].as_str().unwrap_or("");
        let path = r.object_path(Some(ns), name);
        match ctx.client.delete(&path) {
            Ok(_) => writeln!(out, "{}/{name} deleted", r.display_name())?,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Waits until no pod `selector` selects is left in `ns` (`finished_too`:
/// also none that succeeded or failed, whose workload is gone).
pub fn wait_pods_gone(
    ctx: &Context,
    ns: &str,
    selector: &str,
    finished_too: bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let v = ctx.client.get(
            &format!("/api/v1/namespaces/{ns}/pods"),
            &[("labelSelector", selector)],
        )?;
        let left: Vec<&str> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                finished_too
                    || !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
            })
            .filter_map(|p| p["metadata"]["name"].as_str())
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > GONE_TIMEOUT {
            bail!(
                "pods {} are still there after {}s (a board may be offline: bramble get pods -n {ns} -l {selector})",
                left.join(", "),
                GONE_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn count(ctx: &Context, path: &str, selector: &str) -> anyhow::Result<usize> {
    let v = ctx.client.get(path, &[("labelSelector", selector)])?;
    Ok(v["items"].as_array().map_or(0, Vec::len))
}

pub fn run(
    ctx: &Context,
    project: &str,
    volumes: bool,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let ns = namespace_of(project);
    let namespace = match ctx.client.get(&format!("/api/v1/namespaces/{ns}"), &[]) {
        Ok(n) => n,
        Err(e) if e.is_not_found() => {
            writeln!(
                out,
                "project {project}: nothing to delete (no namespace {ns})"
            )?;
            return Ok(true);
        }
        Err(e) => return Err(e.into()),
    };
    let selector = format!("{PROJECT_LABEL}={project}");
    for k in KINDS {
        delete_kind(ctx, &ns, &selector, *k, out)?;
    }
    // `compose run`'s pods, which no workload owns.
    let one_offs = format!("{selector},{ONEOFF_LABEL}=True");
    delete_kind(ctx, &ns, &one_offs, ("v1", "Pod"), out)?;
    if volumes {
        delete_kind(ctx, &ns, &selector, CLAIMS, out)?;
    }
    wait_pods_gone(ctx, &ns, &selector, true)?;
    let start = Instant::now();
    while volumes
        && count(
            ctx,
            &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"),
            &selector,
        )? > 0
    {
        if start.elapsed() > GONE_TIMEOUT {
            bail!(
                "claims of {project} are still there after {}s",
                GONE_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let labels = &namespace["metadata"]["labels"];
    if volumes && labels[PROJECT_LABEL] == project && labels[MANAGED_LABEL] == MANAGED_VALUE {
        ctx.client.delete(&format!("/api/v1/namespaces/{ns}"))?;
        writeln!(out, "namespace/{ns} deleted")?;
    }
    Ok(true)
}
