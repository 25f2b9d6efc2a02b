//! The ingest without a broker: messages go straight into
//! [`Ingest::handle`] and answers come out of the fleet's outbox.

use std::sync::Arc;

use bramble_api::protocol::hello::HelloAck;
use bramble_api::protocol::{
    Cgroups, Hello, HelloAuth, Online, Platform, TopicKind, decode_from_hub, encode,
};
use tokio::sync::mpsc;

use super::Ingest;
use crate::fleet::{Fleet, Outgoing};
use crate::node_auth::NodeAuth;
use crate::store::{Store, StoreOptions};

struct Fixture {
    ingest: Ingest,
    fleet: Arc<Fleet>,
    outbox: mpsc::Receiver<Outgoing>,
    store: Store,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    fixture_with(Default::default())
}

fn fixture_with(network: crate::network::NetworkSettings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
    let (fleet, outbox) = Fleet::new();
    let fleet = Arc::new(fleet);
    let auth = NodeAuth::new(store.clone(), "join".into(), "hub".into());
    Fixture {
        ingest: Ingest::new(store.clone(), fleet.clone(), auth, Arc::new(network)),
        fleet,
        outbox,
        store,
        _dir: dir,
    }
}

fn hello(node: &str, session: &str, token: &str) -> Hello {
    Hello {
        node_name: node.into(),
        session: session.into(),
        agent_version: "0.1.0".into(),
        platform: Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: "v7".into(),
        },
        kernel_version: "6.1".into(),
        cpus: 1,
        memory_bytes: 1 << 30,
        cgroups: Cgroups {
            version: 2,
            controllers: vec!["memory".into()],
        },
        runtime: "oci:crun".into(),
        auth: HelloAuth::JoinToken(token.into()),
        ..Default::default()
    }
}

fn topic(node: &str, kind: TopicKind) -> String {
    bramble_api::protocol::Topic::new(node, kind)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn hello_is_answered_through_the_outbox() {
    let mut f = fixture();
    let t = topic("pi-1", TopicKind::Hello);
    f.ingest
        .handle(&t, &encode(&hello("pi-1", "s1", "join")).unwrap())
        .await;
    let out = f.outbox.recv().await.unwrap();
    assert_eq!(out.topic, "bramble/v1/nodes/pi-1/hello/ack");
    assert!(!out.retain);
    let bramble_api::protocol::HubMessage::HelloAck(HelloAck::Accepted(a)) =
        decode_from_hub("pi-1", &out.topic, &out.payload).unwrap()
    else {
        panic!("not accepted")
    };
    assert!(a.credentials.is_some());
    // The agent reconnects with them: calls wait for its next hello.
    assert!(f.fleet.get("pi-1").unwrap().switching_login);
    let mut again = hello("pi-1", "s1", "join");
    again.auth = bramble_api::protocol::HelloAuth::Credentials(a.credentials.clone().unwrap());
    f.ingest.handle(&t, &encode(&again).unwrap()).await;
    let out = f.outbox.recv().await.unwrap();
    assert!(matches!(
        decode_from_hub("pi-1", &out.topic, &out.payload).unwrap(),
        bramble_api::protocol::HubMessage::HelloAck(HelloAck::Accepted(_))
    ));
    assert!(!f.fleet.get("pi-1").unwrap().switching_login);
    let nodes = bramble_api::resource::by_plural("", "v1", "nodes").unwrap();
    let node = f.store.get(nodes, None, "pi-1").unwrap().unwrap();
    assert_eq!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"],
        "oci:crun"
    );
    assert!(
        node["metadata"].get("annotations").is_none(),
        "memory cgroup present"
    );

    // The reserved name is refused.
    let t = topic("bramble-hub", TopicKind::Hello);
    f.ingest
        .handle(&t, &encode(&hello("bramble-hub", "s1", "join")).unwrap())
        .await;
    let out = f.outbox.recv().await.unwrap();
    assert!(matches!(
        decode_from_hub("bramble-hub", &out.topic, &out.payload).unwrap(),
        bramble_api::protocol::HubMessage::HelloAck(HelloAck::Refused(_))
    ));
    f.store.shutdown().await;
}

