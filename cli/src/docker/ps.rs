//! `bramble ps [-a]`: what `bramble run` started, one row per pod, in
//! `docker ps`' words: NAME, IMAGE, COMMAND (quoted, cut at 20 characters),
//! CREATED (`5 minutes ago`), STATUS (`Up 2 hours`, `Exited (1) 3 seconds
//! ago`, `Restarting (2) …`, `Created`), PORTS (`ADDR:8080->80/tcp`) and the
//! NODE it runs on. Without `-a` only running pods are listed; with it also
//! finished ones and stopped runs (`bramble stop`: no pod, `Stopped`).
//! [`rows`] is pure; [`run`] reads the hub.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::run::published;
use super::run_plan::RUN_LABEL;
use crate::args::PsArgs;
use crate::container_command::{ImageProcess, Images, shown, words};
use crate::context::Context;
use crate::table::Table;

/// Docker's `units.HumanDuration`: "Less than a second", "About a minute",
/// "5 minutes", "About an hour", "3 hours", "2 days", "3 weeks", …
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let minutes = secs / 60;
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    match () {
        _ if secs < 1 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

fn since(ts: Option<&str>, now: SystemTime) -> Option<Duration> {
    let t = humantime::parse_rfc3339_weak(ts?).ok()?;
    Some(now.duration_since(t).unwrap_or_default())
}

/// The pod's state as `docker ps` words it, and whether it runs.
fn status(pod: &Value, now: SystemTime) -> (String, bool) {
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return ("Removing".into(), true);
    }
    let c = &pod["status"]["containerStatuses"][0];
    let restarts = c["restartCount"].as_i64().unwrap_or(0);
    if let Some(started) = c["state"]["running"]["startedAt"].as_str() {
        let up = since(Some(started), now).map(human).unwrap_or_default();
        return (format!("Up {up}"), true);
    }
    let last = |t: &Value| {
        (
            t["exitCode"].as_i64().unwrap_or(0),
            since(t["finishedAt"].as_str(), now)
                .map(|d| format!(" {} ago", human(d)))
                .unwrap_or_default(),
        )
    };
    if c["state"]["waiting"].is_object() && restarts > 0 {
        let (code, ago) = last(&c["lastState"]["terminated"]);
        return (format!("Restarting ({code}){ago}"), true);
    }
    if c["state"]["terminated"].is_object() {
        let (code, ago) = last(&c["state"]["terminated"]);
        return (format!("Exited ({code}){ago}"), false);
    }
    match pod["status"]["phase"].as_str() {
        Some("Succeeded") => ("Exited (0)".into(), false),
        Some("Failed") => ("Exited (1)".into(), false),
        _ => ("Created".into(), true),
    }
}

