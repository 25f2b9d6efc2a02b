//! Helpers of the MQTT integration tests: a scripted agent made with
//! rumqttc that holds a board's keys (it signs what it publishes and opens
//! what the hub seals to it), message builders, and a mosquitto process
//! killed on drop.

#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use std::time::Duration;

use bramble_api::protocol::hello::HelloAck;
use bramble_api::protocol::{
    Cgroups, FromHub, Hello, HelloAuth, HubKey, HubMessage, MAX_PACKET_BYTES, Message, Platform,
    PodReport, ProtocolError, Status, Topic, TopicKind, decode_from_hub, encode_frame, keys_text,
    topics,
};
use bramble_trust::login::{Service, join_login, key_password};
use bramble_trust::{JoinToken, PublicKeys, SecretKeys};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::json;
use tokio::sync::mpsc;

/// How long any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the agent's event loop saw.
#[derive(Debug)]
enum Seen {
    Connected,
    Subscribed,
    Message(String, Vec<u8>),
    Failed(String),
}

/// An agent connection: subscribed to its node's hub → agent topics.
pub struct TestAgent {
    pub node: String,
    /// The board's keys.
    pub keys: SecretKeys,
    /// The hub's keys once a helloAck was verified (pinned).
    pub hub: Option<PublicKeys>,
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Seen>,
    /// Publications that arrived before the last SUBACK (retained ones).
    early: std::collections::VecDeque<(String, Vec<u8>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The MQTT username and password of boards joining with `token` (their
/// client id is `_join.NAME`).
pub fn token_login(token: &str) -> (String, String) {
    let l = join_login(&JoinToken::parse(token).unwrap(), "any");
    (l.username, l.password)
}

impl TestAgent {
    /// Connects as `node` with new keys (`login` = MQTT username/password)
    /// and subscribes; `Err` with the client's error if the broker refuses
    /// the connection.
    pub async fn connect(
        addr: SocketAddr,
        node: &str,
        login: Option<(&str, &str)>,
    ) -> Result<TestAgent, String> {
        TestAgent::connect_as(addr, node, SecretKeys::generate().unwrap(), None, login).await
    }

    /// Connects with a join token's login, as a joining board does (client
    /// id `_join.NAME`).
    pub async fn joining(addr: SocketAddr, node: &str, token: &str) -> Result<TestAgent, String> {
        let l = join_login(&JoinToken::parse(token).unwrap(), node);
        TestAgent::connect_with_will(
            addr,
            &l.client_id,
            SecretKeys::generate().unwrap(),
            None,
            Some((&l.username, &l.password)),
            None,
        )
        .await
    }

    /// Connects as `node` with `keys` (and the pinned `hub`).
    pub async fn connect_as(
        addr: SocketAddr,
        node: &str,
        keys: SecretKeys,
        hub: Option<PublicKeys>,
        login: Option<(&str, &str)>,
    ) -> Result<TestAgent, String> {
        TestAgent::connect_with_will(addr, node, keys, hub, login, None).await
    }

    /// [`TestAgent::connect_as`] leaving `will` as its last will.
    /// `client_id` is the node name, or `_join.NAME` for a join login.
    pub async fn connect_with_will(
        addr: SocketAddr,
        client_id: &str,
        keys: SecretKeys,
        hub: Option<PublicKeys>,
        login: Option<(&str, &str)>,
        will: Option<LastWill>,
    ) -> Result<TestAgent, String> {
        let node = bramble_trust::login::joining_node(client_id).unwrap_or(client_id);
        let mut o = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
        }
        if let Some(will) = will {
            o.set_last_will(will);
        }
        let (client, mut eventloop) = AsyncClient::new(o, 16);
        let (tx, mut events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let seen = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Seen::Connected,
                    Ok(Event::Incoming(Packet::SubAck(_))) => Seen::Subscribed,
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        Seen::Message(p.topic, p.payload.to_vec())
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = tx.send(Seen::Failed(e.to_string()));
                        return;
                    }
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(Seen::Connected)) => {}
            Ok(Some(Seen::Failed(e))) => return Err(e),
            other => return Err(format!("no CONNACK: {other:?}")),
        }
        for filter in topics::agent_subscriptions(node).unwrap() {
            client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        }
        let mut agent = TestAgent {
            node: node.to_string(),
            keys,
            hub,
            client,
            events,
            early: Default::default(),
            task,
        };
        let mut acks = 0;
        while acks < 3 {
            match agent.next().await {
                Seen::Subscribed => acks += 1,
                Seen::Message(topic, payload) => agent.early.push_back((topic, payload)),
                other => return Err(format!("expected SUBACK, got {other:?}")),
            }
        }
        Ok(agent)
    }

