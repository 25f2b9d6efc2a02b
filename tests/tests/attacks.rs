//! The trust model attacked with real tools (M2-1): a hub and real agents
//! as processes, and an attacker with `mosquitto_sub` / `mosquitto_pub`,
//! `curl` and `tcpdump`, holding a stolen board's keys or only the join
//! token, on the embedded broker and on a mosquitto with `allow_anonymous
//! true` and no ACL (a broker that trusts everyone). Whatever the attacker
//! sees or sends, a board gets only what the hub meant for it, and the hub
//! believes only what a board signed.
//!
//! Length: over 600 lines because one suite: each test one attack from the
//! threat model, with real tools.

use bramble_tests::eventually;
use std::time::{Duration, Instant};

use bramble_api::objects::pod_status::PodStatus;
use bramble_api::protocol::hello::{Hello, HelloAck, HelloAuth, Refused};
use bramble_api::protocol::rpc::{ExecCall, PodRef, PortForwardCall};
use bramble_api::protocol::rpc_stdin::StdinCall;
use bramble_api::protocol::{
    Cgroups, Desired, Generation, Online, Platform, PodReport, RefusalCode, RpcCall, RpcId,
    RpcRequest, Status, TopicKind, keys_text,
};
use bramble_tests::attacker::{self, Board, Capture, Login, Sniffer, Target, contains};
use bramble_tests::cluster::{Broker, Cluster, unique};
use bramble_trust::PublicKeys;
use serde_json::{Value, json};

const SECRETS: &str = "/api/v1/namespaces/default/secrets";
const PODS: &str = "/api/v1/namespaces/default/pods";
const SERVICES: &str = "/api/v1/namespaces/default/services";

/// The broker port of a cluster (embedded or mosquitto).
/// The cluster's broker as an attacker on the hub's machine reaches it
/// (with the CA every board holds, when it speaks TLS).
fn broker_port(c: &Cluster) -> Target {
    let port = c
        .hub
        .mqtt_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("broker port");
    Target {
        port,
        cafile: c
            .hub
            .mqtt_url
            .starts_with("mqtts://")
            .then(|| c.hub.data_dir.join("ca.crt")),
    }
}

/// A pod bound to `node` that reads Secret `secret` into `$PASS`.
fn victim_pod(name: &str, node: &str, secret: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": name, "labels": {"app": name}},
    "spec": {
        "nodeName": node,
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "main", "image": "busybox:1",
            "command": ["sh", "-c", "while true; do sleep 1; done"],
            "env": [{"name": "PASS", "valueFrom": {"secretKeyRef": {"name": secret, "key": "pass"}}}],
            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}]
    }})
}

fn pod(c: &Cluster, name: &str) -> Value {
    let (code, v) = c.client().get(&format!("{PODS}/{name}"));
    assert_eq!(code, 200, "{v}");
    v
}

fn running_ip(c: &Cluster, name: &str) -> Option<String> {
    let p = pod(c, name);
    (p["status"]["phase"] == "Running" && bramble_tests::cluster::is_ready(&p))
        .then(|| p["status"]["podIP"].as_str().map(str::to_string))
        .flatten()
}

fn endpoints(c: &Cluster, name: &str) -> Value {
    c.client()
        .get(&format!("/api/v1/namespaces/default/endpoints/{name}"))
        .1["subsets"]
        .clone()
}

/// A board's public keys, as its hello shows them to anyone listening.
/// Waits until agent `i`'s log says `what`.
fn wait_agent_log(c: &Cluster, i: usize, what: &str) {
    eventually(
        format!("agent {i} to log {what:?}"),
        Duration::from_secs(30),
        || c.agents[i].proc.log().contains(what).then_some(()),
    );
}

/// Waits until agent `i` joined and is on its key login (its hub key is
/// pinned on its disk): the node is Ready a moment before.
fn wait_key_login(c: &Cluster, i: usize) {
    wait_agent_log(c, i, "login=Key");
}

fn public_keys(c: &Cluster, i: usize) -> PublicKeys {
    Board::read(&c.agents[i].name, &c.agents[i].data_dir)
        .keys
        .public()
        .clone()
}

