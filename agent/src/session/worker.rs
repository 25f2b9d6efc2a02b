//! The session's protocol logic, on its own thread: after every connect it
//! subscribes, publishes `online` and says `hello` (repeated with back-off
//! until the matching `helloAck`); stores credentials the hub issues and
//! reconnects with them; exits the process with a clear message when the
//! hub or broker refuses the node; hands `desired` sets to the node loop;
//! answers RPCs ([`super::rpc`]); and publishes a complete `status` every heartbeat and on
//! every change of the [`SharedReport`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bramble_api::protocol::hello::{Accepted, Refused};
use bramble_api::protocol::status::Rejection;
use bramble_api::protocol::topics::{self, Topic, TopicKind};
use bramble_api::protocol::{
    Generation, Hello, HelloAck, HelloAuth, HubMessage, Message, NodeCredentials, Online,
    RefusalCode, RpcCall, RpcId, RpcRequest, RpcResponse, decode_from_hub, encode,
};
use rumqttc::{Client, ConnectReturnCode, ConnectionError, Event, Packet, QoS};

use super::config::SessionConfig;
use super::connection::{ConnectionEvent, PendingLogin};
use super::credentials;
use super::node_loop::NodeCommand;
use super::report::SharedReport;

/// What wakes the worker.
#[derive(Debug)]
pub enum Input {
    Mqtt(ConnectionEvent),
    /// The node report changed.
    Changed,
}

/// First hello retry delay; doubles up to [`HELLO_MAX`].
const HELLO_FIRST: Duration = Duration::from_secs(1);
const HELLO_MAX: Duration = Duration::from_secs(30);

/// How the process ends when the node is refused.
pub type Fatal = Box<dyn Fn(String) + Send>;

/// See the module docs.
pub struct Worker {
    cfg: SessionConfig,
    hello: Hello,
    client: Client,
    pending: PendingLogin,
    creds: Option<NodeCredentials>,
    to_node: Sender<NodeCommand>,
    report: Arc<SharedReport>,
    fatal: Fatal,
    started: Instant,
    connected: bool,
    connected_with_creds: bool,
    switching_login: bool,
    accepted: bool,
    outage_logged: bool,
    hello_at: Option<Instant>,
    hello_delay: Duration,
    heartbeat: Duration,
    next_status: Instant,
    seq: u64,
    sent_change: u64,
    /// Requests being answered, with the flag a `cancel` sets.
    rpcs: Running,
}

/// Requests being answered, by id.
type Running = Arc<Mutex<HashMap<RpcId, Arc<AtomicBool>>>>;