/// The table: `pods` and stopped `deployments` of runs, ports from
/// `services` (by run name), what each image runs by default from `images`.
pub fn rows(
    pods: &[Value],
    services: &[Value],
    deployments: &[Value],
    images: &HashMap<String, ImageProcess>,
    all: bool,
    now: SystemTime,
) -> Table {
    let command = |c: &Value| shown(&words(c, c["image"].as_str().and_then(|i| images.get(i))));
    let run_of = |o: &Value| {
        o["metadata"]["labels"][RUN_LABEL]
            .as_str()
            .map(str::to_string)
    };
    let ports: BTreeMap<String, String> = services
        .iter()
        .filter_map(|s| Some((run_of(s)?, published(s).join(", "))))
        .collect();
    let mut table = Table::new(
        [
            "NAME", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NODE",
        ]
        .map(String::from)
        .to_vec(),
    );
    let mut listed: Vec<(String, Vec<String>)> = Vec::new();
    let mut with_pods = std::collections::BTreeSet::new();
    for pod in pods {
        let Some(run) = run_of(pod) else { continue };
        with_pods.insert(run.clone());
        let (state, running) = status(pod, now);
        if !running && !all {
            continue;
        }
        let created = since(pod["metadata"]["creationTimestamp"].as_str(), now)
            .map(|d| format!("{} ago", human(d)))
            .unwrap_or_default();
        listed.push((
            run.clone(),
            vec![
                pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
                pod["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                command(&pod["spec"]["containers"][0]),
                created,
                state,
                ports.get(&run).cloned().unwrap_or_default(),
                pod["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
            ],
        ));
    }
    if all {
        for d in deployments {
            let Some(run) = run_of(d) else { continue };
            if with_pods.contains(&run) || d["spec"]["replicas"].as_i64() != Some(0) {
                continue;
            }
            let created = since(d["metadata"]["creationTimestamp"].as_str(), now)
                .map(|t| format!("{} ago", human(t)))
                .unwrap_or_default();
            listed.push((
                run.clone(),
                vec![
                    run.clone(),
                    d["spec"]["template"]["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    command(&d["spec"]["template"]["spec"]["containers"][0]),
                    created,
                    "Stopped".into(),
                    String::new(),
                    String::new(),
                ],
            ));
        }
    }
    listed.sort();
    for (_, row) in listed {
        table.push(row);
    }
    table
}

pub fn run(ctx: &Context, a: &PsArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let ns = ctx.settings.namespace.clone();
    let selector = [("labelSelector", RUN_LABEL)];
    let list = |path: String| -> anyhow::Result<Vec<Value>> {
        let v = ctx.client.get(&path, &selector)?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    };
    let pods = list(format!("/api/v1/namespaces/{ns}/pods"))?;
    let services = list(format!("/api/v1/namespaces/{ns}/services"))?;
    let deployments = list(format!("/apis/apps/v1/namespaces/{ns}/deployments"))?;
    let mut images = Images::new(ctx);
    for c in pods
        .iter()
        .map(|p| &p["spec"])
        .chain(deployments.iter().map(|d| &d["spec"]["template"]["spec"]))
    {
        images.process(c["containers"][0]["image"].as_str().unwrap_or(""));
    }
    let table = rows(
        &pods,
        &services,
        &deployments,
        &images.known(),
        a.all,
        SystemTime::now(),
    );
    write!(out, "{}", table.render(true))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_in_dockers_words() {
        let s = Duration::from_secs;
        assert_eq!(human(Duration::from_millis(300)), "Less than a second");
        assert_eq!(human(s(1)), "1 second");
        assert_eq!(human(s(59)), "59 seconds");
        assert_eq!(human(s(90)), "About a minute");
        assert_eq!(human(s(5 * 60)), "5 minutes");
        assert_eq!(human(s(59 * 60)), "59 minutes");
        assert_eq!(human(s(60 * 60)), "About an hour");
        assert_eq!(human(s(3 * 3600)), "3 hours");
        assert_eq!(human(s(3 * 86400)), "3 days");
        assert_eq!(human(s(20 * 86400)), "2 weeks");
        assert_eq!(human(s(90 * 86400)), "3 months");
        assert_eq!(human(s(800 * 86400)), "2 years");
    }

    #[test]
    fn a_row_per_pod_like_docker_ps() {
        let now = humantime::parse_rfc3339("2026-12-07T12:00:00Z").unwrap();
        let pod = |name: &str, state: Value, extra: Value| {
            let mut p = json!({"metadata": {"name": name, "labels": {RUN_LABEL: "web"},
                    "creationTimestamp": "2026-12-07T11:55:00Z"},
                "spec": {"nodeName": "pi-1", "containers": [{"image": "bb:1",
                    "args": ["httpd", "-f", "-p", "80", "-h", "/www/site"]}]},
                "status": {"phase": "Running", "containerStatuses": [{"state": state, "restartCount": 0}]}});
            if let Value::Object(m) = extra {
                for (k, v) in m {
                    p["status"]["containerStatuses"][0][k] = v;
                }
            }
            p
        };
        let up = pod(
            "web-a",
            json!({"running": {"startedAt": "2026-12-07T10:00:00Z"}}),
            json!({}),
        );
        let exited = pod(
            "web-b",
            json!({"terminated": {"exitCode": 3, "finishedAt": "2026-12-07T11:59:57Z"}}),
            json!({}),
        );
        let restarting = pod(
            "web-c",
            json!({"waiting": {"reason": "CrashLoopBackOff"}}),
            json!({"restartCount": 2, "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-12-07T11:59:00Z"}}}),
        );
        let svc = json!({"metadata": {"labels": {RUN_LABEL: "web"}},
            "spec": {"ports": [{"port": 8080, "targetPort": 80, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.5"}]}}});
        let stopped = json!({"metadata": {"labels": {RUN_LABEL: "db"}, "creationTimestamp": "2026-12-06T12:00:00Z"},
            "spec": {"replicas": 0, "template": {"spec": {"containers": [{"image": "bb:2"}]}}}});
        let pods = [up, exited, restarting];
        let images: HashMap<String, ImageProcess> = [
            (
                "bb:1",
                ImageProcess {
                    entrypoint: vec![],
                    cmd: vec!["sh".into()],
                },
            ),
            (
                "bb:2",
                ImageProcess {
                    entrypoint: vec![],
                    cmd: vec!["httpd".into(), "-f".into()],
                },
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let t = rows(
            &pods,
            std::slice::from_ref(&svc),
            std::slice::from_ref(&stopped),
            &images,
            false,
            now,
        );
        let text = t.render(true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("NAME    IMAGE   COMMAND"), "{text}");
        assert!(
            lines[1].contains("\"httpd -f -p 80 -h /…\"")
                && lines[1].contains("5 minutes ago")
                && lines[1].contains("Up 2 hours")
                && lines[1].contains("192.168.1.5:8080->80/tcp")
                && lines[1].ends_with("pi-1"),
            "{text}"
        );
        assert!(
            lines[2].contains("Restarting (1) About a minute ago"),
            "{text}"
        );
        let all = rows(&pods, &[svc], &[stopped], &images, true, now).render(true);
        assert!(all.contains("Exited (3) 3 seconds ago"), "{all}");
        assert!(
            all.lines().any(|l| l.starts_with("db ")
                && l.contains("\"httpd -f\"")
                && l.contains("Stopped")),
            "the image's Cmd for a run that said none: {all}"
        );
    }
}