/// The hello a thief holding `thief`'s keys says for it: a new session
/// (`thief`) and a high incarnation, logging in with the board's key.
fn thief_hello(thief: &Board) -> Hello {
    Hello {
        node_name: thief.name.clone(),
        session: "thief".into(),
        agent_version: "0.1.0".into(),
        kernel_version: "6.1.0".into(),
        cpus: 4,
        memory_bytes: 1 << 30,
        runtime: "libcontainer".into(),
        platform: Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: String::new(),
        },
        cgroups: Cgroups {
            version: 2,
            controllers: vec!["cpu".into(), "memory".into(), "pids".into()],
        },
        incarnation: 1_000_000,
        keys: keys_text(thief.keys.public()),
        auth: HelloAuth::Key,
        ..Hello::default()
    }
}

/// The hub's exec of `command` in pod `name`: its output.
fn exec(c: &Cluster, name: &str, command: &[&str]) -> String {
    let (code, v) = c
        .client()
        .post(&format!("{PODS}/{name}/exec"), &json!({"command": command}));
    assert_eq!(code, 200, "{v}");
    v.to_string()
}

/// A secret value no one would type: unique per test.
fn secret_value() -> String {
    format!("s3cr3t-{}", unique("v"))
}

/// Checks that nothing in `seen` holds `secret` (raw or base64) and that
/// every payload on `victim`'s hub → agent topics is a sealed frame.
fn assert_nothing_readable(seen: &[(String, Vec<u8>)], secret: &str, victim: &str, who: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    for (topic, payload) in seen {
        assert!(
            !contains(payload, secret.as_bytes()) && !contains(payload, b64.as_bytes()),
            "{who} read the Secret on {topic}"
        );
        let theirs = [
            format!("bramble/v2/nodes/{victim}/desired"),
            format!("bramble/v2/nodes/{victim}/rpc/req"),
        ];
        if theirs.contains(topic) && !payload.is_empty() {
            let f = bramble_trust::Frame::parse(payload).expect("a frame");
            assert!(f.sealed(), "{who} got {topic} in clear");
        }
    }
}

/// A Secret `db` holding a fresh secret value and pod `victim` on `node`
/// reading it, Running: the value.
fn victim_with_a_secret(c: &Cluster, node: &str) -> String {
    let secret = secret_value();
    let (code, v) = c.client().post(
        SECRETS,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"pass": secret}}),
    );
    assert_eq!(code, 201, "{v}");
    let (code, v) = c.client().post(PODS, &victim_pod("victim", node, "db"));
    assert_eq!(code, 201, "{v}");
    eventually("the victim pod Running", Duration::from_secs(60), || {
        running_ip(c, "victim")
    });
    secret
}

