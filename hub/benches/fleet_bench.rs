//! Fleet simulator: prints figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-hub --bench fleet_bench` starts the
//! `bramble-hub` binary of its profile (release; debug with `--profile dev`;
//! temp data dir, free ports) and joins N simulated
//! agents to it, each a real rumqttc connection in this process. The agents
//! speak the real protocol (online retained + last will, hello with the join
//! token until an accepted helloAck, a full `status` heartbeat every second
//! with jittered start) and "run" every pod of each `desired` at once: Running,
//! Ready, containers ready, `observedGeneration` = the desired generation. No
//! containers run. Measured, per broker:
//! - time until all N nodes are Ready in `GET /api/v1/nodes`;
//! - hub RSS (and broker RSS for mosquitto) idle after the join and after the
//!   pods, and hub CPU seconds per phase (`/proc/PID/stat`);
//! - a Deployment of P replicas (10m / 8Mi): time until `readyReplicas == P`,
//!   in pods/s;
//! - node-failure detection: one agent's connection is dropped without
//!   DISCONNECT (the broker publishes its last will); time until the Node's
//!   Ready condition is no longer True.
//!
//! Environment: `FLEET_NODES` (default 1000), `FLEET_PODS` (default 10000),
//! `FLEET_BROKERS` (default `embedded,mosquitto`), `FLEET_BATCH` (agents
//! connected at once, default 50), `FLEET_HUB_LOG` (hub `--log`, default
//! `warn`). `BENCH_QUICK=1`: 20 nodes, 40 pods, 1 s CPU profiles instead of
//! 5 s, both brokers (the variables above override it). Needs `ulimit -n`
//! above about 2.5 x N (checked at start).
//!
//! Length: over 600 lines because one benchmark program (the fleet
//! simulator): its simulated agents, phases and printed figures belong
//! together.

use bramble_tests::eventually;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bramble_api::protocol::hello::HelloAck;
use bramble_api::protocol::{
    Cgroups, Desired, FromHub, Hello, HelloAuth, HubKey, HubMessage, MAX_PACKET_BYTES, Online,
    Platform, PodReport, Status, Topic, TopicKind, decode_from_hub, encode_frame, keys_text,
    topics,
};
use bramble_tests::cluster::Proc;
use bramble_tests::mosquitto::Mosquitto;
use bramble_tests::ports::probed_port as free_port;
use bramble_tests::{Client, bench};
use bramble_trust::login::{Service, join_login, key_password};
use bramble_trust::{JoinToken, PublicKeys, SecretKeys};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Seconds of each per-thread CPU profile.
fn profile_secs() -> u64 {
    bench::pick(5, 1)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// VmRSS of `pid` in MiB.
fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// utime + stime of `pid` in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (get(11) + get(12)) / tick
}

/// CPU seconds of each thread of `pid`, summed by thread name.
fn thread_cpu(pid: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        *out.entry(comm.trim().to_string()).or_default() += (get(11) + get(12)) / 100.0;
    }
    out
}

