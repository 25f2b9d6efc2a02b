//! The cap on open watches per token (`--max-watches-per-token`), with curl
//! as the watching client against a `bramble-hub` process: the watch over
//! the cap is answered 429 with the limit named, the others keep streaming,
//! and a slot comes back when a watcher goes away.

use bramble_tests::eventually;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bramble_tests::HubProcess;
use serde_json::json;

const WATCH: &str = "/api/v1/namespaces/default/configmaps?watch=true";

/// Killed on drop.
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl_args(hub: &HubProcess) -> Vec<String> {
    vec![
        "-sS".into(),
        "--cacert".into(),
        hub.data_dir.join("ca.crt").display().to_string(),
        "-H".into(),
        format!("Authorization: Bearer {}", hub.token),
    ]
}

/// A curl holding a watch open; returns once its first event arrived.
fn watcher(hub: &HubProcess) -> Watcher {
    let mut child = Command::new("curl")
        .args(curl_args(hub))
        .arg("-N")
        .arg(format!("{}{WATCH}", hub.url))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl is installed");
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.contains("\"ADDED\""),
        "the watch did not start: {first:?}"
    );
    Watcher(child)
}

/// One more watch attempt that gives up after a second: the HTTP code and the body.
fn try_watch(hub: &HubProcess) -> (String, String) {
    let out = Command::new("curl")
        .args(curl_args(hub))
        .args(["-m", "1", "-w", "\n%{http_code}"])
        .arg(format!("{}{WATCH}", hub.url))
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_string(), body.to_string())
}

#[test]
fn watches_over_the_per_token_cap_are_refused_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start_with_args(
        Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        dir.path(),
        "info",
        &["--max-watches-per-token", "3"],
    );
    let c = hub.client();
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}});
    assert_eq!(
        c.post("/api/v1/namespaces/default/configmaps", &cm("first"))
            .0,
        201
    );
    let mut open: Vec<Watcher> = (0..3).map(|_| watcher(&hub)).collect();

    let (code, body) = try_watch(&hub);
    assert_eq!(code, "429", "{body}");
    assert!(
        body.contains("too many open watches for this token")
            && body.contains("--max-watches-per-token 3"),
        "{body}"
    );
    // Other requests of the same token are served meanwhile.
    assert_eq!(c.get("/api/v1/namespaces/default/configmaps").0, 200);

    // One watcher goes; the hub notices at its next event and frees the slot.
    drop(open.pop());
    let mut n = 0;
    eventually("a freed watch slot", Duration::from_secs(30), || {
        n += 1;
        assert_eq!(
            c.post(
                "/api/v1/namespaces/default/configmaps",
                &cm(&format!("nudge-{n}"))
            )
            .0,
            201
        );
        (try_watch(&hub).0 == "200").then_some(())
    });
    drop(open);
}
