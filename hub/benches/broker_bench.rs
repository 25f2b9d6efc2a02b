//! MQTT broker figures: prints, asserts nothing about time.
//!
//! `cargo bench -p bramble-hub --bench broker_bench` runs the hub's embedded
//! broker ([`EmbeddedBroker`] with the hub's [`Identity`] as CONNECT check
//! and topic ACL, as `bramble-hub` starts it) in a process of its own (this
//! binary again, with `BROKER_BENCH_SERVE` set) and measures it from this
//! one. N nodes are registered with the identity first (key pairs made
//! here, [`bramble_hub::testing::register_node`]), so each logs in as a
//! joined board does: client id = username = its name, its key login
//! ([`bramble_trust::login::key_password`] with the hub's public key).
//! - memory per idle connection: VmRSS of the broker process before and after
//!   the N nodes connect (keep-alive 60 s), and again after each subscribed to
//!   its three agent topics (`topics::agent_subscriptions`), as agents do;
//! - publish→deliver round trip of a 64-byte QoS 1 message, one at a time,
//!   while the N clients stay connected: a node publishes on its own
//!   `status`, a client logged in as the hub (`bramble-hub` with the
//!   identity's hub password, subscribed to `bramble/v2/nodes/+/status` as the
//!   hub is) receives it. Clients set TCP_NODELAY. Payloads are raw bytes:
//!   the broker routes by topic and never reads a frame;
//! - throughput: a burst of 5 × N-messages QoS 1 status messages from one
//!   node, timed until the hub has received the last.
//!
//! `BROKER_BENCH_TARGET`: a comma-separated list of `embedded` (the hub's
//! broker, above), `embedded-tls` (the same over TLS, as `bramble-hub` serves
//! it by default: the cluster CA and a serving certificate), `mosquitto` (Debian mosquitto, anonymous, no ACL),
//! `mosquitto-acl` (the same with an `acl_file` of the nodes' topic rules,
//! [`acl_patterns`], and full access for `bramble-hub`) and
//! `external:PORT:PID` (a broker started elsewhere, measured by its pid,
//! that accepts these logins: node passwords `BROKER_BENCH_NODE_PASSWORD` if
//! set, the hub's `BROKER_BENCH_HUB_PASSWORD`, default `bench-hub`); default
//! `embedded,embedded-tls,mosquitto,mosquitto-acl`. `BROKER_BENCH_CLIENTS` (default
//! 1000), `BROKER_BENCH_MESSAGES` (default 2000, after 200 not counted).
//! `BENCH_QUICK=1`: 50 clients, 100 messages after 20 (the variables
//! override it). Needs `ulimit -n` above N + 100.
//!
//! Length: over 600 lines because one benchmark program: its brokers, clients
//! and printed figures belong together.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bramble_api::protocol::topics;
use bramble_hub::broker::{EmbeddedBroker, TopicAcl};
use bramble_hub::identity::{HUB_USERNAME, Identity};
use bramble_hub::store::{Store, StoreOptions};
use bramble_tests::bench::{self, rss_kib};
use bramble_tests::mosquitto::Mosquitto;
use bramble_tests::ports::probed_port as free_port;
use bramble_trust::login::{Service, key_password};
use bramble_trust::{PublicKeys, SecretKeys};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

const SERVE_ENV: &str = "BROKER_BENCH_SERVE";
const PAYLOAD_BYTES: usize = 64;
/// The node whose `status` carries the round trips.
const LATENCY_NODE: &str = "lat-node";
/// The nodes the broker process registers: `NAME SIGNING ENCRYPTION` lines.
const NODES_FILE: &str = "nodes";

