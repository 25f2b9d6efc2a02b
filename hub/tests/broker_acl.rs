//! The embedded broker's topic ACL and client disconnect, end to end: a hub
//! with its embedded broker, nodes joined with scripted rumqttc agents (as
//! agents do: a join-token login, then their key), and the stolen login of
//! node `pi-a` used by the real mosquitto clients (Debian
//! `mosquitto-clients`): reading another node's retained desired set,
//! publishing on another node's topic, leaving a last will on another
//! node's topic. And the hub dropping a connected node at once.

mod mqtt_support;

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use bramble_api::protocol::{HubMessage, Online, TopicKind, encode_frame};
use bramble_api::resource::by_plural;
use bramble_hub::store::Store;
use bramble_hub::testing::TestHub;
use bramble_tests::eventually_async;
use mqtt_support::{TestAgent, WAIT, create_pod, join, status};
use rumqttc::{LastWill, QoS};
use serde_json::Value;

/// How long a mosquitto client may run before it counts as hung (a
/// watchdog, not a time bound: every run here ends on its own).
const HUNG: Duration = Duration::from_secs(60);

fn pod(store: &Store, name: &str) -> Value {
    let pods = by_plural("", "v1", "pods").unwrap();
    store.get(pods, Some("default"), name).unwrap().unwrap()
}

/// What a mosquitto client printed (stdout and stderr, `-d` debug lines
/// included) and how it exited.
struct Run {
    status: ExitStatus,
    output: String,
}

/// Runs `tool` (`mosquitto_sub` or `mosquitto_pub`) against the broker at
/// `port` as client id = username `node` with password `password`, MQTT
/// 3.1.1, QoS 1, debug output, plus `args`.
async fn mosquitto(tool: &str, port: u16, node: &str, password: &str, args: &[&str]) -> Run {
    let bin = format!("/usr/bin/{tool}");
    assert!(
        Path::new(&bin).exists(),
        "{bin} is missing: apt-get install -y mosquitto-clients"
    );
    let mut cmd = Command::new(&bin);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-i", node, "-u", node, "-P", password, "-q", "1", "-d"])
        .args(args);
    let tool = tool.to_string();
    tokio::task::spawn_blocking(move || {
        let out = tempfile::NamedTempFile::new().unwrap();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(out.reopen().unwrap())
            .stderr(out.reopen().unwrap())
            .spawn()
            .unwrap();
        let status = bramble_tests::try_eventually(HUNG, || child.try_wait().unwrap())
            .unwrap_or_else(|t| {
                let _ = child.kill();
                panic!("{tool} hung: no exit {t}");
            });
        let output = String::from_utf8_lossy(&std::fs::read(out.path()).unwrap()).into_owned();
        Run { status, output }
    })
    .await
    .unwrap()
}

/// The MQTT password of a joined test agent (its key login).
fn password(agent: &TestAgent) -> String {
    agent.key_login()
}

