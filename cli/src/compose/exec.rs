//! `compose exec [-T] [--index N] SERVICE [--] CMD ARGS…`: runs a command
//! in one of the service's pods through the hub, as `bramble exec` does
//! (output streamed, its exit code ours). Which pod: `--index N` is the Nth
//! replica (from 1, as docker numbers a service's containers) of the
//! service's pods that are not finished, oldest first (then by name);
//! without it the first Ready one in that order, else the first running.
//! There is no terminal (exec over MQTT has none), so `-T` changes nothing
//! and its absence warns about nothing. [`pick`] is pure.

use std::io::Write;

use anyhow::bail;
use serde_json::Value;

use super::plan::namespace_of;
use super::ready::is_live;
use super::up::service_pods;
use crate::context::Context;

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
}

/// The pod of `service` to run in, among `pods` (see the module's doc).
pub fn pick(service: &str, pods: &[Value], index: Option<usize>) -> Result<String, String> {
    let mut live: Vec<&Value> = pods.iter().filter(|p| is_live(p)).collect();
    live.sort_by_key(|p| {
        (
            p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            p["metadata"]["name"].as_str().unwrap_or("").to_string(),
        )
    });
    let name = |p: &Value| p["metadata"]["name"].as_str().unwrap_or("").to_string();
    match index {
        Some(0) => Err("--index counts from 1".into()),
        Some(n) => {
            let Some(p) = live.get(n - 1) else {
                return Err(format!(
                    "service {service} has {} running replica(s): give --index 1 to {}",
                    live.len(),
                    live.len()
                ));
            };
            if !running(p) {
                return Err(format!(
                    "replica {n} of service {service} (pod {}) is not running yet ({})",
                    name(p),
                    p["status"]["phase"].as_str().unwrap_or("Pending")
                ));
            }
            Ok(name(p))
        }
        None => live
            .iter()
            .find(|p| is_ready(p))
            .or_else(|| live.iter().find(|p| running(p)))
            .map(|p| name(p))
            .ok_or_else(|| {
                format!(
                    "service {service} is not running (no running pod; see `bramble compose ps`, or `bramble compose up -d {service}`)"
                )
            }),
    }
}

pub fn run(
    ctx: &Context,
    project: &str,
    service: &str,
    index: Option<usize>,
    command: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let ns = namespace_of(project);
    let pods = match service_pods(ctx, &ns, project, service) {
        Err(e)
            if e.downcast_ref::<crate::client::ClientError>()
                .is_some_and(|c| c.is_not_found()) =>
        {
            Vec::new()
        }
        other => other?,
    };
    let pod = match pick(service, &pods, index) {
        Ok(p) => p,
        Err(e) => bail!("{e}"),
    };
    crate::exec::exec_in(ctx, &ns, &pod, None, command, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, created: &str, phase: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": created},
            "status": {"phase": phase,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[test]
    fn the_first_ready_replica_oldest_first_or_the_nth() {
        let mut gone = pod("web-0", "2026-12-07T10:00:00Z", "Running", true);
        gone["metadata"]["deletionTimestamp"] = "2026-12-07T12:00:00Z".into();
        let pods = [
            pod("web-c", "2026-12-07T11:00:02Z", "Running", true),
            pod("web-b", "2026-12-07T11:00:00Z", "Running", false),
            pod("web-a", "2026-12-07T11:00:01Z", "Running", true),
            pod("web-x", "2026-12-07T09:00:00Z", "Succeeded", false),
            gone,
        ];
        assert_eq!(pick("web", &pods, None).unwrap(), "web-a");
        assert_eq!(pick("web", &pods, Some(1)).unwrap(), "web-b");
        assert_eq!(pick("web", &pods, Some(3)).unwrap(), "web-c");
        assert!(
            pick("web", &pods, Some(4))
                .unwrap_err()
                .contains("3 running replica(s)")
        );
        assert!(pick("web", &pods, Some(0)).is_err());
        // None Ready (a failing healthcheck): the first running one.
        assert_eq!(pick("web", &pods[1..2], None).unwrap(), "web-b");
        let pending = [pod("web-p", "2026-12-07T11:00:00Z", "Pending", false)];
        assert!(
            pick("web", &pending, None)
                .unwrap_err()
                .contains("not running")
        );
        assert!(
            pick("web", &pending, Some(1))
                .unwrap_err()
                .contains("not running yet (Pending)")
        );
        assert!(pick("web", &[], None).is_err());
    }
}
