//! The ingest without a broker: frames go straight into [`Ingest::handle`]
//! and answers come out of the fleet's outbox.

use std::sync::Arc;

use bramble_api::protocol::hello::HelloAck;
use bramble_api::protocol::{
    Cgroups, Hello, HelloAuth, HubKey, HubMessage, Message, Online, Platform, Status, Topic,
    TopicKind, decode_from_hub, encode, encode_frame, keys_text,
};
use bramble_trust::{JoinToken, SecretKeys};
use tokio::sync::mpsc;

use super::Ingest;
use crate::fleet::{Fleet, Outgoing};
use crate::identity::Identity;
use crate::store::{Store, StoreOptions};

struct Fixture {
    ingest: Ingest,
    fleet: Arc<Fleet>,
    outbox: mpsc::Receiver<Outgoing>,
    store: Store,
    identity: Arc<Identity>,
    token: JoinToken,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    fixture_with(Default::default()).await
}

async fn fixture_with(network: crate::network::NetworkSettings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
    let (fleet, outbox) = Fleet::new();
    let fleet = Arc::new(fleet);
    let identity = Identity::open(dir.path(), store.clone(), false)
        .await
        .unwrap();
    let token = identity.join_token().unwrap();
    Fixture {
        ingest: Ingest::new(
            store.clone(),
            fleet.clone(),
            identity.clone(),
            Arc::new(network),
        ),
        fleet,
        outbox,
        store,
        identity,
        token,
        _dir: dir,
    }
}

/// A board: its name and keys.
struct Board {
    node: String,
    keys: SecretKeys,
}

impl Board {
    fn new(node: &str) -> Board {
        Board {
            node: node.into(),
            keys: SecretKeys::generate().unwrap(),
        }
    }

    fn topic(&self, kind: TopicKind) -> Topic {
        Topic::new(&self.node, kind).unwrap()
    }

    /// Its hello of `session`, joining with `token` if given.
    fn hello(&self, session: &str, token: Option<&JoinToken>) -> Hello {
        let mut h = Hello {
            node_name: self.node.clone(),
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
            incarnation: 1,
            keys: keys_text(self.keys.public()),
            auth: HelloAuth::Key,
            ..Default::default()
        };
        if let Some(t) = token {
            h.prove_token(t);
        }
        h
    }

    fn frame<M: Message>(&self, kind: TopicKind, msg: &M) -> (String, Vec<u8>) {
        let t = self.topic(kind);
        (
            t.to_string(),
            encode_frame(&self.keys, &t, msg, None).unwrap(),
        )
    }
}

impl Fixture {
    async fn send<M: Message>(&self, board: &Board, kind: TopicKind, msg: &M) {
        let (t, payload) = board.frame(kind, msg);
        self.ingest.handle(&t, &payload).await;
    }