    /// The board's key login (once it pinned the hub).
    pub fn key_login(&self) -> String {
        let hub = self.hub.as_ref().expect("joined: the hub's key pinned");
        key_password(&self.keys, hub, Service::Mqtt, &self.node).expect("a key login")
    }

    /// Connects again as the same board, logging in with its key (after a
    /// join, as agents do).
    pub async fn reconnect_with_key(self, addr: SocketAddr) -> Result<TestAgent, String> {
        let login = self.key_login();
        let (node, keys, hub) = (self.node.clone(), self.keys.clone(), self.hub.clone());
        self.disconnect().await;
        TestAgent::connect_as(addr, &node, keys, hub, Some((&node, &login))).await
    }

    async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("agent event in time")
            .expect("agent event loop alive")
    }

    /// Publishes raw bytes on a raw topic.
    pub async fn publish_raw(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    /// Publishes `msg` on this node's topic of `kind`, signed with the
    /// board's keys (and sealed to the pinned hub where it travels sealed).
    pub async fn publish<M: Message>(&self, kind: TopicKind, msg: &M) {
        let topic = Topic::new(&self.node, kind).unwrap();
        let payload = encode_frame(&self.keys, &topic, msg, self.hub.as_ref()).unwrap();
        self.publish_raw(&topic.to_string(), payload).await;
    }

    /// A Raspberry Pi 4 hello of this board, joining with `token` if given.
    pub fn hello(&self, session: &str, token: Option<&str>) -> Hello {
        let mut h = hello(&self.node, session, HelloAuth::Key);
        h.keys = keys_text(self.keys.public());
        if let Some(t) = token {
            h.prove_token(&JoinToken::parse(t).unwrap());
        }
        h
    }

    /// Verifies and opens a publication from the hub: against the pinned
    /// hub key, else against the one `token` names.
    pub fn open(
        &self,
        topic: &str,
        payload: &[u8],
        token: Option<&str>,
    ) -> Result<FromHub, ProtocolError> {
        let hub = match (&self.hub, token) {
            (Some(k), _) => HubKey::Pinned(k),
            (None, Some(t)) => HubKey::Expected(JoinToken::parse(t).unwrap().hub()),
            (None, None) => return Err(ProtocolError::NotJoined),
        };
        decode_from_hub(&self.node, topic, payload, hub, &self.keys)
    }

    /// Sends `hello` every 300 ms (as agents do) until an ack of its
    /// session, which it verifies (pinning the hub's keys) with `token`'s
    /// hash before it joined.
    pub async fn say_hello(&mut self, hello: &Hello, token: Option<&str>) -> HelloAck {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.publish(TopicKind::Hello, hello).await;
            let retry = tokio::time::Instant::now() + Duration::from_millis(300);
            while let Ok(seen) = tokio::time::timeout_at(retry, self.events.recv()).await {
                match seen.expect("agent event loop alive") {
                    Seen::Message(topic, payload) => {
                        let Ok(got) = self.open(&topic, &payload, token) else {
                            continue;
                        };
                        if let HubMessage::HelloAck(ack) = got.message
                            && ack.session() == hello.session
                        {
                            self.hub = Some(got.hub);
                            return ack;
                        }
                    }
                    Seen::Failed(e) => panic!("agent connection failed: {e}"),
                    _ => {}
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "no helloAck");
        }
    }

    /// The next publication received (topic, payload).
    pub async fn next_message(&mut self) -> (String, Vec<u8>) {
        if let Some(m) = self.early.pop_front() {
            return m;
        }
        loop {
            match self.next().await {
                Seen::Message(topic, payload) => return (topic, payload),
                Seen::Failed(e) => panic!("agent connection failed: {e}"),
                _ => {}
            }
        }
    }

    /// Waits until the connection ends without this side asking
    /// (publications meanwhile are dropped); returns the client's error.
    /// Panics if it is still up after [`WAIT`].
    pub async fn connection_lost(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Seen::Failed(e))) => return e,
                Ok(Some(_)) => {}
                Ok(None) => panic!("agent event loop gone"),
                Err(_) => panic!("the connection of {} is still up", self.node),
            }
        }
    }

    /// Disconnects cleanly: returns once the DISCONNECT went out and the
    /// connection ended.
    pub async fn disconnect(mut self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
    }
}