/// Per-thread-name CPU of `pid` over `secs`, as "name N%" by decreasing use.
fn thread_profile(pid: u32, secs: u64) -> String {
    let a = thread_cpu(pid);
    std::thread::sleep(Duration::from_secs(secs));
    let b = thread_cpu(pid);
    let mut d: Vec<(String, f64)> = b
        .into_iter()
        .map(|(k, v)| {
            let before = a.get(&k).copied().unwrap_or(0.0);
            (k, (v - before) / secs as f64 * 100.0)
        })
        .filter(|(_, v)| *v >= 1.0)
        .collect();
    d.sort_by(|x, y| y.1.total_cmp(&x.1));
    d.iter()
        .map(|(k, v)| format!("{k} {v:.0}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a simulated agent sees from its event loop.
enum Seen {
    Message(String, Vec<u8>),
}

/// One simulated board: an MQTT connection and its driver task.
struct SimAgent {
    name: String,
    eventloop: JoinHandle<()>,
    driver: JoinHandle<()>,
}

impl SimAgent {
    /// Kills the connection without DISCONNECT: the broker sends the will.
    fn drop_abruptly(&self) {
        self.eventloop.abort();
        self.driver.abort();
    }
}

impl Drop for SimAgent {
    fn drop(&mut self) {
        self.drop_abruptly();
    }
}

fn hello(node: &str, session: &str, keys: &SecretKeys) -> Hello {
    Hello {
        node_name: node.into(),
        session: session.into(),
        agent_version: "0.1.0".into(),
        platform: Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: "v8".into(),
        },
        kernel_version: "6.6.31+rpt-rpi-v8".into(),
        os_image: "Debian GNU/Linux 12 (bookworm)".into(),
        cpus: 4,
        memory_bytes: 4 * 1024 * 1024 * 1024,
        cgroups: Cgroups {
            version: 2,
            controllers: ["cpu", "cpuset", "io", "memory", "pids"]
                .map(String::from)
                .to_vec(),
        },
        runtime: "libcontainer".into(),
        incarnation: 1,
        keys: keys_text(keys.public()),
        auth: HelloAuth::Key,
        ..Default::default()
    }
}

/// A connection of a simulated board: its client, the event loop task and
/// the publications it receives.
struct SimConnection {
    client: AsyncClient,
    eventloop: JoinHandle<()>,
    rx: mpsc::UnboundedReceiver<Seen>,
}

/// Connects as `client_id` with `username` and `password` (and `will`),
/// subscribed to `filters`.
async fn sim_connect(
    addr: &(String, u16),
    (client_id, username, password): (&str, &str, &str),
    will: Option<LastWill>,
    filters: Vec<String>,
) -> Result<SimConnection, String> {
    let name = client_id;
    let mut o = MqttOptions::new(client_id, addr.0.clone(), addr.1);
    o.set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
        .set_credentials(username, password)
        .set_clean_session(true);
    if let Some(w) = will {
        o.set_last_will(w);
    }
    let (client, mut eventloop) = AsyncClient::new(o, 64);
    eventloop.network_options.set_tcp_nodelay(true);
    let (tx, rx) = mpsc::unbounded_channel();
    let (conn_tx, conn_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let el = tokio::spawn(async move {
        let mut conn_tx = Some(conn_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(t) = conn_tx.take() {
                        let _ = t.send(Ok(()));
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(Seen::Message(p.topic, p.payload.to_vec())).is_err() {
                        return;
                    }
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(e) => {
                    if let Some(t) = conn_tx.take() {
                        let _ = t.send(Err(e.to_string()));
                        return;
                    }
                    eprintln!("agent connection error (rumqttc reconnects): {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(60), conn_rx).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(format!("{name}: connect: {e}")),
        _ => return Err(format!("{name}: no CONNACK")),
    }
    for f in filters {
        client
            .subscribe(f, QoS::AtLeastOnce)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(SimConnection {
        client,
        eventloop: el,
        rx,
    })
}

/// Says `hello` on `conn` until the hub answers its session; returns the
/// heartbeat, the hub's keys and what else arrived meanwhile.
async fn say_hello(
    conn: &mut SimConnection,
    name: &str,
    keys: &SecretKeys,
    hello: &Hello,
    hub: HubKey<'_>,
) -> Result<(Duration, PublicKeys, Vec<(String, Vec<u8>)>), String> {
    let topic = Topic::new(name, TopicKind::Hello).map_err(|e| e.to_string())?;
    let h = encode_frame(keys, &topic, hello, None).map_err(|e| e.to_string())?;
    let mut early: Vec<(String, Vec<u8>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let _ = conn
            .client
            .publish(topic.to_string(), QoS::AtLeastOnce, false, h.clone())
            .await;
        let retry = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(seen)) = tokio::time::timeout_at(retry, conn.rx.recv()).await {
            let Seen::Message(topic, payload) = seen;
            match decode_from_hub(name, &topic, &payload, hub, keys) {
                Ok(FromHub {
                    message: HubMessage::HelloAck(HelloAck::Accepted(a)),
                    hub,
                }) if a.session == hello.session => {
                    let beat = Duration::from_millis(a.heartbeat_millis.unwrap_or(1000));
                    return Ok((beat, hub, early));
                }
                Ok(FromHub {
                    message: HubMessage::HelloAck(HelloAck::Refused(r)),
                    ..
                }) if r.session == hello.session => {
                    return Err(format!("{name}: refused: {:?} {}", r.code, r.reason));
                }
                _ => early.push((topic, payload)),
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{name}: no helloAck"));
        }
    }
}

/// The report of pod `p` running on node number `idx`.
fn running(p: &bramble_api::objects::Pod, idx: usize, k: usize) -> PodReport {
    let now = now_rfc3339();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
    let containers: Vec<Value> = p
        .spec
        .containers
        .iter()
        .map(|c| {
            json!({"name": c.name, "ready": true, "started": true, "restartCount": 0,
                "image": c.image, "imageID": "sha256:0000",
                "state": {"running": {"startedAt": now}}})
        })
        .collect();
    let status = json!({
        "phase": "Running",
        "conditions": [cond("PodScheduled"), cond("Initialized"), cond("ContainersReady"), cond("Ready")],
        "hostIP": format!("10.77.{}.{}", idx / 250, idx % 250 + 1),
        "podIP": format!("10.{}.{}.{}", 100 + idx / 250, idx % 250, k % 250 + 2),
        "startTime": now,
        "containerStatuses": containers,
    });
    PodReport {
        namespace: p.namespace().to_string(),
        name: p.name().to_string(),
        uid: p.metadata.uid.clone().unwrap_or_default(),
        status: serde_json::from_value(status).expect("pod status"),
        usage: None,
        pulls: Vec::new(),
    }
}

/// Connects agent `idx` and returns once its hello was accepted (or failed).
async fn start_agent(
    addr: (String, u16),
    idx: usize,
    token: String,
    accepted: Arc<AtomicUsize>,
) -> Result<SimAgent, String> {
    let name = format!("sim-{idx:04}");
    let session = format!("{:x}-{idx}", std::process::id());
    let token = JoinToken::parse(&token).map_err(|e| e.to_string())?;
    let keys = SecretKeys::generate().map_err(|e| e.to_string())?;
    // Join as agents do: a token login that may only say hello, then the
    // board's key login with its signed last will.
    let ack_topic = Topic::new(&name, TopicKind::HelloAck)
        .map_err(|e| e.to_string())?
        .to_string();
    let join = join_login(&token, &name);
    let mut joining = sim_connect(
        &addr,
        (&join.client_id, &join.username, &join.password),
        None,
        vec![ack_topic],
    )
    .await?;
    let mut first = hello(&name, &session, &keys);
    first.prove_token(&token);
    let (_, hub, _) = say_hello(
        &mut joining,
        &name,
        &keys,
        &first,
        HubKey::Expected(token.hub()),
    )
    .await?;
    let _ = joining.client.disconnect().await;
    let _ = joining.eventloop.await;
    let will_topic = Topic::new(&name, TopicKind::Online).map_err(|e| e.to_string())?;
    let will = LastWill::new(
        will_topic.to_string(),
        encode_frame(&keys, &will_topic, &Online::last_will(&session, 2), None)
            .map_err(|e| e.to_string())?,
        QoS::AtLeastOnce,
        true,
    );
    let password = key_password(&keys, &hub, Service::Mqtt, &name)
        .ok_or_else(|| format!("{name}: the hub's key is unusable"))?;
    let mut conn = sim_connect(
        &addr,
        (&name, &name, &password),
        Some(will),
        topics::agent_subscriptions(&name).map_err(|e| e.to_string())?,
    )
    .await?;
    let publish = |client: &AsyncClient, topic: String, retain: bool, payload: Vec<u8>| {
        let client = client.clone();
        async move {
            let _ = client
                .publish(topic, QoS::AtLeastOnce, retain, payload)
                .await;
        }
    };
    let status_t = Topic::new(&name, TopicKind::Status).map_err(|e| e.to_string())?;
    publish(
        &conn.client,
        will_topic.to_string(),
        true,
        encode_frame(&keys, &will_topic, &Online::up(&session, 2), None)
            .map_err(|e| e.to_string())?,
    )
    .await;
    let (heartbeat, hub, early) = say_hello(
        &mut conn,
        &name,
        &keys,
        &hello(&name, &session, &keys),
        HubKey::Pinned(&hub),
    )
    .await?;
    let SimConnection {
        client,
        eventloop: el,
        mut rx,
    } = conn;
    accepted.fetch_add(1, Ordering::Relaxed);
    let driver = tokio::spawn({
        let name = name.clone();
        async move {
            let mut seq = 0u64;
            let started = Instant::now();
            let mut observed = None;
            let mut pods: Vec<PodReport> = Vec::new();
            let mut known: BTreeMap<String, PodReport> = BTreeMap::new();
            // Jittered start so the fleet doesn't beat in lockstep.
            let jitter = Duration::from_micros((idx as u64 * 7919) % 1_000_000);
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + jitter.min(heartbeat),
                heartbeat,
            );
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut pending: std::collections::VecDeque<(String, Vec<u8>)> = early.into();
            loop {
                let mut send_now = false;
                let msg = if let Some(m) = pending.pop_front() {
                    Some(Seen::Message(m.0, m.1))
                } else {
                    tokio::select! {
                        m = rx.recv() => match m { Some(m) => Some(m), None => return },
                        _ = tick.tick() => { send_now = true; None }
                    }
                };
                if let Some(Seen::Message(topic, payload)) = msg
                    && let Ok(FromHub {
                        message: HubMessage::Desired(d),
                        ..
                    }) = decode_from_hub(&name, &topic, &payload, HubKey::Pinned(&hub), &keys)
                {
                    let d: Desired = d;
                    let mut next = BTreeMap::new();
                    for (k, p) in d.pods.iter().enumerate() {
                        let uid = p.metadata.uid.clone().unwrap_or_default();
                        let r = known
                            .remove(&uid)
                            .unwrap_or_else(|| running(p, idx, k + seq as usize));
                        next.insert(uid, r);
                    }
                    known = next;
                    pods = known.values().cloned().collect();
                    observed = Some(d.generation);
                    send_now = true;
                }
                if send_now {
                    seq += 1;
                    let st = Status {
                        session: session.clone(),
                        seq,
                        uptime_millis: started.elapsed().as_millis() as u64,
                        observed_generation: observed,
                        pods: pods.clone(),
                        ..Default::default()
                    };
                    if let Ok(bytes) = encode_frame(&keys, &status_t, &st, None) {
                        publish(&client, status_t.to_string(), false, bytes).await;
                    }
                }
            }
        }
    });
    Ok(SimAgent {
        name,
        eventloop: el,
        driver,
    })
}

/// The broker a run uses.
enum BrokerKind {
    Embedded,
    Mosquitto,
}

struct Figures {
    broker: &'static str,
    join: Duration,
    hub_rss_idle: f64,
    hub_rss_pods: f64,
    broker_rss_idle: Option<f64>,
    broker_rss_pods: Option<f64>,
    placed: Duration,
    detect: Option<Duration>,
    hub_cpu_join: f64,
    hub_cpu_pods: f64,
    hub_cpu_idle_per_s: f64,
    hub_cpu_pods_per_s: f64,
}

fn ready_nodes(client: &Client) -> usize {
    let (code, v) = client.get("/api/v1/nodes");
    if code != 200 {
        return 0;
    }
    v["items"]
        .as_array()
        .map(|items| items.iter().filter(|n| node_is_ready(n)).count())
        .unwrap_or(0)
}

fn node_is_ready(n: &Value) -> bool {
    n["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .is_some_and(|c| c["status"] == "True")
}

fn run(kind: BrokerKind, nodes: usize, pods: usize, batch: usize) -> Figures {
    let label = match kind {
        BrokerKind::Embedded => "embedded",
        BrokerKind::Mosquitto => "mosquitto",
    };
    println!("== broker {label}: {nodes} nodes, {pods} pods");
    let dir = tempfile::Builder::new()
        .prefix("bramble-fleet-")
        .tempdir()
        .expect("tempdir");
    let data = dir.path().join("hub");
    let mosquitto = matches!(kind, BrokerKind::Mosquitto).then(Mosquitto::start);
    let mqtt_port = mosquitto.as_ref().map_or_else(free_port, |m| m.port);
    let api = free_port();
    let log = std::env::var("FLEET_HUB_LOG").unwrap_or_else(|_| "warn".into());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bramble-hub"));
    cmd.arg("--data-dir")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{api}"), "--log", &log])
        // The default address plan: 1,024 nodes' /26 blocks in 10.42.0.0/16.
        .args(bramble_tests::LOOPBACK_HUB_FLAGS);
    match kind {
        // Plain MQTT: the figures compare with earlier runs (TLS costs are
        // broker_bench's).
        BrokerKind::Embedded => cmd.args([
            "--mqtt-listen",
            &format!("127.0.0.1:{mqtt_port}"),
            "--insecure-mqtt",
        ]),
        BrokerKind::Mosquitto => cmd.args(["--mqtt-url", &format!("mqtt://127.0.0.1:{mqtt_port}")]),
    };
    let mut hub = Proc::spawn(cmd);
    let url = format!("https://127.0.0.1:{api}");
    eventually("the hub to answer", Duration::from_secs(30), || {
        assert!(hub.running(), "bramble-hub exited: {}", hub.log());
        std::net::TcpStream::connect(("127.0.0.1", api)).ok()?;
        (Client::for_data_dir(&url, "", &data)
            .get_noauth("/healthz")
            .0
            == 200)
            .then_some(())
    });
    let read = |f: &str| {
        std::fs::read_to_string(data.join(f))
            .unwrap_or_else(|e| panic!("reading {f}: {e}"))
            .trim()
            .to_string()
    };
    let client = Client::for_data_dir(&url, &read("token"), &data);
    let node_token = read("node-token");
    let hub_pid = hub.child.id();
    let broker_pid = mosquitto.as_ref().and_then(Mosquitto::pid);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let accepted = Arc::new(AtomicUsize::new(0));

    // Join.
    let cpu0 = cpu_secs(hub_pid);
    let t0 = Instant::now();
    let mut agents: Vec<SimAgent> = Vec::with_capacity(nodes);
    for chunk in (0..nodes).collect::<Vec<_>>().chunks(batch) {
        let joined = rt.block_on(async {
            let hs: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    tokio::spawn(start_agent(
                        ("127.0.0.1".into(), mqtt_port),
                        i,
                        node_token.clone(),
                        accepted.clone(),
                    ))
                })
                .collect();
            let mut out = Vec::new();
            for h in hs {
                out.push(h.await.expect("agent task"));
            }
            out
        });
        for a in joined {
            match a {
                Ok(a) => agents.push(a),
                Err(e) => panic!("agent failed to join: {e}\nhub log:\n{}", tail(&hub.log())),
            }
        }
    }
    let acked = t0.elapsed();
    println!(
        "  {} helloAcks accepted in {:.2} s",
        accepted.load(Ordering::Relaxed),
        acked.as_secs_f64()
    );
    eventually("all nodes Ready", Duration::from_secs(600), || {
        assert!(hub.running(), "bramble-hub exited: {}", tail(&hub.log()));
        (ready_nodes(&client) >= nodes).then_some(())
    });
    let join = t0.elapsed();
    let hub_cpu_join = cpu_secs(hub_pid) - cpu0;
    println!(
        "  all {nodes} nodes Ready in {:.2} s (hub CPU {:.1} s)",
        join.as_secs_f64(),
        hub_cpu_join
    );

    // Idle with heartbeats.
    let cpu1 = cpu_secs(hub_pid);
    let profile = thread_profile(hub_pid, profile_secs());
    let hub_cpu_idle_per_s = (cpu_secs(hub_pid) - cpu1) / profile_secs() as f64;
    println!("  idle hub threads: {profile}");
    let hub_rss_idle = rss_mib(hub_pid);
    let broker_rss_idle = broker_pid.map(rss_mib);
    println!(
        "  idle: hub RSS {hub_rss_idle:.1} MiB, hub CPU {:.0}% of a core (heartbeats){}",
        hub_cpu_idle_per_s * 100.0,
        broker_rss_idle.map_or(String::new(), |r| format!(", mosquitto RSS {r:.1} MiB"))
    );

    // Pods.
    let deploy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "fleet", "namespace": "default"},
        "spec": {
            "replicas": pods,
            "selector": {"matchLabels": {"app": "fleet"}},
            "template": {
                "metadata": {"labels": {"app": "fleet"}},
                "spec": {"containers": [{"name": "app", "image": "busybox:bench",
                    "command": ["sh", "-c", "sleep 3600"],
                    "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}]}
            }
        }
    });
    let cpu2 = cpu_secs(hub_pid);
    let t1 = Instant::now();
    let (code, v) = client.post("/apis/apps/v1/namespaces/default/deployments", &deploy);
    assert!(code == 201 || code == 200, "create deployment: {code} {v}");
    let mut last_print = Instant::now();
    let mut last = -1;
    eventually("readyReplicas", Duration::from_secs(1800), || {
        assert!(hub.running(), "bramble-hub exited: {}", tail(&hub.log()));
        let (_, d) = client.get("/apis/apps/v1/namespaces/default/deployments/fleet");
        let ready = d["status"]["readyReplicas"].as_i64().unwrap_or(0);
        if last_print.elapsed() > Duration::from_secs(10) && ready != last {
            println!(
                "    ... {ready} ready after {:.1} s (hub RSS {:.0} MiB, CPU {:.0} s)",
                t1.elapsed().as_secs_f64(),
                rss_mib(hub_pid),
                cpu_secs(hub_pid) - cpu2
            );
            last_print = Instant::now();
            last = ready;
        }
        (ready >= pods as i64).then_some(())
    });
    let placed = t1.elapsed();
    let hub_cpu_pods = cpu_secs(hub_pid) - cpu2;
    println!(
        "  {pods} pods ready in {:.2} s = {:.0} pods/s (hub CPU {:.1} s)",
        placed.as_secs_f64(),
        pods as f64 / placed.as_secs_f64(),
        hub_cpu_pods
    );
    let cpu3 = cpu_secs(hub_pid);
    let me3 = cpu_secs(std::process::id());
    let profile = thread_profile(hub_pid, profile_secs());
    let hub_cpu_pods_per_s = (cpu_secs(hub_pid) - cpu3) / profile_secs() as f64;
    println!(
        "  steady with pods: hub CPU {:.0}% of a core (simulated agents {:.0}%); hub threads: {profile}",
        hub_cpu_pods_per_s * 100.0,
        (cpu_secs(std::process::id()) - me3) / profile_secs() as f64 * 100.0
    );
    let hub_rss_pods = rss_mib(hub_pid);
    let broker_rss_pods = broker_pid.map(rss_mib);
    println!(
        "  with pods: hub RSS {hub_rss_pods:.1} MiB{}",
        broker_rss_pods.map_or(String::new(), |r| format!(", mosquitto RSS {r:.1} MiB"))
    );

    // Node failure.
    let victim = agents.last().expect("an agent");
    let path = format!("/api/v1/nodes/{}", victim.name);
    let t2 = Instant::now();
    victim.drop_abruptly();
    let mut detect = None;
    while t2.elapsed() < Duration::from_secs(60) {
        let (_, n) = client.get(&path);
        if !node_is_ready(&n) {
            detect = Some(t2.elapsed());
            let ready = n["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .cloned()
                .unwrap_or_default();
            println!(
                "  Ready condition now: {} {} {}",
                ready["status"], ready["reason"], ready["message"]
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    match detect {
        Some(d) => println!(
            "  node {} dropped: NotReady after {:.0} ms",
            victim.name,
            d.as_secs_f64() * 1000.0
        ),
        None => println!("  node {} dropped: still Ready after 60 s", victim.name),
    }

    drop(agents);
    rt.shutdown_timeout(Duration::from_secs(2));
    hub.kill9();
    drop(mosquitto);
    Figures {
        broker: label,
        join,
        hub_rss_idle,
        hub_rss_pods,
        broker_rss_idle,
        broker_rss_pods,
        placed,
        detect,
        hub_cpu_join,
        hub_cpu_pods,
        hub_cpu_idle_per_s,
        hub_cpu_pods_per_s,
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let nodes = bench::size("FLEET_NODES", 1000, 20);
    let pods = bench::size("FLEET_PODS", 10_000, 40);
    let batch = bench::size("FLEET_BATCH", 50, 50).max(1);
    let brokers = std::env::var("FLEET_BROKERS").unwrap_or_else(|_| "embedded,mosquitto".into());
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    if let Some(l) = limits.lines().find(|l| l.starts_with("Max open files")) {
        let soft: usize = l
            .split_whitespace()
            .nth(3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(usize::MAX);
        if soft < nodes * 5 / 2 + 100 {
            eprintln!(
                "warning: open files limit {soft} is low for {nodes} agents: run `ulimit -n {}` first",
                nodes * 3 + 100
            );
        }
    }
    let mut all = Vec::new();
    for b in brokers.split(',').map(str::trim) {
        let kind = match b {
            "embedded" => BrokerKind::Embedded,
            "mosquitto" => BrokerKind::Mosquitto,
            "" => continue,
            other => panic!("FLEET_BROKERS: unknown broker {other:?}"),
        };
        all.push(run(kind, nodes, pods, batch));
    }
    println!();
    println!(
        "fleet_bench: {nodes} nodes, {pods} pods (2-core host, hub + broker + agents share it)"
    );
    println!(
        "{:<10} {:>9} {:>8} {:>9} {:>8} {:>9} {:>10} {:>10} {:>11} {:>10} {:>10}",
        "broker",
        "join s",
        "pods s",
        "pods/s",
        "detect",
        "hub idle",
        "hub+pods",
        "brk idle",
        "brk+pods",
        "cpu idle",
        "cpu pods"
    );
    for f in &all {
        let mib = |v: Option<f64>| v.map_or("-".to_string(), |r| format!("{r:.0} MiB"));
        println!(
            "{:<10} {:>9.2} {:>8.2} {:>9.0} {:>8} {:>9} {:>10} {:>10} {:>11} {:>9.0}% {:>9.0}%",
            f.broker,
            f.join.as_secs_f64(),
            f.placed.as_secs_f64(),
            pods as f64 / f.placed.as_secs_f64(),
            f.detect.map_or("none".into(), |d| format!(
                "{:.0}ms",
                d.as_secs_f64() * 1000.0
            )),
            format!("{:.0} MiB", f.hub_rss_idle),
            format!("{:.0} MiB", f.hub_rss_pods),
            mib(f.broker_rss_idle),
            mib(f.broker_rss_pods),
            f.hub_cpu_idle_per_s * 100.0,
            f.hub_cpu_pods_per_s * 100.0,
        );
    }
    println!(
        "(hub CPU seconds: {})",
        all.iter()
            .map(|f| format!(
                "{} join {:.1} s, pods {:.1} s",
                f.broker, f.hub_cpu_join, f.hub_cpu_pods
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
}