/// MQTT over TLS with this client configuration, or plain MQTT.
type Tls = Option<Arc<rustls::ClientConfig>>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The broker process: `BROKER_BENCH_SERVE=PORT:DIR`. Opens a hub identity
/// in DIR, registers the nodes of `DIR/nodes`, starts the embedded broker on
/// 127.0.0.1:PORT and prints `ready SIGNING ENCRYPTION HUB_PASSWORD` (the
/// hub's public keys and its client's password) once it accepts
/// connections; then runs until killed.
fn serve(spec: &str) -> ! {
    let (port, rest) = spec.split_once(':').expect("PORT:DIR[:tls]");
    let (dir, tls) = match rest.strip_suffix(":tls") {
        Some(d) => (d, true),
        None => (rest, false),
    };
    let dir = Path::new(dir);
    let listen = format!("127.0.0.1:{port}").parse().expect("port");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let nodes = std::fs::read_to_string(dir.join(NODES_FILE)).expect("reading the nodes file");
    let identity = rt.block_on(async {
        let store = Store::open(&dir.join("state.redb"), StoreOptions::default())
            .expect("opening the store");
        let identity = Identity::open(dir, store, false)
            .await
            .expect("opening the hub identity");
        // Concurrent puts share commits (group commit).
        let puts: Vec<_> = nodes
            .lines()
            .map(|line| {
                let mut f = line.split_whitespace();
                let (name, signing, encryption) = (
                    f.next().expect("name").to_string(),
                    f.next().expect("signing key"),
                    f.next().expect("encryption key"),
                );
                let keys = PublicKeys::from_text(signing, encryption).expect("node keys");
                let identity = identity.clone();
                tokio::spawn(async move {
                    bramble_hub::testing::register_node(&identity, &name, &keys, "bench").await;
                })
            })
            .collect();
        for p in puts {
            p.await.expect("registering a node");
        }
        let acl: Arc<dyn TopicAcl> = identity.clone();
        // MQTT over TLS as bramble-hub serves it: the cluster CA (written to
        // DIR/ca.crt) and a serving certificate for 127.0.0.1.
        let serving = tls.then(|| {
            let ca = bramble_hub::tls::ClusterCa::load_or_create(dir).expect("the cluster CA");
            Arc::new(
                bramble_hub::tls::ServingCert::new(
                    &ca,
                    Vec::new(),
                    bramble_hub::tls::serving::DEFAULT_LIFETIME,
                )
                .expect("a serving certificate"),
            )
        });
        EmbeddedBroker::start(listen, identity.clone(), acl, serving)
            .await
            .expect("starting the embedded broker");
        identity
    });
    let hub = identity.hub_keys().public();
    println!(
        "ready {} {} {}",
        hub.signing_text(),
        hub.encryption_text(),
        identity.hub_password()
    );
    loop {
        std::thread::park();
    }
}

/// The nodes' topic rules ([`topics::node_may_publish`] and
/// [`topics::node_may_subscribe`]) as mosquitto `acl_file` pattern lines,
/// the username (`%u`) being the node name: a node writes its agent → hub
/// topics and reads its hub → agent ones. (`bramble-hub --mqtt-dynsec`
/// gives an external mosquitto the same rules through its dynamic security
/// plugin instead.)
fn acl_patterns() -> Vec<String> {
    // What the hub subscribes to is every node's agent → hub topics.
    let writes = topics::hub_subscriptions()
        .into_iter()
        .map(|f| format!("pattern write {}", f.replacen("/nodes/+/", "/nodes/%u/", 1)));
    let reads = topics::agent_subscriptions("n")
        .expect("agent topics")
        .into_iter()
        .map(|t| format!("pattern read {}", t.replacen("/nodes/n/", "/nodes/%u/", 1)));
    writes.chain(reads).collect()
}