/// Reads `agent`'s publications until its desired set has pod `name`.
async fn desired_with(agent: &mut TestAgent, name: &str) {
    let topic = format!("bramble/v2/nodes/{}/desired", agent.node);
    loop {
        let (t, payload) = agent.next_message().await;
        if t != topic {
            continue;
        }
        if let Ok(HubMessage::Desired(d)) = agent.open(&t, &payload, None).map(|m| m.message)
            && d.pods.iter().any(|p| p.name() == name)
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_subscribe_to_another_nodes_topics() {
    mqtt_support::init_logs();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let addr = h.mqtt_addr().unwrap();
    let token = h.join_token();

    // pi-a and pi-b joined; each has its retained desired set, with a pod.
    let (mut a, _) = join(addr, &token, "pi-a", |_| {}).await;
    let (mut b, _) = join(addr, &token, "pi-b", |_| {}).await;
    create_pod(h.store(), "mine-0", "pi-a", 80).await;
    create_pod(h.store(), "theirs-0", "pi-b", 5432).await;
    desired_with(&mut a, "mine-0").await;
    desired_with(&mut b, "theirs-0").await;
    let pw = password(&a);
    a.disconnect().await;

    // Everything, and pi-b's desired set by name: both filters refused, so
    // not even the retained set comes through. (`-W 5`: without the ACL the
    // client would stay, printing what it receives.)
    let all = mosquitto(
        "mosquitto_sub",
        addr.port(),
        "pi-a",
        &pw,
        &[
            "-W",
            "5",
            "-t",
            "bramble/#",
            "-t",
            "bramble/v2/nodes/pi-b/desired",
        ],
    )
    .await
    .output;
    assert!(all.contains("Subscribed (mid: 1): 128, 128"), "{all}");
    assert!(!all.contains("received PUBLISH"), "{all}");

    // Its own desired set and pi-b's in one SUBSCRIBE: only its own.
    let mixed = mosquitto(
        "mosquitto_sub",
        addr.port(),
        "pi-a",
        &pw,
        &[
            "-C",
            "1",
            "-F",
            "%t",
            "-t",
            "bramble/v2/nodes/pi-a/desired",
            "-t",
            "bramble/v2/nodes/pi-b/desired",
        ],
    )
    .await;
    let out = &mixed.output;
    assert!(mixed.status.success(), "{out}");
    assert!(out.contains("Subscribed (mid: 1): 1, 128"), "{out}");
    assert!(
        out.lines().any(|l| l == "bramble/v2/nodes/pi-a/desired"),
        "{out}"
    );
    assert!(!out.contains("bramble/v2/nodes/pi-b/desired\n"), "{out}");

    b.disconnect().await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_publish_on_another_nodes_topics() {
    mqtt_support::init_logs();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let addr = h.mqtt_addr().unwrap();
    let token = h.join_token();
    let store = h.store().clone();

    let (a, _) = join(addr, &token, "pi-a", |_| {}).await;
    let (b, _) = join(addr, &token, "pi-b", |_| {}).await;
    let uid = create_pod(&store, "web", "pi-b", 80).await;
    let (a_keys, a_pw) = (a.keys.clone(), password(&a));
    a.disconnect().await;

    // pi-a publishes a status on pi-b's topic (signed by its own key; a
    // high seq): the broker acknowledges nothing and closes pi-a's
    // connection.
    let topic = bramble_api::protocol::Topic::new("pi-b", TopicKind::Status).unwrap();
    let forged = encode_frame(
        &a_keys,
        &topic,
        &status("s1", 10, &[("default", "web", &uid, "Failed")]),
        None,
    )
    .unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &forged).unwrap();
    let run = mosquitto(
        "mosquitto_pub",
        addr.port(),
        "pi-a",
        &a_pw,
        &[
            "-t",
            "bramble/v2/nodes/pi-b/status",
            "-f",
            file.path().to_str().unwrap(),
        ],
    )
    .await;
    let out = &run.output;
    assert!(out.contains("sending PUBLISH"), "{out}");
    assert!(!out.contains("received PUBACK"), "{out}");
    assert!(!run.status.success(), "{out}");

    // pi-b's own report, with a lower seq than the forged one, comes after
    // it through the same subscription of the hub: applied (the forged one
    // never reached the hub, and would not have been believed anyway).
    b.publish(
        TopicKind::Status,
        &status("s1", 5, &[("default", "web", &uid, "Running")]),
    )
    .await;
    let phase = eventually_async("web's reported phase", WAIT, async || {
        let phase = pod(&store, "web")["status"]["phase"].as_str()?.to_string();
        matches!(phase.as_str(), "Running" | "Failed").then_some(phase)
    })
    .await;
    assert_eq!(phase, "Running", "the forged status reached the hub");
    assert_eq!(h.fleet().get("pi-b").unwrap().last_seq, 5);

    // The same with a hub → agent topic (a desired set for pi-b), seen from
    // a rumqttc client: its connection ends.
    let mut a = TestAgent::connect_as(addr, "pi-a", a_keys, None, Some(("pi-a", &a_pw)))
        .await
        .unwrap();
    a.publish_raw("bramble/v2/nodes/pi-b/desired", b"{}".to_vec())
        .await;
    a.connection_lost().await;

    b.disconnect().await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_on_another_nodes_topic_is_refused_at_connect() {
    mqtt_support::init_logs();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let addr = h.mqtt_addr().unwrap();
    let token = h.join_token();
    let (a, _) = join(addr, &token, "pi-a", |_| {}).await;
    let pw = password(&a);
    a.disconnect().await;
    // (The ACL looks at the topic; the payload need not be a frame.)
    let sub = |node: &str| {
        [
            "--will-topic".to_string(),
            format!("bramble/v2/nodes/{node}/online"),
            "--will-payload".into(),
            "offline".into(),
            "--will-qos".into(),
            "1".into(),
            "--will-retain".into(),
            "-E".into(),
            "-t".into(),
            "bramble/v2/nodes/pi-a/desired".into(),
        ]
    };

    // A will that would mark pi-b offline: CONNACK 5, not authorized.
    let args = sub("pi-b");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = mosquitto("mosquitto_sub", addr.port(), "pi-a", &pw, &args).await;
    let out = &refused.output;
    assert!(out.contains("received CONNACK (5)"), "{out}");
    assert!(!out.contains("received SUBACK"), "{out}");
    assert!(!refused.status.success(), "{out}");

    // On its own online topic (what agents do): connected and subscribed.
    let args = sub("pi-a");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let own = mosquitto("mosquitto_sub", addr.port(), "pi-a", &pw, &args).await;
    let out = &own.output;
    assert!(out.contains("received CONNACK (0)"), "{out}");
    assert!(out.contains("Subscribed (mid: 1): 1"), "{out}");
    assert!(own.status.success(), "{out}");

    // A wrong password is told so (CONNACK 4) before the connection closes.
    let wrong = mosquitto("mosquitto_sub", addr.port(), "pi-a", "key.wrong", &args).await;
    assert!(
        wrong.output.contains("received CONNACK (4)"),
        "{}",
        wrong.output
    );
    assert!(!wrong.status.success());

    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_drops_a_node_at_once_and_its_will_is_published() {
    mqtt_support::init_logs();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let addr = h.mqtt_addr().unwrap();
    let token = h.join_token();

    // pi-a joined and logged in again as agents do, its signed will marking
    // it offline.
    let (joined, _) = join(addr, &token, "pi-a", |_| {}).await;
    let (keys, hub_keys, pw) = (joined.keys.clone(), joined.hub.clone(), password(&joined));
    joined.disconnect().await;
    let topic = bramble_api::protocol::Topic::new("pi-a", TopicKind::Online).unwrap();
    let will = encode_frame(&keys, &topic, &Online::last_will("s1", 2), None).unwrap();
    let will = LastWill::new(topic.to_string(), will, QoS::AtLeastOnce, true);
    let mut a = TestAgent::connect_with_will(
        addr,
        "pi-a",
        keys,
        hub_keys,
        Some(("pi-a", &pw)),
        Some(will),
    )
    .await
    .unwrap();
    a.publish(TopicKind::Online, &Online::up("s1", 2)).await;
    eventually_async("pi-a online", WAIT, async || {
        h.fleet().get("pi-a")?.online.then_some(())
    })
    .await;

    // Dropping a client that is not connected does nothing.
    h.broker().unwrap().disconnect("pi-z").unwrap();

    h.broker().unwrap().disconnect("pi-a").unwrap();
    a.connection_lost().await;
    eventually_async("pi-a offline (its will)", WAIT, async || {
        (!h.fleet().get("pi-a")?.online).then_some(())
    })
    .await;

    hub.stop().await.unwrap();
}