/// A Raspberry Pi 4 hello (no keys: see [`TestAgent::hello`]).
pub fn hello(node: &str, session: &str, auth: HelloAuth) -> Hello {
    Hello {
        node_name: node.into(),
        session: session.into(),
        agent_version: "0.1.0".into(),
        platform: Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: "v8".into(),
        },
        kernel_version: "6.6.31+rpt-rpi-v8".into(),
        os_image: "Debian GNU/Linux 12 (bookworm)".into(),
        cpus: 4,
        memory_bytes: 4_124_000_256,
        labels: [("room".to_string(), "attic".to_string())].into(),
        cgroups: Cgroups {
            version: 2,
            controllers: vec!["cpu".into(), "pids".into()],
        },
        runtime: "libcontainer".into(),
        incarnation: 1,
        auth,
        ..Default::default()
    }
}

/// A status reporting `pods` (namespace, name, uid, phase).
pub fn status(session: &str, seq: u64, pods: &[(&str, &str, &str, &str)]) -> Status {
    Status {
        session: session.into(),
        seq,
        uptime_millis: seq * 1000,
        pods: pods
            .iter()
            .map(|(ns, name, uid, phase)| PodReport {
                namespace: ns.to_string(),
                name: name.to_string(),
                uid: uid.to_string(),
                status: serde_json::from_value(json!({"phase": phase, "podIP": "10.42.1.2"}))
                    .unwrap(),
                usage: None,
                pulls: Vec::new(),
            })
            .collect(),
        ..Default::default()
    }
}

pub use bramble_tests::mosquitto::Mosquitto;

/// Logs to the test output, filtered by `RUST_LOG` (default `warn`).
pub fn init_logs() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

/// Joins `node` as an agent does: a token login and a hello with the
/// token's proof, then a key login and a hello of session `s1`. `extra`
/// adjusts both hellos.
pub async fn join(
    addr: SocketAddr,
    token: &str,
    node: &str,
    extra: impl Fn(&mut Hello),
) -> (TestAgent, bramble_api::protocol::hello::Accepted) {
    let mut agent = TestAgent::joining(addr, node, token).await.unwrap();
    let mut h = agent.hello("s1", Some(token));
    extra(&mut h);
    let HelloAck::Accepted(_) = agent.say_hello(&h, Some(token)).await else {
        panic!("refused")
    };
    let mut agent = agent.reconnect_with_key(addr).await.unwrap();
    let mut h = agent.hello("s1", None);
    extra(&mut h);
    let HelloAck::Accepted(ack) = agent.say_hello(&h, None).await else {
        panic!("refused after the key login")
    };
    (agent, ack)
}

/// Joins `node` with the token, announcing the `network` feature and LAN
/// address `ip`; returns the agent and its pod CIDR.
pub async fn join_with_network(
    addr: SocketAddr,
    token: &str,
    node: &str,
    ip: &str,
) -> (TestAgent, String) {
    let (agent, ack) = join(addr, token, node, |h| {
        h.internal_ip = Some(ip.into());
        h.features = vec!["network".into()];
    })
    .await;
    (agent, ack.pod_cidr.expect("a pod CIDR in the helloAck"))
}

/// Creates pod `name` labelled `app=web` bound to `node`, whose container
/// port `http` is `port`; returns its uid.
pub async fn create_pod(
    store: &bramble_hub::store::Store,
    name: &str,
    node: &str,
    port: u16,
) -> String {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {"nodeName": node, "containers": [{"name": "web", "image": "busybox:1.36",
            "ports": [{"name": "http", "containerPort": port}]}]}});
    let obj = bramble_api::admit(pod).unwrap().object;
    let pods = bramble_api::resource::by_plural("", "v1", "pods").unwrap();
    let created = store.create(pods, obj).await.unwrap();
    created["metadata"]["uid"].as_str().unwrap().to_string()
}

/// A status (session `s1`) of one running pod with `ip`, Ready or not.
pub fn pod_status(seq: u64, name: &str, uid: &str, ip: &str, ready: bool) -> Status {
    Status {
        session: "s1".into(),
        seq,
        uptime_millis: seq * 1000,
        pods: vec![PodReport {
            namespace: "default".into(),
            name: name.into(),
            uid: uid.into(),
            status: serde_json::from_value(json!({"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}))
            .unwrap(),
            usage: None,
            pulls: Vec::new(),
        }],
        ..Default::default()
    }
}
