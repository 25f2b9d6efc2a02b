//! `bramble run NAME --image IMG [-p …] [-e …] [-v …] [-- CMD ARGS]`: reads
//! the flags ([`super::run_spec`]), plans the objects ([`super::run_plan`]),
//! creates them (named volumes only if missing), and unless `-d` waits until
//! the pods run (or a Job or Pod has finished), then prints where published
//! ports are served. A name already taken is refused before anything is
//! created; if a later object is refused, the ones created before it are
//! deleted again, so a failed run leaves nothing behind. A pod that cannot
//! start (image not found, no node for it) ends the wait with the reason;
//! what was created stays (`bramble rm NAME` removes it).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bramble_api::resource::by_kind;
use serde_json::Value;

use super::run_plan::{RUN_LABEL, RunSpec, plan};
use super::run_spec::{parse_env, parse_env_file, parse_platform, parse_publish, parse_volume};
use crate::args::RunArgs;
use crate::client::Client;
use crate::context::Context;

/// The flags as a [`RunSpec`]; `-e NAME` and `--env-file` read `lookup`.
pub fn spec(a: &RunArgs, lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<RunSpec> {
    let mut env = Vec::new();
    for f in &a.env_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("--env-file {}: reading it", f.display()))?;
        env.extend(parse_env_file(&f.display().to_string(), &text, lookup)?);
    }
    for e in &a.env {
        env.extend(parse_env(e, lookup)?);
    }
    Ok(RunSpec {
        name: a.name.clone(),
        image: a.image.clone(),
        publish: a
            .publish
            .iter()
            .map(|p| parse_publish(p))
            .collect::<Result<_, _>>()?,
        env,
        volumes: a
            .volume
            .iter()
            .map(|v| parse_volume(v))
            .collect::<Result<_, _>>()?,
        replicas: a.replicas,
        restart: a.restart,
        platform: a.platform.as_deref().map(parse_platform).transpose()?,
        node: a.node.clone(),
        devices: a.device.clone(),
        privileged: a.privileged,
        entrypoint: a.entrypoint.clone(),
        workdir: a.workdir.clone(),
        stop_timeout: a.stop_timeout,
        command: a.command.clone(),
    })
}

/// The API path of `object` (by its apiVersion and kind).
fn path_of(object: &Value, namespace: &str) -> anyhow::Result<(String, String)> {
    let kind = object["kind"].as_str().unwrap_or("");
    let r = by_kind(object["apiVersion"].as_str().unwrap_or(""), kind)
        .with_context(|| format!("no API resource for kind {kind}"))?;
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let display = if r.group.is_empty() {
        format!("{}/{name}", r.kind.to_ascii_lowercase())
    } else {
        format!("{}.{}/{name}", r.kind.to_ascii_lowercase(), r.group)
    };
    Ok((r.object_path(Some(namespace), name), display))
}