    async fn ack(&mut self, board: &Board) -> HelloAck {
        let out = self.outbox.recv().await.unwrap();
        assert_eq!(out.topic, board.topic(TopicKind::HelloAck).to_string());
        assert!(!out.retain);
        let hub = self.identity.hub_keys().public().fingerprint();
        match decode_from_hub(
            &board.node,
            &out.topic,
            &out.payload,
            HubKey::Expected(hub),
            &board.keys,
        )
        .unwrap()
        .message
        {
            HubMessage::HelloAck(a) => a,
            other => panic!("not a hello ack: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_token_join_registers_the_node_and_its_key() {
    let mut f = fixture().await;
    let pi = Board::new("pi-1");
    let token = f.token.clone();
    f.send(&pi, TopicKind::Hello, &pi.hello("s1", Some(&token)))
        .await;
    let HelloAck::Accepted(a) = f.ack(&pi).await else {
        panic!("not accepted")
    };
    assert_eq!(a.hub, f.identity.hub_keys_text());
    assert_eq!(f.identity.node_key("pi-1").as_ref(), Some(pi.keys.public()));
    // The agent reconnects with its key login: calls wait for its next hello.
    assert!(f.fleet.get("pi-1").unwrap().switching_login);
    f.send(&pi, TopicKind::Hello, &pi.hello("s1", None)).await;
    assert!(matches!(f.ack(&pi).await, HelloAck::Accepted(_)));
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
    let hub = Board::new("bramble-hub");
    f.send(&hub, TopicKind::Hello, &hub.hello("s1", Some(&token)))
        .await;
    assert!(matches!(f.ack(&hub).await, HelloAck::Refused(_)));
    f.store.shutdown().await;
}

#[tokio::test]
async fn frames_not_signed_by_the_registered_key_change_nothing() {
    let mut f = fixture().await;
    let (pi, thief) = (Board::new("pi-1"), Board::new("pi-1"));
    let token = f.token.clone();
    f.send(&pi, TopicKind::Hello, &pi.hello("s1", Some(&token)))
        .await;
    assert!(matches!(f.ack(&pi).await, HelloAck::Accepted(_)));
    let revision = f.store.revision().unwrap();
    // Statuses and onlines signed by another key, or in protocol 1's
    // plain JSON, are refused.
    let status = Status {
        session: "s1".into(),
        seq: 1,
        ..Status::default()
    };
    f.send(&thief, TopicKind::Status, &status).await;
    f.send(&thief, TopicKind::Online, &Online::last_will("s1", 9))
        .await;
    let t = pi.topic(TopicKind::Status).to_string();
    f.ingest.handle(&t, &encode(&status).unwrap()).await;
    let live = f.fleet.get("pi-1").unwrap();
    assert_eq!((live.last_seq, live.online), (0, true));
    // A join with another board's key for a registered name: refused.
    f.send(&thief, TopicKind::Hello, &thief.hello("s2", Some(&token)))
        .await;
    let HelloAck::Refused(r) = f.ack(&thief).await else {
        panic!("not refused")
    };
    assert_eq!(r.code, bramble_api::protocol::RefusalCode::NameTaken);
    assert_eq!(f.store.revision().unwrap(), revision);
    assert_eq!(f.identity.node_key("pi-1").as_ref(), Some(pi.keys.public()));
    // The real node's status is believed.
    f.send(&pi, TopicKind::Status, &status).await;
    assert_eq!(f.fleet.get("pi-1").unwrap().last_seq, 1);
    f.store.shutdown().await;
}

#[tokio::test]
async fn garbage_and_hub_topics_change_nothing() {
    let mut f = fixture().await;
    for (t, payload) in [
        ("bramble/v2/nodes/pi-1/state", &b"{}"[..]),
        ("bramble/v1/nodes/pi-1/status", b"{}"),
        ("elsewhere", b"{}"),
        ("bramble/v2/nodes/pi-1/desired", b"{}"),
        ("bramble/v2/nodes/pi-1/hello/ack", b"{}"),
        ("bramble/v2/nodes/pi-1/online", b"\x00\x01"),
        ("bramble/v2/nodes/pi-1/hello", b"BRM\x02"),
    ] {
        f.ingest.handle(t, payload).await;
    }
    assert!(f.fleet.snapshot().is_empty());
    assert!(f.outbox.try_recv().is_err());
    assert_eq!(f.store.revision().unwrap(), 0);
    f.store.shutdown().await;
}

#[tokio::test]
async fn online_follows_the_current_session_and_newest_connection() {
    let mut f = fixture().await;
    let pi = Board::new("pi-1");
    let token = f.token.clone();
    f.send(&pi, TopicKind::Hello, &pi.hello("new", Some(&token)))
        .await;
    f.ack(&pi).await;
    f.send(&pi, TopicKind::Online, &Online::up("new", 2)).await;
    assert!(f.fleet.get("pi-1").unwrap().online);
    // A will of an older session, or of an earlier connection: ignored.
    f.send(&pi, TopicKind::Online, &Online::last_will("old", 5))
        .await;
    f.send(&pi, TopicKind::Online, &Online::last_will("new", 1))
        .await;
    assert!(f.fleet.get("pi-1").unwrap().online, "stale will ignored");
    f.send(&pi, TopicKind::Online, &Online::last_will("new", 2))
        .await;
    assert!(!f.fleet.get("pi-1").unwrap().online);
    f.send(&pi, TopicKind::Online, &Online::up("new", 3)).await;
    assert!(f.fleet.get("pi-1").unwrap().online);
    f.store.shutdown().await;
}

#[tokio::test]
async fn an_invalid_hello_of_the_right_node_is_answered() {
    let mut f = fixture().await;
    let pi = Board::new("pi-1");
    let mut h = pi.hello("s1", Some(&f.token));
    h.cpus = 0;
    f.send(&pi, TopicKind::Hello, &h).await;
    let HelloAck::Refused(r) = f.ack(&pi).await else {
        panic!("not refused")
    };
    assert_eq!(r.code, bramble_api::protocol::RefusalCode::InvalidHello);
    assert!(r.reason.contains("cpus"), "{}", r.reason);
    // Restricted labels: refused with the reason.
    let mut h = pi.hello("s1", Some(&f.token));
    h.labels = [(
        "node-role.kubernetes.io/control-plane".to_string(),
        "true".to_string(),
    )]
    .into();
    f.send(&pi, TopicKind::Hello, &h).await;
    let HelloAck::Refused(r) = f.ack(&pi).await else {
        panic!("not refused")
    };
    assert!(
        r.reason.contains("nodes may not label themselves"),
        "{}",
        r.reason
    );
    // Another node's name in the body: no answer at all.
    let mut other = Board::new("pi-2").hello("s1", None);
    other.cpus = 0;
    f.send(&pi, TopicKind::Hello, &other).await;
    assert!(f.outbox.try_recv().is_err());
    assert!(f.fleet.snapshot().is_empty());
    assert_eq!(f.identity.node_key("pi-1"), None);
    f.store.shutdown().await;
}

async fn join(f: &mut Fixture, board: &Board) -> HelloAck {
    let token = f.token.clone();
    f.send(board, TopicKind::Hello, &board.hello("s1", Some(&token)))
        .await;
    f.ack(board).await
}

#[tokio::test]
async fn a_node_without_a_free_pod_cidr_is_told_why_and_not_registered() {
    let mut f = fixture_with(crate::network::NetworkSettings {
        cluster_cidr: "10.42.0.0/24".parse().unwrap(),
        node_cidr_prefix: 24,
        ..Default::default()
    })
    .await;
    let HelloAck::Accepted(a) = join(&mut f, &Board::new("pi-1")).await else {
        panic!("the first node fits")
    };
    assert_eq!(a.pod_cidr.as_deref(), Some("10.42.0.0/24"));
    let HelloAck::Refused(r) = join(&mut f, &Board::new("pi-2")).await else {
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
