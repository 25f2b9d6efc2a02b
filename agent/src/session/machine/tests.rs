//! Every transition of the session machine, with a hub made of keys: no
//! broker, no threads, time passed in.

use std::time::{Duration, Instant};

use bramble_api::protocol::hello::{Accepted, Pending, Refused};
use bramble_api::protocol::rpc::{CancelCall, LogsCall, PodRef};
use bramble_api::protocol::{
    Desired, Generation, Hello, HelloAck, HelloAuth, Message, Online, RefusalCode, RpcCall, RpcId,
    RpcRequest, Status, Topic, TopicKind, decode_frame, encode_frame, keys_text,
};
use bramble_trust::{JoinToken, SecretKeys};

use super::{Input, Machine, MachineConfig, Output, PENDING_RETRY};
use crate::session::login::Login;
use crate::session::report::NodeReport;

struct Rig {
    hub: SecretKeys,
    board: SecretKeys,
    token: JoinToken,
    m: Machine,
    t0: Instant,
}

fn config() -> MachineConfig {
    MachineConfig {
        node: "pi-1".into(),
        session: "s1".into(),
        incarnation: 7,
        heartbeat: Duration::from_secs(1),
        hello: crate::session::hello::build(
            "pi-1",
            "s1",
            &crate::node::info::NodeInfo {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: None,
                kernel: "6.6".into(),
                cpus: 4,
                memory_bytes: 1 << 30,
                cgroup_v2: true,
                cgroup_controllers: Default::default(),
            },
            "",
            "libcontainer",
        ),
        data_dir: "/var/lib/bramble-agent".into(),
    }
}

/// A board that has not joined yet.
fn joining() -> Rig {
    let hub = SecretKeys::generate().unwrap();
    let board = SecretKeys::generate().unwrap();
    let token = JoinToken::generate(hub.public().fingerprint()).unwrap();
    let t0 = Instant::now();
    let m = Machine::new(config(), board.clone(), None, Some(token.clone()), t0);
    Rig {
        hub,
        board,
        token,
        m,
        t0,
    }
}

/// A board that joined (the hub pinned) and is connected and accepted.
fn joined() -> Rig {
    let hub = SecretKeys::generate().unwrap();
    let board = SecretKeys::generate().unwrap();
    let token = JoinToken::generate(hub.public().fingerprint()).unwrap();
    let t0 = Instant::now();
    let m = Machine::new(
        config(),
        board.clone(),
        Some(hub.public().clone()),
        None,
        t0,
    );
    let mut r = Rig {
        hub,
        board,
        token,
        m,
        t0,
    };
    r.handle(Input::Connected { connection: 1 });
    let ack = r.ack(accepted());
    let out = r.publish(&ack);
    assert!(out.is_empty(), "{out:?}");
    assert!(r.m.accepted());
    r
}

fn accepted() -> HelloAck {
    HelloAck::Accepted(Accepted {
        session: "s1".into(),
        heartbeat_millis: Some(1000),
        ..Accepted::default()
    })
}

fn topic(kind: TopicKind) -> Topic {
    Topic::new("pi-1", kind).unwrap()
}

impl Rig {
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn handle(&mut self, input: Input<'_>) -> Vec<Output> {
        self.m.handle(self.t0, input)
    }

    /// A hub frame of `msg` for topic `kind`, signed by `signer`.
    fn from(&self, signer: &SecretKeys, kind: TopicKind, msg: &impl Message) -> (String, Vec<u8>) {
        let t = topic(kind);
        (
            t.to_string(),
            encode_frame(signer, &t, msg, Some(self.board.public())).unwrap(),
        )
    }

    /// The hub's helloAck (its keys filled in).
    fn ack(&self, mut ack: HelloAck) -> (String, Vec<u8>) {
        let keys = keys_text(self.hub.public());
        match &mut ack {
            HelloAck::Accepted(a) => a.hub = keys,
            HelloAck::Pending(p) => p.hub = keys,
            HelloAck::Refused(r) => r.hub = keys,
        }
        self.from(&self.hub, TopicKind::HelloAck, &ack)
    }

    fn publish(&mut self, (topic, payload): &(String, Vec<u8>)) -> Vec<Output> {
        self.m.handle(self.t0, Input::Publish { topic, payload })
    }

    fn tick(&mut self, ms: u64, report: &NodeReport, change: u64) -> Vec<Output> {
        let now = self.at(ms);
        self.m.handle(now, Input::Tick { report, change })
    }
}

/// The messages published in `out`, decoded as the board's.
fn published<M: Message>(rig: &Rig, out: &[Output], kind: TopicKind) -> Vec<M> {
    let want = topic(kind).to_string();
    out.iter()
        .filter_map(|o| match o {
            Output::Publish { topic, payload, .. } if *topic == want => {
                Some(decode_frame("pi-1", topic, payload, rig.board.public(), None).unwrap())
            }
            _ => None,
        })
        .collect()
}

fn subscriptions(out: &[Output]) -> Vec<String> {
    out.iter()
        .find_map(|o| match o {
            Output::Subscribe(s) => Some(s.clone()),
            _ => None,
        })
        .expect("subscribes")
}

