//! `compose logs [-f] [SERVICE...]` (and `up` without `-d`): every pod's
//! log at once, each line prefixed with its pod name as docker compose
//! prefixes its containers' (`web-5d8f-x2k  | line`). Following, pods that
//! appear later (a replacement, a dependent created after its dependency)
//! are picked up too.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::plan::{PROJECT_LABEL, SERVICE_LABEL, namespace_of};
use crate::context::Context;

/// How often a follow looks for new pods.
const RELIST: Duration = Duration::from_secs(2);

/// `name  | line`: the name padded to `width`.
pub fn prefix(name: &str, width: usize, line: &str) -> String {
    format!("{name:<width$} | {line}")
}

fn pods(
    ctx: &Context,
    ns: &str,
    project: &str,
    services: &[String],
) -> anyhow::Result<Vec<String>> {
    let sel = format!("{PROJECT_LABEL}={project}");
    let v = match ctx.client.get(
        &format!("/api/v1/namespaces/{ns}/pods"),
        &[("labelSelector", &sel)],
    ) {
        Ok(v) => v,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut names: Vec<String> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            services.is_empty()
                || p["metadata"]["labels"][SERVICE_LABEL]
                    .as_str()
                    .is_some_and(|s| services.iter().any(|w| w == s))
        })
        .filter(|p| {
            !p["status"]["containerStatuses"].is_null() || p["status"]["phase"] != "Pending"
        })
        .filter_map(|p: &Value| p["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

pub fn run(
    ctx: &Context,
    project: &str,
    services: &[String],
    follow: bool,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let ns = namespace_of(project);
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::scope(|scope| -> anyhow::Result<bool> {
        let mut started: BTreeSet<String> = BTreeSet::new();
        let mut width = 0;
        let mut last = Instant::now() - RELIST;
        loop {
            if last.elapsed() >= RELIST {
                last = Instant::now();
                for pod in pods(ctx, &ns, project, services)? {
                    if !started.insert(pod.clone()) {
                        continue;
                    }
                    width = width.max(pod.len());
                    let tx = tx.clone();
                    let ns = ns.clone();
                    let w = width;
                    scope.spawn(move || {
                        let path = format!("/api/v1/namespaces/{ns}/pods/{pod}/log");
                        let q: &[(&str, &str)] = if follow { &[("follow", "true")] } else { &[] };
                        match ctx.client.stream(&path, q, None) {
                            Ok(body) => {
                                for line in BufReader::new(body).lines() {
                                    let Ok(line) = line else { break };
                                    if tx.send(prefix(&pod, w, &line)).is_err() {
                                        break;
                                    }
                                }
                            }
                            Err(e) => {
                                let _ = tx.send(prefix(
                                    &pod,
                                    w,
                                    &format!("(no logs: {})", e.message()),
                                ));
                            }
                        }
                    });
                }
                if !follow {
                    break;
                }
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    writeln!(out, "{line}")?;
                    out.flush()?;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        drop(tx);
        for line in rx.iter() {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_carry_the_pod_name_aligned() {
        assert_eq!(super::prefix("db-1", 6, "ready"), "db-1   | ready");
    }
}