/// A broker under test: where it listens, which process to measure and the
/// logins it accepts.
struct Target {
    label: String,
    port: u16,
    pid: u32,
    /// The hub's public keys the nodes derive their key logins with.
    hub_keys: PublicKeys,
    hub_password: String,
    /// Every node's password, instead of its key login.
    node_password: Option<String>,
    /// Whether it checks key logins and the nodes' topic ACL.
    enforced: bool,
    /// MQTT over TLS with this client configuration (the broker's CA).
    tls: Option<Arc<rustls::ClientConfig>>,
    _child: Option<KillOnDrop>,
    _mosquitto: Option<Mosquitto>,
    _dir: Option<tempfile::TempDir>,
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The hub's public keys for brokers that check no key login (any will do).
fn unchecked_hub_keys() -> PublicKeys {
    SecretKeys::generate()
        .expect("generating keys")
        .public()
        .clone()
}

fn target(spec: &str, nodes: &[(String, SecretKeys)]) -> Target {
    let hub_password = env_or("BROKER_BENCH_HUB_PASSWORD", "bench-hub");
    match spec {
        "embedded" | "embedded-tls" => {
            let tls = spec == "embedded-tls";
            let dir = tempfile::tempdir().expect("tempdir");
            let list: String = nodes
                .iter()
                .map(|(name, keys)| {
                    let k = keys.public();
                    format!("{name} {} {}\n", k.signing_text(), k.encryption_text())
                })
                .collect();
            std::fs::write(dir.path().join(NODES_FILE), list).expect("writing the nodes file");
            let port = free_port();
            let mut child = Command::new(std::env::current_exe().expect("current exe"))
                .env(
                    SERVE_ENV,
                    format!(
                        "{port}:{}{}",
                        dir.path().display(),
                        if tls { ":tls" } else { "" }
                    ),
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawning the broker process");
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
                &mut line,
            )
            .expect("reading the broker's ready line");
            let child = KillOnDrop(child);
            let f: Vec<&str> = line.split_whitespace().collect();
            let [ready, signing, encryption, password] = f[..] else {
                panic!("the broker process did not start: {line:?}");
            };
            assert_eq!(ready, "ready", "the broker process did not start");
            let tls = tls.then(|| {
                let pem = std::fs::read(dir.path().join("ca.crt")).expect("the broker's CA");
                let roots = bramble_trust::tls::pem_certs(&pem).expect("PEM");
                bramble_trust::tls::client_config(&roots).expect("a TLS client")
            });
            Target {
                label: if tls.is_some() {
                    "embedded rumqttd over TLS (hub's EmbeddedBroker, Identity login and ACL, rustls/ring, TLS 1.3)".into()
                } else {
                    "embedded rumqttd (hub's EmbeddedBroker, Identity login and ACL)".into()
                },
                tls,
                port,
                pid: child.0.id(),
                hub_keys: PublicKeys::from_text(signing, encryption).expect("the hub's keys"),
                hub_password: password.to_string(),
                node_password: None,
                enforced: true,
                _child: Some(child),
                _mosquitto: None,
                _dir: Some(dir),
            }
        }
        "mosquitto" => {
            let m = Mosquitto::start();
            Target {
                label: "mosquitto (Debian, anonymous, no ACL)".into(),
                port: m.port,
                pid: m.pid().expect("mosquitto pid"),
                tls: None,
                hub_keys: unchecked_hub_keys(),
                hub_password,
                node_password: None,
                enforced: false,
                _child: None,
                _mosquitto: Some(m),
                _dir: None,
            }
        }
        "mosquitto-acl" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let acl = dir.path().join("acl");
            let mut lines = format!(
                "user {HUB_USERNAME}\ntopic readwrite {}#\n\n",
                topics::PREFIX
            );
            for l in acl_patterns() {
                lines.push_str(&l);
                lines.push('\n');
            }
            std::fs::write(&acl, lines).expect("writing the ACL file");
            let m = Mosquitto::start_with(&format!(
                "allow_anonymous true\nacl_file {}\n",
                acl.display()
            ));
            Target {
                label: "mosquitto (Debian, anonymous with usernames, acl_file of the nodes' topic rules)".into(),
                port: m.port,
                pid: m.pid().expect("mosquitto pid"),
                tls: None,
                hub_keys: unchecked_hub_keys(),
                hub_password,
                node_password: None,
                enforced: false,
                _child: None,
                _mosquitto: Some(m),
                _dir: Some(dir),
            }
        }
        other => {
            let rest = other.strip_prefix("external:").unwrap_or_else(|| {
                panic!(
                    "BROKER_BENCH_TARGET: {other:?} is none of embedded, mosquitto, \
                     mosquitto-acl, external:PORT:PID"
                )
            });
            let (port, pid) = rest.split_once(':').expect("external:PORT:PID");
            Target {
                label: format!("external broker, pid {pid}"),
                port: port.parse().expect("port"),
                pid: pid.parse().expect("pid"),
                tls: None,
                hub_keys: unchecked_hub_keys(),
                hub_password,
                node_password: std::env::var("BROKER_BENCH_NODE_PASSWORD").ok(),
                enforced: false,
                _child: None,
                _mosquitto: None,
                _dir: None,
            }
        }
    }
}

