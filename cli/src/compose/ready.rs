//! When a service is Ready, and why not: a Deployment once its rollout is
//! done as `kubectl rollout status` judges it (every replica updated and
//! available, no old pod left), a Job once it succeeded. [`wait`] polls
//! until every service is, for `up --wait`, `start` and `restart`; on
//! timeout it names each service that is not and why (its pods' waiting
//! reasons, a failing healthcheck, no board for it). [`state`] and
//! [`pod_reason`] are pure.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::Value;

use super::plan::Workload;
use super::up::service_pods;
use crate::context::Context;

/// How often [`wait`] looks.
const POLL: Duration = Duration::from_millis(500);

/// A service's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Ready,
    /// Not yet, and why.
    Waiting(String),
    /// Never will be (a failed Job), and why.
    Failed(String),
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// A pod not being deleted and not finished.
pub fn is_live(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        )
}

/// Why `pod` is not Ready, in a few words; `None` when it is.
pub fn pod_reason(pod: &Value) -> Option<String> {
    if is_ready(pod) {
        return None;
    }
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let why = |s: String| Some(format!("pod {name}: {s}"));
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return why("being deleted".into());
    }
    for cs in pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let state = &cs["state"];
        if let Some(r) = state["waiting"]["reason"].as_str() {
            return why(match state["waiting"]["message"].as_str() {
                Some(m) if !m.is_empty() => format!("{r} ({m})"),
                _ => r.to_string(),
            });
        }
        if let Some(code) = state["terminated"]["exitCode"].as_i64() {
            return why(format!("exited with code {code}"));
        }
        if state.get("running").is_some() && cs["ready"] != true {
            let probed = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["name"] == cs["name"] && !c["readinessProbe"].is_null());
            return why(if probed {
                "running, its healthcheck has not passed".into()
            } else {
                "running, not Ready yet".into()
            });
        }
    }
    let unscheduled = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "PodScheduled" && c["status"] == "False");
    if let Some(c) = unscheduled {
        return why(format!(
            "not scheduled: {}",
            c["message"]
                .as_str()
                .or(c["reason"].as_str())
                .unwrap_or("no board for it")
        ));
    }
    why(pod["status"]["phase"]
        .as_str()
        .unwrap_or("Pending")
        .to_string())
}

/// The state of a service whose workload is `w` (a Deployment or a Job)
/// and whose pods are `pods`.
pub fn state(kind: Workload, w: &Value, pods: &[Value]) -> State {
    let first_reason = || pods.iter().filter_map(pod_reason).next();
    match kind {
        Workload::Deployment => {
            let name = w["metadata"]["name"].as_str().unwrap_or("");
            if crate::rollout::progress(w, name).0 {
                return State::Ready;
            }
            let want = w["spec"]["replicas"].as_i64().unwrap_or(1);
            let ready = pods.iter().filter(|p| is_live(p) && is_ready(p)).count();
            let mut s = format!("{ready} of {want} pods Ready");
            if let Some(r) = first_reason() {
                s = format!("{s}; {r}");
            }
            State::Waiting(s)
        }
        Workload::DaemonSet => {
            let st = &w["status"];
            let count = |k: &str| st[k].as_i64().unwrap_or(0);
            let desired = count("desiredNumberScheduled");
            let seen = st["observedGeneration"].as_i64() >= w["metadata"]["generation"].as_i64();
            if seen
                && desired > 0
                && count("updatedNumberScheduled") == desired
                && count("numberReady") == desired
            {
                return State::Ready;
            }
            let mut s = if desired == 0 && seen {
                "no node runs it (none matches its placement, or it is stopped)".to_string()
            } else {
                format!("{} of {desired} pods Ready", count("numberReady"))
            };
            if let Some(r) = first_reason() {
                s = format!("{s}; {r}");
            }
            State::Waiting(s)
        }
        Workload::Job => {
            let failed = w["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Failed" && c["status"] == "True");
            if let Some(c) = failed {
                return State::Failed(format!(
                    "its Job failed: {}",
                    c["message"]
                        .as_str()
                        .or(c["reason"].as_str())
                        .unwrap_or("Failed")
                ));
            }
            if w["status"]["succeeded"].as_i64().unwrap_or(0) >= 1 {
                return State::Ready;
            }
            let mut s = "its Job has not completed".to_string();
            if w["spec"]["suspend"] == true {
                s.push_str(" (it is suspended: `bramble compose start` resumes it)");
            } else if let Some(r) = pods.iter().filter(|p| is_live(p)).find_map(pod_reason) {
                s = format!("{s}; {r}");
            }
            State::Waiting(s)
        }
    }
}

fn workload_path(ns: &str, name: &str, kind: Workload) -> String {
    format!("{}/{name}", kind.collection(ns))
}

