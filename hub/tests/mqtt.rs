//! The hub's MQTT side end to end: a hub with its embedded broker (or an
//! external mosquitto) and scripted agents made with rumqttc. Joining with
//! the node token, credentials, refusals at CONNECT and at hello, status
//! ingest into the store, and garbage that must change nothing.

mod mqtt_support;

use std::os::unix::fs::PermissionsExt;

use bramble_api::protocol::hello::{Accepted, HelloAck, Refused};
use bramble_api::protocol::{HelloAuth, NodeCredentials, RefusalCode, TopicKind};
use bramble_api::resource::{ResourceInfo, by_plural};
use bramble_hub::fleet::Outgoing;
use bramble_hub::store::Store;
use bramble_hub::testing::TestHub;
use mqtt_support::{Mosquitto, TestAgent, eventually, hello, status};
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
    let obj = bramble_api::admit(pod).unwrap().object;
    let created = store.create(pods(), obj).await.unwrap();
    created["metadata"]["uid"].as_str().unwrap().to_string()
}

fn pod(store: &Store, name: &str) -> Value {
    store.get(pods(), Some("default"), name).unwrap().unwrap()
}

fn accepted(ack: HelloAck) -> Accepted {
    match ack {
        HelloAck::Accepted(a) => a,
        HelloAck::Refused(r) => panic!("refused: {r:?}"),
    }
}

