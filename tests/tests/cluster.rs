//! The cluster end to end: a real hub (embedded broker, or mosquitto), three
//! real agents as separate processes with their own data dirs and node
//! names, real containers. Deployments spread and roll, DaemonSets follow
//! nodes, scale and undo work, a killed agent's pods move after the
//! eviction timeout and are fenced when it returns, a pod spending its
//! grace period, or waiting for a 200 MB pull over a slow link, holds up no
//! other pod of its node, an Indexed Job runs
//! every index to success (one of them again after a failure), container
//! restarts under `OnFailure` fail a Job past its backoff limit, a CronJob
//! runs at each time and keeps only its history limit of Jobs, and a
//! `Forbid` CronJob skips a run while its last one is still active.

use bramble_tests::eventually;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, IDLE, deployment};
use serde_json::{Value, json};

/// One cluster at a time: each is a hub and three agents on 2 cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn per_node(pods: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (_, node) in pods {
        *m.entry(node.clone()).or_insert(0) += 1;
    }
    m
}

fn cli(c: &Cluster, args: &[&str]) -> (bool, String) {
    c.cli(args)
}

fn spreads_rolls_scales(broker: Broker) {
    let _one = serial();
    let c = Cluster::start(broker, 3, &[]);
    c.push_busybox("busybox", "e2e");
    c.push_busybox("busybox", "e2e-v2");
    let client = c.client();

    // 6 replicas on 3 equal nodes: 2/2/2.
    let (code, v) = client.post(DEPLOYMENTS, &deployment("spread", 6, "busybox:e2e", IDLE));
    assert_eq!(code, 201, "{v}");
    let ready = eventually("6 ready replicas", Duration::from_secs(90), || {
        let r = c.ready_pods("app=spread");
        (r.len() == 6).then_some(r)
    });
    let spread = per_node(&ready);
    assert_eq!(spread.len(), 3, "{spread:?}");
    assert!(spread.values().all(|n| *n == 2), "{spread:?}");

    // A rolling update keeps at least replicas - maxUnavailable ready.
    // (A merge patch replaces the whole containers list: send it whole.)
    let mut containers =
        deployment("spread", 6, "busybox:e2e-v2", IDLE)["spec"]["template"]["spec"]["containers"]
            .clone();
    containers[0]["env"] = json!([{"name": "VERSION", "value": "2"}]);
    let (code, v) = client.merge_patch(
        &format!("{DEPLOYMENTS}/spread"),
        &json!({"spec": {"template": {"spec": {"containers": containers}}}}),
    );
    assert_eq!(code, 200, "{v}");
    let mut min_ready = usize::MAX;
    eventually("the rollout to finish", Duration::from_secs(120), || {
        let pods = c.pods("app=spread");
        let ready: Vec<&Value> = pods
            .iter()
            .filter(|p| p["status"]["phase"] == "Running" && bramble_tests::cluster::is_ready(p))
            .collect();
        min_ready = min_ready.min(ready.len());
        let new = ready
            .iter()
            .filter(|p| p["spec"]["containers"][0]["image"] == "busybox:e2e-v2")
            .count();
        if new == 6 && pods.len() == 6 {
            Ok(())
        } else {
            Err(format!("{pods:?}"))
        }
    });
    assert!(min_ready >= 5, "only {min_ready} ready during the rollout");
    let (ok, out) = cli(
        &c,
        &["rollout", "status", "deployment/spread", "--timeout", "60s"],
    );
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let (ok, out) = cli(&c, &["rollout", "history", "deployment", "spread"]);
    assert!(
        ok && out.lines().filter(|l| l.starts_with(['1', '2'])).count() == 2,
        "{out}"
    );

    // Undo returns to the first image.
    let (ok, out) = cli(&c, &["rollout", "undo", "deployment/spread"]);
    assert!(ok, "{out}");
    eventually("undo to the first image", Duration::from_secs(120), || {
        let pods = c.pods("app=spread");
        let back = pods
            .iter()
            .filter(|p| {
                p["spec"]["containers"][0]["image"] == "busybox:e2e"
                    && bramble_tests::cluster::is_ready(p)
            })
            .count();
        (back == 6 && pods.len() == 6).then_some(())
    });

    // Scale down to 3: one per node.
    let (ok, out) = cli(&c, &["scale", "deployment", "spread", "--replicas", "3"]);
    assert!(ok && out.contains("scaled"), "{out}");
    eventually("3 replicas", Duration::from_secs(60), || {
        (c.pods("app=spread").len() == 3 && c.ready_pods("app=spread").len() == 3).then_some(())
    });

    // A DaemonSet: one pod per node.
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "every"},
        "spec": {"selector": {"matchLabels": {"app": "every"}},
            "template": {"metadata": {"labels": {"app": "every"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "image": "busybox:e2e",
                    "command": ["sh", "-c", "echo daemon-up-on-$(hostname); trap 'exit 0' TERM; while true; do sleep 1; done"]}]}}}
    });
    let (code, v) = client.post("/apis/apps/v1/namespaces/default/daemonsets", &ds);
    assert_eq!(code, 201, "{v}");
    let ready = eventually("a daemon pod per node", Duration::from_secs(60), || {
        let r = c.ready_pods("app=every");
        (r.len() == 3).then_some(r)
    });
    assert_eq!(per_node(&ready).len(), 3, "{ready:?}");

    // Logs and exec through the hub and the agent (MQTT RPC).
    let pod = &ready[0].0;
    let (ok, out) = cli(&c, &["logs", pod, "--tail", "5"]);
    assert!(ok && out.contains("daemon-up-on-"), "{out}");
    let (ok, out) = cli(
        &c,
        &[
            "exec",
            pod,
            "--",
            "sh",
            "-c",
            "echo hello-from-exec; : exec-argv-marker; exit 3",
        ],
    );
    assert!(!ok && out.contains("hello-from-exec"), "{out}");
    // An exec's command line (it may carry a password) is in no log at info.
    for (who, log) in std::iter::once(("hub", c.hub.proc.log()))
        .chain(c.agents.iter().map(|a| (a.name.as_str(), a.proc.log())))
    {
        assert!(
            !log.contains("exec-argv-marker"),
            "{who} logged an exec's argv:\n{log}"
        );
    }
}