/// Runs the whole attack on `broker`.
fn stolen_board_and_token_holder(broker: Broker) {
    let mut c = Cluster::start(broker, 2, &[]);
    c.push_busybox("busybox", "1");
    let (a, b) = (c.agents[0].name.clone(), c.agents[1].name.clone());
    let port = broker_port(&c);
    let secret = victim_with_a_secret(&c, &b);
    let (code, v) = c.client().post(
        SERVICES,
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "victim"},
            "spec": {"selector": {"app": "victim"}, "ports": [{"port": 80}]}}),
    );
    assert_eq!(code, 201, "{v}");
    let ip = eventually("the victim pod Running", Duration::from_secs(60), || {
        running_ip(&c, "victim")
    });
    eventually("the victim's endpoint", Duration::from_secs(30), || {
        endpoints(&c, "victim")
            .to_string()
            .contains(&ip)
            .then_some(())
    });
    let eps = endpoints(&c, "victim");

    // The thief takes board A: its agent stops, its keys are read off its disk.
    wait_key_login(&c, 0);
    c.agents[0].proc.kill9();
    let thief = Board::read(&a, &c.agents[0].data_dir);
    let b_keys = public_keys(&c, 1);
    let embedded = broker == Broker::Embedded;
    let as_a = if embedded {
        thief.mqtt_login()
    } else {
        Login::anonymous(&a)
    };
    let token = bramble_trust::JoinToken::parse(&c.hub.node_token).unwrap();
    let as_token = if embedded {
        Login::joining(&token, "intruder")
    } else {
        Login::anonymous("intruder")
    };

    // 1. Listening: with A's login and with only the token, to everything,
    // while the hub republishes B's set and runs an exec in the victim that
    // prints the Secret.
    let mut sniff_a = Sniffer::start(&port, &as_a, "bramble/#");
    let mut sniff_token = Sniffer::start(&port, &as_token, "bramble/#");
    let sniff_b = Sniffer::start(&port, &as_a, &format!("bramble/v2/nodes/{b}/#"));
    let out = exec(&c, "victim", &["sh", "-c", "echo pass=$PASS"]);
    assert!(
        out.contains(&format!("pass={secret}")),
        "the exec works: {out}"
    );
    let (code, v) = c.client().merge_patch(
        &format!("{PODS}/victim"),
        &json!({"metadata": {"labels": {"touched": "yes"}}}),
    );
    assert_eq!(code, 200, "{v}");
    // B's next heartbeats pass by (on a broker that lets A read them).
    let started = Instant::now();
    eventually("a few heartbeats", Duration::from_secs(30), || {
        (started.elapsed() >= Duration::from_secs(3)).then_some(())
    });
    let (a_alive, token_alive) = (sniff_a.alive(), sniff_token.alive());
    let seen_a = sniff_a.stop();
    let seen_token = sniff_token.stop();
    let seen_b = sniff_b.stop();
    eprintln!(
        "A's login: {} messages ({a_alive:?}); the token's: {} ({token_alive:?}); on B's topics: {}",
        seen_a.len(),
        seen_token.len(),
        seen_b.len()
    );
    assert_nothing_readable(&seen_a, &secret, &b, "board A");
    assert_nothing_readable(&seen_b, &secret, &b, "board A (B's topics)");
    assert_nothing_readable(&seen_token, &secret, &b, "the token holder");

    // 2. Forged desired sets for B: protocol 1 JSON, a frame signed by A
    // (sealed to B's key, read off B's hello), an absurd generation. B
    // ignores them, runs nothing of them, and still takes the hub's sets.
    let evil: Value = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "evil", "namespace": "default", "uid": "evil-1"},
        "spec": {"nodeName": b, "containers": [{"name": "root", "image": "busybox:1",
            "securityContext": {"privileged": true},
            "volumeMounts": [{"name": "host", "mountPath": "/host"}]}],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}]}});
    let forged = Desired {
        generation: Generation(u64::MAX),
        pods: vec![serde_json::from_value(evil.clone()).unwrap()],
        ..Desired::default()
    };
    let desired_topic = format!("bramble/v2/nodes/{b}/desired");
    let plain =
        json!({"protocol": 1, "type": "desired", "body": {"generation": 999999, "pods": [evil]}});
    let (_, signed_by_a) = thief.frame(&b, TopicKind::Desired, &forged, Some(&b_keys));
    for payload in [plain.to_string().into_bytes(), signed_by_a] {
        // Refused by the embedded broker's ACL, or delivered and ignored.
        let _ = attacker::publish(&port, &as_a, &desired_topic, &payload, true);
    }
    // 3. A forged exec for B (and port-forward and stdin, below), and a
    // forged refusal of B's hello.
    let req = RpcRequest {
        id: RpcId::new("evil-exec").unwrap(),
        session: "any".into(),
        seq: 1,
        call: RpcCall::Exec(ExecCall {
            pod: PodRef {
                namespace: "default".into(),
                name: "victim".into(),
                uid: None,
            },
            container: None,
            argv: vec!["sh".into(), "-c".into(), "echo pwned".into()],
            tty: false,
            stdin: false,
        }),
    };
    let (t, p) = thief.frame(&b, TopicKind::RpcRequest, &req, Some(&b_keys));
    let _ = attacker::publish(&port, &as_a, &t, &p, false);
    // ... a forged port-forward into the victim, and forged stdin for
    // whatever exec or connection B may be running.
    let victim_ref = PodRef {
        namespace: "default".into(),
        name: "victim".into(),
        uid: None,
    };
    for (id, call) in [
        (
            "evil-pf",
            RpcCall::PortForward(PortForwardCall {
                pod: victim_ref,
                port: 8080,
            }),
        ),
        (
            "evil-stdin",
            RpcCall::Stdin(StdinCall::new(
                RpcId::new("evil-exec").unwrap(),
                0,
                b"echo pwned\n",
                true,
            )),
        ),
    ] {
        let req = RpcRequest {
            id: RpcId::new(id).unwrap(),
            session: "any".into(),
            seq: 2,
            call,
        };
        let (t, p) = thief.frame(&b, TopicKind::RpcRequest, &req, Some(&b_keys));
        let _ = attacker::publish(&port, &as_a, &t, &p, false);
    }
    let refusal = HelloAck::Refused(Refused {
        session: "any".into(),
        hub: keys_text(thief.keys.public()),
        code: RefusalCode::InvalidToken,
        reason: "forged".into(),
    });
    let (t, p) = thief.frame(&b, TopicKind::HelloAck, &refusal, None);
    let _ = attacker::publish(&port, &as_a, &t, &p, false);
    // 4. Forged reports about B: its pod Running at the attacker's address,
    // a refusal of its desired set, and B offline.
    let lie = Status {
        session: "any".into(),
        seq: u64::MAX / 2,
        desired_rejected: Some(bramble_api::protocol::status::Rejection {
            generation: None,
            reason: "forged".into(),
        }),
        pods: vec![PodReport {
            namespace: "default".into(),
            name: "victim".into(),
            uid: pod(&c, "victim")["metadata"]["uid"]
                .as_str()
                .unwrap()
                .to_string(),
            status: serde_json::from_value::<PodStatus>(json!({"phase": "Running",
                "podIP": "10.99.99.99",
                "conditions": [{"type": "Ready", "status": "True"}]}))
            .unwrap(),
            usage: None,
            pulls: Vec::new(),
        }],
        ..Status::default()
    };
    let (t, p) = thief.frame(&b, TopicKind::Status, &lie, None);
    let _ = attacker::publish(&port, &as_a, &t, &p, false);
    let (t, p) = thief.frame(&b, TopicKind::Online, &Online::last_will("any", 99), None);
    let _ = attacker::publish(&port, &as_a, &t, &p, true);
    let plain_online = json!({"protocol": 2, "type": "online", "body": {"online": false}});
    let _ = attacker::publish(&port, &as_a, &t, plain_online.to_string().as_bytes(), true);

    // The hub still believes B: a later pod on B runs (its sets still
    // arrive, no generation is stuck), B stays Ready past the heartbeat
    // grace, the victim keeps its address and its endpoints.
    let (code, v) = c.client().post(PODS, &victim_pod("later", &b, "db"));
    assert_eq!(code, 201, "{v}");
    eventually("a later pod on B Running", Duration::from_secs(60), || {
        running_ip(&c, "later")
    });
    let since = Instant::now();
    eventually("twice the heartbeat grace", Duration::from_secs(30), || {
        (since.elapsed() >= Duration::from_secs(8)).then_some(())
    });
    assert_eq!(
        c.node_ready(&b).as_deref(),
        Some("True"),
        "B was marked offline"
    );
    assert_eq!(running_ip(&c, "victim").as_deref(), Some(ip.as_str()));
    assert_eq!(
        endpoints(&c, "victim"),
        eps,
        "the endpoints followed a forgery"
    );
    // B ran nothing forged and is still running.
    assert!(
        c.agents[1].proc.running(),
        "B exited: {}",
        c.agents[1].proc.log()
    );
    let log = c.agents[1].proc.log();
    assert!(!log.contains("evil"), "B touched the forged pod: {log}");
    assert!(!log.contains("pwned"), "B ran the forged exec: {log}");
    assert!(
        !log.contains("the hub refused"),
        "B believed a forged refusal"
    );
    assert!(
        !c.agents[1].run_dir.join("pods/default_evil.json").exists(),
        "B recorded the forged pod"
    );
    if !embedded {
        // On a broker that delivers them, B saw and refused them.
        assert!(
            log.contains("ignoring a message that is not the hub's"),
            "B did not log the forgeries: {log}"
        );
    }
    let (_, pods) = c.client().get(PODS);
    assert!(
        !pods.to_string().contains("evil"),
        "the hub stored a forged pod"
    );
    let hub_log = c.hub.proc.log();
    assert!(!hub_log.contains("10.99.99.99"));
}