#[test]
fn a_first_join_pins_the_hub_then_logs_in_with_the_key() {
    let mut r = joining();
    assert_eq!(r.m.login(), Login::Token);
    let out = r.handle(Input::Connected { connection: 1 });
    assert_eq!(subscriptions(&out), ["bramble/v2/nodes/pi-1/hello/ack"]);
    assert!(published::<Online>(&r, &out, TopicKind::Online).is_empty());
    let hellos: Vec<Hello> = published(&r, &out, TopicKind::Hello);
    let h = &hellos[0];
    assert_eq!(
        (h.incarnation, h.keys.clone()),
        (7, keys_text(r.board.public()))
    );
    let HelloAuth::JoinToken(p) = &h.auth else {
        panic!("no token proof")
    };
    assert_eq!(p.id, r.token.id());
    // A rogue hub's ack (its own keys, not the token's) changes nothing.
    let rogue = SecretKeys::generate().unwrap();
    let mut fake = accepted();
    if let HelloAck::Accepted(a) = &mut fake {
        a.hub = keys_text(rogue.public());
    }
    let fake = r.from(&rogue, TopicKind::HelloAck, &fake);
    assert!(r.publish(&fake).is_empty());
    assert!(r.m.hub().is_none());
    // The real hub's ack: pin, then reconnect with the key.
    let ack = r.ack(accepted());
    let out = r.publish(&ack);
    assert!(matches!(&out[0], Output::Pin(k) if k == r.hub.public()));
    assert!(matches!(
        out[1],
        Output::Relogin {
            login: Login::Key,
            reconnect: true
        }
    ));
    assert!(!r.m.accepted());
    let out = r.handle(Input::Connected { connection: 2 });
    assert_eq!(subscriptions(&out).len(), 3);
    let online: Vec<Online> = published(&r, &out, TopicKind::Online);
    assert_eq!(online, [Online::up("s1", 2)]);
    let hellos: Vec<Hello> = published(&r, &out, TopicKind::Hello);
    assert_eq!(hellos[0].auth, HelloAuth::Key);
    assert!(r.publish(&ack).is_empty());
    assert!(r.m.accepted());
    // The first status goes out at once, with the reported state.
    let report = NodeReport {
        observed_generation: Some(Generation(4)),
        ..NodeReport::default()
    };
    let out = r.tick(10, &report, 1);
    let st: Vec<Status> = published(&r, &out, TopicKind::Status);
    assert_eq!(
        (st[0].seq, st[0].observed_generation),
        (1, Some(Generation(4)))
    );
    // Nothing more until the heartbeat, then the next.
    assert!(r.tick(500, &report, 1).is_empty());
    let out = r.tick(1_010, &report, 1);
    let st: Vec<Status> = published(&r, &out, TopicKind::Status);
    assert_eq!(st[0].seq, 2);
}

#[test]
fn hellos_repeat_with_back_off_until_acknowledged() {
    let mut r = joining();
    r.handle(Input::Connected { connection: 1 });
    let report = NodeReport::default();
    assert!(r.tick(500, &report, 0).is_empty());
    let out = r.tick(1_000, &report, 0);
    assert_eq!(published::<Hello>(&r, &out, TopicKind::Hello).len(), 1);
    assert!(r.tick(2_500, &report, 0).is_empty(), "doubled to 2 s");
    assert_eq!(r.tick(3_000, &report, 0).len(), 1);
    // An ack of another session is not ours.
    let mut other = accepted();
    if let HelloAck::Accepted(a) = &mut other {
        a.session = "s0".into();
    }
    let other = r.ack(other);
    assert!(r.publish(&other).is_empty());
    assert!(r.m.hub().is_none());
}

#[test]
fn pending_approval_asks_again_and_refusals_end_the_process() {
    let mut r = joining();
    r.handle(Input::Connected { connection: 1 });
    let pending = r.ack(HelloAck::Pending(Pending {
        session: "s1".into(),
        reason: "approve me".into(),
        ..Pending::default()
    }));
    assert!(r.publish(&pending).is_empty());
    assert!(r.m.hub().is_none(), "pinned only when accepted");
    let report = NodeReport::default();
    assert!(r.tick(4_000, &report, 0).is_empty());
    let secs = PENDING_RETRY.as_millis() as u64;
    assert_eq!(r.tick(secs, &report, 0).len(), 1);

    let refusal = |code| {
        HelloAck::Refused(Refused {
            session: "s1".into(),
            code,
            reason: "because".into(),
            ..Refused::default()
        })
    };
    // A hello the hub could not use is retried; a bad token is fatal.
    let retry = r.ack(refusal(RefusalCode::InvalidHello));
    assert!(r.publish(&retry).is_empty());
    let fatal = r.ack(refusal(RefusalCode::InvalidToken));
    let out = r.publish(&fatal);
    assert!(
        matches!(&out[..], [Output::Fatal(m)] if m.contains("because") && m.contains("--token")),
        "{out:?}"
    );
    // A refusal not signed by the hub is ignored.
    let rogue = SecretKeys::generate().unwrap();
    let mut forged = refusal(RefusalCode::NameTaken);
    if let HelloAck::Refused(f) = &mut forged {
        f.hub = keys_text(r.hub.public());
    }
    let forged = r.from(&rogue, TopicKind::HelloAck, &forged);
    assert!(r.publish(&forged).is_empty());
}

