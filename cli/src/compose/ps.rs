//! `compose ps`: the project's pods in `docker compose ps`'s columns (NAME,
//! IMAGE, COMMAND, SERVICE, CREATED, STATUS, PORTS), with Docker's wording
//! (`Up 2 minutes (healthy)`, `Exited (0) 5 seconds ago`,
//! `192.168.1.5:8080->80/tcp`: the hub's load-balancer address). [`row`] is pure.

use std::io::Write;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::plan::{PROJECT_LABEL, PUBLISHED_SUFFIX, SERVICE_LABEL, namespace_of};
use crate::container_command::{ImageProcess, Images, shown, words};
use crate::context::Context;
use crate::table::Table;

pub const HEADERS: &[&str] = &[
    "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
];

/// Docker's `HumanDuration` (go-units): `Less than a second`, `5 seconds`,
/// `About a minute`, `3 minutes`, `About an hour`, `2 hours`, `4 days`, ...
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..60 => format!("{s} seconds"),
        60..120 => "About a minute".into(),
        _ if s < 3600 => format!("{} minutes", s / 60),
        _ if s < 7200 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 14 * 86400 => format!("{} days", s / 86400),
        _ if s < 60 * 86400 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 365 * 86400 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    }
}

fn since(ts: Option<&str>, now: SystemTime) -> Option<Duration> {
    let t = bramble_api::printing::age::parse_time(ts?)?;
    Some(now.duration_since(t).unwrap_or_default())
}

/// `Up 3 minutes (healthy)`, `Exited (1) 2 seconds ago`, `Created`.
pub fn status(pod: &Value, now: SystemTime) -> String {
    let cs = &pod["status"]["containerStatuses"][0];
    let state = &cs["state"];
    let probed = !pod["spec"]["containers"][0]["readinessProbe"].is_null();
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return "Removing".into();
    }
    if let Some(r) = state.get("running") {
        let up = since(r["startedAt"].as_str(), now)
            .map(human)
            .unwrap_or_default();
        let health = match (probed, cs["ready"].as_bool()) {
            (false, _) => "",
            (true, Some(true)) => " (healthy)",
            (true, _) if since(r["startedAt"].as_str(), now).is_some_and(|d| d.as_secs() < 30) => {
                " (health: starting)"
            }
            (true, _) => " (unhealthy)",
        };
        return format!("Up {up}{health}");
    }
    if let Some(t) = state.get("terminated") {
        let code = t["exitCode"].as_i64().unwrap_or(0);
        let ago = since(t["finishedAt"].as_str(), now)
            .map(human)
            .unwrap_or_default();
        return format!("Exited ({code}) {ago} ago");
    }
    if let Some(reason) = state["waiting"]["reason"]
        .as_str()
        .filter(|r| *r != "ContainerCreating")
    {
        return format!("Waiting ({reason})");
    }
    "Created".into()
}

/// `192.168.1.5:8080->80/tcp, 3306/tcp`: the published ports of the
/// service's LoadBalancer Service (on the address in its status, `0.0.0.0`
/// until the hub serves it), then its other container ports.
pub fn ports(pod: &Value, published: Option<&Value>) -> String {
    let mut out = Vec::new();
    let mut shown = Vec::new();
    // The address the hub serves them on, once it does (else docker's 0.0.0.0).
    let addr = published
        .and_then(|s| s["status"]["loadBalancer"]["ingress"][0]["ip"].as_str())
        .unwrap_or("0.0.0.0");
    for p in published
        .and_then(|s| s["spec"]["ports"].as_array())
        .into_iter()
        .flatten()
    {
        let proto = p["protocol"].as_str().unwrap_or("TCP").to_ascii_lowercase();
        out.push(format!("{addr}:{}->{}/{proto}", p["port"], p["targetPort"]));
        shown.push((p["targetPort"].as_i64(), proto));
    }
    for p in pod["spec"]["containers"][0]["ports"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let proto = p["protocol"].as_str().unwrap_or("TCP").to_ascii_lowercase();
        if let Some(h) = p["hostPort"].as_i64() {
            out.push(format!("0.0.0.0:{h}->{}/{proto}", p["containerPort"]));
        } else if !shown.contains(&(p["containerPort"].as_i64(), proto.clone())) {
            out.push(format!("{}/{proto}", p["containerPort"]));
        }
    }
    out.join(", ")
}

