//! The docker workflow's `run`, `ps`, `stop`, `start` and `rm` end to end:
//! the real `bramble` CLI against a real hub and agent, busybox `httpd` in
//! real containers, published ports reached with `curl` through the hub's
//! load balancer (on a loopback address of this test's own).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster};
use bramble_tests::eventually;

/// `curl` of `http://addr/`: (HTTP status, body), or `None` without an answer.
fn curl(addr: SocketAddr) -> Option<(String, String)> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}/"))
        .output()
        .expect("running curl");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.to_string(), body.trim().to_string()))
}

fn ok(c: &Cluster, args: &[&str]) -> String {
    let (ok, out) = c.cli(args);
    assert!(ok, "bramble {args:?} failed: {out}");
    out
}

fn fails(c: &Cluster, args: &[&str]) -> String {
    let (ok, out) = c.cli(args);
    assert!(!ok, "bramble {args:?} should have failed: {out}");
    out
}

/// Objects of the run `name` left in `default`: (kind, name).
fn leftovers(c: &Cluster, name: &str) -> Vec<String> {
    let selector = format!("bramble.dev/run={name}");
    let mut left = Vec::new();
    for path in [
        "/apis/apps/v1/namespaces/default/deployments",
        "/apis/apps/v1/namespaces/default/replicasets",
        "/api/v1/namespaces/default/pods",
        "/api/v1/namespaces/default/services",
    ] {
        let (code, v) = c.client().get(&format!("{path}?labelSelector={selector}"));
        assert_eq!(code, 200, "{v}");
        for o in v["items"].as_array().into_iter().flatten() {
            left.push(format!("{path}/{}", o["metadata"]["name"]));
        }
    }
    left
}

#[test]
fn run_publishes_a_port_and_ps_stop_start_rm_manage_it() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    let lb = c.hub.lb_address;

    // The issue's own example: busybox httpd answers through the hub.
    let out = ok(
        &c,
        &[
            "run", "web", "--image", "bb:1", "-p", "18082:80", "--", "httpd", "-f", "-p", "80",
        ],
    );
    assert!(out.contains("deployment.apps/web created"), "{out}");
    assert!(out.contains("service/web created"), "{out}");
    assert!(
        out.contains(&format!("web published on {lb}:18082->80/tcp")),
        "{out}"
    );
    // The node pulled bb:1 for it: the kubelet's Pulling and Pulled events.
    eventually("Pulling and Pulled events", Duration::from_secs(30), || {
        let (_, events) = c.client().get("/api/v1/namespaces/default/events");
        let seen = |reason: &str| {
            events["items"].as_array().is_some_and(|items| {
                items.iter().any(|e| {
                    e["reason"] == reason
                        && e["involvedObject"]["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with("web-"))
                        && e["message"].as_str().is_some_and(|m| m.contains("bb:1"))
                })
            })
        };
        (seen("Pulling") && seen("Pulled")).then_some(())
    });
    let web = SocketAddr::new(lb, 18082);
    let (code, _) = eventually(
        "httpd answering through the hub",
        Duration::from_secs(30),
        || curl(web),
    );
    assert!(
        code.starts_with('2') || code.starts_with('4'),
        "HTTP {code}"
    );

    // A name that is taken is refused before anything is created.
    let out = fails(&c, &["run", "web", "--image", "bb:1"]);
    assert!(out.contains("deployment.apps/web already exists"), "{out}");
    let out = fails(
        &c,
        &["run", "bad", "--image", "bb:1", "-p", "127.0.0.1:1:2"],
    );
    assert!(out.contains("--lb-address"), "{out}");
    assert!(leftovers(&c, "bad").is_empty());

    // Environment, a named volume and a working directory.
    let script = "echo $GREETING from $(hostname) > index.html; exec httpd -f -p 80";
    let out = ok(
        &c,
        &[
            "run",
            "site",
            "--image",
            "bb:1",
            "-p",
            "18083:80",
            "-e",
            "GREETING=hello",
            "-v",
            "site-data:/www",
            "-w",
            "/www",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert!(
        out.contains("persistentvolumeclaim/site-data created"),
        "{out}"
    );
    let site = SocketAddr::new(lb, 18083);
    let (code, body) = eventually("the site answering", Duration::from_secs(30), || curl(site));
    assert_eq!(code, "200");
    assert!(body.starts_with("hello from site-"), "{body}");

    // ps: one row per running pod, with its published port.
    let out = ok(&c, &["ps"]);
    let rows: Vec<&str> = out.lines().collect();
    assert!(
        rows[0].starts_with("NAME") && rows[0].contains("PORTS"),
        "{out}"
    );
    let site_row = rows
        .iter()
        .find(|r| r.starts_with("site-"))
        .unwrap_or_else(|| panic!("no site row: {out}"));
    assert!(
        site_row.contains("bb:1") && site_row.contains("Up "),
        "{out}"
    );
    assert!(site_row.contains(&format!("{lb}:18083->80/tcp")), "{out}");

    // stop: no pod, the port answers no more, ps -a says Stopped; start
    // brings it back with its volume's file.
    assert_eq!(ok(&c, &["stop", "site"]).trim(), "site");
    assert!(curl(site).is_none(), "a stopped run still answers");
    let out = ok(&c, &["ps", "-a"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("site ") && l.contains("Stopped")),
        "{out}"
    );
    let out = ok(&c, &["ps"]);
    assert!(!out.contains("site-"), "{out}");
    assert_eq!(ok(&c, &["start", "site"]).trim(), "site");
    let (_, body) = eventually("the site back", Duration::from_secs(30), || curl(site));
    assert!(body.starts_with("hello from site-"), "{body}");

    // rm refuses what runs, -f removes it, and nothing is left behind but
    // the named volume (as docker keeps it).
    let out = fails(&c, &["rm", "web"]);
    assert!(
        out.contains("web is running") && out.contains("bramble rm -f web"),
        "{out}"
    );
    assert_eq!(ok(&c, &["rm", "-f", "web", "site"]).trim(), "web\nsite");
    assert!(
        leftovers(&c, "web").is_empty(),
        "{:?}",
        leftovers(&c, "web")
    );
    assert!(
        leftovers(&c, "site").is_empty(),
        "{:?}",
        leftovers(&c, "site")
    );
    eventually("the ports closed", Duration::from_secs(30), || {
        [web, site]
            .iter()
            .all(|a| std::net::TcpStream::connect(a).is_err())
            .then_some(())
    });
    let out = fails(&c, &["rm", "web"]);
    assert!(out.contains("no such run"), "{out}");
    let (code, v) = c
        .client()
        .get("/api/v1/namespaces/default/persistentvolumeclaims/site-data");
    assert_eq!(code, 200, "the named volume is kept: {v}");
    let (code, v) = c
        .client()
        .delete("/api/v1/namespaces/default/persistentvolumeclaims/site-data");
    assert_eq!(code, 200, "{v}");
}