impl Target {
    /// Node `name`'s password on this broker.
    fn password(&self, name: &str, keys: &SecretKeys) -> String {
        self.node_password.clone().unwrap_or_else(|| {
            key_password(keys, &self.hub_keys, Service::Mqtt, name).expect("a key login")
        })
    }
}

/// What a client's event loop saw.
#[derive(Debug)]
enum Seen {
    ConnAck,
    SubAck(Vec<rumqttc::SubscribeReasonCode>),
    Publish(bytes::Bytes),
    Failed(String),
}

/// A connected client and the events of its event loop (polled by a task).
struct BenchClient {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Seen>,
    _task: tokio::task::JoinHandle<()>,
}

impl BenchClient {
    async fn connect(port: u16, tls: Tls, id: &str, password: &str) -> BenchClient {
        BenchClient::try_connect(port, tls, id, password)
            .await
            .unwrap_or_else(|e| panic!("connecting {e}"))
    }

    async fn try_connect(
        port: u16,
        tls: Tls,
        id: &str,
        password: &str,
    ) -> Result<BenchClient, String> {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(60))
            .set_clean_session(true)
            .set_credentials(id, password);
        if let Some(config) = tls {
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(config),
            ));
        }
        let (client, mut eventloop) = AsyncClient::new(o, 16);
        eventloop.network_options.set_tcp_nodelay(true);
        let (tx, mut events) = mpsc::unbounded_channel();
        let name = id.to_string();
        let task = tokio::spawn(async move {
            loop {
                let seen = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Seen::ConnAck,
                    Ok(Event::Incoming(Packet::SubAck(a))) => Seen::SubAck(a.return_codes),
                    Ok(Event::Incoming(Packet::Publish(p))) => Seen::Publish(p.payload),
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = tx.send(Seen::Failed(format!("{name}: {e}")));
                        return;
                    }
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        match events.recv().await {
            Some(Seen::ConnAck) => {}
            Some(Seen::Failed(e)) => {
                task.abort();
                return Err(e);
            }
            other => panic!("{id}: no CONNACK: {other:?}"),
        }
        Ok(BenchClient {
            client,
            events,
            _task: task,
        })
    }

    /// Subscribes to `filters` (QoS 1) and returns whether the broker
    /// granted each (in SUBACK order).
    async fn try_subscribe(&mut self, filters: &[String]) -> Vec<bool> {
        for f in filters {
            self.client
                .subscribe(f, QoS::AtLeastOnce)
                .await
                .expect("subscribe");
        }
        let mut granted = Vec::new();
        while granted.len() < filters.len() {
            match self.events.recv().await {
                Some(Seen::SubAck(codes)) => granted.extend(
                    codes
                        .iter()
                        .map(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_))),
                ),
                Some(Seen::Publish(_)) => {}
                other => panic!("expected SUBACK, got {other:?}"),
            }
        }
        granted
    }

    /// Subscribes to `filters`, which the broker must grant (a refused
    /// filter would measure nothing).
    async fn subscribe(&mut self, filters: &[String]) {
        let granted = self.try_subscribe(filters).await;
        assert!(
            granted.iter().all(|g| *g),
            "subscription refused by the broker: {filters:?} {granted:?}"
        );
    }
}

