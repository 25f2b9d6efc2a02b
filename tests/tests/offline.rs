//! Offline autonomy: with the hub gone (killed for a minute), agents keep
//! their pods running and restart crashed containers locally; an agent
//! restarted meanwhile brings its pods back from local state; when the hub
//! returns, nothing healthy restarts.

use bramble_tests::eventually;
use std::path::Path;
use std::time::{Duration, Instant};

use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, IDLE, deployment};
use serde_json::Value;

/// Sum of every `restart_count`/`restartCount` in the agent's pod records
/// of pods whose id contains `pod`, and how many such records exist.
fn local_restarts(run_dir: &Path, pod: &str) -> (usize, u64) {
    fn sum(v: &Value) -> u64 {
        match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("restart_count" | "restartCount", Value::Number(n)) => n.as_u64().unwrap_or(0),
                    _ => sum(v),
                })
                .sum(),
            Value::Array(a) => a.iter().map(sum).sum(),
            _ => 0,
        }
    }
    let mut records = 0;
    let mut restarts = 0;
    for e in std::fs::read_dir(run_dir.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if !e.file_name().to_string_lossy().contains(pod) {
            continue;
        }
        if let Ok(bytes) = std::fs::read(e.path())
            && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
        {
            records += 1;
            // Each container is counted once, in its lifecycle record.
            restarts += v["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| sum(&c["record"]))
                .sum::<u64>();
        }
    }
    (records, restarts)
}

/// (name, containerID, startedAt, restartCount) of the ready pods of `app`.
fn identities(c: &Cluster, app: &str) -> Vec<(String, String, String, u64)> {
    let mut v: Vec<_> = c
        .pods(&format!("app={app}"))
        .iter()
        .map(|p| {
            let s = &p["status"]["containerStatuses"][0];
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                s["containerID"].as_str().unwrap_or("").to_string(),
                s["state"]["running"]["startedAt"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                s["restartCount"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn agents_keep_pods_while_the_hub_is_away_embedded_broker() {
    hub_away(Broker::Embedded);
}

/// With an external broker the agents stay connected while the hub is
/// gone; the returning hub adopts their sessions from their statuses.
#[test]
fn agents_keep_pods_while_the_hub_is_away_mosquitto() {
    hub_away(Broker::Mosquitto);
}

fn hub_away(broker: Broker) {
    let offline = Duration::from_secs(
        std::env::var("BRAMBLE_OFFLINE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let mut c = Cluster::start(broker, 2, &[]);
    c.push_busybox("busybox", "e2e");
    let client = c.client();
    let (code, v) = client.post(DEPLOYMENTS, &deployment("steady", 2, "busybox:e2e", IDLE));
    assert_eq!(code, 201, "{v}");
    let (code, v) = client.post(
        DEPLOYMENTS,
        &deployment("crashy", 1, "busybox:e2e", "sleep 2; exit 1"),
    );
    assert_eq!(code, 201, "{v}");
    eventually("steady pods ready", Duration::from_secs(90), || {
        (c.ready_pods("app=steady").len() == 2).then_some(())
    });
    eventually("the crashy pod to start", Duration::from_secs(60), || {
        c.pods("app=crashy")
            .iter()
            .any(|p| p["spec"]["nodeName"].is_string())
            .then_some(())
    });
    let before = identities(&c, "steady");
    let crashy_node = c.pods("app=crashy")[0]["spec"]["nodeName"]
        .as_str()
        .unwrap()
        .to_string();
    let crashy_agent = c.agents.iter().position(|a| a.name == crashy_node).unwrap();
    let restarts_before = local_restarts(&c.agents[crashy_agent].run_dir, "crashy").1;

    // The hub (and its embedded broker) goes away.
    c.hub.proc.kill9();
    let gone = Instant::now();

    // An agent restarted while the hub is down brings its pods back.
    let other = 1 - crashy_agent;
    c.agents[other].restart();
    eventually(
        "the restarted agent to restore its desired set",
        Duration::from_secs(30),
        || {
            let log = c.agents[other].proc.log();
            (log.contains("restoring the saved desired set") && log.contains("pod adopted"))
                .then_some(())
        },
    );
    let (records, _) = local_restarts(&c.agents[other].run_dir, "steady");
    assert!(
        records >= 1,
        "the restarted agent lost its pods: {}",
        c.agents[other].proc.log()
    );

    // Crashed containers are restarted locally meanwhile.
    eventually("local restarts of the crashy container", offline, || {
        (local_restarts(&c.agents[crashy_agent].run_dir, "crashy").1 > restarts_before)
            .then_some(())
    });
    // The scenario's length, not a wait for state: the hub stays away for
    // the whole `offline` period.
    std::thread::sleep(offline.saturating_sub(gone.elapsed()));
    for a in &mut c.agents {
        assert!(
            a.proc.running(),
            "agent {} exited: {}",
            a.name,
            a.proc.log()
        );
    }

    // The hub returns: the agents converge, nothing healthy restarted.
    c.hub.restart();
    for a in 0..2 {
        let name = c.agents[a].name.clone();
        c.wait_node_ready(&name, Duration::from_secs(60));
    }
    eventually(
        "the offline restarts to be reported",
        Duration::from_secs(30),
        || {
            let pods = c.pods("app=crashy");
            let n = pods.first()?["status"]["containerStatuses"][0]["restartCount"].as_u64()?;
            (n >= 2).then_some(())
        },
    );
    eventually(
        "the steady pods to be reported ready",
        Duration::from_secs(30),
        || (c.ready_pods("app=steady").len() == 2).then_some(()),
    );
    let after = identities(&c, "steady");
    assert_eq!(before, after, "healthy pods were restarted");
    let crashy = &c.pods("app=crashy")[0]["status"]["containerStatuses"][0];
    assert!(
        crashy["restartCount"].as_u64().unwrap_or(0) >= 2,
        "restarts while offline not reported: {crashy}"
    );
}
