//! `bramble rm [-f] NAME…`, `bramble stop NAME…`, `bramble start NAME…` for
//! what `bramble run` made (objects labelled with its name; others are
//! refused, so a hand-made Deployment is never touched by accident):
//!
//! - `stop`: a Deployment is scaled to 0 (its replica count kept in the
//!   annotation [`REPLICAS_ANNOTATION`]), a Job suspended; waits until its
//!   pods are gone. A Pod (`--restart no`) cannot be started again, so it is
//!   refused with the way to remove it.
//! - `start`: the count comes back (a Job resumes).
//! - `rm`: refuses a run whose pods still run unless `-f` (as `docker rm`),
//!   deletes the workload and its Service, and waits until its pods are
//!   gone: nothing is left behind but named volumes, which docker keeps too.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::run_plan::RUN_LABEL;
use crate::args::{RmArgs, StartStopArgs};
use crate::client::Client;
use crate::context::Context;

/// Where `stop` (and `compose stop`) keeps a Deployment's replica count
/// for `start`.
pub const REPLICAS_ANNOTATION: &str = "bramble.dev/run-replicas";

/// The node label a stopped DaemonSet's pods select (`compose stop` of a
/// `deploy.mode: global` service): no node carries it, so none runs one.
pub const STOPPED_NODE_LABEL: &str = "bramble.dev/stopped";

/// How long `stop` and `rm` wait for the pods to go.
const WAIT: Duration = Duration::from_secs(120);

/// The workload `bramble run NAME` made: its kind and object.
struct Workload {
    kind: &'static str,
    path: String,
    object: Value,
}