#[test]
fn a_stolen_board_and_a_token_holder_read_and_forge_nothing_embedded_broker() {
    stolen_board_and_token_holder(Broker::Embedded);
}

#[test]
fn a_stolen_board_and_a_token_holder_read_and_forge_nothing_on_an_open_mosquitto() {
    stolen_board_and_token_holder(Broker::Mosquitto);
}

#[test]
fn a_stolen_board_cannot_label_itself_into_the_control_plane() {
    let mut c = Cluster::start(Broker::Embedded, 1, &[]);
    let a = c.agents[0].name.clone();
    let port = broker_port(&c);
    // The thief stops A's agent and says A's hello with A's own key (which
    // it may: it is A), a new session and incarnation, asking for
    // control-plane and bramble.dev labels.
    wait_key_login(&c, 0);
    c.agents[0].proc.kill9();
    let thief = Board::read(&a, &c.agents[0].data_dir);
    let mut hello = thief_hello(&thief);
    hello.labels = [
        ("node-role.kubernetes.io/control-plane", "true"),
        ("bramble.dev/gateway", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (t, p) = thief.frame(&a, TopicKind::Hello, &hello, None);
    attacker::publish(&port, &thief.mqtt_login(), &t, &p, false).expect("A may say its hello");
    // The hub answers with a refusal that says why, and A's Node keeps its
    // labels.
    eventually(
        "the hub to refuse the labels",
        Duration::from_secs(30),
        || {
            c.hub
                .proc
                .log()
                .contains("nodes may not label themselves under node-role.kubernetes.io/")
                .then_some(())
        },
    );
    let labels = c.node(&a).expect("A's Node")["metadata"]["labels"].clone();
    for key in [
        "node-role.kubernetes.io/control-plane",
        "bramble.dev/gateway",
    ] {
        assert!(
            labels.get(key).is_none(),
            "A labelled itself {key}: {labels}"
        );
    }
    // A's real agent comes back and is accepted as before.
    c.agents[0].restart();
    c.wait_node_ready(&a, Duration::from_secs(30));
}

#[test]
fn deleting_a_node_revokes_its_key_at_once() {
    let mut c = Cluster::start(Broker::Embedded, 2, &[]);
    c.push_busybox("busybox", "1");
    let b = c.agents[1].name.clone();
    let port = broker_port(&c);
    wait_key_login(&c, 1);
    let board = Board::read(&b, &c.agents[1].data_dir);
    // Before: B's key logs in to the broker and pulls from the registry.
    // The thief's curl trusts the CA the board pinned.
    let board_ca = c.agents[1].data_dir.join("hub-ca.crt");
    let pull = |pw: &str| {
        let out = std::process::Command::new("curl")
            .arg("--cacert")
            .arg(&board_ca)
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u"])
            .arg(format!("{b}:{pw}"))
            .arg(format!("{}/v2/busybox/manifests/1", c.hub.url))
            .args(["-H", "Accept: application/vnd.oci.image.index.v1+json"])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(pull(&board.registry_password()), "200");
    // (The stopped agent frees the client id for the check.)
    c.agents[1].proc.kill9();
    attacker::try_login(
        &port,
        &board.mqtt_login(),
        &format!("bramble/v2/nodes/{b}/desired"),
        1,
    )
    .expect("B's key logs in before the deletion");
    c.agents[1].restart();
    c.wait_node_ready(&b, Duration::from_secs(30));

    let (code, v) = c.client().delete(&format!("/api/v1/nodes/{b}"));
    assert_eq!(code, 200, "{v}");
    let deleted = Instant::now();
    // Refused on the registry and on MQTT, and its session is dropped.
    let refused = eventually(
        "B's registry login refused",
        Duration::from_secs(10),
        || (pull(&board.registry_password()) == "401").then(|| deleted.elapsed()),
    );
    eprintln!("B's key was refused by the registry {refused:?} after the DELETE returned");
    let e = attacker::try_login(&port, &board.mqtt_login(), "bramble/#", 1)
        .expect_err("B's key still logs in to the broker");
    eprintln!("and by the broker: {e}");
    wait_agent_log(&c, 1, "the broker refused this board's key");
    // A status signed by B's (revoked) key changes nothing.
    let node_before = c.node(&b);
    assert!(node_before.is_none(), "the Node is gone");
    let st = Status {
        session: "any".into(),
        seq: 1,
        ..Status::default()
    };
    let (t, p) = board.frame(&b, TopicKind::Status, &st, None);
    let hub_login = Login::anonymous("nobody");
    let _ = attacker::publish(&port, &hub_login, &t, &p, false);
    assert!(c.node(&b).is_none());
}

#[test]
fn a_token_login_never_takes_a_registered_nodes_session() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    let a = c.agents[0].name.clone();
    let port = broker_port(&c);
    let token = bramble_trust::JoinToken::parse(&c.hub.node_token).unwrap();
    // A joined on its own `_join.A` login; the test starts once A is on
    // its key login (a token holder may cut a join short: the board joins
    // again; see docs/protocol.md).
    wait_key_login(&c, 0);
    let log_before = c.agents[0].proc.log().len();
    // The token's login as A: its client id is `_join.A`, never A's, so it
    // connects without touching A's session, and may only say hello: A's
    // topics are closed to it.
    let as_token = Login::joining(&token, &a);
    assert_eq!(as_token.client_id, format!("_join.{a}"));
    let sniff = Sniffer::start(&port, &as_token, &format!("bramble/v2/nodes/{a}/#"));
    // A token with A's name as client id is refused (a token login's name
    // must say it is one).
    let mut posing = as_token.clone();
    posing.client_id = a.clone();
    let e = attacker::try_login(&port, &posing, "bramble/#", 1)
        .expect_err("a token login with a node's client id connected");
    eprintln!("refused: {e}");
    // The node keeps its session: nothing about losing the broker after.
    let since = Instant::now();
    eventually("a few heartbeats", Duration::from_secs(30), || {
        (since.elapsed() >= Duration::from_secs(3)).then_some(())
    });
    let seen = sniff.stop();
    assert!(
        seen.is_empty(),
        "the token login read A's topics: {}",
        seen.len()
    );
    let log = c.agents[0].proc.log()[log_before..].to_string();
    assert!(!log.contains("lost the broker"), "{log}");
    assert_eq!(c.node_ready(&a).as_deref(), Some("True"));
}

#[test]
fn a_capture_of_the_mqtt_port_shows_no_secret_token_or_key() {
    // The capture must start before the boards join. Plain MQTT: what is
    // tested here is the frames' own protection, whatever the transport.
    let port_probe = Cluster::start(Broker::Embedded, 0, &["--insecure-mqtt"]);
    let port = broker_port(&port_probe);
    assert!(port.cafile.is_none(), "a plain MQTT broker");
    let capture = Capture::start(port.port);
    let mut c = port_probe;
    let names = [unique("cap-a"), unique("cap-b")];
    for n in &names {
        c.add_agent(n);
    }
    for n in &names {
        c.wait_node_ready(n, Duration::from_secs(30));
    }
    c.push_busybox("busybox", "1");
    let secret = secret_value();
    let (code, v) = c.client().post(
        SECRETS,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"pass": secret}}),
    );
    assert_eq!(code, 201, "{v}");
    let (code, v) = c
        .client()
        .post(PODS, &victim_pod("victim", &names[1], "db"));
    assert_eq!(code, 201, "{v}");
    eventually("the pod Running", Duration::from_secs(60), || {
        running_ip(&c, "victim")
    });
    let out = exec(&c, "victim", &["sh", "-c", "echo pass=$PASS"]);
    assert!(out.contains(&secret), "{out}");
    let (code, logs) = c.client().get(&format!("{PODS}/victim/log"));
    assert_eq!(code, 200, "{logs}");
    let pcap = capture.stop();
    assert!(
        pcap.len() > 10_000,
        "the capture holds the traffic ({} bytes)",
        pcap.len()
    );
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let token = bramble_trust::JoinToken::parse(&c.hub.node_token).unwrap();
    let mut needles: Vec<(String, String)> = vec![
        ("the Secret".into(), secret.clone()),
        ("the Secret in base64".into(), b64(&secret)),
        ("the exec's output".into(), format!("pass={secret}")),
        ("the join token's secret".into(), token.secret().to_string()),
        ("the admin token".into(), c.hub.token.clone()),
    ];
    let hub_key: Value =
        serde_json::from_slice(&std::fs::read(c.hub.data_dir.join("hub-key")).unwrap()).unwrap();
    for part in ["signing", "encryption"] {
        needles.push((
            format!("the hub's private {part} key"),
            hub_key[part].as_str().unwrap().into(),
        ));
    }
    for a in &c.agents {
        let board = Board::read(&a.name, &a.data_dir);
        needles.push((
            format!("{}'s private signing key", a.name),
            board.keys.signing_text(),
        ));
        needles.push((
            format!("{}'s private encryption key", a.name),
            board.keys.encryption_text(),
        ));
    }
    for (what, needle) in &needles {
        assert!(!contains(&pcap, needle.as_bytes()), "{what} is on the wire");
    }
    // The capture did see the traffic: the topics are in clear.
    assert!(contains(
        &pcap,
        format!("bramble/v2/nodes/{}/desired", names[1]).as_bytes()
    ));
}