/// Waits until every one of `services` (name, how it runs) of `project`
/// is Ready, printing `NAME ready` as each becomes so; fails at once when
/// one never will, and after `timeout` with each one not Ready and why.
pub fn wait(
    ctx: &Context,
    ns: &str,
    project: &str,
    services: &[(String, Workload)],
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut todo: Vec<&(String, Workload)> = services.iter().collect();
    loop {
        let mut waiting = Vec::new();
        for s in todo {
            let (name, kind) = s;
            let w = ctx.client.get(&workload_path(ns, name, *kind), &[])?;
            let pods = service_pods(ctx, ns, project, name)?;
            match state(*kind, &w, &pods) {
                State::Ready => {
                    writeln!(out, "{name} ready")?;
                    out.flush()?;
                }
                State::Failed(why) => bail!("services.{name}: {why}"),
                State::Waiting(why) => waiting.push((s, why)),
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            let lines: Vec<String> = waiting
                .iter()
                .map(|((n, _), why)| format!("{n}: {why}"))
                .collect();
            bail!(
                "not Ready after {} (see `bramble compose ps` and `bramble compose logs SERVICE`; raise --wait-timeout to wait longer):\n  {}",
                humantime::format_duration(timeout),
                lines.join("\n  ")
            );
        }
        todo = waiting.into_iter().map(|(s, _)| s).collect();
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(want: i64, updated: i64, available: i64) -> Value {
        json!({"metadata": {"name": "web", "generation": 2}, "spec": {"replicas": want},
            "status": {"observedGeneration": 2, "replicas": updated, "updatedReplicas": updated,
                       "availableReplicas": available}})
    }

    fn pod(name: &str, status: Value) -> Value {
        json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "web", "readinessProbe": {"exec": {}}}]},
            "status": status})
    }

    #[test]
    fn a_daemonset_is_ready_when_every_node_runs_a_ready_current_pod() {
        let ds = |generation: i64, observed: i64, desired: i64, updated: i64, ready: i64| {
            json!({"metadata": {"name": "exporter", "generation": generation},
                "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                           "updatedNumberScheduled": updated, "numberReady": ready}})
        };
        assert_eq!(
            state(Workload::DaemonSet, &ds(1, 1, 3, 3, 3), &[]),
            State::Ready
        );
        assert_eq!(
            state(Workload::DaemonSet, &ds(1, 1, 3, 3, 2), &[]),
            State::Waiting("2 of 3 pods Ready".into())
        );
        assert!(
            matches!(
                state(Workload::DaemonSet, &ds(2, 1, 3, 3, 3), &[]),
                State::Waiting(_)
            ),
            "a change the controller has not seen"
        );
        assert!(
            matches!(
                state(Workload::DaemonSet, &ds(1, 1, 3, 2, 3), &[]),
                State::Waiting(_)
            ),
            "an old pod still runs"
        );
        assert_eq!(
            state(Workload::DaemonSet, &ds(1, 1, 0, 0, 0), &[]),
            State::Waiting("no node runs it (none matches its placement, or it is stopped)".into())
        );
    }

    #[test]
    fn a_deployment_is_ready_when_its_rollout_is_done() {
        assert_eq!(
            state(Workload::Deployment, &deployment(2, 2, 2), &[]),
            State::Ready
        );
        let unhealthy = pod(
            "web-1",
            json!({"phase": "Running", "containerStatuses": [
                {"name": "web", "ready": false, "state": {"running": {}}}]}),
        );
        let healthy = pod(
            "web-2",
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "web", "ready": true, "state": {"running": {}}}]}),
        );
        assert_eq!(
            state(
                Workload::Deployment,
                &deployment(2, 2, 1),
                &[healthy, unhealthy]
            ),
            State::Waiting(
                "1 of 2 pods Ready; pod web-1: running, its healthcheck has not passed".into()
            )
        );
    }

    #[test]
    fn reasons_name_what_a_pod_waits_for() {
        let pulling = pod(
            "web-1",
            json!({"phase": "Pending", "containerStatuses": [{"name": "web",
                "state": {"waiting": {"reason": "ErrImagePull", "message": "no such image"}}}]}),
        );
        assert_eq!(
            pod_reason(&pulling).unwrap(),
            "pod web-1: ErrImagePull (no such image)"
        );
        let unplaced = pod(
            "web-2",
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/1 nodes are available"}]}),
        );
        assert_eq!(
            pod_reason(&unplaced).unwrap(),
            "pod web-2: not scheduled: 0/1 nodes are available"
        );
        let crashed = pod(
            "web-3",
            json!({"phase": "Running", "containerStatuses": [{"name": "web",
                "state": {"terminated": {"exitCode": 2}}}]}),
        );
        assert_eq!(
            pod_reason(&crashed).unwrap(),
            "pod web-3: exited with code 2"
        );
    }

    #[test]
    fn a_job_is_ready_once_it_succeeded_and_a_failed_one_never_is() {
        let done = json!({"status": {"succeeded": 1}});
        assert_eq!(state(Workload::Job, &done, &[]), State::Ready);
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}});
        assert_eq!(
            state(Workload::Job, &failed, &[]),
            State::Failed("its Job failed: Job has reached the specified backoff limit".into())
        );
        let suspended = json!({"spec": {"suspend": true}, "status": {}});
        assert!(
            matches!(state(Workload::Job, &suspended, &[]), State::Waiting(w) if w.contains("suspended"))
        );
    }
}
