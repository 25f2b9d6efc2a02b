//! The hub's MQTT side end to end: a hub with its embedded broker (or an
//! external mosquitto) and scripted agents made with rumqttc. Joining with
//! a join token's proof and the board's own key, refusals at CONNECT and at
//! hello, status ingest into the store, and garbage that must change
//! nothing.

mod mqtt_support;

use std::os::unix::fs::PermissionsExt;

use bramble_api::protocol::hello::{Accepted, HelloAck, Refused};
use bramble_api::protocol::{RefusalCode, TopicKind};
use bramble_api::resource::{ResourceInfo, by_plural};
use bramble_hub::fleet::Outgoing;
use bramble_hub::store::Store;
use bramble_hub::testing::TestHub;
use bramble_tests::eventually_async;
use mqtt_support::{Mosquitto, TestAgent, WAIT, status, token_login};
use serde_json::{Value, json};

fn nodes() -> &'static ResourceInfo {
    by_plural("", "v1", "nodes").unwrap()
}

fn pods() -> &'static ResourceInfo {
    by_plural("", "v1", "pods").unwrap()
}

/// Creates pod `default/{name}` bound to `node`; returns its uid.
async fn create_pod(store: &Store, name: &str, node: &str) -> String {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx:1.27"}]}});
    let mut obj = bramble_api::admit(pod).unwrap().object;
    // As the API creates it: Pending, with its QoS class.
    bramble_hub::admission::pod_status::start(&mut obj);
    let created = store.create(pods(), obj).await.unwrap();
    created["metadata"]["uid"].as_str().unwrap().to_string()
}

fn pod(store: &Store, name: &str) -> Value {
    store.get(pods(), Some("default"), name).unwrap().unwrap()
}

fn accepted(ack: HelloAck) -> Accepted {
    match ack {
        HelloAck::Accepted(a) => a,
        other => panic!("not accepted: {other:?}"),
    }
}