#[test]
fn a_refused_token_login_ends_the_process_a_refused_key_does_not() {
    let mut r = joining();
    let out = r.handle(Input::Failed {
        refused: true,
        error: "not authorized".into(),
    });
    assert!(
        matches!(&out[..], [Output::Fatal(m)] if m.contains("token is wrong, expired or used up")),
        "{out:?}"
    );
    // A joined board keeps trying (the hub may come back with its data).
    let mut r = joined();
    let out = r.handle(Input::Failed {
        refused: true,
        error: "not authorized".into(),
    });
    assert!(out.is_empty());
    assert!(!r.m.accepted());
    // A dropped connection is no refusal.
    assert!(
        r.handle(Input::Failed {
            refused: false,
            error: "reset".into()
        })
        .is_empty()
    );
}

fn desired(generation: u64) -> Desired {
    Desired {
        generation: Generation(generation),
        ..Desired::default()
    }
}

#[test]
fn only_the_hubs_desired_sets_are_used_and_bad_ones_reported() {
    let mut r = joined();
    let good = r.from(&r.hub.clone(), TopicKind::Desired, &desired(5));
    let out = r.publish(&good);
    assert!(matches!(&out[..], [Output::Desired(d)] if d.generation == Generation(5)));
    // Forged by another key: ignored, and nothing is reported either.
    let rogue = SecretKeys::generate().unwrap();
    let forged = r.from(&rogue, TopicKind::Desired, &desired(u64::MAX));
    assert!(r.publish(&forged).is_empty());
    // Sealed to another board: ignored.
    let other = SecretKeys::generate().unwrap();
    let t = topic(TopicKind::Desired);
    let elsewhere = (
        t.to_string(),
        encode_frame(&r.hub, &t, &desired(6), Some(other.public())).unwrap(),
    );
    assert!(r.publish(&elsewhere).is_empty());
    // Protocol 1 plain JSON: ignored.
    let plain = (
        t.to_string(),
        bramble_api::protocol::encode(&desired(7)).unwrap(),
    );
    assert!(r.publish(&plain).is_empty());
    // The hub's, but unusable (an absurd generation): refused and reported.
    let absurd = r.from(&r.hub.clone(), TopicKind::Desired, &desired(u64::MAX));
    let out = r.publish(&absurd);
    assert!(
        matches!(&out[..], [Output::Rejected(rej)] if rej.generation == Some(Generation(u64::MAX))
            && rej.reason.contains("above the largest generation")),
        "{out:?}"
    );
    // A cleared retained message.
    assert!(r.publish(&(t.to_string(), vec![])).is_empty());
}

fn logs(session: &str, seq: u64) -> RpcRequest {
    RpcRequest {
        id: RpcId::new(&format!("r{seq}")).unwrap(),
        session: session.into(),
        seq,
        call: RpcCall::Logs(LogsCall {
            pod: PodRef {
                namespace: "default".into(),
                name: "web".into(),
                uid: None,
            },
            ..LogsCall::default()
        }),
    }
}

#[test]
fn rpc_requests_run_once_for_this_session_only() {
    let mut r = joined();
    let hub = r.hub.clone();
    let req = r.from(&hub, TopicKind::RpcRequest, &logs("s1", 3));
    assert!(matches!(&r.publish(&req)[..], [Output::Rpc(q)] if q.seq == 3));
    assert!(r.publish(&req).is_empty(), "a replay is ignored");
    let old_session = r.from(&hub, TopicKind::RpcRequest, &logs("s0", 9));
    assert!(r.publish(&old_session).is_empty());
    let late = r.from(&hub, TopicKind::RpcRequest, &logs("s1", 2));
    assert_eq!(r.publish(&late).len(), 1, "a little out of order is fine");
    let cancel = RpcRequest {
        id: RpcId::new("c1").unwrap(),
        session: "s1".into(),
        seq: 4,
        call: RpcCall::Cancel(CancelCall {
            id: RpcId::new("r3").unwrap(),
        }),
    };
    let cancel = r.from(&hub, TopicKind::RpcRequest, &cancel);
    assert!(matches!(&r.publish(&cancel)[..], [Output::Cancel(id)] if id.as_str() == "r3"));
    let rogue = SecretKeys::generate().unwrap();
    let forged = r.from(&rogue, TopicKind::RpcRequest, &logs("s1", 10));
    assert!(r.publish(&forged).is_empty());
    // The status tells a restarted hub where to continue.
    let out = r.tick(10, &NodeReport::default(), 1);
    let st: Vec<Status> = published(&r, &out, TopicKind::Status);
    assert_eq!(st[0].rpc_seq, Some(4));
    let _ = &r.token;
}