impl Worker {
    /// `hello` is the template (its auth is replaced on every send).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: SessionConfig,
        hello: Hello,
        client: Client,
        pending: PendingLogin,
        creds: Option<NodeCredentials>,
        to_node: Sender<NodeCommand>,
        report: Arc<SharedReport>,
        fatal: Fatal,
    ) -> Worker {
        let heartbeat = cfg.heartbeat;
        Worker {
            cfg,
            hello,
            client,
            pending,
            creds,
            to_node,
            report,
            fatal,
            started: Instant::now(),
            connected: false,
            connected_with_creds: false,
            switching_login: false,
            accepted: false,
            outage_logged: false,
            hello_at: None,
            hello_delay: HELLO_FIRST,
            heartbeat,
            next_status: Instant::now(),
            seq: 0,
            sent_change: 0,
            rpcs: Running::default(),
        }
    }

    /// Runs until every sender of `rx` is gone.
    pub fn run(mut self, rx: Receiver<Input>) {
        loop {
            let now = Instant::now();
            self.on_timers(now);
            let mut wake = now + Duration::from_secs(1);
            if let Some(h) = self.hello_at {
                wake = wake.min(h);
            }
            if self.accepted {
                wake = wake.min(self.next_status);
            }
            match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(Input::Mqtt(ConnectionEvent::Event(e))) => self.on_event(e),
                Ok(Input::Mqtt(ConnectionEvent::Error(e))) => self.on_error(e),
                Ok(Input::Changed) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn topic(&self, kind: TopicKind) -> String {
        Topic::new(&self.cfg.node, kind)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    fn publish<M: Message>(&self, kind: TopicKind, msg: &M) {
        let retain = kind.retained();
        let topic = self.topic(kind);
        match encode(msg) {
            Ok(bytes) => {
                if let Err(e) = self
                    .client
                    .try_publish(&topic, QoS::AtLeastOnce, retain, bytes)
                {
                    tracing::warn!(%topic, error = %e, "queueing a publication");
                }
            }
            Err(e) => tracing::error!(%topic, error = %e, "encoding a message"),
        }
    }

    fn on_timers(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        if let Some(at) = self.hello_at
            && now >= at
            && !self.accepted
        {
            tracing::info!(
                retry_in_s = self.hello_delay.as_secs(),
                "no helloAck yet; saying hello again"
            );
            self.send_hello();
            self.hello_delay = (self.hello_delay * 2).min(HELLO_MAX);
            self.hello_at = Some(now + self.hello_delay);
        }
        let (report, change) = self.report.snapshot();
        if self.accepted && (now >= self.next_status || change != self.sent_change) {
            self.seq += 1;
            let uptime = self.started.elapsed().as_millis() as u64;
            let status = report.status(&self.cfg.session, self.seq, uptime);
            self.publish(TopicKind::Status, &status);
            self.sent_change = change;
            self.next_status = now + self.heartbeat;
        }
    }

    fn send_hello(&mut self) {
        let mut h = self.hello.clone();
        h.auth = match (&self.creds, &self.cfg.token) {
            (Some(c), _) => HelloAuth::Credentials(c.clone()),
            (None, Some(t)) => HelloAuth::JoinToken(t.clone()),
            (None, None) => HelloAuth::JoinToken(String::new()),
        };
        self.publish(TopicKind::Hello, &h);
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Incoming(Packet::ConnAck(ack)) => {
                if ack.code != ConnectReturnCode::Success {
                    return;
                }
                if self.outage_logged {
                    tracing::info!(broker = %self.cfg.broker, "connected to the broker again");
                } else {
                    tracing::info!(broker = %self.cfg.broker, node = %self.cfg.node, "connected to the broker");
                }
                self.outage_logged = false;
                self.switching_login = false;
                self.connected = true;
                self.connected_with_creds = self.creds.is_some();
                self.accepted = false;
                let subs = topics::agent_subscriptions(&self.cfg.node).unwrap_or_default();
                let filters = subs
                    .into_iter()
                    .map(|t| rumqttc::SubscribeFilter::new(t, QoS::AtLeastOnce));
                if let Err(e) = self.client.try_subscribe_many(filters) {
                    tracing::warn!(error = %e, "queueing the subscriptions");
                }
                self.publish(TopicKind::Online, &Online::up(&self.cfg.session));
                self.send_hello();
                self.hello_delay = HELLO_FIRST;
                self.hello_at = Some(Instant::now() + self.hello_delay);
            }
            Event::Incoming(Packet::Publish(p)) => self.on_publish(&p.topic, &p.payload),
            _ => {}
        }
    }

    fn on_error(&mut self, e: ConnectionError) {
        let was_connected = self.connected;
        self.connected = false;
        self.accepted = false;
        if let ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword),
        ) = &e
        {
            if self.creds.is_none() {
                (self.fatal)(format!(
                    "the hub refused join token for node {}: the broker answered {code:?}; \
                     check --token against DATA_DIR/node-token on the hub",
                    self.cfg.node
                ));
                return;
            }
            if !self.outage_logged {
                tracing::error!(node = %self.cfg.node, ?code,
                    "the broker refused the node's credentials; if the node was deleted on the hub, \
                     remove {} and rejoin with --token",
                    credentials::path(&self.cfg.data_dir).display());
                self.outage_logged = true;
            }
            return;
        }
        if self.switching_login {
            tracing::debug!(error = %e, "reconnecting with the node credentials");
            return;
        }
        if !self.outage_logged {
            if was_connected {
                tracing::warn!(broker = %self.cfg.broker, error = %e, "lost the broker; reconnecting (pods keep running)");
            } else {
                tracing::warn!(broker = %self.cfg.broker, error = %e, "cannot reach the broker; retrying (pods keep running)");
            }
            self.outage_logged = true;
        }
    }

    fn on_publish(&mut self, topic: &str, payload: &[u8]) {
        if payload.is_empty() {
            return; // a cleared retained message
        }
        match decode_from_hub(&self.cfg.node, topic, payload) {
            Ok(HubMessage::HelloAck(ack)) => self.on_hello_ack(ack),
            Ok(HubMessage::Desired(d)) => {
                tracing::debug!(generation = %d.generation, "desired set received");
                let _ = self.to_node.send(NodeCommand::Desired(Box::new(d)));
            }
            Ok(HubMessage::RpcRequest(req)) => self.on_rpc(req),
            Err(e) if topic == self.topic(TopicKind::Desired) => {
                tracing::warn!(%topic, error = %e, "refusing a desired set");
                let _ = self.to_node.send(NodeCommand::Rejected(Rejection {
                    generation: generation_of(payload),
                    reason: e.to_string(),
                }));
            }
            Err(e) => tracing::warn!(%topic, error = %e, "ignoring a message"),
        }
    }

    fn on_hello_ack(&mut self, ack: HelloAck) {
        if ack.session() != self.cfg.session {
            tracing::debug!(
                session = ack.session(),
                "helloAck of another session; ignored"
            );
            return;
        }
        match ack {
            HelloAck::Accepted(a) => self.on_accepted(a),
            HelloAck::Refused(r) => self.on_refused(r),
        }
    }

    fn on_accepted(&mut self, a: Accepted) {
        self.hello_at = None;
        if let Some(ms) = a.heartbeat_millis.filter(|ms| *ms > 0) {
            self.heartbeat = Duration::from_millis(ms);
        }
        if let Some(c) = a.credentials {
            match credentials::save(&self.cfg.data_dir, &c) {
                Ok(()) => {
                    tracing::info!(node = %self.cfg.node, "joined the hub; credentials stored")
                }
                Err(error) => tracing::error!(%error, "storing the node credentials"),
            }
            *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
            self.creds = Some(c);
            if !self.connected_with_creds {
                // The token login may only say hello: reconnect with the
                // credentials (a clean DISCONNECT, so no last will).
                self.switching_login = true;
                self.connected = false;
                if let Err(e) = self.client.try_disconnect() {
                    tracing::warn!(error = %e, "disconnecting to switch to the credentials");
                }
                return;
            }
        }
        tracing::info!(node = %self.cfg.node, heartbeat_ms = self.heartbeat.as_millis() as u64, "hello accepted");
        self.accepted = true;
        self.next_status = Instant::now();
    }

    fn on_refused(&mut self, r: Refused) {
        tracing::error!(code = ?r.code, reason = %r.reason, "the hub refused this node");
        let node = &self.cfg.node;
        let fix = match r.code {
            RefusalCode::InvalidToken => {
                "check --token against DATA_DIR/node-token on the hub".to_string()
            }
            RefusalCode::InvalidCredentials => format!(
                "the node's credentials are no longer valid (node deleted?): remove {} and \
                 rejoin with --token",
                credentials::path(&self.cfg.data_dir).display()
            ),
            RefusalCode::NameTaken => format!(
                "another node is registered as {node}: pick another --node-name, or delete \
                 that node on the hub first"
            ),
            RefusalCode::InvalidHello => {
                // Not fatal: logged, retried with back-off (a hub upgrade may fix it).
                self.hello_at = Some(Instant::now() + self.hello_delay);
                return;
            }
            RefusalCode::Other => "see the hub's reason".to_string(),
        };
        (self.fatal)(format!(
            "the hub refused node {node} ({:?}): {}; {fix}",
            r.code, r.reason
        ));
    }

    /// Answers on a thread of its own (reading logs must not delay the
    /// heartbeat), publishing chunks as they come; a `cancel` sets the flag
    /// of the request it names. A request id already being answered (a QoS
    /// 1 duplicate) is ignored.
    fn on_rpc(&mut self, req: RpcRequest) {
        tracing::info!(id = %req.id, call = ?req.call, "rpc request");
        let mut running = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        if let RpcCall::Cancel(c) = &req.call {
            match running.get(&c.id) {
                Some(flag) => flag.store(true, Ordering::Relaxed),
                None => tracing::debug!(id = %c.id, "cancel of a request not running"),
            }
            return;
        }
        if running.contains_key(&req.id) {
            tracing::debug!(id = %req.id, "duplicate rpc request ignored");
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        running.insert(req.id.clone(), cancel.clone());
        drop(running);
        let client = self.client.clone();
        let ctx = super::rpc::RpcContext {
            logs_dir: self.cfg.data_dir.join("logs"),
            records_dir: self.cfg.run_dir.join("pods"),
            runtime: self.cfg.runtime,
            follow: super::rpc_follow::FollowLimits::default(),
        };
        let node = self.cfg.node.clone();
        let rpcs = self.rpcs.clone();
        let id = req.id.clone();
        let spawned = std::thread::Builder::new()
            .name("rpc".into())
            .spawn(move || {
                if let Ok(topic) = Topic::new(&node, TopicKind::RpcResponse(req.id.clone())) {
                    let topic = topic.to_string();
                    let mut seq = 0u64;
                    let mut sink = |chunk| {
                        let resp = RpcResponse {
                            id: req.id.clone(),
                            seq,
                            chunk,
                        };
                        seq += 1;
                        let sent = encode(&resp).map_err(|e| e.to_string()).and_then(|b| {
                            client
                                .publish(topic.clone(), QoS::AtLeastOnce, false, b)
                                .map_err(|e| e.to_string())
                        });
                        if let Err(error) = &sent {
                            tracing::warn!(id = %req.id, %error, "sending an rpc response");
                        }
                        sent.is_ok()
                    };
                    super::rpc::answer(&ctx, &req.call, &cancel, &mut sink);
                    tracing::debug!(id = %req.id, chunks = seq, "rpc answered");
                }
                rpcs.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&req.id);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "starting an rpc thread");
            self.rpcs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
    }
}

/// The generation of a desired payload too broken to decode, if readable.
fn generation_of(payload: &[u8]) -> Option<Generation> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v["body"]["generation"].as_u64().map(Generation)
}