#[test]
fn a_mosquitto_provisioned_by_the_hub_keeps_each_node_to_its_topics() {
    let mut c = Cluster::start(Broker::MosquittoDynsec, 2, &[]);
    c.push_busybox("busybox", "1");
    let (a, b) = (c.agents[0].name.clone(), c.agents[1].name.clone());
    let port = broker_port(&c);
    // The boards joined and run pods through a broker that refuses anyone
    // the hub did not provision.
    let secret = victim_with_a_secret(&c, &b);
    attacker::try_login(&port, &Login::anonymous("nobody"), "bramble/#", 1)
        .expect_err("an anonymous client connected");

    // A's stolen login: its own topics only. B's are refused by the broker
    // itself (SUBACK 0x80), so nothing of B's arrives, not even ciphertext.
    c.agents[0].proc.kill9();
    let thief = Board::read(&a, &c.agents[0].data_dir);
    let mut sniff = Sniffer::start(
        &port,
        &thief.mqtt_login(),
        &format!("bramble/v2/nodes/{b}/#"),
    );
    let mut own = Sniffer::start(
        &port,
        &thief.mqtt_login(),
        &format!("bramble/v2/nodes/{a}/desired"),
    );
    let out = exec(&c, "victim", &["sh", "-c", "echo pass=$PASS"]);
    assert!(out.contains(&secret), "{out}");
    let since = Instant::now();
    eventually("a few heartbeats", Duration::from_secs(30), || {
        (since.elapsed() >= Duration::from_secs(3)).then_some(())
    });
    let _ = (sniff.alive(), own.alive());
    let seen_b = sniff.stop();
    assert!(
        seen_b.is_empty(),
        "A's login read {} messages of B's",
        seen_b.len()
    );
    let seen_own = own.stop();
    assert!(
        seen_own
            .iter()
            .any(|(t, _)| t.ends_with(&format!("{a}/desired"))),
        "A's login reads its own retained set"
    );
    // A forgery on B's topic with A's login is dropped by the broker: the
    // hub never sees a frame of A's key on B's topic.
    let mut hub_view = Sniffer::start(
        &port,
        &Login::as_node(
            bramble_tests::cluster::DYNSEC_ADMIN.0,
            bramble_tests::cluster::DYNSEC_ADMIN.1,
        ),
        &format!("bramble/v2/nodes/{b}/status"),
    );
    let lie = Status {
        session: "any".into(),
        seq: 1,
        ..Status::default()
    };
    let (t, p) = thief.frame(&b, TopicKind::Status, &lie, None);
    let _ = attacker::publish(&port, &thief.mqtt_login(), &t, &p, false);
    let since = Instant::now();
    eventually("B's next heartbeats", Duration::from_secs(30), || {
        (since.elapsed() >= Duration::from_secs(3)).then_some(())
    });
    let _ = hub_view.alive();
    let statuses = hub_view.stop();
    assert!(!statuses.is_empty(), "B's own statuses pass");
    let a_id = thief.keys.public().key_id();
    for (_, payload) in &statuses {
        let f = bramble_trust::Frame::parse(payload).expect("a frame");
        assert_ne!(f.key_id(), a_id, "A's forgery reached B's topic");
    }

    // Deleting B on the hub deletes it from the broker: it is dropped and
    // its login refused.
    let b_board = Board::read(&b, &c.agents[1].data_dir);
    let (code, v) = c.client().delete(&format!("/api/v1/nodes/{b}"));
    assert_eq!(code, 200, "{v}");
    eventually(
        "B's login refused by mosquitto",
        Duration::from_secs(10),
        || {
            attacker::try_login(&port, &b_board.mqtt_login(), "bramble/#", 1)
                .err()
                .map(|_| ())
        },
    );
    wait_agent_log(&c, 1, "the broker refused this board's key");
}