/// One row of `ps`; `image` is what the container's image runs by default.
pub fn row(
    pod: &Value,
    published: Option<&Value>,
    image: Option<&ImageProcess>,
    now: SystemTime,
) -> Vec<String> {
    let c = &pod["spec"]["containers"][0];
    let created = since(pod["metadata"]["creationTimestamp"].as_str(), now)
        .map(|d| format!("{} ago", human(d)))
        .unwrap_or_default();
    vec![
        pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
        c["image"].as_str().unwrap_or("").to_string(),
        shown(&words(c, image)),
        pod["metadata"]["labels"][SERVICE_LABEL]
            .as_str()
            .unwrap_or("")
            .to_string(),
        created,
        status(pod, now),
        ports(pod, published),
    ]
}

pub fn run(ctx: &Context, project: &str, out: &mut dyn Write) -> anyhow::Result<bool> {
    let ns = namespace_of(project);
    let sel = format!("{PROJECT_LABEL}={project}");
    let q = [("labelSelector", sel.as_str())];
    let mut pods = match ctx.client.get(&format!("/api/v1/namespaces/{ns}/pods"), &q) {
        Ok(v) => v["items"].as_array().cloned().unwrap_or_default(),
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let services = match ctx
        .client
        .get(&format!("/api/v1/namespaces/{ns}/services"), &q)
    {
        Ok(v) => v["items"].as_array().cloned().unwrap_or_default(),
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let key = |p: &Value| {
        (
            p["metadata"]["labels"][SERVICE_LABEL]
                .as_str()
                .unwrap_or("")
                .to_string(),
            p["metadata"]["name"].as_str().unwrap_or("").to_string(),
        )
    };
    pods.sort_by_key(key);
    let now = SystemTime::now();
    let mut images = Images::new(ctx);
    let mut t = Table::new(HEADERS.iter().map(|h| h.to_string()).collect());
    for pod in &pods {
        let svc = pod["metadata"]["labels"][SERVICE_LABEL]
            .as_str()
            .unwrap_or("");
        let lb = format!("{svc}{PUBLISHED_SUFFIX}");
        let published = services
            .iter()
            .find(|s| s["metadata"]["name"] == lb.as_str());
        let image = pod["spec"]["containers"][0]["image"].as_str().unwrap_or("");
        t.push(row(pod, published, images.process(image), now));
    }
    out.write_all(t.render(true).as_bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_read_as_docker_compose_ps() {
        let now = bramble_api::printing::age::parse_time("2026-12-07T12:10:00Z").unwrap();
        let pod = json!({
            "metadata": {"name": "web-5d8f-x2k", "creationTimestamp": "2026-12-07T12:05:00Z",
                         "labels": {SERVICE_LABEL: "web"}},
            "spec": {"containers": [{"image": "busybox:e2e", "command": ["sh", "-c", "httpd -f -p 80"],
                "readinessProbe": {}, "ports": [{"containerPort": 80, "protocol": "TCP"},
                                                {"containerPort": 53, "protocol": "UDP"}]}]},
            "status": {"containerStatuses": [{"ready": true, "state": {"running": {"startedAt": "2026-12-07T12:09:30Z"}}}]}
        });
        let lb = json!({"spec": {"ports": [{"port": 8080, "targetPort": 80, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.5"}]}}});
        assert_eq!(
            row(&pod, Some(&lb), None, now),
            [
                "web-5d8f-x2k",
                "busybox:e2e",
                "\"sh -c 'httpd -f -p …\"",
                "web",
                "5 minutes ago",
                "Up 30 seconds (healthy)",
                "192.168.1.5:8080->80/tcp, 53/udp"
            ]
        );
        let done = json!({"metadata": {"name": "j"}, "spec": {"containers": [{}]},
            "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 3, "finishedAt": "2026-12-07T12:09:58Z"}}}]}});
        assert_eq!(status(&done, now), "Exited (3) 2 seconds ago");
        assert_eq!(human(Duration::from_secs(90)), "About a minute");
        assert_eq!(human(Duration::from_secs(3 * 3600)), "3 hours");
    }
}