#[test]
fn cluster_spreads_rolls_and_scales_embedded_broker() {
    spreads_rolls_scales(Broker::Embedded);
}

#[test]
fn cluster_spreads_rolls_and_scales_mosquitto() {
    spreads_rolls_scales(Broker::Mosquitto);
}

fn node_loss(broker: Broker) {
    let _one = serial();
    let mut c = Cluster::start(broker, 3, &["--node-eviction-timeout", "5s"]);
    c.push_busybox("busybox", "e2e");
    let client = c.client();
    let (code, v) = client.post(DEPLOYMENTS, &deployment("survivor", 3, "busybox:e2e", IDLE));
    assert_eq!(code, 201, "{v}");
    let ready = eventually("3 ready replicas", Duration::from_secs(90), || {
        let r = c.ready_pods("app=survivor");
        (r.len() == 3).then_some(r)
    });
    assert_eq!(per_node(&ready).len(), 3, "{ready:?}");

    // kill -9 one agent: NotReady at once, from the broker's last will (not
    // after the heartbeat grace).
    let lost = c.agents[0].name.clone();
    let killed = Instant::now();
    c.agents[0].proc.kill9();
    let ready = eventually("the node to go NotReady", Duration::from_secs(10), || {
        let node = c.node(&lost)?;
        let ready = node["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?
            .clone();
        (ready["status"] != "True").then_some(ready)
    });
    eprintln!("NotReady after {:?}", killed.elapsed());
    assert_eq!(
        ready["message"], "Agent went offline (MQTT last will).",
        "{ready}"
    );

    // After the eviction timeout its pod runs elsewhere.
    let moved = eventually(
        "the lost pod to be replaced",
        Duration::from_secs(60),
        || {
            let r = c.ready_pods("app=survivor");
            (r.len() == 3 && r.iter().all(|(_, n)| *n != lost)).then_some(r)
        },
    );
    assert_eq!(moved.len(), 3);

    // The node returns: its replaced copy is stopped there (fenced).
    c.agents[0].restart();
    c.wait_node_ready(&lost, Duration::from_secs(30));
    let records = c.agents[0].run_dir.join("pods");
    eventually(
        "the fenced pod to stop on the returning node",
        Duration::from_secs(30),
        || {
            let left = std::fs::read_dir(&records)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.file_name().to_string_lossy().contains("survivor"))
                        .count()
                })
                .unwrap_or(0);
            (left == 0).then_some(())
        },
    );
    assert_eq!(c.ready_pods("app=survivor").len(), 3);
}