pub fn run(ctx: &Context, a: &RunArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let ns = ctx.settings.namespace.clone();
    let spec = spec(a, &|k| std::env::var(k).ok())?;
    let plan = plan(&spec, &ns)?;
    let client = &ctx.client;
    // A taken name is refused before anything is created.
    for object in std::iter::once(&plan.workload).chain(&plan.service) {
        let (path, display) = path_of(object, &ns)?;
        match client.get(&path, &[]) {
            Ok(_) => bail!(
                "{display} already exists: remove it first (bramble rm {}), or choose another name",
                spec.name
            ),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    for claim in &plan.claims {
        let (path, display) = path_of(claim, &ns)?;
        match client.get(&path, &[]) {
            Ok(_) => writeln!(out, "{display} exists: used as the volume")?,
            Err(e) if e.is_not_found() => {
                let collection = path.rsplit_once('/').map(|(c, _)| c).unwrap_or(&path);
                client
                    .create(collection, claim)
                    .with_context(|| format!("creating {display}"))?;
                writeln!(out, "{display} created")?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut created: Vec<(String, String)> = Vec::new();
    for object in std::iter::once(&plan.workload).chain(&plan.service) {
        let (path, display) = path_of(object, &ns)?;
        let collection = path.rsplit_once('/').map(|(c, _)| c).unwrap_or(&path);
        if let Err(e) = client.create(collection, object) {
            // Nothing half made: what this run created goes again.
            for (p, _) in created.iter().rev() {
                let _ = client.delete(p);
            }
            return Err(anyhow::Error::new(e).context(format!("creating {display}")));
        }
        writeln!(out, "{display} created")?;
        created.push((path, display));
    }
    out.flush()?;
    if a.detach || spec.replicas == 0 {
        return Ok(true);
    }
    let deadline = Instant::now() + Duration::from(a.timeout);
    wait_running(client, &ns, &spec, deadline, out)?;
    if plan.service.is_some() {
        wait_published(client, &ns, &spec.name, deadline, out)?;
    }
    Ok(true)
}

/// Waits until every replica runs (a Job's or Pod's pod may also have
/// finished); a pod that cannot start ends the wait with its reason.
fn wait_running(
    client: &Client,
    ns: &str,
    spec: &RunSpec,
    deadline: Instant,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    let selector = format!("{RUN_LABEL}={}", spec.name);
    loop {
        let list = client.get(&pods, &[("labelSelector", &selector)])?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if let Some(why) = items.iter().find_map(cannot_start) {
            bail!(
                "{} cannot start: {why} (what was created stays: bramble rm {} removes it)",
                spec.name,
                spec.name
            );
        }
        let up = items
            .iter()
            .filter(|p| {
                matches!(
                    p["status"]["phase"].as_str(),
                    Some("Running" | "Succeeded" | "Failed")
                )
            })
            .count();
        if up >= spec.replicas.max(1) as usize {
            let nodes: Vec<&str> = items
                .iter()
                .filter_map(|p| p["spec"]["nodeName"].as_str())
                .collect();
            writeln!(out, "{} is running on {}", spec.name, nodes.join(", "))?;
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out waiting for {} to run ({up} of {} pods running); see bramble describe pods -l {selector}",
                spec.name,
                spec.replicas
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Why a pod cannot start, if it cannot: an image it cannot pull, a
/// container it cannot create, or no node that may run it (`compose run`
/// asks too).
pub fn cannot_start(pod: &Value) -> Option<String> {
    let statuses = pod["status"]["containerStatuses"].as_array();
    for c in statuses.into_iter().flatten() {
        let waiting = &c["state"]["waiting"];
        if let Some(reason) = waiting["reason"].as_str()
            && matches!(
                reason,
                "ErrImagePull"
                    | "ImagePullBackOff"
                    | "InvalidImageName"
                    | "CreateContainerError"
                    | "CreateContainerConfigError"
                    | "RunContainerError"
            )
        {
            let msg = waiting["message"].as_str().unwrap_or("");
            return Some(format!("{reason}: {msg}"));
        }
    }
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable")
        .map(|c| {
            format!(
                "no node can run it: {}",
                c["message"].as_str().unwrap_or("unschedulable")
            )
        })
}

/// Waits until the Service is served (prints where) or refused (prints
/// why, as a warning: the workload runs, the port is not published).
fn wait_published(
    client: &Client,
    ns: &str,
    name: &str,
    deadline: Instant,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/namespaces/{ns}/services/{name}");
    loop {
        let svc = client.get(&path, &[])?;
        let condition = svc["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "LoadBalancerReady")
            .cloned();
        match condition {
            Some(c) if c["status"] == "True" => {
                for line in published(&svc) {
                    writeln!(out, "{name} published on {line}")?;
                }
                return Ok(());
            }
            Some(c) if c["status"] == "False" => {
                bail!(
                    "{name} runs, but its ports are not published: {}",
                    c["message"].as_str().unwrap_or("")
                );
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out waiting for the hub to publish {name}'s ports: is its load balancer off (bramble-hub --no-service-lb)?"
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `ADDR:PORT->TARGET/proto` for each port of a served Service.
pub fn published(svc: &Value) -> Vec<String> {
    let addrs: Vec<&str> = svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
        .collect();
    let mut lines = Vec::new();
    for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
        let proto = p["protocol"].as_str().unwrap_or("TCP").to_ascii_lowercase();
        let target = match &p["targetPort"] {
            Value::Null => p["port"].to_string(),
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        for a in &addrs {
            lines.push(format!("{a}:{}->{target}/{proto}", p["port"]));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_that_cannot_start_say_why() {
        let pulling = json!({"status": {"containerStatuses": [{"state": {"waiting":
            {"reason": "ImagePullBackOff", "message": "bb:9 not found in the hub's registry"}}}]}});
        assert_eq!(
            cannot_start(&pulling).as_deref(),
            Some("ImagePullBackOff: bb:9 not found in the hub's registry")
        );
        let pending = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}]}});
        assert!(
            cannot_start(&pending)
                .unwrap()
                .starts_with("no node can run it: 0/1")
        );
        let creating = json!({"status": {"containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(cannot_start(&creating), None);
    }

    #[test]
    fn published_ports_read_like_docker_ps() {
        let svc = json!({"spec": {"ports": [{"port": 8080, "targetPort": 80, "protocol": "TCP"},
                                             {"port": 53, "targetPort": 5353, "protocol": "UDP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.5"}]}}});
        assert_eq!(
            published(&svc),
            vec!["192.168.1.5:8080->80/tcp", "192.168.1.5:53->5353/udp"]
        );
        let pending = json!({"spec": {"ports": [{"port": 8080}]}, "status": {}});
        assert!(published(&pending).is_empty());
    }
}