#[tokio::test]
async fn garbage_and_hub_topics_change_nothing() {
    let mut f = fixture();
    for (t, payload) in [
        ("bramble/v1/nodes/pi-1/state", &b"{}"[..]),
        ("bramble/v2/nodes/pi-1/status", b"{}"),
        ("elsewhere", b"{}"),
        ("bramble/v1/nodes/pi-1/desired", b"{}"),
        ("bramble/v1/nodes/pi-1/hello/ack", b"{}"),
        ("bramble/v1/nodes/pi-1/online", b"\x00\x01"),
    ] {
        f.ingest.handle(t, payload).await;
    }
    assert!(f.fleet.snapshot().is_empty());
    assert!(f.outbox.try_recv().is_err());
    assert_eq!(f.store.revision().unwrap(), 0);
    f.store.shutdown().await;
}

#[tokio::test]
async fn online_flag_follows_the_current_session() {
    let f = fixture();
    f.fleet.update("pi-1", |l| {
        l.session = "new".into();
        l.online = true;
    });
    let t = topic("pi-1", TopicKind::Online);
    f.ingest
        .handle(&t, &encode(&Online::last_will("old")).unwrap())
        .await;
    assert!(f.fleet.get("pi-1").unwrap().online, "stale will ignored");
    f.ingest
        .handle(&t, &encode(&Online::last_will("new")).unwrap())
        .await;
    assert!(!f.fleet.get("pi-1").unwrap().online);
    f.ingest
        .handle(&t, &encode(&Online::up("new")).unwrap())
        .await;
    assert!(f.fleet.get("pi-1").unwrap().online);
    f.store.shutdown().await;
}

#[tokio::test]
async fn an_invalid_hello_of_the_right_node_is_answered() {
    let mut f = fixture();
    let mut h = hello("pi-1", "s1", "join");
    h.cpus = 0;
    let t = topic("pi-1", TopicKind::Hello);
    f.ingest.handle(&t, &encode(&h).unwrap()).await;
    let out = f.outbox.recv().await.unwrap();
    let bramble_api::protocol::HubMessage::HelloAck(HelloAck::Refused(r)) =
        decode_from_hub("pi-1", &out.topic, &out.payload).unwrap()
    else {
        panic!("not refused")
    };
    assert_eq!(r.code, bramble_api::protocol::RefusalCode::InvalidHello);
    assert!(r.reason.contains("cpus"), "{}", r.reason);
    // Another node's name in the body: no answer at all.
    let mut other = hello("pi-2", "s1", "join");
    other.cpus = 0;
    f.ingest.handle(&t, &encode(&other).unwrap()).await;
    assert!(f.outbox.try_recv().is_err());
    assert!(f.fleet.snapshot().is_empty());
    f.store.shutdown().await;
}

async fn hello_ack(f: &mut Fixture, node: &str) -> HelloAck {
    let t = topic(node, TopicKind::Hello);
    f.ingest
        .handle(&t, &encode(&hello(node, "s1", "join")).unwrap())
        .await;
    let out = f.outbox.recv().await.unwrap();
    match decode_from_hub(node, &out.topic, &out.payload).unwrap() {
        bramble_api::protocol::HubMessage::HelloAck(a) => a,
        other => panic!("not a hello ack: {other:?}"),
    }
}

#[tokio::test]
async fn a_node_without_a_free_pod_cidr_is_told_why_and_not_registered() {
    let mut f = fixture_with(crate::network::NetworkSettings {
        cluster_cidr: "10.42.0.0/24".parse().unwrap(),
        ..Default::default()
    });
    let HelloAck::Accepted(a) = hello_ack(&mut f, "pi-1").await else {
        panic!("the first node fits")
    };
    assert_eq!(a.pod_cidr.as_deref(), Some("10.42.0.0/24"));
    let HelloAck::Refused(r) = hello_ack(&mut f, "pi-2").await else {
        panic!("the second node has no pod CIDR left")
    };
    assert_eq!(r.code, bramble_api::protocol::RefusalCode::InvalidHello);
    assert!(
        r.reason.contains("no free pod CIDR") && r.reason.contains("--cluster-cidr 10.42.0.0/24"),
        "{}",
        r.reason
    );
    let nodes = bramble_api::resource::by_plural("", "v1", "nodes").unwrap();
    assert!(f.store.get(nodes, None, "pi-2").unwrap().is_none());
    f.store.shutdown().await;
}
