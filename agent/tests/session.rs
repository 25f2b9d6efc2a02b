//! The joined agent against a real MQTT broker (mosquitto, started per test
//! on a free loopback port), with the test playing the hub through its own
//! rumqttc client and keys: join with a token's proof → the hub's key pinned
//! (0600) → reconnect with the board's key; a retained `desired` runs a pod
//! reported Running with the observed generation; forged messages are
//! ignored; the same pods under a higher generation are not restarted;
//! after `kill -9` the agent restarted with the broker down restores the
//! pod from `RUN_DIR/desired.json` without restarting it; a refused hello
//! ends the agent with status 1 and the reason on stderr.
//! Images missing on the node are pulled from the hub's registry (a test
//! registry here); a missing one is reported `ErrImagePull` /
//! `ImagePullBackOff` and its pull retried with back-off. `logs` with `follow` streams lines written after the
//! request until a `cancel` or the pod's end; a changed ConfigMap reaches
//! the mounted volume of a running pod without a restart. Libcontainer
//! only; `reset` cleans up, also after a failed assertion.
//!
//! Length: over 600 lines because one suite (the joined agent against a real
//! broker) with its fixture; each test a scenario.

mod registry;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bramble_agent::runtime::cgroup::CgroupLayout;
use bramble_api::objects::pod::Pod;
use bramble_api::protocol::hello::{Accepted, Refused};
use bramble_api::protocol::rpc::RpcErrorCode;
use bramble_api::protocol::topics::{Topic, TopicKind};
use bramble_api::protocol::{
    AgentMessage, Desired, Generation, HelloAck, HelloAuth, Message, RefusalCode, RpcChunk, Signer,
    Status, decode_from_agent, encode_frame, keys_text,
};
use bramble_tests::eventually;
use bramble_tests::mosquitto::Mosquitto as Broker;
use bramble_trust::{JoinToken, PublicKeys, SecretKeys};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

const AGENT: &str = env!("CARGO_BIN_EXE_bramble-agent");
const WAIT: Duration = Duration::from_secs(60);

/// The test's hub: an MQTT client subscribed to one node's agent → hub
/// topics, with the hub's keys: it verifies what arrives (a first hello by
/// the key it carries, then by that key), and signs (and seals to the board)
/// what it publishes.
struct Hub {
    node: String,
    keys: SecretKeys,
    /// The cluster's join token (it names `keys`).
    token: JoinToken,
    /// The board's key, from its first hello.
    board: std::sync::Arc<std::sync::Mutex<Option<PublicKeys>>>,
    /// The session of the last hello and the last request number.
    session: std::sync::Mutex<(String, u64)>,
    client: Client,
    rx: mpsc::Receiver<AgentMessage>,
}