#[test]
fn cluster_node_loss_embedded_broker() {
    node_loss(Broker::Embedded);
}

#[test]
fn cluster_node_loss_mosquitto() {
    node_loss(Broker::Mosquitto);
}

#[test]
fn cluster_autoscales_a_cpu_burning_workload_up_and_down() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    let client = c.client();
    // Each replica burns a core for its first 30 s, then idles.
    let mut d = deployment("burn", 1, "busybox:e2e", IDLE);
    d["spec"]["template"]["spec"]["containers"][0]["command"] = json!([
        "sh",
        "-c",
        "end=$(( $(date +%s) + 30 )); while [ $(date +%s) -lt $end ]; do :; done; trap 'exit 0' TERM; while true; do sleep 1; done"
    ]);
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "100m", "memory": "8Mi"}});
    let (code, v) = client.post(DEPLOYMENTS, &d);
    assert_eq!(code, 201, "{v}");
    let hpa = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "burn"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burn"},
            "minReplicas": 1, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}
        }
    });
    let (code, v) = client.post(
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
        &hpa,
    );
    assert_eq!(code, 201, "{v}");
    let started = Instant::now();
    let replicas = || {
        c.client().get(&format!("{DEPLOYMENTS}/burn")).1["spec"]["replicas"]
            .as_i64()
            .unwrap_or(0)
    };
    eventually(
        "the autoscaler to scale up to 3",
        Duration::from_secs(60),
        || (replicas() == 3).then_some(()),
    );
    let (ok, out) = cli(&c, &["top", "pods"]);
    assert!(ok && out.contains("burn-"), "{out}");
    eprintln!("scaled up to 3 at {:?}:\n{out}", started.elapsed());
    eventually(
        "the autoscaler to scale back down to 1",
        Duration::from_secs(120),
        || (replicas() == 1).then_some(()),
    );
    let (_, h) =
        client.get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/burn");
    assert_eq!(h["status"]["desiredReplicas"], 1, "{h}");
}

#[test]
fn cluster_keeps_pods_of_another_platform_pending_with_the_reason() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    // An image built for a platform no node has (this host is not s390x).
    let only = bramble_tests::fixtures::platform_image(
        "linux/s390x",
        &[("hello", b"hi\n", 0o644)],
        &["/hello"],
    );
    let image = bramble_tests::fixtures::MultiImage::new(vec![only]);
    bramble_tests::fixtures::push(
        &c.hub.url,
        &c.hub.token,
        &c.hub.ca_pem(),
        "mainframe",
        "1",
        &image,
    )
    .unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big-iron"},
        "spec": {"containers": [{"name": "main", "image": "mainframe:1"}]}});
    let (code, v) = c.client().post("/api/v1/namespaces/default/pods", &pod);
    assert_eq!(code, 201, "{v}");
    let message = eventually(
        "the pod to be unschedulable",
        Duration::from_secs(20),
        || {
            let (_, p) = c.client().get("/api/v1/namespaces/default/pods/big-iron");
            p["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
                .and_then(|c| c["message"].as_str().map(str::to_string))
        },
    );
    assert!(message.starts_with("0/1 nodes are available"), "{message}");
    assert!(message.contains("linux/s390x"), "{message}");
    let (_, p) = c.client().get("/api/v1/namespaces/default/pods/big-iron");
    assert!(p["spec"]["nodeName"].is_null(), "{p}");
}

fn pod_phase(c: &Cluster, name: &str) -> Option<String> {
    let (code, p) = c
        .client()
        .get(&format!("/api/v1/namespaces/default/pods/{name}"));
    (code == 200)
        .then(|| p["status"]["phase"].as_str().map(str::to_string))
        .flatten()
}