/// Finds the run `name` in `ns`: the first of Deployment, Job, Pod named so
/// and carrying its label.
fn find(client: &Client, ns: &str, name: &str) -> anyhow::Result<Workload> {
    let candidates = [
        (
            "Deployment",
            format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
        ),
        ("Job", format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}")),
        ("Pod", format!("/api/v1/namespaces/{ns}/pods/{name}")),
    ];
    let mut foreign = None;
    for (kind, path) in candidates {
        match client.get(&path, &[]) {
            Ok(object) if object["metadata"]["labels"][RUN_LABEL] == name => {
                return Ok(Workload { kind, path, object });
            }
            Ok(_) => foreign = Some(kind),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    match foreign {
        Some(kind) => bail!(
            "{name}: the {} {name} was not made by bramble run; use bramble delete for it",
            kind.to_ascii_lowercase()
        ),
        None => bail!("{name}: no such run in namespace {ns} (bramble ps -a lists them)"),
    }
}

/// The run's pods that still exist.
fn pods(client: &Client, ns: &str, name: &str) -> anyhow::Result<Vec<Value>> {
    let selector = format!("{RUN_LABEL}={name}");
    let list = client.get(
        &format!("/api/v1/namespaces/{ns}/pods"),
        &[("labelSelector", &selector)],
    )?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn wait_gone(client: &Client, ns: &str, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = pods(client, ns, name)?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{name}: {} pod(s) still there after {}s (a node may be offline): bramble get pods -l {RUN_LABEL}={name}",
                left.len(),
                WAIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Merge-patches the workload, unless there is nothing to change.
fn patch_unless_empty(
    client: &Client,
    w: &Workload,
    patch: &Value,
    doing: &str,
    name: &str,
) -> anyhow::Result<()> {
    if *patch != json!({}) {
        client
            .merge_patch(&w.path, patch)
            .with_context(|| format!("{doing} {name}"))?;
    }
    Ok(())
}

/// The merge patch that stops a workload of `kind` (`{}`: already
/// stopped): a Deployment scaled to 0 with its count kept in
/// [`REPLICAS_ANNOTATION`], a Job suspended, a DaemonSet's pods selecting
/// [`STOPPED_NODE_LABEL`]. `None` for a kind that cannot be started again
/// (a Pod). `compose stop` uses it too.
pub fn stop_patch(kind: &str, object: &Value) -> Option<Value> {
    match kind {
        "Deployment" => {
            let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
            Some(if replicas == 0 {
                json!({})
            } else {
                json!({"metadata": {"annotations": {REPLICAS_ANNOTATION: replicas.to_string()}},
                    "spec": {"replicas": 0}})
            })
        }
        "Job" => Some(json!({"spec": {"suspend": true}})),
        // A DaemonSet has no count: no node matches its selector while stopped.
        "DaemonSet" => Some(
            json!({"spec": {"template": {"spec": {"nodeSelector": {STOPPED_NODE_LABEL: "true"}}}}}),
        ),
        _ => None,
    }
}

/// The merge patch that undoes [`stop_patch`] (`{}`: not stopped): the kept
/// count back (1 without one), a Job resumed, a DaemonSet's selector freed.
pub fn start_patch(kind: &str, object: &Value) -> Option<Value> {
    match kind {
        "Deployment" => {
            let kept = object["metadata"]["annotations"][REPLICAS_ANNOTATION]
                .as_str()
                .and_then(|r| r.parse::<i64>().ok());
            Some(match (object["spec"]["replicas"].as_i64(), kept) {
                (Some(0), Some(n)) => {
                    json!({"metadata": {"annotations": {REPLICAS_ANNOTATION: null}},
                    "spec": {"replicas": n}})
                }
                (Some(0), None) => json!({"spec": {"replicas": 1}}),
                _ => json!({}),
            })
        }
        "Job" => Some(json!({"spec": {"suspend": false}})),
        "DaemonSet" => Some(
            if object["spec"]["template"]["spec"]["nodeSelector"][STOPPED_NODE_LABEL].is_null() {
                json!({})
            } else {
                json!({"spec": {"template": {"spec": {"nodeSelector": {STOPPED_NODE_LABEL: null}}}}})
            },
        ),
        _ => None,
    }
}

pub fn stop(ctx: &Context, a: &StartStopArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let ns = ctx.settings.namespace.clone();
    let client = &ctx.client;
    for name in &a.names {
        let w = find(client, &ns, name)?;
        let Some(patch) = stop_patch(w.kind, &w.object) else {
            bail!(
                "{name} is a pod that runs once (bramble run --restart no): it cannot be started \
                 again once stopped; remove it with bramble rm -f {name}"
            )
        };
        patch_unless_empty(client, &w, &patch, "stopping", name)?;
        wait_gone(client, &ns, name)?;
        writeln!(out, "{name}")?;
    }
    Ok(true)
}

pub fn start(ctx: &Context, a: &StartStopArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let ns = ctx.settings.namespace.clone();
    let client = &ctx.client;
    for name in &a.names {
        let w = find(client, &ns, name)?;
        let Some(patch) = start_patch(w.kind, &w.object) else {
            bail!(
                "{name} is a pod that runs once (bramble run --restart no): run it again with \
                 bramble rm -f {name} and bramble run"
            )
        };
        patch_unless_empty(client, &w, &patch, "starting", name)?;
        writeln!(out, "{name}")?;
    }
    Ok(true)
}

pub fn rm(ctx: &Context, a: &RmArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let ns = ctx.settings.namespace.clone();
    let client = &ctx.client;
    for name in &a.names {
        let w = find(client, &ns, name)?;
        if !a.force {
            let running = pods(client, &ns, name)?
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count();
            if running > 0 {
                bail!(
                    "{name} is running ({running} pod(s)): stop it first (bramble stop {name}), \
                     or remove it anyway with bramble rm -f {name}"
                );
            }
        }
        client
            .delete(&w.path)
            .with_context(|| format!("removing {name}"))?;
        let svc = format!("/api/v1/namespaces/{ns}/services/{name}");
        match client.get(&svc, &[]) {
            Ok(s) if s["metadata"]["labels"][RUN_LABEL] == name.as_str() => {
                client
                    .delete(&svc)
                    .with_context(|| format!("removing service/{name}"))?;
            }
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        wait_gone(client, &ns, name)?;
        writeln!(out, "{name}")?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_keeps_the_count_and_start_brings_it_back() {
        let running = json!({"spec": {"replicas": 3}});
        let stop = stop_patch("Deployment", &running).unwrap();
        assert_eq!(stop["spec"]["replicas"], 0);
        assert_eq!(stop["metadata"]["annotations"][REPLICAS_ANNOTATION], "3");
        let stopped = json!({"metadata": {"annotations": {REPLICAS_ANNOTATION: "3"}},
            "spec": {"replicas": 0}});
        assert_eq!(stop_patch("Deployment", &stopped), Some(json!({})));
        let start = start_patch("Deployment", &stopped).unwrap();
        assert_eq!(start["spec"]["replicas"], 3);
        assert!(start["metadata"]["annotations"][REPLICAS_ANNOTATION].is_null());
        assert_eq!(start_patch("Deployment", &running), Some(json!({})));
        assert_eq!(
            start_patch("Deployment", &json!({"spec": {"replicas": 0}})).unwrap()["spec"]["replicas"],
            1
        );
        assert_eq!(
            stop_patch("Job", &json!({})),
            Some(json!({"spec": {"suspend": true}}))
        );
        assert_eq!(stop_patch("Pod", &json!({})), None);
        assert_eq!(start_patch("Pod", &json!({})), None);

        // A DaemonSet selects a label no node has, and its own selector stays.
        let ds = json!({"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/arch": "arm64"}}}}});
        assert_eq!(start_patch("DaemonSet", &ds), Some(json!({})));
        let stop = stop_patch("DaemonSet", &ds).unwrap();
        assert_eq!(
            stop,
            json!({"spec": {"template": {"spec": {"nodeSelector": {STOPPED_NODE_LABEL: "true"}}}}})
        );
        let mut stopped = ds.clone();
        stopped["spec"]["template"]["spec"]["nodeSelector"][STOPPED_NODE_LABEL] = json!("true");
        assert_eq!(
            start_patch("DaemonSet", &stopped),
            Some(
                json!({"spec": {"template": {"spec": {"nodeSelector": {STOPPED_NODE_LABEL: null}}}}})
            )
        );
    }
}