impl Hub {
    fn connect(broker: &Broker, node: &str) -> Hub {
        let keys = SecretKeys::generate().unwrap();
        let token = JoinToken::generate(keys.public().fingerprint()).unwrap();
        let mut o = MqttOptions::new(format!("hub-{node}"), "127.0.0.1", broker.port);
        o.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(bramble_api::protocol::MAX_PACKET_BYTES, 1 << 20);
        o.set_credentials("hub", "hub-pass");
        let (client, mut conn) = Client::new(o, 64);
        let (tx, rx) = mpsc::channel();
        let sub = client.clone();
        let filters = ["hello", "status", "online", "rpc/resp/+"]
            .map(|t| format!("bramble/v2/nodes/{node}/{t}"));
        let board = std::sync::Arc::new(std::sync::Mutex::new(None::<PublicKeys>));
        let (hub_keys, known) = (keys.clone(), board.clone());
        std::thread::spawn(move || {
            loop {
                match conn.recv() {
                    Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                        for f in &filters {
                            let _ = sub.try_subscribe(f.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                        if p.payload.is_empty() {
                            continue;
                        }
                        let registered = known.lock().unwrap().clone();
                        match decode_from_agent(&p.topic, &p.payload, &hub_keys, |_| registered) {
                            Ok(got) => {
                                if let Signer::Claimed(k) = &got.signer {
                                    *known.lock().unwrap() = Some((**k).clone());
                                }
                                if tx.send(got.message).is_err() {
                                    return;
                                }
                            }
                            Err(e) => eprintln!("hub: {}: {e}", p.topic),
                        }
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
                    Err(_) => return,
                }
            }
        });
        Hub {
            node: node.to_string(),
            keys,
            token,
            board,
            session: std::sync::Mutex::new((String::new(), 0)),
            client,
            rx,
        }
    }

    fn publish<M: Message>(&self, kind: TopicKind, msg: &M) {
        let topic = Topic::new(&self.node, kind.clone()).unwrap();
        let board = self.board.lock().unwrap().clone();
        let payload = encode_frame(&self.keys, &topic, msg, board.as_ref()).unwrap();
        self.client
            .publish(
                topic.to_string(),
                QoS::AtLeastOnce,
                kind.retained(),
                payload,
            )
            .unwrap();
    }

    /// Publishes a request `{"id": id, "call": call}` of the board's
    /// current session, numbered as the hub numbers them.
    fn request(&self, id: &str, call: serde_json::Value) {
        let (session, seq) = {
            let mut s = self.session.lock().unwrap();
            s.1 += 1;
            s.clone()
        };
        let req = serde_json::json!({"id": id, "session": session, "seq": seq, "call": call});
        let req: bramble_api::protocol::RpcRequest = serde_json::from_value(req).unwrap();
        self.publish(TopicKind::RpcRequest, &req);
    }

    /// The next message `pick` maps to `Some`, within [`WAIT`].
    fn wait<T>(&self, what: &str, mut pick: impl FnMut(AgentMessage) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) => {
                    if let Some(t) = pick(m) {
                        return t;
                    }
                }
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Waits for a hello and accepts it (checking a join proof against the
    /// hub's token). Returns the hello's session, whether it joined with
    /// the token, and its incarnation.
    fn accept_hello(&self) -> (String, bool, u64) {
        let hello = self.wait("hello", |m| match m {
            AgentMessage::Hello(h) => Some(h),
            _ => None,
        });
        let token = matches!(hello.auth, HelloAuth::JoinToken(_));
        if let HelloAuth::JoinToken(p) = &hello.auth {
            let fields = hello.proof_fields();
            let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
            assert!(
                bramble_trust::token::verify_proof(self.token.secret(), "hello", &fields, &p.proof),
                "a wrong join proof"
            );
        }
        assert_eq!(
            Some(bramble_api::protocol::public_keys(&hello.keys).unwrap()),
            *self.board.lock().unwrap(),
            "the hello names the key it is signed with"
        );
        *self.session.lock().unwrap() = (hello.session.clone(), 0);
        let ack = HelloAck::Accepted(Accepted {
            session: hello.session.clone(),
            hub: keys_text(self.keys.public()),
            pod_cidr: None,
            heartbeat_millis: Some(300),
        });
        self.publish(TopicKind::HelloAck, &ack);
        (hello.session, token, hello.incarnation)
    }

    /// Waits for a status satisfying `ok`.
    fn status(&self, what: &str, ok: impl Fn(&Status) -> bool) -> Status {
        self.wait(what, |m| match m {
            AgentMessage::Status(s) if ok(&s) => Some(s),
            _ => None,
        })
    }
}

/// One node's agent world: dirs, cgroup parent, processes; on drop the
/// agents are killed and `reset` removes every pod.
struct World {
    tmp: tempfile::TempDir,
    node: String,
    /// `--hub`: the test registry.
    hub: String,
    cgroup_parent: String,
    children: Vec<Child>,
}

impl World {
    fn new(name: &str, hub: &str) -> World {
        bramble_tests::require_root("containers");
        let tmp = tempfile::Builder::new()
            .prefix(&format!("bramble-session-{name}-"))
            .tempdir()
            .unwrap();
        bramble_tests::busybox::busybox_image()
            .expect("busybox fixture")
            .write_archive(&tmp.path().join("busybox.tar"), "busybox:latest")
            .unwrap();
        World {
            tmp,
            hub: hub.to_string(),
            node: format!("{name}-{}", std::process::id()),
            cgroup_parent: format!("/bramble-test-session-{name}-{}", std::process::id()),
            children: Vec::new(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn run_dir(&self) -> PathBuf {
        self.tmp.path().join("run")
    }

    fn log(&self) -> PathBuf {
        self.tmp.path().join("agent.log")
    }

    fn node_args(&self, cmd: &mut Command) {
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .arg("--run-dir")
            .arg(self.run_dir())
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--runtime")
            .arg("libcontainer");
    }

    /// The joined agent's command line.
    fn agent(&self, broker: &Broker, token: &str) -> Command {
        let mut cmd = Command::new(AGENT);
        cmd.arg("--hub")
            .arg(&self.hub)
            .arg("--mqtt-url")
            .arg(broker.url())
            .arg("--node-name")
            .arg(&self.node)
            .arg("--token")
            .arg(token)
            .arg("--image")
            .arg(format!(
                "busybox={}",
                self.tmp.path().join("busybox.tar").display()
            ))
            .arg("--tick-ms")
            .arg("50");
        self.node_args(&mut cmd);
        cmd.env("BRAMBLE_LOG", "info")
            .env_remove("BRAMBLE_HUB")
            .env("BRAMBLE_REGISTRY_TOKEN", "reg-token")
            .stdout(Stdio::null());
        cmd
    }

    fn spawn(&mut self, broker: &Broker, token: &str) -> usize {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let child = self.agent(broker, token).stderr(log).spawn().unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    fn agent_log(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn reset(&self) -> std::process::Output {
        let mut cmd = Command::new(AGENT);
        cmd.arg("reset");
        self.node_args(&mut cmd);
        cmd.output().unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() || std::env::var_os("BRAMBLE_PRINT_AGENT_LOG").is_some() {
            eprintln!("agent log:\n{}", self.agent_log());
        }
        let out = self.reset();
        if !out.status.success() {
            eprintln!("cleanup reset: {}", String::from_utf8_lossy(&out.stderr));
        }
        let _ = rustix::mount::unmount(self.run_dir(), rustix::mount::UnmountFlags::DETACH);
        if let Ok(layout) = CgroupLayout::detect() {
            for h in &layout.hierarchies {
                let _ = std::fs::remove_dir(h.join(self.cgroup_parent.trim_start_matches('/')));
            }
        }
    }
}

/// A busybox pod bound to `node`, defaulted as the hub admits it.
fn pod(node: &str, name: &str, uid: &str) -> Pod {
    demo_pod(node, name, uid, "busybox")
}

/// A pod of `image` bound to `node`, defaulted as the hub admits it.
fn demo_pod(node: &str, name: &str, uid: &str, image: &str) -> Pod {
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    \
         image: {image}\n    command: [sleep, \"100000\"]\n"
    );
    let doc = bramble_api::parse_documents(&yaml, "pod.yaml")
        .unwrap()
        .remove(0);
    let mut v = bramble_api::admit(doc).unwrap().object;
    v["metadata"]["uid"] = uid.into();
    v["spec"]["nodeName"] = node.into();
    serde_json::from_value(v).unwrap()
}

fn desired(generation: u64, pods: Vec<Pod>) -> Desired {
    Desired {
        generation: Generation(generation),
        pods,
        ..Desired::default()
    }
}

/// `(reason, message)` of the pod's waiting container.
fn waiting_reason(s: &Status, name: &str) -> Option<(String, String)> {
    let p = s.pods.iter().find(|p| p.name == name)?;
    let w = p
        .status
        .container_statuses
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?;
    Some((w.reason.clone()?, w.message.clone().unwrap_or_default()))
}

/// `(containerID, startedAt)` of the pod's container once it runs.
fn running(s: &Status, name: &str) -> Option<(String, String)> {
    let p = s.pods.iter().find(|p| p.name == name)?;
    let c = p.status.container_statuses.first()?;
    let started = c.state.as_ref()?.running.as_ref()?.started_at.clone()?;
    let id = c.container_id.clone()?;
    (p.status.phase.as_deref() == Some("Running")).then_some((id, started))
}

/// The registry serving `demo:1` (busybox for every platform).
fn registry() -> registry::Registry {
    let image = bramble_tests::busybox::busybox_image().expect("busybox fixture");
    registry::Registry::start(&[("demo", "1", &image)])
}

#[test]
fn local_images_pull_from_the_registry() {
    use bramble_agent::node::images::LocalImages;
    use bramble_agent::pod::{ImageSource, PullError};
    let reg = registry();
    let dir = tempfile::tempdir().unwrap();
    let images = LocalImages::open(dir.path()).unwrap();
    let client = bramble_images::RegistryClient::new(&reg.base, Some("reg-token"));
    assert!(!images.has("demo:1"));
    images.pull(&client, "demo:1").unwrap();
    assert!(images.has("demo:1"));
    let resolved = images.resolve("demo:1").unwrap();
    assert!(resolved.layers[0].join("bin").exists());
    assert!(reg.auth_seen().iter().all(|a| a == "Bearer reg-token"));
    // Reopened: the name survives.
    assert!(LocalImages::open(dir.path()).unwrap().has("demo:1"));
    let e = images.pull(&client, "ghost:1").unwrap_err();
    assert!(matches!(e, PullError::Registry { .. }), "{e}");
    let e = e.to_string();
    assert!(e.contains("pulling ghost:1") && e.contains("404"), "{e}");
    let e = images.pull(&client, "quay.io/x/y:1").unwrap_err();
    assert!(matches!(e, PullError::NotHubLocal { .. }), "{e}");
    assert!(
        e.to_string().contains("only images of the hub's registry"),
        "{e}"
    );
}

#[test]
fn joins_runs_restores_and_is_refused() {
    let reg = registry();
    let mut w = World::new("join", &reg.base);
    let mut broker = Broker::start();
    let hub = Hub::connect(&broker, &w.node);
    let first = w.spawn(&broker, &hub.token.to_string());

    // Join: token proof → the hub's key pinned → reconnect with the key.
    let (session, with_token, incarnation) = hub.accept_hello();
    assert!(with_token);
    let (again, with_token, _) = hub.accept_hello();
    assert!(!with_token);
    assert_eq!(again, session, "same process, same session");
    let identity = w.data_dir().join("identity.json");
    let mode = std::fs::metadata(&identity).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&identity).unwrap()).unwrap();
    assert_eq!(stored["hub"]["signing"], hub.keys.public().signing_text());
    let text = std::fs::read_to_string(&identity).unwrap();
    assert!(
        !text.contains(hub.token.secret()),
        "the token is not stored"
    );
    hub.status("a first heartbeat", |s| {
        s.session == session && s.pods.is_empty()
    });

    // A retained desired set runs the pod.
    let pods = vec![pod(&w.node, "web", "uid-web-1")];
    hub.publish(TopicKind::Desired, &desired(1, pods.clone()));
    let s = hub.status("web Running at generation 1", |s| {
        s.observed_generation == Some(Generation(1)) && running(s, "web").is_some()
    });
    let first_run = running(&s, "web").unwrap();
    assert_eq!(s.pods[0].uid, "uid-web-1");

    // A forged set (protocol 1 JSON, or signed by another key) is ignored
    // and not even reported; the hub's set with an unknown field is
    // refused and reported; the pod is untouched.
    let topic = Topic::new(&w.node, TopicKind::Desired).unwrap().to_string();
    let publish_raw = |payload: Vec<u8>| {
        hub.client
            .publish(topic.clone(), QoS::AtLeastOnce, false, payload)
            .unwrap()
    };
    publish_raw(br#"{"protocol":1,"type":"desired","body":{"generation":9,"pods":[]}}"#.to_vec());
    let rogue = SecretKeys::generate().unwrap();
    let board_key = hub.board.lock().unwrap().clone().unwrap();
    let forged = bramble_trust::frame::seal(
        &rogue,
        &board_key,
        &topic,
        br#"{"protocol":2,"type":"desired","body":{"generation":9,"pods":[]}}"#,
    )
    .unwrap();
    publish_raw(forged);
    let bogus = bramble_trust::frame::seal(
        &hub.keys,
        &board_key,
        &topic,
        br#"{"protocol":2,"type":"desired","body":{"generation":2,"bogus":1}}"#,
    )
    .unwrap();
    publish_raw(bogus);
    let s = hub.status("the refusal", |s| s.desired_rejected.is_some());
    assert_eq!(
        s.desired_rejected.as_ref().unwrap().generation,
        Some(Generation(2))
    );
    assert_eq!(s.observed_generation, Some(Generation(1)));

    // The same pods under a higher generation: no restart.
    hub.publish(TopicKind::Desired, &desired(2, pods.clone()));
    let s = hub.status("generation 2 observed", |s| {
        s.observed_generation == Some(Generation(2)) && s.desired_rejected.is_none()
    });
    assert_eq!(
        running(&s, "web"),
        Some(first_run.clone()),
        "pod was restarted"
    );
    // An older generation is ignored.
    let before = hub.status("a heartbeat", |_| true).seq;
    hub.publish(TopicKind::Desired, &desired(1, vec![]));
    // Two heartbeats later the node loop has seen (and ignored) it.
    let s = hub.status("two later heartbeats", |s| s.seq >= before + 2);
    assert_eq!(s.observed_generation, Some(Generation(2)));
    assert_eq!(running(&s, "web"), Some(first_run.clone()));

    // kill -9, broker down, restart: the pod is restored from desired.json.
    let mut c = w.children.remove(first);
    c.kill().unwrap();
    c.wait().unwrap();
    broker.stop();
    let log_before = w.agent_log().len();
    w.spawn(&broker, &hub.token.to_string());
    let log = eventually("the saved desired set restored", WAIT, || {
        let log = w.agent_log()[log_before..].to_string();
        if log.contains("restoring the saved desired set")
            && log.contains("cannot reach the broker")
        {
            Ok(log)
        } else {
            Err(log)
        }
    });
    assert!(log.contains("pod adopted"), "{log}");
    assert!(
        !log.contains("pod started") && !log.contains("pod stopped"),
        "{log}"
    );
    broker.resume();
    let (session2, with_token, incarnation2) = hub.accept_hello();
    assert!(!with_token, "the key is reused");
    assert_ne!(session2, session);
    assert_eq!(incarnation2, incarnation + 1, "a new start counts");
    let s = hub.status("the restored pod", |s| {
        s.session == session2 && running(s, "web").is_some()
    });
    assert_eq!(s.observed_generation, Some(Generation(2)));
    assert_eq!(
        running(&s, "web"),
        Some(first_run.clone()),
        "pod was restarted"
    );

    // Images not on the node are pulled from the hub's registry; a missing
    // one waits with ErrImagePull / ImagePullBackOff.
    let mut pulled = pods.clone();
    pulled.push(demo_pod(&w.node, "pulled", "uid-pulled", "demo:1"));
    pulled.push(demo_pod(&w.node, "ghost", "uid-ghost", "ghost:1"));
    hub.publish(TopicKind::Desired, &desired(3, pulled));
    let s = hub.status("pulled Running, ghost waiting", |s| {
        running(s, "pulled").is_some()
            && waiting_reason(s, "ghost")
                .is_some_and(|(r, _)| r == "ErrImagePull" || r == "ImagePullBackOff")
    });
    assert_eq!(s.observed_generation, Some(Generation(3)));
    // The pod that waited for its pull reports it (the hub's Pulled event),
    // the ones whose images were here report none.
    let pulls = |name: &str| {
        s.pods
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.pulls.clone())
            .unwrap()
    };
    let waited = pulls("pulled");
    assert_eq!(waited.len(), 1, "{waited:?}");
    assert_eq!(waited[0].image, "demo:1");
    assert!(waited[0].millis.is_some(), "{waited:?}");
    assert!(waited[0].size.is_some_and(|b| b > 0), "{waited:?}");
    assert!(pulls("web").is_empty());
    let reason = waiting_reason(&s, "ghost").unwrap();
    assert!(
        reason.0 == "ErrImagePull" || reason.0 == "ImagePullBackOff",
        "{reason:?}"
    );
    assert!(
        reason.1.contains("ghost:1") && reason.1.contains("404"),
        "{reason:?}"
    );
    assert_eq!(running(&s, "web"), Some(first_run), "web was restarted");
    assert!(reg.auth_seen().iter().any(|a| a == "Bearer reg-token"));
    // Failed pulls are retried with back-off from 2 s (2, 4, … up to 60 s):
    // a third attempt comes well within 30 s (it once waited for the 60 s
    // poll after every failed retry).
    let ghost = "/v2/ghost/manifests/1";
    eventually("3 pulls of ghost:1", Duration::from_secs(30), || {
        let n = reg.requests_for(ghost);
        if n >= 3 {
            Ok(())
        } else {
            Err(format!("{n} pulls"))
        }
    });
    hub.status("ghost in ImagePullBackOff", |s| {
        waiting_reason(s, "ghost").is_some_and(|(r, _)| r == "ImagePullBackOff")
    });

    // RPCs: logs of a pod (sleep writes nothing) end cleanly, of an
    // unknown pod with notFound.
    let ask = |id: &str, call: serde_json::Value| {
        hub.request(id, call);
        hub.wait("rpc end", |m| match m {
            AgentMessage::RpcResponse(r) if r.id.as_str() == id => match r.chunk {
                RpcChunk::End { error, .. } => Some(error),
                _ => None,
            },
            _ => None,
        })
    };
    let web = serde_json::json!({"namespace": "default", "name": "web"});
    assert_eq!(
        ask("r1", serde_json::json!({"kind": "logs", "pod": web})),
        None
    );
    let nope = serde_json::json!({"namespace": "default", "name": "nope"});
    let e = ask("r2", serde_json::json!({"kind": "logs", "pod": nope})).unwrap();
    assert_eq!(e.code, RpcErrorCode::NotFound, "{e:?}");
    // Exec runs in the pod's container: output chunks, then the exit code.
    hub.request(
        "r3",
        serde_json::json!({"kind": "exec", "pod": web,
            "argv": ["sh", "-c", "echo out-$((6*7)); echo err >&2; exit 3"]}),
    );
    let mut output = String::new();
    let code = hub.wait("exec end", |m| match m {
        AgentMessage::RpcResponse(r) if r.id.as_str() == "r3" => match r.chunk {
            RpcChunk::Output { data, .. } => {
                output.push_str(&data);
                None
            }
            RpcChunk::End { exit_code, error } => Some((exit_code, error)),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(code, (Some(3), None), "{output}");
    assert!(
        output.contains("out-42") && output.contains("err"),
        "{output}"
    );
    let e = ask(
        "r4",
        serde_json::json!({"kind": "exec", "pod": nope, "argv": ["true"]}),
    )
    .unwrap();
    assert_eq!(e.code, RpcErrorCode::NotFound, "{e:?}");

    // A refused hello ends a (fresh) agent with status 1 and the reason.
    let other = World::new("refused", &reg.base);
    let hub2 = Hub::connect(&broker, &other.node);
    let wrong =
        JoinToken::from_parts(hub2.keys.public().fingerprint(), "wrong0", &"w".repeat(32)).unwrap();
    let mut child = other
        .agent(&broker, &wrong.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let hello = hub2.wait("hello", |m| match m {
        AgentMessage::Hello(h) => Some(h),
        _ => None,
    });
    hub2.publish(
        TopicKind::HelloAck,
        &HelloAck::Refused(Refused {
            session: hello.session.clone(),
            hub: keys_text(hub2.keys.public()),
            code: RefusalCode::InvalidToken,
            reason: "the join token is wrong: copy DATA_DIR/node-token from the hub".into(),
        }),
    );
    let status = eventually("the refused agent to exit", WAIT, || {
        child.try_wait().unwrap()
    });
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("the join token is wrong"), "{err}");
    assert!(
        err.contains("check --token against DATA_DIR/node-token"),
        "{err}"
    );
    drop(other);
    drop(w);
}

#[test]
fn a_broker_refusing_the_join_token_ends_the_agent() {
    let reg = registry();
    let w = World::new("badtoken", &reg.base);
    let passwords = w.tmp.path().join("passwords");
    let out = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwords)
        .args(["hub", "hub-pass"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let auth = format!(
        "allow_anonymous false\npassword_file {}\n",
        passwords.display()
    );
    let broker = Broker::start_with(&auth);
    let hub = SecretKeys::generate().unwrap();
    let token = JoinToken::generate(hub.public().fingerprint()).unwrap();
    let out = w
        .agent(&broker, &token.to_string())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the broker refused the join token's login of node {}",
            w.node
        )),
        "{err}"
    );
    assert!(
        err.contains("check --token against DATA_DIR/node-token"),
        "{err}"
    );
    let identity = std::fs::read_to_string(w.data_dir().join("identity.json")).unwrap();
    assert!(!identity.contains("\"hub\""), "no hub pinned: {identity}");
    // A token that is not one of this release is refused before anything.
    let out = w
        .agent(&broker, "0123456789abcdef")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--token: the join token does not name the hub's key"),
        "{err}"
    );
}

/// A pod printing `tick-N` every 200 ms, reading `/cfg/greeting` from a
/// ConfigMap volume.
fn ticking_pod(node: &str) -> Pod {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: ticker}\nspec:\n  \
        terminationGracePeriodSeconds: 1\n  volumes:\n  - {name: cfg, configMap: {name: cfg}}\n  \
        containers:\n  - name: main\n    image: busybox\n    \
        volumeMounts: [{name: cfg, mountPath: /cfg}]\n    command: [sh, -c, \
        'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done']\n";
    let doc = bramble_api::parse_documents(yaml, "pod.yaml")
        .unwrap()
        .remove(0);
    let mut v = bramble_api::admit(doc).unwrap().object;
    v["metadata"]["uid"] = "uid-ticker".into();
    v["spec"]["nodeName"] = node.into();
    serde_json::from_value(v).unwrap()
}

fn with_greeting(generation: u64, pods: Vec<Pod>, greeting: &str) -> Desired {
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default"}, "data": {"greeting": greeting}});
    Desired {
        config_maps: vec![serde_json::from_value(cm).unwrap()],
        ..desired(generation, pods)
    }
}

/// The next response to request `id`.
fn next_chunk(hub: &Hub, id: &str) -> (u64, RpcChunk) {
    hub.wait(id, |m| match m {
        AgentMessage::RpcResponse(r) if r.id.as_str() == id => Some((r.seq, r.chunk)),
        _ => None,
    })
}

fn request(hub: &Hub, id: &str, call: serde_json::Value) {
    hub.request(id, call);
}

/// `cat /cfg/greeting` in the ticker.
fn greeting(hub: &Hub, id: &str) -> String {
    let pod = serde_json::json!({"namespace": "default", "name": "ticker"});
    request(
        hub,
        id,
        serde_json::json!({"kind": "exec", "pod": pod, "argv": ["cat", "/cfg/greeting"]}),
    );
    let mut out = String::new();
    loop {
        match next_chunk(hub, id).1 {
            RpcChunk::Output { data, .. } => out.push_str(&data),
            RpcChunk::End { exit_code, error } => {
                assert_eq!((exit_code, error), (Some(0), None), "{out}");
                return out;
            }
            _ => {}
        }
    }
}

/// The tick numbers in `text`.
fn ticks(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("tick-")?.parse().ok())
        .collect()
}

#[test]
fn follows_logs_and_updates_config_map_volumes() {
    let reg = registry();
    let w = World::new("follow", &reg.base);
    let broker = Broker::start();
    let hub = Hub::connect(&broker, &w.node);
    let mut w = w;
    w.spawn(&broker, &hub.token.to_string());
    hub.accept_hello();
    hub.accept_hello();
    let pods = vec![ticking_pod(&w.node)];
    hub.publish(
        TopicKind::Desired,
        &with_greeting(1, pods.clone(), "hello-1"),
    );
    let s = hub.status("ticker Running", |s| running(s, "ticker").is_some());
    let first_run = running(&s, "ticker").unwrap();
    // Some history for `tailLines: 1`: the ticker has logged a line.
    let log = w.data_dir().join("logs/default_ticker/main.log");
    eventually(format!("a tick in {}", log.display()), WAIT, || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("tick-"))
    });

    // Follow: the last line so far, then lines written after the request,
    // in seq order; a cancel ends it with `cancelled`.
    let pod = serde_json::json!({"namespace": "default", "name": "ticker"});
    request(
        &hub,
        "f1",
        serde_json::json!({"kind": "logs", "pod": pod, "follow": true, "tailLines": 1}),
    );
    let asked = Instant::now();
    let mut text = String::new();
    let mut seqs = Vec::new();
    while ticks(&text).len() < 6 {
        let (seq, chunk) = next_chunk(&hub, "f1");
        seqs.push(seq);
        match chunk {
            RpcChunk::Output { data, .. } => text.push_str(&data),
            other => panic!("follow ended early: {other:?} after {text:?}"),
        }
    }
    let got = ticks(&text);
    assert!(
        got.windows(2).all(|p| p[1] == p[0] + 1),
        "consecutive ticks: {got:?}"
    );
    assert!(
        asked.elapsed() >= Duration::from_millis(800),
        "5 ticks after the first need ~1 s: they were written after the request"
    );
    request(
        &hub,
        "c1",
        serde_json::json!({"kind": "cancel", "id": "f1"}),
    );
    let end = loop {
        let (seq, chunk) = next_chunk(&hub, "f1");
        seqs.push(seq);
        if let RpcChunk::End { error, .. } = chunk {
            break error;
        }
    };
    assert_eq!(end.map(|e| e.code), Some(RpcErrorCode::Cancelled));
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());

    // A changed ConfigMap reaches the running container's volume.
    assert_eq!(greeting(&hub, "e1"), "hello-1");
    hub.publish(TopicKind::Desired, &with_greeting(2, pods, "hello-2"));
    hub.status("generation 2 observed", |s| {
        s.observed_generation == Some(Generation(2))
    });
    let mut n = 1;
    eventually("the volume to be updated", WAIT, || {
        n += 1;
        let seen = greeting(&hub, &format!("e{n}"));
        if seen == "hello-2" { Ok(()) } else { Err(seen) }
    });
    let s = hub.status("a later heartbeat", |_| true);
    assert_eq!(running(&s, "ticker"), Some(first_run), "pod was restarted");

    // A follow ends cleanly when the pod goes away.
    request(
        &hub,
        "f2",
        serde_json::json!({"kind": "logs", "pod": pod, "follow": true, "tailLines": 0}),
    );
    assert!(matches!(next_chunk(&hub, "f2").1, RpcChunk::Output { .. }));
    hub.publish(TopicKind::Desired, &with_greeting(3, vec![], "hello-2"));
    let end = loop {
        if let (_, RpcChunk::End { error, .. }) = next_chunk(&hub, "f2") {
            break error;
        }
    };
    assert_eq!(end, None);
    drop(w);
}
