//! The kubelet's pod events, derived from the status transitions an agent
//! reports (pure: old and new `status` and the pod's pulls in, events out):
//! `Pulling` when a container starts waiting for its image's pull (or, if
//! that state was never reported, when it starts), `Pulled` before each
//! start (`Successfully pulled image ... in 1.5s` on the first start after
//! a pull, else `... already present on machine`), `Created` and
//! `Started` when a container starts running, `Failed` on `ErrImagePull` /
//! `ImagePullBackOff` (with `BackOff` for the latter), `BackOff` on
//! `CrashLoopBackOff`, `OOMKilling` when a container ends `OOMKilled`,
//! `Unhealthy` when a running container stops being ready. `Killing` comes
//! from the control loop ([`killing`]), which sees pods go.

use bramble_api::protocol::ImagePull;
use serde_json::Value;

use super::EventType;

/// One kubelet-like event of a pod, about `container` if set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    pub container: Option<String>,
    pub type_: EventType,
    pub reason: &'static str,
    pub message: String,
}

fn event(c: &str, type_: EventType, reason: &'static str, message: String) -> PodEvent {
    PodEvent {
        container: Some(c.to_string()),
        type_,
        reason,
        message,
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// kubelet's `format.Pod`: `name_namespace(uid)`.
pub fn pod_label(namespace: &str, name: &str, uid: &str) -> String {
    format!("{name}_{namespace}({uid})")
}

/// A duration as Go prints a `time.Duration` (`523ms`, `1.5s`, `2m3.004s`),
/// which the kubelet's messages use.
fn go_duration(ms: u64) -> String {
    match ms {
        0 => return "0s".into(),
        1..1000 => return format!("{ms}ms"),
        _ => {}
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

fn pulling(c: &str, image: &str) -> PodEvent {
    event(
        c,
        EventType::Normal,
        "Pulling",
        format!("Pulling image \"{image}\""),
    )
}

/// The `Pulled` event of a container about to start (and its `Pulling`, if
/// the pull was never reported while it ran).
fn pulled(
    c: &str,
    image: &str,
    pull: Option<&ImagePull>,
    first: bool,
    unseen: bool,
) -> Vec<PodEvent> {
    match pull.and_then(|p| p.millis).filter(|_| first) {
        Some(ms) => {
            let took = go_duration(ms);
            let size = pull
                .and_then(|p| p.size)
                .map(|s| format!(" Image size: {s} bytes."))
                .unwrap_or_default();
            let done = event(
                c,
                EventType::Normal,
                "Pulled",
                format!(
                    "Successfully pulled image \"{image}\" in {took} ({took} including waiting).{size}"
                ),
            );
            if unseen {
                vec![pulling(c, image), done]
            } else {
                vec![done]
            }
        }
        None => vec![event(
            c,
            EventType::Normal,
            "Pulled",
            format!("Container image \"{image}\" already present on machine"),
        )],
    }
}

/// What changed between the stored `old` status and the reported `new` one
/// of the pod `pod` (as [`pod_label`] prints it), which waited for `pulls`.
pub fn transitions(pod: &str, old: &Value, new: &Value, pulls: &[ImagePull]) -> Vec<PodEvent> {
    let mut out = Vec::new();
    let empty = Vec::new();
    let before = old["containerStatuses"].as_array().unwrap_or(&empty);
    for c in new["containerStatuses"].as_array().unwrap_or(&empty) {
        let Some(name) = s(c, "/name") else { continue };
        let prev = before
            .iter()
            .find(|p| s(p, "/name") == Some(name))
            .unwrap_or(&Value::Null);
        let image = s(c, "/image").unwrap_or("");
        let pull = pulls.iter().find(|p| p.image == image);
        let waiting = s(c, "/state/waiting/reason");
        if waiting != s(prev, "/state/waiting/reason") {
            if pull.is_some_and(|p| p.millis.is_none()) {
                out.push(pulling(name, image));
            }
            let detail = s(c, "/state/waiting/message").unwrap_or("");
            match waiting {
                Some("ErrImagePull") => {
                    out.push(event(
                        name,
                        EventType::Warning,
                        "Failed",
                        format!("Failed to pull image \"{image}\": {detail}"),
                    ));
                    out.push(event(
                        name,
                        EventType::Warning,
                        "Failed",
                        "Error: ErrImagePull".into(),
                    ));
                }
                Some("ImagePullBackOff") => {
                    out.push(event(
                        name,
                        EventType::Normal,
                        "BackOff",
                        format!("Back-off pulling image \"{image}\""),
                    ));
                    out.push(event(
                        name,
                        EventType::Warning,
                        "Failed",
                        "Error: ImagePullBackOff".into(),
                    ));
                }
                Some("CrashLoopBackOff") => out.push(event(
                    name,
                    EventType::Warning,
                    "BackOff",
                    format!("Back-off restarting failed container {name} in pod {pod}"),
                )),
                _ => {}
            }
        }
        let started = s(c, "/state/running/startedAt");
        let running_now = c.pointer("/state/running").is_some_and(Value::is_object);
        let running_before = prev.pointer("/state/running").is_some_and(Value::is_object);
        if running_now && (!running_before || started != s(prev, "/state/running/startedAt")) {
            let first = c["restartCount"].as_u64().unwrap_or(0) == 0;
            out.extend(pulled(name, image, pull, first, prev.is_null()));
            out.push(event(
                name,
                EventType::Normal,
                "Created",
                format!("Created container: {name}"),
            ));
            out.push(event(
                name,
                EventType::Normal,
                "Started",
                format!("Started container {name}"),
            ));
        }
        // An OOM kill shows as the state, or as the last state once restarted.
        for state in ["state", "lastState"] {
            let t = format!("/{state}/terminated");
            let oom = s(c, &format!("{t}/reason")) == Some("OOMKilled");
            let finished = s(c, &format!("{t}/finishedAt"));
            let seen = ["state", "lastState"].iter().any(|p| {
                let pt = format!("/{p}/terminated");
                s(prev, &format!("{pt}/reason")) == Some("OOMKilled")
                    && s(prev, &format!("{pt}/finishedAt")) == finished
            });
            let reported = state == "lastState"
                && s(c, "/state/terminated/reason") == Some("OOMKilled")
                && s(c, "/state/terminated/finishedAt") == finished;
            if oom && !seen && !reported {
                out.push(event(
                    name,
                    EventType::Warning,
                    "OOMKilling",
                    format!(
                        "Memory cgroup out of memory: container {name} of pod {pod} was killed"
                    ),
                ));
            }
        }
        let ready = c["ready"].as_bool() == Some(true);
        let was_ready = prev["ready"].as_bool() == Some(true);
        if was_ready && !ready && running_now && started == s(prev, "/state/running/startedAt") {
            out.push(event(
                name,
                EventType::Warning,
                "Unhealthy",
                "Readiness probe failed".into(),
            ));
        }
    }
    out
}

/// `Killing` for each container of a pod that was running and is gone.
pub fn killing(containers: &[String]) -> Vec<PodEvent> {
    containers
        .iter()
        .map(|c| {
            event(
                c,
                EventType::Normal,
                "Killing",
                format!("Stopping container {c}"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(container: Value) -> Value {
        let mut c = container;
        c["name"] = "web".into();
        c["image"] = "nginx:1".into();
        json!({"phase": "Running", "containerStatuses": [c]})
    }

    fn reasons(events: &[PodEvent]) -> Vec<&str> {
        events.iter().map(|e| e.reason).collect()
    }

    const POD: &str = "web-1_default(u1)";

    #[test]
    fn a_container_that_starts_is_created_and_started_once() {
        let waiting = status(json!({"state": {"waiting": {"reason": "ContainerCreating"}}}));
        let running = status(json!({"state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}));
        let e = transitions(POD, &waiting, &running, &[]);
        assert_eq!(reasons(&e), ["Pulled", "Created", "Started"]);
        assert_eq!(
            e[0].message,
            "Container image \"nginx:1\" already present on machine"
        );
        assert_eq!(e[2].message, "Started container web");
        assert_eq!(e[2].container.as_deref(), Some("web"));
        assert!(
            transitions(POD, &running, &running, &[]).is_empty(),
            "no change, no event"
        );
    }

    #[test]
    fn pull_failures_and_crash_loops_are_warnings() {
        let none = json!({});
        let pull = status(
            json!({"state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}),
        );
        let e = transitions(POD, &none, &pull, &[]);
        assert_eq!(reasons(&e), ["Failed", "Failed"]);
        assert_eq!(e[0].message, "Failed to pull image \"nginx:1\": not found");
        assert_eq!(e[1].message, "Error: ErrImagePull");
        let backoff = status(json!({"state": {"waiting": {"reason": "ImagePullBackOff"}}}));
        assert_eq!(
            reasons(&transitions(POD, &pull, &backoff, &[])),
            ["BackOff", "Failed"]
        );
        let crash = status(json!({"state": {"waiting": {"reason": "CrashLoopBackOff"}}}));
        let e = transitions(POD, &none, &crash, &[]);
        assert_eq!(
            e[0].message,
            "Back-off restarting failed container web in pod web-1_default(u1)"
        );
        assert_eq!(e[0].type_, EventType::Warning);
    }

    #[test]
    fn an_oom_kill_is_reported_once_as_state_or_last_state() {
        let running = status(json!({"state": {"running": {"startedAt": "t0"}}}));
        let killed =
            status(json!({"state": {"terminated": {"reason": "OOMKilled", "finishedAt": "t1"}}}));
        assert_eq!(
            reasons(&transitions(POD, &running, &killed, &[])),
            ["OOMKilling"]
        );
        let restarted = status(json!({"state": {"running": {"startedAt": "t2"}},
            "lastState": {"terminated": {"reason": "OOMKilled", "finishedAt": "t1"}}}));
        assert_eq!(
            reasons(&transitions(POD, &killed, &restarted, &[])),
            ["Pulled", "Created", "Started"],
            "the same kill, seen before"
        );
        assert_eq!(
            reasons(&transitions(POD, &running, &restarted, &[])),
            ["Pulled", "Created", "Started", "OOMKilling"],
            "a kill only seen after the restart"
        );
    }

    #[test]
    fn readiness_lost_while_running_is_unhealthy() {
        let ready = status(json!({"ready": true, "state": {"running": {"startedAt": "t0"}}}));
        let unready = status(json!({"ready": false, "state": {"running": {"startedAt": "t0"}}}));
        assert_eq!(
            reasons(&transitions(POD, &ready, &unready, &[])),
            ["Unhealthy"]
        );
        assert!(transitions(POD, &unready, &ready, &[]).is_empty());
    }

    fn pull(millis: Option<u64>) -> ImagePull {
        ImagePull {
            image: "nginx:1".into(),
            millis,
            size: millis.map(|_| 71_002_415),
        }
    }

    #[test]
    fn a_pulled_image_is_pulling_then_pulled_then_present_on_restarts() {
        let none = json!({});
        let creating = status(json!({"state": {"waiting": {"reason": "ContainerCreating"}}}));
        let e = transitions(POD, &none, &creating, &[pull(None)]);
        assert_eq!(reasons(&e), ["Pulling"]);
        assert_eq!(e[0].message, "Pulling image \"nginx:1\"");
        let running = status(json!({"restartCount": 0, "state": {"running": {"startedAt": "t0"}}}));
        let e = transitions(POD, &creating, &running, &[pull(Some(1500))]);
        assert_eq!(reasons(&e), ["Pulled", "Created", "Started"]);
        assert_eq!(
            e[0].message,
            "Successfully pulled image \"nginx:1\" in 1.5s (1.5s including waiting). \
             Image size: 71002415 bytes."
        );
        let e = transitions(POD, &none, &running, &[pull(Some(80))]);
        assert_eq!(
            reasons(&e),
            ["Pulling", "Pulled", "Created", "Started"],
            "a pull that ended before any report still shows"
        );
        assert!(e[1].message.contains(" in 80ms "), "{}", e[1].message);
        let restarted =
            status(json!({"restartCount": 1, "state": {"running": {"startedAt": "t1"}}}));
        let e = transitions(POD, &running, &restarted, &[pull(Some(1500))]);
        assert_eq!(
            e[0].message, "Container image \"nginx:1\" already present on machine",
            "a restart pulls nothing"
        );
    }

    #[test]
    fn durations_read_as_go_prints_them() {
        let got: Vec<String> = [0, 523, 1000, 1500, 2004, 123_004, 3_723_500]
            .into_iter()
            .map(go_duration)
            .collect();
        assert_eq!(
            got,
            [
                "0s", "523ms", "1s", "1.5s", "2.004s", "2m3.004s", "1h2m3.5s"
            ]
        );
    }

    #[test]
    fn a_deleted_pod_stops_each_container() {
        let e = killing(&["web".into(), "side".into()]);
        assert_eq!(e[1].message, "Stopping container side");
        assert_eq!(e[0].reason, "Killing");
    }
}