fn refused(ack: HelloAck) -> Refused {
    match ack {
        HelloAck::Refused(r) => r,
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_join_status_and_garbage() {
    mqtt_support::init_logs();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let addr = h.mqtt_addr().unwrap();
    let store = h.store().clone();
    let token = h.join_token();
    let token_file = hub.data_dir().join("node-token");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);
    assert!(token.starts_with("K10"), "the token names the hub's key");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_ne!(token, hub.token(), "join token is not the admin token");

    // Join with the token's proof: the Node is registered with the key.
    let mut agent = TestAgent::joining(addr, "pi-1", &token).await.unwrap();
    let first = agent.hello("s1", Some(&token));
    let ack = accepted(agent.say_hello(&first, Some(&token)).await);
    assert_eq!(ack.heartbeat_millis, Some(1000));
    assert_eq!(agent.hub.as_ref(), Some(h.identity().hub_keys().public()));
    let node = store.get(nodes(), None, "pi-1").unwrap().unwrap();
    assert_eq!(node["metadata"]["labels"]["kubernetes.io/arch"], "arm64");
    assert_eq!(node["metadata"]["labels"]["room"], "attic");
    assert_eq!(node["status"]["nodeInfo"]["architecture"], "arm64");
    assert_eq!(node["status"]["capacity"]["cpu"], "4");
    let ready = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("True"), &json!("AgentReady"))
    );
    assert!(node["metadata"]["annotations"]["bramble.dev/memory-cgroup"].is_string());
    let live = h.fleet().get("pi-1").unwrap();
    assert!(live.online && live.session == "s1" && live.last_heartbeat.is_some());

    // Another board (its own key) with a wrong token proof, then with the
    // right token but a taken name: refused, nothing changes.
    let other_hub_token = format!("K10{}::abcdef.{}", "0".repeat(64), "x".repeat(32));
    let mut stranger = TestAgent::joining(addr, "pi-7", &token).await.unwrap();
    let mut bad = stranger.hello("s2", Some(&other_hub_token));
    bad.node_name = "pi-7".into();
    let r = refused(stranger.say_hello(&bad, Some(&token)).await);
    assert_eq!(r.code, RefusalCode::InvalidToken);
    assert!(r.reason.contains("not known to this hub"), "{}", r.reason);
    stranger.disconnect().await;
    assert_eq!(
        h.fleet().get("pi-1").unwrap().session,
        "s1",
        "refusals change nothing"
    );
    assert!(store.get(nodes(), None, "pi-7").unwrap().is_none());

    // Wrong passwords are refused at CONNECT; so is a client id ≠ username.
    let e = TestAgent::connect(addr, "pi-1", Some(("pi-1", "wrong")))
        .await
        .err();
    assert!(e.is_some(), "wrong password connected");
    let (join_user, join_pw) = token_login(&token);
    assert!(
        TestAgent::connect(addr, "pi-2", Some(("pi-1", &join_pw)))
            .await
            .is_err()
    );
    assert!(
        TestAgent::connect(addr, "pi-3", Some((&join_user, &join_pw)))
            .await
            .is_err(),
        "a token login must say it is one (client id _join.NAME)"
    );
    assert!(
        TestAgent::connect(addr, "_join.pi-3", Some((&join_user, &token)))
            .await
            .is_err(),
        "the token itself is no password"
    );
    assert!(TestAgent::connect(addr, "pi-1", None).await.is_err());
    assert!(
        TestAgent::connect(addr, "bramble-hub", Some(("bramble-hub", &join_pw)))
            .await
            .is_err()
    );

    // Reconnect with the board's key login; a hello of the next incarnation
    // (a restarted agent) opens session s4.
    let mut agent = agent.reconnect_with_key(addr).await.unwrap();
    let mut again = agent.hello("s4", None);
    again.incarnation = 2;
    accepted(agent.say_hello(&again, None).await);
    assert_eq!(h.fleet().get("pi-1").unwrap().session, "s4");
    // The first join's hello, replayed: refused, the session stays.
    let r = refused(agent.say_hello(&first, None).await);
    assert_eq!(r.code, RefusalCode::Replay);
    assert_eq!(h.fleet().get("pi-1").unwrap().session, "s4");

    // Status: the bound pod's status is written; a stranger is only listed.
    let uid = create_pod(&store, "web", "pi-1").await;
    let other_uid = create_pod(&store, "elsewhere", "pi-9").await;
    let st = status(
        "s4",
        1,
        &[
            ("default", "web", &uid, "Running"),
            ("default", "elsewhere", &other_uid, "Running"),
            ("default", "ghost", "u-ghost", "Running"),
        ],
    );
    agent.publish(TopicKind::Status, &st).await;
    eventually_async("pod status written", WAIT, async || {
        (pod(&store, "web")["status"]["phase"] == "Running").then_some(())
    })
    .await;
    assert_eq!(
        pod(&store, "web")["status"]["qosClass"],
        "BestEffort",
        "the class the pod was created with stays"
    );
    assert_eq!(
        pod(&store, "elsewhere")["status"],
        json!({"phase": "Pending", "qosClass": "BestEffort"}),
        "not this node's pod: as created"
    );
    let live = eventually_async("fleet updated", WAIT, async || {
        h.fleet().get("pi-1").filter(|l| l.last_seq == 1)
    })
    .await;
    assert_eq!(live.running.len(), 3);
    let rv = pod(&store, "web")["metadata"]["resourceVersion"].clone();

    // Duplicate seq, other sessions and garbage change nothing.
    let before_node = store.get(nodes(), None, "pi-1").unwrap();
    agent
        .publish(
            TopicKind::Status,
            &status("s4", 1, &[("default", "web", &uid, "Failed")]),
        )
        .await;
    agent
        .publish(
            TopicKind::Status,
            &status("old", 7, &[("default", "web", &uid, "Failed")]),
        )
        .await;
    let status_topic = "bramble/v2/nodes/pi-1/status";
    agent.publish_raw(status_topic, b"{not json".to_vec()).await;
    agent
        .publish_raw(
            status_topic,
            bramble_api::protocol::encode(&status("s4", 9, &[("default", "web", &uid, "Failed")]))
                .unwrap(),
        )
        .await;
    let mut foreign = agent.hello("s9", Some(&token));
    foreign.node_name = "pi-2".into();
    agent.publish(TopicKind::Hello, &foreign).await;
    agent
        .publish_raw("bramble/v2/nodes/pi-1/hello", b"\xff\xfe".to_vec())
        .await;
    agent
        .publish_raw("bramble/v2/nodes/pi-1/rpc/resp/r1", b"[]".to_vec())
        .await;
    // A valid status after the garbage (the same report as seq 1): once the
    // single in-order ingest has seen it, it has seen what came before.
    let mut sentinel = st.clone();
    sentinel.seq = 2;
    agent.publish(TopicKind::Status, &sentinel).await;
    eventually_async("the status after the garbage", WAIT, async || {
        h.fleet().get("pi-1").filter(|l| l.last_seq == 2)
    })
    .await;
    assert_eq!(pod(&store, "web")["metadata"]["resourceVersion"], rv);
    assert!(store.get(nodes(), None, "pi-2").unwrap().is_none());
    assert!(h.fleet().get("pi-2").is_none());
    let after = store.get(nodes(), None, "pi-1").unwrap();
    assert_eq!(before_node, after);
    assert_eq!(h.fleet().get("pi-1").unwrap().last_seq, 2);

    // The hub still works: the next status is applied; an unchanged one is
    // not written again.
    agent
        .publish(
            TopicKind::Status,
            &status("s4", 3, &[("default", "web", &uid, "Succeeded")]),
        )
        .await;
    eventually_async("second status written", WAIT, async || {
        (pod(&store, "web")["status"]["phase"] == "Succeeded").then_some(())
    })
    .await;
    let rv = pod(&store, "web")["metadata"]["resourceVersion"].clone();
    agent
        .publish(
            TopicKind::Status,
            &status("s4", 4, &[("default", "web", &uid, "Succeeded")]),
        )
        .await;
    eventually_async("fourth status seen", WAIT, async || {
        h.fleet().get("pi-1").filter(|l| l.last_seq == 4)
    })
    .await;
    assert_eq!(
        pod(&store, "web")["metadata"]["resourceVersion"],
        rv,
        "no-op write"
    );

    // The hub's outbox reaches agents, retained, even near the size limit
    // (on the one topic a joining board's token login may read, which the
    // hub publishes nothing else on while it is quiet).
    agent.disconnect().await;
    let ack_topic = "bramble/v2/nodes/pi-9/hello/ack".to_string();
    let big = vec![b'x'; 3 * 1024 * 1024];
    h.fleet()
        .publish(Outgoing {
            topic: ack_topic.clone(),
            payload: big.clone(),
            retain: true,
        })
        .await;
    let mut again = TestAgent::joining(addr, "pi-9", &token).await.unwrap();
    let (t, payload) = again.next_message().await;
    assert_eq!((t, payload.len()), (ack_topic, big.len()), "retained");

    again.disconnect().await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_mosquitto_join_and_status() {
    mqtt_support::init_logs();
    let mosquitto = Mosquitto::start();
    let url = format!("mqtt://{}", mosquitto.addr());
    let hub = TestHub::start_with(None, Some(url)).await.unwrap();
    let h = hub.hub();
    assert!(h.mqtt_addr().is_none());
    let store = h.store().clone();
    let token = h.join_token();

    // No CONNECT-level auth on this broker: the hello check refuses.
    let mut agent = TestAgent::connect(mosquitto.addr(), "pi-1", None)
        .await
        .unwrap();
    let wrong = format!("K10{}::abcdef.{}", "0".repeat(64), "x".repeat(32));
    let r = refused(
        agent
            .say_hello(&agent.hello("s0", Some(&wrong)), Some(&token))
            .await,
    );
    assert_eq!(r.code, RefusalCode::InvalidToken);
    assert!(store.get(nodes(), None, "pi-1").unwrap().is_none());

    accepted(
        agent
            .say_hello(&agent.hello("s1", Some(&token)), Some(&token))
            .await,
    );
    assert!(store.get(nodes(), None, "pi-1").unwrap().is_some());

    let uid = create_pod(&store, "web", "pi-1").await;
    agent
        .publish(
            TopicKind::Status,
            &status("s1", 1, &[("default", "web", &uid, "Running")]),
        )
        .await;
    eventually_async("pod status written", WAIT, async || {
        (pod(&store, "web")["status"]["phase"] == "Running").then_some(())
    })
    .await;

    agent.disconnect().await;
    hub.stop().await.unwrap();
    drop(mosquitto);
}