/// Before any figure, on a broker that checks logins and topics: a wrong
/// key login is refused, and a node may not subscribe to another node's
/// `desired` (so the figures are those of the broker with its checks on).
async fn check_enforced(target: &Target, nodes: &[(String, SecretKeys)]) {
    let (name, _) = &nodes[0];
    let stranger = SecretKeys::generate().expect("generating keys");
    let wrong = target.password(name, &stranger);
    assert!(
        BenchClient::try_connect(target.port, target.tls.clone(), name, &wrong)
            .await
            .is_err(),
        "{}: {name} logged in with another key's login",
        target.label
    );
    let (other, _) = &nodes[1 % nodes.len()];
    let theirs = topics::Topic::new(other, topics::TopicKind::Desired)
        .expect("desired topic")
        .to_string();
    let mut c = BenchClient::connect(
        target.port,
        target.tls.clone(),
        name,
        &target.password(name, &nodes[0].1),
    )
    .await;
    assert_eq!(
        c.try_subscribe(std::slice::from_ref(&theirs)).await,
        [false],
        "{}: {name} may subscribe to {theirs}",
        target.label
    );
    let _ = c.client.disconnect().await;
}

/// Waits until the RSS of `pid` stops changing (or a few seconds passed).
fn settled_rss(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(500));
        let now = rss_kib(pid);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Idle RSS, RSS per connection and per subscriptions, round trips.
struct Figures {
    label: String,
    idle: u64,
    per_connection: f64,
    per_subscriptions: f64,
    p50: Duration,
    p99: Duration,
    /// Status messages per second in a burst, node → hub.
    burst_per_s: f64,
}

fn measure(
    target: &Target,
    nodes: &[(String, SecretKeys)],
    messages: usize,
    warmup: usize,
) -> Figures {
    let clients = nodes.len() - 1;
    let (port, pid) = (target.port, target.pid);
    println!(
        "== {}: {clients} clients, {messages} messages",
        target.label
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if target.enforced {
            check_enforced(target, nodes).await;
            println!("checked: a wrong key login and another node's topic are refused");
        }
        let idle = settled_rss(pid);
        println!("broker RSS idle: {:.1} MiB", mib(idle));

        let mut idle_clients = Vec::with_capacity(clients);
        for batch in nodes[..clients].chunks(50) {
            let connects: Vec<_> = batch
                .iter()
                .map(|(name, keys)| {
                    let (id, password) = (name.clone(), target.password(name, keys));
                    let tls = target.tls.clone();
                    tokio::spawn(async move { BenchClient::connect(port, tls, &id, &password).await })
                })
                .collect();
            for c in connects {
                idle_clients.push(c.await.expect("connect task"));
            }
        }
        let connected = settled_rss(pid);
        let per_connection = (connected.saturating_sub(idle)) as f64 / clients as f64;
        println!(
            "{clients} idle connections: RSS {:.1} MiB (+{:.1} MiB, {per_connection:.1} KiB per connection)",
            mib(connected),
            mib(connected.saturating_sub(idle))
        );

        for (c, (name, _)) in idle_clients.iter_mut().zip(nodes) {
            c.subscribe(&topics::agent_subscriptions(name).expect("node topics"))
                .await;
        }
        let subscribed = settled_rss(pid);
        let per_subscriptions = (subscribed.saturating_sub(connected)) as f64 / clients as f64;
        println!(
            "+ 3 agent subscriptions each: RSS {:.1} MiB (+{:.1} MiB, {per_subscriptions:.1} KiB per connection)",
            mib(subscribed),
            mib(subscribed.saturating_sub(connected))
        );

        // Round trip: a node's status to the hub's subscription.
        let mut hub =
            BenchClient::connect(port, target.tls.clone(), HUB_USERNAME, &target.hub_password)
                .await;
        let status_filter = topics::hub_subscriptions()
            .into_iter()
            .find(|f| f.ends_with("/status"))
            .expect("the hub subscribes to status");
        hub.subscribe(&[status_filter]).await;
        let (name, keys) = &nodes[clients];
        let node =
            BenchClient::connect(port, target.tls.clone(), name, &target.password(name, keys))
                .await;
        let topic = topics::Topic::new(name, topics::TopicKind::Status)
            .expect("status topic")
            .to_string();
        let mut samples = Vec::with_capacity(messages);
        for i in 0..(warmup + messages) {
            let mut payload = format!("{i:08}").into_bytes();
            payload.resize(PAYLOAD_BYTES, b'.');
            let t0 = Instant::now();
            node.client
                .publish(&topic, QoS::AtLeastOnce, false, payload.clone())
                .await
                .expect("publish");
            loop {
                match tokio::time::timeout(Duration::from_secs(10), hub.events.recv()).await {
                    Ok(Some(Seen::Publish(p))) if p[..] == payload[..] => break,
                    Ok(Some(Seen::Publish(_))) => {}
                    other => panic!("round trip {i}: {other:?}"),
                }
            }
            if i >= warmup {
                samples.push(t0.elapsed());
            }
        }
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
        println!(
            "round trip QoS 1 {PAYLOAD_BYTES} B node→hub: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            ms(p50),
            ms(p99),
            ms(*samples.last().expect("samples"))
        );
        // Throughput: a burst of status messages, as an agent reporting
        // many pods at once; timed until the hub has the last one.
        let burst = messages * 5;
        let sender = node.client.clone();
        let t0 = Instant::now();
        let publishing = tokio::spawn({
            let topic = topic.clone();
            async move {
                for i in 0..burst {
                    let mut payload = format!("b{i:07}").into_bytes();
                    payload.resize(PAYLOAD_BYTES, b'.');
                    sender
                        .publish(&topic, QoS::AtLeastOnce, false, payload)
                        .await
                        .expect("publish");
                }
            }
        });
        let mut got = 0;
        while got < burst {
            match tokio::time::timeout(Duration::from_secs(30), hub.events.recv()).await {
                Ok(Some(Seen::Publish(p))) if p.starts_with(b"b") => got += 1,
                Ok(Some(Seen::Publish(_))) => {}
                other => panic!("burst message {got}: {other:?}"),
            }
        }
        let burst_per_s = burst as f64 / t0.elapsed().as_secs_f64();
        publishing.await.expect("the publishing task");
        println!(
            "burst of {burst} QoS 1 {PAYLOAD_BYTES} B status messages node→hub: {burst_per_s:.0} msg/s"
        );
        println!("broker RSS at the end: {:.1} MiB", mib(rss_kib(pid)));
        Figures {
            label: target.label.clone(),
            idle,
            per_connection,
            per_subscriptions,
            p50,
            p99,
            burst_per_s,
        }
    })
}