#[test]
fn cluster_a_pod_starts_while_another_on_its_node_spends_its_grace_period() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    let token = bramble_tests::cluster::unique("ignores-term");
    let pod = |name: &str, script: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 30,
                "containers": [{"name": "main", "image": "busybox:e2e",
                    "command": ["sh", "-c", script]}]}})
    };
    let pods = "/api/v1/namespaces/default/pods";
    let stubborn = format!("trap '' TERM; : {token}; while true; do sleep 1; done");
    let (code, v) = c.client().post(pods, &pod("stubborn", &stubborn));
    assert_eq!(code, 201, "{v}");
    eventually("the stubborn pod running", Duration::from_secs(60), || {
        (pod_phase(&c, "stubborn").as_deref() == Some("Running")).then_some(())
    });
    let pids = bramble_tests::procs::processes_with(&token);
    assert!(!pids.is_empty(), "no process of the stubborn pod");

    // Deleted (SIGTERM ignored: 30 s of grace on the node) while another
    // pod is created on the same node.
    let (code, v) = c.client().delete(&format!("{pods}/stubborn"));
    assert!(code == 200 || code == 202, "{code} {v}");
    let (code, v) = c.client().post(pods, &pod("fresh", IDLE));
    assert_eq!(code, 201, "{v}");
    eventually("the fresh pod running", Duration::from_secs(60), || {
        (pod_phase(&c, "fresh").as_deref() == Some("Running")).then_some(())
    });
    let left: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|p| bramble_tests::procs::processes_with(&token).contains(p))
        .collect();
    assert!(
        !left.is_empty(),
        "the fresh pod ran only after the stubborn one's grace period"
    );
    // Its stop ends when its process does.
    for pid in left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    eventually(
        "the stubborn pod's processes gone",
        Duration::from_secs(60),
        || {
            bramble_tests::procs::processes_with(&token)
                .is_empty()
                .then_some(())
        },
    );
}

/// `n` bytes no compressor shrinks (xorshift64).
fn incompressible(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

#[test]
fn cluster_a_cached_pod_starts_while_a_200_mb_pull_is_in_flight() {
    let _one = serial();
    let mut c = Cluster::start(Broker::Embedded, 0, &[]);
    c.push_busybox("busybox", "e2e");
    let big = incompressible(200 << 20);
    let image = bramble_tests::busybox::busybox_here_with(&[bramble_tests::fixtures::Entry::File(
        "data/blob",
        &big,
        0o644,
    )])
    .expect("the big image");
    drop(big);
    bramble_tests::fixtures::push(
        &c.hub.url,
        &c.hub.token,
        &c.hub.ca_pem(),
        "big",
        "1",
        &image,
    )
    .expect("pushing the big image");
    drop(image);
    // The board reaches the hub over a 10 MiB/s link: 200 MB take 20 s.
    let hub_port: u16 = c
        .hub
        .lan_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the hub's port");
    let link =
        bramble_tests::throttle::Throttle::start(([127, 0, 0, 1], hub_port).into(), 10 << 20);
    let direct = std::mem::replace(
        &mut c.hub.lan_url,
        format!("https://127.0.0.1:{}", link.addr().port()),
    );
    let node = bramble_tests::cluster::unique("slow");
    c.add_agent(&node);
    c.hub.lan_url = direct;
    c.wait_node_ready(&node, Duration::from_secs(60));
    let pods = "/api/v1/namespaces/default/pods";
    let pod = |name: &str, image: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 0,
                "containers": [{"name": "main", "image": image, "command": ["sh", "-c", IDLE]}]}})
    };
    // busybox is on the board once a first pod ran it.
    assert_eq!(c.client().post(pods, &pod("warm", "busybox:e2e")).0, 201);
    eventually("the warm pod running", Duration::from_secs(60), || {
        (pod_phase(&c, "warm").as_deref() == Some("Running")).then_some(())
    });
    assert_eq!(c.client().post(pods, &pod("big", "big:1")).0, 201);
    eventually("the big pull under way", Duration::from_secs(60), || {
        let (_, p) = c.client().get(&format!("{pods}/big"));
        let waiting = &p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"];
        (waiting == "ContainerCreating")
            .then_some(())
            .ok_or_else(|| p["status"].to_string())
    });
    assert_eq!(c.client().post(pods, &pod("cached", "busybox:e2e")).0, 201);
    eventually("the cached pod running", Duration::from_secs(60), || {
        (pod_phase(&c, "cached").as_deref() == Some("Running")).then_some(())
    });
    assert_ne!(
        pod_phase(&c, "big").as_deref(),
        Some("Running"),
        "the cached pod started only after the pull"
    );
    // And the pull completes.
    eventually("the big pod running", Duration::from_secs(300), || {
        (pod_phase(&c, "big").as_deref() == Some("Running")).then_some(())
    });
}

const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";

/// The pods of Job `job`.
fn job_pods(c: &Cluster, job: &str) -> Vec<Value> {
    c.pods(&format!("batch.kubernetes.io/job-name={job}"))
}