#[tokio::test]
async fn a_busy_mqtt_port_is_reported() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let err = TestHub::start_with(Some(addr), None).await.err().unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!("binding the MQTT listener {addr}")),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_token_admits_only_its_uses() {
    mqtt_support::init_logs();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let addr = h.mqtt_addr().unwrap();
    let once = h
        .identity()
        .tokens()
        .create(None, Some(1), "one board".into())
        .await
        .unwrap()
        .to_string();
    // The first board joins with it.
    let (first, _) = mqtt_support::join(addr, &once, "pi-1", |_| {}).await;
    // A second board: its join login is refused by the broker, and a hello
    // with the token's proof over another login is refused by the hub.
    let e = TestAgent::joining(addr, "pi-2", &once).await.err();
    assert!(e.is_some(), "a used-up token's login connected");
    let cluster = h.join_token();
    let mut second = TestAgent::joining(addr, "pi-2", &cluster).await.unwrap();
    let hello = second.hello("s1", Some(&once));
    let r = refused(second.say_hello(&hello, Some(&cluster)).await);
    assert_eq!(r.code, RefusalCode::InvalidToken);
    assert!(r.reason.contains("is used up"), "{}", r.reason);
    assert!(h.store().get(nodes(), None, "pi-2").unwrap().is_none());
    // The joined board is unaffected.
    assert!(h.store().get(nodes(), None, "pi-1").unwrap().is_some());
    first.disconnect().await;
    second.disconnect().await;
    hub.stop().await.unwrap();
}