fn main() {
    if let Ok(spec) = std::env::var(SERVE_ENV) {
        serve(&spec);
    }
    let clients = bench::size("BROKER_BENCH_CLIENTS", 1000, 50).max(1);
    let messages = bench::size("BROKER_BENCH_MESSAGES", 2000, 100).max(1);
    let warmup = bench::pick(200, 20);
    let targets = env_or(
        "BROKER_BENCH_TARGET",
        "embedded,embedded-tls,mosquitto,mosquitto-acl",
    );
    // The idle nodes, then the one whose status carries the round trips.
    let nodes: Vec<(String, SecretKeys)> = (0..clients)
        .map(|i| format!("bench-{i}"))
        .chain([LATENCY_NODE.to_string()])
        .map(|name| (name, SecretKeys::generate().expect("generating keys")))
        .collect();
    let mut all = Vec::new();
    for spec in targets.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let target = target(spec, &nodes);
        all.push(measure(&target, &nodes, messages, warmup));
        println!();
    }
    println!("broker_bench: {clients} clients, {messages} round trips");
    println!(
        "{:>10} {:>12} {:>14} {:>10} {:>10} {:>10}  broker",
        "RSS idle", "per conn", "per 3 subs", "p50", "p99", "burst/s"
    );
    for f in &all {
        println!(
            "{:>6.1} MiB {:>8.1} KiB {:>+10.1} KiB {:>7.3} ms {:>7.3} ms {:>10.0}  {}",
            mib(f.idle),
            f.per_connection,
            f.per_subscriptions,
            f.p50.as_secs_f64() * 1000.0,
            f.p99.as_secs_f64() * 1000.0,
            f.burst_per_s,
            f.label
        );
    }
}
