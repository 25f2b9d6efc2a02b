//! Helpers of the MQTT integration tests: a scripted agent made with
//! rumqttc, message builders, and a mosquitto process killed on drop.

#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use std::time::Duration;

use bramble_api::protocol::hello::HelloAck;
use bramble_api::protocol::{
    Cgroups, Hello, HelloAuth, HubMessage, MAX_PACKET_BYTES, Message, Platform, PodReport, Status,
    Topic, TopicKind, decode_from_hub, encode, topics,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
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

impl TestAgent {
    /// Connects as `node` (`login` = MQTT username/password) and subscribes;
    /// `Err` with the client's error if the broker refuses the connection.
    pub async fn connect(
        addr: SocketAddr,
        node: &str,
        login: Option<(&str, &str)>,
    ) -> Result<TestAgent, String> {
        let mut o = MqttOptions::new(node, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
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

    /// Publishes `msg` on this node's topic of `kind`.
    pub async fn publish<M: Message>(&self, kind: TopicKind, msg: &M) {
        let topic = Topic::new(&self.node, kind).unwrap().to_string();
        self.publish_raw(&topic, encode(msg).unwrap()).await;
    }

    /// Sends `hello` every 300 ms (as agents do) until an ack of its session.
    pub async fn hello(&mut self, hello: &Hello) -> HelloAck {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.publish(TopicKind::Hello, hello).await;
            let retry = tokio::time::Instant::now() + Duration::from_millis(300);
            while let Ok(seen) = tokio::time::timeout_at(retry, self.events.recv()).await {
                match seen.expect("agent event loop alive") {
                    Seen::Message(topic, payload) => {
                        if let HubMessage::HelloAck(ack) =
                            decode_from_hub(&self.node, &topic, &payload).unwrap()
                            && ack.session() == hello.session
                        {
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

    /// Disconnects cleanly: returns once the DISCONNECT went out and the
    /// connection ended.
    pub async fn disconnect(mut self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
    }
}

/// A Raspberry Pi 4 hello.
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
        labels: [("bramble.dev/room".to_string(), "attic".to_string())].into(),
        cgroups: Cgroups {
            version: 2,
            controllers: vec!["cpu".into(), "pids".into()],
        },
        runtime: "libcontainer".into(),
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

/// Polls `check` until it returns `Some` (panics after [`WAIT`]).
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Joins `node` with the token, announcing the `network` feature and LAN
/// address `ip`; returns the agent and its pod CIDR.
pub async fn join_with_network(
    addr: SocketAddr,
    token: &str,
    node: &str,
    ip: &str,
) -> (TestAgent, String) {
    let mut agent = TestAgent::connect(addr, node, Some((node, token)))
        .await
        .unwrap();
    let mut h = hello(node, "s1", HelloAuth::JoinToken(token.into()));
    h.internal_ip = Some(ip.into());
    h.features = vec!["network".into()];
    let HelloAck::Accepted(ack) = agent.hello(&h).await else {
        panic!("refused")
    };
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
        }],
        ..Default::default()
    }
}