/// `status.phase` and the completion index of each pod.
fn phases_by_index(pods: &[Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pods
        .iter()
        .map(|p| {
            (
                p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                p["status"]["phase"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn cluster_runs_an_indexed_job_whose_index_2_fails_once() {
    let _one = serial();
    // The pods share this directory: index 2 fails the first time only.
    let data = tempfile::Builder::new()
        .prefix("bramble-job-data-")
        .tempdir()
        .expect("tempdir");
    let path = data.path().to_str().unwrap().to_string();
    let c = Cluster::start(Broker::Embedded, 1, &["--allowed-host-paths", &path]);
    c.push_busybox("busybox", "e2e");
    let script = r#"if [ "$JOB_COMPLETION_INDEX" = 2 ] && [ ! -e /data/failed ]; then touch /data/failed; exit 1; fi"#;
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "idx"},
        "spec": {"completions": 5, "parallelism": 2, "completionMode": "Indexed",
            "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "busybox:e2e",
                    "command": ["sh", "-c", script],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "hostPath": {"path": path, "type": "Directory"}}]}}}});
    let (code, v) = c.client().post(JOBS, &job);
    assert_eq!(code, 201, "{v}");
    let status = eventually("the Job complete", Duration::from_secs(150), || {
        let (_, j) = c.client().get(&format!("{JOBS}/idx"));
        let done = j["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True");
        done.then(|| j["status"].clone())
    });
    assert_eq!(status["succeeded"], 5, "{status}");
    assert_eq!(status["failed"], 1, "{status}");
    assert_eq!(status["completedIndexes"], "0-4", "{status}");
    assert!(status["completionTime"].is_string(), "{status}");
    assert!(data.path().join("failed").exists());
    // Every pod is kept as the record: one failed try of index 2.
    let pods = job_pods(&c, "idx");
    let want: Vec<(String, String)> = [
        ("0", "Succeeded"),
        ("1", "Succeeded"),
        ("2", "Failed"),
        ("2", "Succeeded"),
        ("3", "Succeeded"),
        ("4", "Succeeded"),
    ]
    .iter()
    .map(|(i, p)| (i.to_string(), p.to_string()))
    .collect();
    assert_eq!(phases_by_index(&pods), want);
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap();
        let index = p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap();
        assert!(name.starts_with(&format!("idx-{index}-")), "{name}");
    }

    // The job-controller's events, on the Job.
    eventually("the Job's events", Duration::from_secs(30), || {
        let (_, events) = c
            .client()
            .get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Didx");
        let reasons: Vec<String> = events["items"]
            .as_array()?
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or("").to_string())
            .collect();
        (reasons.iter().any(|r| r == "SuccessfulCreate")
            && reasons.iter().any(|r| r == "Completed"))
        .then_some(())
    });

    // The Job goes, and its pods with it.
    let (code, v) = c.client().delete(&format!("{JOBS}/idx"));
    assert_eq!(code, 200, "{v}");
    eventually("the Job's pods gone", Duration::from_secs(60), || {
        job_pods(&c, "idx").is_empty().then_some(())
    });

    // A Job with ttlSecondsAfterFinished goes by itself once finished.
    let ttl = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"ttlSecondsAfterFinished": 2,
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:e2e", "command": ["true"]}]}}}});
    let (code, v) = c.client().post(JOBS, &ttl);
    assert_eq!(code, 201, "{v}");
    eventually(
        "the finished Job and its pod gone",
        Duration::from_secs(90),
        || {
            let gone = c.client().get(&format!("{JOBS}/once")).0 == 404;
            (gone && job_pods(&c, "once").is_empty()).then_some(())
        },
    );
}