fn refused(ack: HelloAck) -> Refused {
    match ack {
        HelloAck::Refused(r) => r,
        HelloAck::Accepted(a) => panic!("accepted: {a:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_join_credentials_status_and_garbage() {
    mqtt_support::init_logs();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let addr = h.mqtt_addr().unwrap();
    let store = h.store().clone();
    let token = h.join_token().to_string();
    let token_file = hub.data_dir().join("node-token");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_ne!(token, hub.token(), "join token is not the admin token");

    // Join with the token: credentials issued, Node registered.
    let mut agent = TestAgent::connect(addr, "pi-1", Some(("pi-1", &token)))
        .await
        .unwrap();
    let ack = accepted(
        agent
            .hello(&hello("pi-1", "s1", HelloAuth::JoinToken(token.clone())))
            .await,
    );
    assert_eq!(ack.heartbeat_millis, Some(1000));
    let creds = ack.credentials.expect("credentials on a token join");
    assert_eq!(creds.username, "pi-1");
    let node = store.get(nodes(), None, "pi-1").unwrap().unwrap();
    assert_eq!(node["metadata"]["labels"]["kubernetes.io/arch"], "arm64");
    assert_eq!(node["metadata"]["labels"]["bramble.dev/room"], "attic");
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

    // A hello with a wrong token over an authorized connection is refused.
    let r = refused(
        agent
            .hello(&hello("pi-1", "s2", HelloAuth::JoinToken("wrong".into())))
            .await,
    );
    assert_eq!(r.code, RefusalCode::InvalidToken);
    assert!(r.reason.contains("DATA_DIR/node-token"), "{}", r.reason);
    let bad_creds = HelloAuth::Credentials(NodeCredentials {
        username: "pi-1".into(),
        password: "wrong".into(),
    });
    let r = refused(agent.hello(&hello("pi-1", "s3", bad_creds)).await);
    assert_eq!(r.code, RefusalCode::InvalidCredentials);
    let r = refused(
        agent
            .hello(&hello("pi-1", "s5", HelloAuth::JoinToken(token.clone())))
            .await,
    );
    assert_eq!(
        r.code,
        RefusalCode::NameTaken,
        "another board joining as pi-1"
    );
    assert_eq!(
        h.fleet().get("pi-1").unwrap().session,
        "s1",
        "refusals change nothing"
    );
    agent.disconnect().await;

    // Wrong passwords are refused at CONNECT; so is a client id ≠ username.
    let e = TestAgent::connect(addr, "pi-1", Some(("pi-1", "wrong")))
        .await
        .err();
    assert!(e.is_some(), "wrong password connected");
    assert!(
        TestAgent::connect(addr, "pi-2", Some(("pi-1", &token)))
            .await
            .is_err()
    );
    assert!(TestAgent::connect(addr, "pi-1", None).await.is_err());
    assert!(
        TestAgent::connect(addr, "bramble-hub", Some(("bramble-hub", &token)))
            .await
            .is_err()
    );

    // Reconnect with the issued credentials.
    let mut agent = TestAgent::connect(addr, "pi-1", Some(("pi-1", &creds.password)))
        .await
        .unwrap();
    let ack = accepted(
        agent
            .hello(&hello("pi-1", "s4", HelloAuth::Credentials(creds.clone())))
            .await,
    );
    assert!(ack.credentials.is_none());

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
    eventually("pod status written", || {
        (pod(&store, "web")["status"]["phase"] == "Running").then_some(())
    })
    .await;
    assert!(
        pod(&store, "elsewhere").get("status").is_none(),
        "not this node's pod"
    );
    let live = eventually("fleet updated", || {
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
    let status_topic = "bramble/v1/nodes/pi-1/status";
    agent.publish_raw(status_topic, b"{not json".to_vec()).await;
    agent
        .publish_raw(
            status_topic,
            json!({"protocol": 2, "type": "status", "body": {}})
                .to_string()
                .into_bytes(),
        )
        .await;
    let mut foreign = hello("pi-2", "s9", HelloAuth::JoinToken(token.clone()));
    foreign.node_name = "pi-2".into();
    agent
        .publish_raw(
            "bramble/v1/nodes/pi-1/hello",
            bramble_api::protocol::encode(&foreign).unwrap(),
        )
        .await;
    agent
        .publish_raw("bramble/v1/nodes/pi-1/hello", b"\xff\xfe".to_vec())
        .await;
    agent
        .publish_raw("bramble/v1/nodes/pi-1/state", b"{}".to_vec())
        .await;
    agent
        .publish_raw("bramble/v1/nodes/pi-1/rpc/resp/r1", b"[]".to_vec())
        .await;
    // A valid status after the garbage (the same report as seq 1): once the
    // single in-order ingest has seen it, it has seen what came before.
    let mut sentinel = st.clone();
    sentinel.seq = 2;
    agent.publish(TopicKind::Status, &sentinel).await;
    eventually("the status after the garbage", || {
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
    eventually("second status written", || {
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
    eventually("fourth status seen", || {
        h.fleet().get("pi-1").filter(|l| l.last_seq == 4)
    })
    .await;
    assert_eq!(
        pod(&store, "web")["metadata"]["resourceVersion"],
        rv,
        "no-op write"
    );

    // The hub's outbox reaches agents, retained, even near the size limit.
    // (On an unregistered node's topic: the dispatcher publishes pi-1's own
    // desired sets there.)
    agent.disconnect().await;
    let desired_topic = "bramble/v1/nodes/pi-9/desired".to_string();
    let big = vec![b'x'; 3 * 1024 * 1024];
    h.fleet()
        .publish(Outgoing {
            topic: desired_topic.clone(),
            payload: big.clone(),
            retain: true,
        })
        .await;
    let mut again = TestAgent::connect(addr, "pi-9", Some(("pi-9", &token)))
        .await
        .unwrap();
    let (t, payload) = again.next_message().await;
    assert_eq!((t, payload.len()), (desired_topic, big.len()), "retained");

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
    let token = h.join_token().to_string();

    // No CONNECT-level auth on this broker: the hello check refuses.
    let mut agent = TestAgent::connect(mosquitto.addr(), "pi-1", None)
        .await
        .unwrap();
    let r = refused(
        agent
            .hello(&hello("pi-1", "s0", HelloAuth::JoinToken("nope".into())))
            .await,
    );
    assert_eq!(r.code, RefusalCode::InvalidToken);
    assert!(store.get(nodes(), None, "pi-1").unwrap().is_none());

    let ack = accepted(
        agent
            .hello(&hello("pi-1", "s1", HelloAuth::JoinToken(token)))
            .await,
    );
    assert!(ack.credentials.is_some());
    assert!(store.get(nodes(), None, "pi-1").unwrap().is_some());

    let uid = create_pod(&store, "web", "pi-1").await;
    agent
        .publish(
            TopicKind::Status,
            &status("s1", 1, &[("default", "web", &uid, "Running")]),
        )
        .await;
    eventually("pod status written", || {
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
