//! `bramble rollout status|restart|history|undo` for Deployments, and
//! `status|restart` for StatefulSets, with kubectl's wording. History and
//! undo use the hub's `revisions` and `rollback` subresources (which read
//! the Deployment's ReplicaSets, as kubectl does); Bramble keeps no
//! ControllerRevisions, so a StatefulSet has none.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::args::RolloutCommand;
use crate::context::Context;
use crate::scale::{display, target};

/// The template annotation `rollout restart` sets, as kubectl does.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// `rollout history|undo` of a StatefulSet: refused, saying why.
fn deployments_only(r: &bramble_api::ResourceInfo, name: &str) -> anyhow::Result<()> {
    if r.kind != "Deployment" {
        bail!(
            "{}: Bramble keeps no revision history of statefulsets (no ControllerRevisions); \
             change the template to roll it",
            display(r, name)
        );
    }
    Ok(())
}

pub fn run(ctx: &Context, c: &RolloutCommand, out: &mut dyn Write) -> anyhow::Result<bool> {
    let ns = ctx.settings.namespace.clone();
    match c {
        RolloutCommand::Status { target: t, timeout } => {
            let (r, name) = target(t)?;
            let path = r.object_path(Some(&ns), &name);
            let deadline = Instant::now() + Duration::from(*timeout);
            let mut last = String::new();
            loop {
                let d = ctx.client.get(&path, &[])?;
                let (done, msg) = match r.kind {
                    "StatefulSet" => {
                        crate::rollout_statefulset::progress(&d).map_err(anyhow::Error::msg)?
                    }
                    _ => progress(&d, &name),
                };
                if msg != last {
                    writeln!(out, "{msg}")?;
                    out.flush()?;
                    last = msg;
                }
                if done {
                    return Ok(true);
                }
                if Instant::now() >= deadline {
                    bail!(
                        "timed out waiting for the rollout of {} ({timeout})",
                        display(r, &name)
                    );
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        RolloutCommand::Restart { target: t } => {
            let (r, name) = target(t)?;
            let patch = restart_patch(std::time::SystemTime::now());
            ctx.client
                .merge_patch(&r.object_path(Some(&ns), &name), &patch)
                .with_context(|| format!("restarting {}", display(r, &name)))?;
            writeln!(out, "{} restarted", display(r, &name))?;
            Ok(true)
        }
        RolloutCommand::History {
            target: t,
            revision,
        } => {
            let (r, name) = target(t)?;
            deployments_only(r, &name)?;
            let path = format!("{}/revisions", r.object_path(Some(&ns), &name));
            let list = ctx.client.get(&path, &[])?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            match revision {
                Some(n) => {
                    let Some(rev) = items.iter().find(|i| i["revision"] == json!(n)) else {
                        bail!("unable to find the specified revision {n} of deployment {name:?}");
                    };
                    writeln!(out, "deployment.apps/{name} with revision #{n}")?;
                    writeln!(out, "Pod Template:")?;
                    let yaml = serde_yaml_ng::to_string(&rev["template"])
                        .context("rendering the template")?;
                    for line in yaml.lines() {
                        writeln!(out, "  {line}")?;
                    }
                }
                None => {
                    writeln!(out, "deployment.apps/{name}")?;
                    writeln!(out, "REVISION  CHANGE-CAUSE")?;
                    for i in &items {
                        let cause = i["changeCause"].as_str().unwrap_or("<none>");
                        writeln!(out, "{:<10}{cause}", i["revision"])?;
                    }
                }
            }
            Ok(true)
        }
        RolloutCommand::Undo {
            target: t,
            to_revision,
        } => {
            let (r, name) = target(t)?;
            deployments_only(r, &name)?;
            let path = format!("{}/rollback", r.object_path(Some(&ns), &name));
            ctx.client
                .create(&path, &json!({"toRevision": to_revision}))
                .with_context(|| format!("rolling back deployment {name:?}"))?;
            writeln!(out, "deployment.apps/{name} rolled back")?;
            Ok(true)
        }
    }
}

/// The merge patch of `rollout restart` at `now`: a new [`RESTARTED_AT`]
/// in the pod template, so every pod is replaced (`compose restart` too).
pub fn restart_patch(now: std::time::SystemTime) -> Value {
    let now = humantime::format_rfc3339_seconds(now).to_string();
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}})
}

/// kubectl's rollout status for a Deployment: (finished, message).
pub fn progress(d: &Value, name: &str) -> (bool, String) {
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let generation = int(&d["metadata"]["generation"]);
    let s = &d["status"];
    if int(&s["observedGeneration"]) < generation {
        return (
            false,
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let updated = int(&s["updatedReplicas"]);
    let total = int(&s["replicas"]);
    let available = int(&s["availableReplicas"]);
    let wait = |m: String| {
        (
            false,
            format!("Waiting for deployment {name:?} rollout to finish: {m}..."),
        )
    };
    if updated < want {
        return wait(format!(
            "{updated} out of {want} new replicas have been updated"
        ));
    }
    if total > updated {
        return wait(format!(
            "{} old replicas are pending termination",
            total - updated
        ));
    }
    if available < updated {
        return wait(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    (true, format!("deployment {name:?} successfully rolled out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages_follow_kubectl() {
        let d = |gen_: i64, obs: i64, upd: i64, tot: i64, avail: i64| {
            json!({"metadata": {"generation": gen_}, "spec": {"replicas": 3},
                "status": {"observedGeneration": obs, "updatedReplicas": upd, "replicas": tot, "availableReplicas": avail}})
        };
        assert!(progress(&d(2, 1, 3, 3, 3), "web").1.contains("spec update"));
        assert!(
            progress(&d(2, 2, 1, 4, 3), "web")
                .1
                .contains("1 out of 3 new replicas")
        );
        assert!(
            progress(&d(2, 2, 3, 4, 3), "web")
                .1
                .contains("1 old replicas are pending")
        );
        assert!(
            progress(&d(2, 2, 3, 3, 2), "web")
                .1
                .contains("2 of 3 updated replicas")
        );
        let (done, msg) = progress(&d(2, 2, 3, 3, 3), "web");
        assert!(done);
        assert_eq!(msg, "deployment \"web\" successfully rolled out");
    }
}