#[test]
fn a_board_given_another_hubs_token_refuses_to_join_naming_both_keys() {
    let mut c = Cluster::start(Broker::Embedded, 0, &[]);
    // The cluster's own token id and secret, in front of them another
    // hub's key hash: what a board given the wrong site's token holds.
    let real = c.hub.node_token.clone();
    let (_, rest) = real.split_once("::").expect("a K10 token");
    let other = bramble_trust::SecretKeys::generate()
        .unwrap()
        .public()
        .fingerprint();
    c.hub.node_token = format!("K10{other}::{rest}");
    let name = unique("wrong-site");
    c.add_agent(&name);
    c.hub.node_token = real;
    let i = c.agents.len() - 1;
    eventually("the agent to give up", Duration::from_secs(30), || {
        (!c.agents[i].proc.running()).then_some(())
    });
    let log = c.agents[i].proc.exited_log();
    assert!(log.contains("is not the one the join token names"), "{log}");
    assert!(
        log.contains(&other.to_string()),
        "names the token's key: {log}"
    );
    let hub_key = bramble_trust::JoinToken::parse(&c.hub.node_token)
        .unwrap()
        .hub();
    assert!(
        log.contains(&hub_key.to_string()),
        "names the hub's key: {log}"
    );
    // Nothing was pinned and no node joined.
    assert!(!c.agents[i].data_dir.join("hub-ca.crt").exists());
    assert!(c.node(&name).is_none());
}

