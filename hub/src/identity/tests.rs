//! The identity rules without a broker: hellos, CONNECT, the topic ACL,
//! registry logins and revocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bramble_api::protocol::{Hello, HelloAuth, JoinProof, RefusalCode, Signer, keys_text};
use bramble_trust::login::{Service, join_login, key_password};
use bramble_trust::{JoinToken, SecretKeys};

use super::{HelloVerdict, Identity};
use crate::store::{Store, StoreOptions};

struct Fixture {
    id: Arc<Identity>,
    store: Store,
    dir: tempfile::TempDir,
}

async fn fixture(approve: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
    let id = Identity::open(dir.path(), store.clone(), approve)
        .await
        .unwrap();
    Fixture { id, store, dir }
}

fn hello(node: &str, keys: &SecretKeys, session: &str, incarnation: u64) -> Hello {
    Hello {
        node_name: node.into(),
        session: session.into(),
        incarnation,
        keys: keys_text(keys.public()),
        ..Hello::default()
    }
}

fn joining(node: &str, keys: &SecretKeys, session: &str, token: &JoinToken) -> Hello {
    let mut h = hello(node, keys, session, 1);
    h.prove_token(token);
    h
}

fn claimed(keys: &SecretKeys) -> Signer {
    Signer::Claimed(Box::new(keys.public().clone()))
}