#[test]
fn cluster_cronjobs_run_on_schedule_keep_their_history_and_forbid_skips_a_busy_time() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    let cronjobs = "/apis/batch/v1/namespaces/default/cronjobs";
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "busybox:e2e",
                    "command": ["sh", "-c", "sleep 100"]}]}}}}}});
    let (code, v) = c.client().post(cronjobs, &cron);
    assert_eq!(code, 201, "{v}");
    // Beside it, one that allows overlaps and keeps one successful Job.
    let twice = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "twice"},
        "spec": {"schedule": "*/1 * * * *", "successfulJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:e2e", "command": ["true"]}]}}}}}});
    let (code, v) = c.client().post(cronjobs, &twice);
    assert_eq!(code, 201, "{v}");
    let all_jobs = |prefix: &str| -> Vec<Value> {
        let (_, l) = c.client().get(JOBS);
        l["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|j| {
                j["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(prefix)
            })
            .collect()
    };
    let jobs = || all_jobs("tick-");
    let first = eventually("the first scheduled Job", Duration::from_secs(90), || {
        jobs().into_iter().next()
    });
    let scheduled =
        first["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
            .as_str()
            .unwrap()
            .to_string();
    let at = bramble_api::printing::age::parse_time(&scheduled).unwrap();
    let minutes = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 60;
    assert_eq!(first["metadata"]["name"], format!("tick-{minutes}"));
    eventually(
        "the first Job's pod running",
        Duration::from_secs(60),
        || {
            job_pods(&c, &format!("tick-{minutes}"))
                .iter()
                .any(|p| p["status"]["phase"] == "Running")
                .then_some(())
        },
    );

    // The next time passes while the first Job sleeps: no second Job.
    let next = at + Duration::from_secs(60);
    while std::time::SystemTime::now() < next + Duration::from_secs(15) {
        let names: Vec<String> = jobs()
            .iter()
            .map(|j| j["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(names, [format!("tick-{minutes}")]);
        std::thread::sleep(Duration::from_secs(1));
    }
    let (_, cj) = c.client().get(&format!("{cronjobs}/tick"));
    assert_eq!(cj["status"]["lastScheduleTime"], scheduled.as_str(), "{cj}");
    assert_eq!(
        cj["status"]["active"][0]["name"],
        format!("tick-{minutes}"),
        "{cj}"
    );
    let (_, j) = c.client().get(&format!("{JOBS}/tick-{minutes}"));
    assert_eq!(j["status"]["active"], 1, "{j}");

    // The other ran at each time and kept only its last successful Job.
    let name_minute = |j: &Value| -> u64 {
        j["metadata"]["name"]
            .as_str()
            .and_then(|n| n.strip_prefix("twice-"))
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    };
    let first_twice = eventually("twice's first Job", Duration::from_secs(60), || {
        all_jobs("twice-").iter().map(name_minute).min()
    });
    eventually(
        "twice's second run, its first Job gone",
        Duration::from_secs(120),
        || {
            let kept = all_jobs("twice-");
            let ok = kept.len() == 1
                && name_minute(&kept[0]) > first_twice
                && kept[0]["status"]["succeeded"] == 1;
            ok.then_some(()).ok_or_else(|| format!("{kept:?}"))
        },
    );
    let (_, cj) = c.client().get(&format!("{cronjobs}/twice"));
    assert!(cj["status"]["lastSuccessfulTime"].is_string(), "{cj}");

    // The CronJob goes, and its Job and pod with it.
    let (code, v) = c.client().delete(&format!("{cronjobs}/tick"));
    assert_eq!(code, 200, "{v}");
    eventually(
        "the CronJob's Job and pod gone",
        Duration::from_secs(60),
        || (jobs().is_empty() && job_pods(&c, &format!("tick-{minutes}")).is_empty()).then_some(()),
    );
    let (code, v) = c.client().delete(&format!("{cronjobs}/twice"));
    assert_eq!(code, 200, "{v}");
    eventually("twice's Jobs gone", Duration::from_secs(60), || {
        all_jobs("twice-").is_empty().then_some(())
    });
}

#[test]
fn cluster_counts_on_failure_restarts_against_the_backoff_limit() {
    let _one = serial();
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "e2e");
    // The agent restarts the container in place; each restart is a failure.
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "crash"},
        "spec": {"backoffLimit": 1,
            "template": {"spec": {"restartPolicy": "OnFailure", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "busybox:e2e",
                    "command": ["sh", "-c", "exit 3"]}]}}}});
    let (code, v) = c.client().post(JOBS, &job);
    assert_eq!(code, 201, "{v}");
    let status = eventually("the Job failed", Duration::from_secs(120), || {
        let (_, j) = c.client().get(&format!("{JOBS}/crash"));
        let failed = j["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Failed" && c["status"] == "True")?
            .clone();
        Some((failed, j["status"].clone()))
    });
    assert_eq!(status.0["reason"], "BackoffLimitExceeded", "{}", status.1);
    // No pod failed: the restarts counted, and the running pod was stopped.
    assert!(status.1["failed"].is_null(), "{}", status.1);
    eventually("the Job's pod stopped", Duration::from_secs(60), || {
        job_pods(&c, "crash").is_empty().then_some(())
    });
}