/// A stolen board reports that it deleted another board's volume: the hub
/// believes only the volume's own node, so the volume and its data stay
/// until that node deletes them.
#[test]
fn a_board_cannot_have_another_boards_volume_retired() {
    let mut c = Cluster::start(Broker::Embedded, 2, &[]);
    c.push_busybox("busybox", "1");
    let (a, b) = (c.agents[0].name.clone(), c.agents[1].name.clone());
    let claims = "/api/v1/namespaces/default/persistentvolumeclaims";
    let (code, v) = c.client().post(
        claims,
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "victim-data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Mi"}}}}),
    );
    assert_eq!(code, 201, "{v}");
    let (code, v) = c.client().post(
        PODS,
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "writer"},
            "spec": {"nodeName": a, "restartPolicy": "Never",
                "containers": [{"name": "w", "image": "busybox:1",
                    "command": ["sh", "-c", "echo precious > /data/f"],
                    "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "victim-data"}}]}}),
    );
    assert_eq!(code, 201, "{v}");
    eventually("the writer done", Duration::from_secs(60), || {
        (pod(&c, "writer")["status"]["phase"] == "Succeeded").then_some(())
    });
    let volume = c.client().get(&format!("{claims}/victim-data")).1["spec"]["volumeName"]
        .as_str()
        .expect("bound")
        .to_string();
    let dir = c.agents[0].data_dir.join("volumes").join(&volume);
    assert_eq!(
        std::fs::read_to_string(dir.join("f")).unwrap(),
        "precious\n"
    );
    assert_eq!(c.client().delete(&format!("{PODS}/writer")).0, 200);
    eventually("the writer gone", Duration::from_secs(30), || {
        (c.client().get(&format!("{PODS}/writer")).0 == 404).then_some(())
    });
    // A goes offline; then its claim is deleted: the volume waits for A.
    wait_key_login(&c, 1);
    c.agents[0].proc.kill9();
    assert_eq!(c.client().delete(&format!("{claims}/victim-data")).0, 200);
    let pv_path = format!("/api/v1/persistentvolumes/{volume}");
    eventually("the volume Released", Duration::from_secs(30), || {
        (c.client().get(&pv_path).1["status"]["phase"] == "Released").then_some(())
    });

    // The thief holds B: it stops B's agent and speaks for B with B's key,
    // reporting A's volume deleted.
    c.agents[1].proc.kill9();
    eventually("B NotReady", Duration::from_secs(30), || {
        (c.node_ready(&b).as_deref() == Some("Unknown")).then_some(())
    });
    let thief = Board::read(&b, &c.agents[1].data_dir);
    let port = broker_port(&c);
    let mut hello = thief_hello(&thief);
    hello.features = vec!["volumes".into()];
    let (t, p) = thief.frame(&b, TopicKind::Hello, &hello, None);
    attacker::publish(&port, &thief.mqtt_login(), &t, &p, false).expect("B may say its hello");
    let mut seq = 0;
    eventually(
        "the hub to take B's forged statuses (B Ready again)",
        Duration::from_secs(30),
        || {
            seq += 1;
            let status = Status {
                session: "thief".into(),
                seq,
                uptime_millis: seq * 1000,
                reclaimed: vec![volume.clone()],
                ..Status::default()
            };
            let (t, p) = thief.frame(&b, TopicKind::Status, &status, None);
            attacker::publish(&port, &thief.mqtt_login(), &t, &p, false).expect("B's status");
            (c.node_ready(&b).as_deref() == Some("True")).then_some(())
        },
    );
    // A round of the control loop that began after B's report: the
    // Endpoints of a new Service are written after the volumes' actions.
    let (code, v) = c.client().post(
        SERVICES,
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sync"},
            "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}}),
    );
    assert_eq!(code, 201, "{v}");
    eventually("a later round", Duration::from_secs(30), || {
        (c.client()
            .get("/api/v1/namespaces/default/endpoints/sync")
            .0
            == 200)
            .then_some(())
    });
    let pv = c.client().get(&pv_path);
    assert_eq!(pv.0, 200, "B's word retired A's volume: {}", pv.1);
    assert_eq!(
        std::fs::read_to_string(dir.join("f")).unwrap(),
        "precious\n"
    );

    // A itself comes back and deletes it, and then the volume goes.
    c.agents[0].restart();
    eventually("A deleted the directory", Duration::from_secs(60), || {
        (!dir.exists()).then_some(())
    });
    eventually("the volume retired", Duration::from_secs(30), || {
        (c.client().get(&pv_path).0 == 404).then_some(())
    });
    c.agents[1].restart();
}