fn refused(v: HelloVerdict) -> RefusalCode {
    match v {
        HelloVerdict::Refused(code, _) => code,
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_token_join_registers_the_key_and_replays_are_refused() {
    let f = fixture(false).await;
    let token = f.id.join_token().unwrap();
    let board = SecretKeys::generate().unwrap();
    let h = joining("pi-1", &board, "s1", &token);
    assert_eq!(
        f.id.check_hello(&h, &claimed(&board)).await.unwrap(),
        HelloVerdict::Accepted
    );
    assert_eq!(f.id.node_key("pi-1").as_ref(), Some(board.public()));
    assert_eq!(f.id.node_session("pi-1").as_deref(), Some("s1"));
    // The same hello again (its ack was lost) is answered the same.
    assert_eq!(
        f.id.check_hello(&h, &Signer::Registered).await.unwrap(),
        HelloVerdict::Accepted
    );
    // A restart: a higher incarnation, a new session.
    let mut h2 = hello("pi-1", &board, "s2", 2);
    h2.auth = HelloAuth::Key;
    assert_eq!(
        f.id.check_hello(&h2, &Signer::Registered).await.unwrap(),
        HelloVerdict::Accepted
    );
    assert_eq!(f.id.node_session("pi-1").as_deref(), Some("s2"));
    // The first hello replayed now, or any older incarnation: refused.
    assert_eq!(
        refused(f.id.check_hello(&h, &Signer::Registered).await.unwrap()),
        RefusalCode::Replay
    );
    let same_incarnation_other_session = hello("pi-1", &board, "s3", 2);
    assert_eq!(
        refused(
            f.id.check_hello(&same_incarnation_other_session, &Signer::Registered)
                .await
                .unwrap()
        ),
        RefusalCode::Replay
    );
    // The incarnation survives a hub restart.
    let again = Identity::open(f.dir.path(), f.store.clone(), false)
        .await
        .unwrap();
    assert_eq!(
        refused(again.check_hello(&h, &Signer::Registered).await.unwrap()),
        RefusalCode::Replay
    );
    f.store.shutdown().await;
}

#[tokio::test]
async fn joins_need_a_valid_token_proof_and_a_free_name() {
    let f = fixture(false).await;
    let token = f.id.join_token().unwrap();
    let (a, b) = (
        SecretKeys::generate().unwrap(),
        SecretKeys::generate().unwrap(),
    );
    // No proof at all: the hub does not know this key.
    let no_proof = hello("pi-1", &a, "s1", 1);
    assert_eq!(
        refused(f.id.check_hello(&no_proof, &claimed(&a)).await.unwrap()),
        RefusalCode::UnknownNode
    );
    // A proof made with another secret, or for other fields.
    let other_hub = SecretKeys::generate().unwrap().public().fingerprint();
    let wrong = JoinToken::from_parts(other_hub, token.id(), &"x".repeat(32)).unwrap();
    let bad = joining("pi-1", &a, "s1", &wrong);
    assert_eq!(
        refused(f.id.check_hello(&bad, &claimed(&a)).await.unwrap()),
        RefusalCode::InvalidToken
    );
    let mut moved = joining("pi-1", &a, "s1", &token);
    moved.session = "s9".into();
    assert_eq!(
        refused(f.id.check_hello(&moved, &claimed(&a)).await.unwrap()),
        RefusalCode::InvalidToken
    );
    let mut unknown = joining("pi-1", &a, "s1", &token);
    if let HelloAuth::JoinToken(p) = &mut unknown.auth {
        p.id = "zzzzzz".into();
    }
    assert_eq!(
        refused(f.id.check_hello(&unknown, &claimed(&a)).await.unwrap()),
        RefusalCode::InvalidToken
    );
    assert_eq!(f.id.node_key("pi-1"), None, "nothing registered");
    // Joined; then another board's key under the same name is refused.
    let ok = joining("pi-1", &a, "s1", &token);
    assert_eq!(
        f.id.check_hello(&ok, &claimed(&a)).await.unwrap(),
        HelloVerdict::Accepted
    );
    let thief = joining("pi-1", &b, "s1", &token);
    assert_eq!(
        refused(f.id.check_hello(&thief, &claimed(&b)).await.unwrap()),
        RefusalCode::NameTaken
    );
    assert_eq!(f.id.node_key("pi-1").as_ref(), Some(a.public()));
    // Reserved name.
    let hub = joining("bramble-hub", &b, "s1", &token);
    assert_eq!(
        refused(f.id.check_hello(&hub, &claimed(&b)).await.unwrap()),
        RefusalCode::InvalidHello
    );
    // A deleted node frees the name.
    assert!(f.id.revoke("pi-1").await.unwrap());
    assert_eq!(
        f.id.check_hello(&thief, &claimed(&b)).await.unwrap(),
        HelloVerdict::Accepted
    );
    f.store.shutdown().await;
}

#[tokio::test]
async fn limited_tokens_and_approval() {
    let f = fixture(true).await;
    let once =
        f.id.tokens()
            .create(None, Some(1), "one board".into())
            .await
            .unwrap();
    let (a, b) = (
        SecretKeys::generate().unwrap(),
        SecretKeys::generate().unwrap(),
    );
    let h = joining("pi-1", &a, "s1", &once);
    assert_eq!(
        f.id.check_hello(&h, &claimed(&a)).await.unwrap(),
        HelloVerdict::Pending
    );
    // Pending: no usable key, hellos stay pending, and the one use is spent.
    assert_eq!(f.id.node_key("pi-1"), None);
    assert_eq!(
        f.id.check_hello(&h, &claimed(&a)).await.unwrap(),
        HelloVerdict::Pending
    );
    let h2 = joining("pi-2", &b, "s1", &once);
    assert_eq!(
        refused(f.id.check_hello(&h2, &claimed(&b)).await.unwrap()),
        RefusalCode::InvalidToken
    );
    assert!(f.id.approve("pi-1").await.unwrap());
    assert!(!f.id.approve("pi-9").await.unwrap());
    assert_eq!(
        f.id.check_hello(&h, &Signer::Registered).await.unwrap(),
        HelloVerdict::Accepted
    );
    assert_eq!(f.id.node_key("pi-1").as_ref(), Some(a.public()));
    f.store.shutdown().await;
}

#[tokio::test]
async fn connect_acl_registry_and_revocation() {
    let f = fixture(false).await;
    let token = f.id.join_token().unwrap();
    let hub = f.id.hub_keys().public().clone();
    let (a, b) = (
        SecretKeys::generate().unwrap(),
        SecretKeys::generate().unwrap(),
    );
    let kp = |k: &SecretKeys, s| key_password(k, &hub, s, "pi-1").unwrap();
    // The hub's own client.
    let hub_pw = f.id.hub_password().to_string();
    assert!(
        f.id.check_connect("bramble-hub", "bramble-hub", &hub_pw)
            .is_ok()
    );
    assert!(
        f.id.check_connect("bramble-hub", "bramble-hub", "x")
            .is_err()
    );
    assert!(f.id.check_connect("pi-1", "bramble-hub", &hub_pw).is_err());
    // Before joining: the token's login, as `_join.<name>`, nothing else.
    let j = join_login(&token, "pi-1");
    assert!(
        f.id.check_connect(&j.client_id, &j.username, &j.password)
            .is_ok()
    );
    assert!(
        f.id.check_connect("_join.Pi_1", &j.username, &j.password)
            .is_err()
    );
    assert!(
        f.id.check_connect(&j.client_id, "_join.zzzzzz", &j.password)
            .is_err()
    );
    assert!(
        f.id.check_connect(&j.client_id, &j.username, token.secret())
            .is_err()
    );
    assert!(f.id.check_connect("pi-1", "pi-1", &j.password).is_err());
    assert!(
        f.id.check_connect("pi-1", "pi-1", &kp(&a, Service::Mqtt))
            .is_err(),
        "no key registered yet"
    );
    // A token login may only say hello.
    assert!(f.id.may_publish(&j.client_id, "bramble/v2/nodes/pi-1/hello"));
    assert!(
        !f.id
            .may_publish(&j.client_id, "bramble/v2/nodes/pi-1/status")
    );
    assert!(
        !f.id
            .may_publish(&j.client_id, "bramble/v2/nodes/pi-2/hello")
    );
    assert!(f.id.may_subscribe(&j.client_id, "bramble/v2/nodes/pi-1/hello/ack"));
    assert!(
        !f.id
            .may_subscribe(&j.client_id, "bramble/v2/nodes/pi-1/desired")
    );
    assert!(!f.id.may_subscribe(&j.client_id, "bramble/#"));
    // Joined: its key logs in; the token's login still only says hello.
    let h = joining("pi-1", &a, "s1", &token);
    f.id.check_hello(&h, &claimed(&a)).await.unwrap();
    let akp = kp(&a, Service::Mqtt);
    assert!(f.id.check_connect("pi-1", "pi-1", &akp).is_ok());
    assert!(
        f.id.check_connect(&j.client_id, &j.username, &j.password)
            .is_ok()
    );
    assert!(
        !f.id
            .may_publish(&j.client_id, "bramble/v2/nodes/pi-1/status")
    );
    assert!(
        f.id.check_connect("pi-1", "pi-1", &kp(&b, Service::Mqtt))
            .is_err()
    );
    assert!(
        f.id.check_connect("pi-1", "pi-1", &kp(&a, Service::Registry))
            .is_err(),
        "a registry password is no MQTT password"
    );
    assert!(f.id.may_publish("pi-1", "bramble/v2/nodes/pi-1/status"));
    assert!(!f.id.may_publish("pi-1", "bramble/v2/nodes/pi-2/status"));
    assert!(!f.id.may_publish("pi-1", "bramble/v2/nodes/pi-1/desired"));
    assert!(f.id.may_subscribe("pi-1", "bramble/v2/nodes/pi-1/desired"));
    assert!(!f.id.may_subscribe("pi-1", "bramble/v2/nodes/+/desired"));
    assert!(
        !f.id.may_subscribe("pi-2", "bramble/v2/nodes/pi-2/desired"),
        "unknown"
    );
    assert!(f.id.may_publish("bramble-hub", "bramble/v2/nodes/pi-1/desired"));
    // Registry: the key's registry login, reads only (the route checks that).
    let rp = kp(&a, Service::Registry);
    assert!(f.id.registry_login("pi-1", &rp));
    assert!(!f.id.registry_login("pi-1", &akp));
    assert!(!f.id.registry_login("pi-2", &rp));
    // Revocation: hooks run, everything is refused at once.
    let kicked = Arc::new(AtomicUsize::new(0));
    let k = kicked.clone();
    f.id.on_revoke(Box::new(move |node| {
        assert_eq!(node, "pi-1");
        k.fetch_add(1, Ordering::SeqCst);
    }));
    assert!(f.id.revoke("pi-1").await.unwrap());
    assert_eq!(kicked.load(Ordering::SeqCst), 1);
    assert!(f.id.check_connect("pi-1", "pi-1", &akp).is_err());
    assert!(!f.id.registry_login("pi-1", &rp));
    assert!(!f.id.may_publish("pi-1", "bramble/v2/nodes/pi-1/status"));
    assert_eq!(f.id.node_key("pi-1"), None);
    assert!(!f.id.revoke("pi-1").await.unwrap());
    assert_eq!(kicked.load(Ordering::SeqCst), 1);
    f.store.shutdown().await;
}

#[tokio::test]
async fn hellos_naming_other_keys_than_their_signer_are_refused() {
    let f = fixture(false).await;
    let token = f.id.join_token().unwrap();
    let (a, b) = (
        SecretKeys::generate().unwrap(),
        SecretKeys::generate().unwrap(),
    );
    f.id.check_hello(&joining("pi-1", &a, "s1", &token), &claimed(&a))
        .await
        .unwrap();
    let mut h = hello("pi-1", &b, "s2", 2);
    h.auth = HelloAuth::JoinToken(JoinProof::default());
    assert_eq!(
        refused(f.id.check_hello(&h, &Signer::Registered).await.unwrap()),
        RefusalCode::InvalidHello
    );
    f.store.shutdown().await;
}
