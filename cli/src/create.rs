//! `bramble create job NAME --from=cronjob/CRON`: a Job made by hand from a
//! CronJob's `jobTemplate`, as `kubectl create job --from` makes it (the
//! template's labels and annotations, `cronjob.kubernetes.io/instantiate:
//! manual`, the CronJob as its controller, so that the CronJob counts it
//! among its active Jobs and it goes with the CronJob).

use std::io::Write;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::args::CreateCommand;
use crate::context::Context;
use crate::kinds::resolve_kind;

/// Annotation of a Job made by hand from a CronJob.
pub const INSTANTIATE: &str = "cronjob.kubernetes.io/instantiate";

pub fn run(ctx: &Context, c: &CreateCommand, out: &mut dyn Write) -> anyhow::Result<bool> {
    let CreateCommand::Job { name, from } = c;
    let cron_name = from_cronjob(from)?;
    let ns = &ctx.settings.namespace;
    let cronjobs = resolve_kind("cronjobs")?;
    let cron = ctx
        .client
        .get(&cronjobs.object_path(Some(ns), cron_name), &[])
        .with_context(|| format!("reading cronjob {cron_name}"))?;
    let job = job_from(&cron, name);
    let jobs = resolve_kind("jobs")?;
    ctx.client
        .create(&jobs.collection_path(Some(ns)), &job)
        .with_context(|| format!("creating job {name}"))?;
    writeln!(out, "job.batch/{name} created")?;
    Ok(true)
}

/// `cronjob/NAME` (or `cj/NAME`, `cronjobs.batch/NAME`) → NAME.
fn from_cronjob(from: &str) -> anyhow::Result<&str> {
    let Some((kind, name)) = from.split_once('/').filter(|(_, n)| !n.is_empty()) else {
        bail!("--from={from:?}: give it as cronjob/NAME");
    };
    if resolve_kind(kind)?.kind != "CronJob" {
        bail!("--from={from:?}: only a cronjob can be the source of a job");
    }
    Ok(name)
}

/// The Job `kubectl create job NAME --from=cronjob/...` sends.
pub fn job_from(cron: &Value, name: &str) -> Value {
    let template = &cron["spec"]["jobTemplate"];
    let mut annotations = json!({INSTANTIATE: "manual"});
    if let Some(a) = template["metadata"]["annotations"].as_object() {
        for (k, v) in a {
            annotations[k] = v.clone();
        }
    }
    let mut metadata = json!({
        "name": name,
        "annotations": annotations,
        "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "CronJob",
            "name": cron["metadata"]["name"], "uid": cron["metadata"]["uid"],
            "controller": true,
        }],
    });
    if let Some(labels) = template["metadata"].get("labels") {
        metadata["labels"] = labels.clone();
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": template["spec"].clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_is_the_cronjobs_template_owned_by_it() {
        let cron = json!({"metadata": {"name": "hello", "uid": "u1"},
            "spec": {"schedule": "@hourly", "jobTemplate": {
                "metadata": {"labels": {"app": "hello"}, "annotations": {"team": "a"}},
                "spec": {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "Never"}}}}}});
        let job = job_from(&cron, "now");
        assert_eq!(job["metadata"]["name"], "now");
        assert_eq!(
            job["metadata"]["annotations"],
            json!({INSTANTIATE: "manual", "team": "a"})
        );
        assert_eq!(job["metadata"]["labels"], json!({"app": "hello"}));
        assert_eq!(
            job["metadata"]["ownerReferences"],
            json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello",
                "uid": "u1", "controller": true}])
        );
        assert_eq!(job["spec"]["backoffLimit"], 2);
    }

    #[test]
    fn only_a_cronjob_is_a_source() {
        assert_eq!(from_cronjob("cronjob/hello").unwrap(), "hello");
        assert_eq!(from_cronjob("cj/hello").unwrap(), "hello");
        assert!(from_cronjob("hello").is_err());
        let e = from_cronjob("deployment/web").unwrap_err().to_string();
        assert!(e.contains("only a cronjob"), "{e}");
    }
}
