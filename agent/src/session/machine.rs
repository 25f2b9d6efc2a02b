//! The session's protocol logic as a state machine without I/O (as rumqttc's
//! `MqttState`): broker events, publications and time go in
//! ([`Machine::handle`]); what to publish and what to do come out
//! ([`Output`]). The worker owns the MQTT client, the files and the threads.
//!
//! This is also where trust is decided: every publication is verified as
//! the hub's (the key pinned at join, or before that the key the join token
//! names) and opened with the board's key before anything in it is used; a
//! payload that does not verify is logged and ignored, and never makes the
//! agent report anything. Everything the agent publishes is signed here.
//!
//! After every connect it subscribes, says `online` and `hello` (repeated
//! with back-off until the matching `helloAck`); pins the hub's key on the
//! first acceptance and then logs in with its own key; exits with a clear
//! message when the hub refuses the node; hands `desired` sets and RPCs
//! on (each request number once, of this session only); and publishes a
//! complete `status` every heartbeat and on every change.

use std::time::{Duration, Instant};

use bramble_api::protocol::hello::{Accepted, Refused};
use bramble_api::protocol::status::Rejection;
use bramble_api::protocol::topics::{self, Topic, TopicKind};
use bramble_api::protocol::{
    Desired, Generation, Hello, HelloAck, HelloAuth, HubKey, HubMessage, Message, Online,
    RefusalCode, RpcCall, RpcId, RpcRequest, encode_frame, keys_text, verify_from_hub,
};
use bramble_trust::{JoinToken, PublicKeys, SecretKeys};

use super::login::Login;
use super::replay::ReplayWindow;
use super::report::NodeReport;

/// First hello retry delay; doubles up to [`HELLO_MAX`].
pub const HELLO_FIRST: Duration = Duration::from_secs(1);
const HELLO_MAX: Duration = Duration::from_secs(30);
/// How often a node waiting for approval asks again.
pub const PENDING_RETRY: Duration = Duration::from_secs(5);

/// What happened.
#[derive(Debug)]
pub enum Input<'a> {
    /// The broker accepted connection number `connection`.
    Connected { connection: u64 },
    /// A connection (attempt) failed; `refused`: the broker refused the
    /// login itself.
    Failed { refused: bool, error: String },
    /// A publication arrived.
    Publish { topic: &'a str, payload: &'a [u8] },
    /// Time passed, or the node's report changed (`change` counts changes).
    Tick { report: &'a NodeReport, change: u64 },
}

/// What to do.
#[derive(Debug)]
pub enum Output {
    Subscribe(Vec<String>),
    Publish {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    },
    /// Log in with `login` from the next connection on; with `reconnect`,
    /// disconnect cleanly (no last will) to reconnect with it now.
    Relogin {
        login: Login,
        reconnect: bool,
    },
    /// Store the hub's keys: the board joined.
    Pin(PublicKeys),
    Desired(Box<Desired>),
    /// A desired set from the hub that could not be used.
    Rejected(Rejection),
    /// Answer this request (on a thread of its own).
    Rpc(RpcRequest),
    /// Stop answering the request with this id.
    Cancel(RpcId),
    /// Bytes for the stdin of the exec the call names.
    Stdin(bramble_api::protocol::rpc_stdin::StdinCall),
    /// The hub refused the node for good: end the process with this.
    Fatal(String),
}

/// What the machine is made of.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub node: String,
    pub session: String,
    pub incarnation: u64,
    /// Status interval until a `helloAck` says otherwise.
    pub heartbeat: Duration,
    /// The hello template (the machine sets keys, incarnation and auth).
    pub hello: Hello,
    /// `DATA_DIR`, for messages that point at files.
    pub data_dir: std::path::PathBuf,
}

/// See the module docs.
pub struct Machine {
    cfg: MachineConfig,
    keys: SecretKeys,
    hub: Option<PublicKeys>,
    token: Option<JoinToken>,
    login: Login,
    connected: bool,
    switching: bool,
    accepted: bool,
    outage_logged: bool,
    refusal_logged: bool,
    pending_logged: bool,
    hello_at: Option<Instant>,
    hello_delay: Duration,
    heartbeat: Duration,
    started: Instant,
    next_status: Instant,
    seq: u64,
    sent_change: u64,
    rpc: ReplayWindow,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("node", &self.cfg.node)
            .field("login", &self.login)
            .field("connected", &self.connected)
            .field("accepted", &self.accepted)
            .finish_non_exhaustive()
    }
}

/// The generation in a desired body that could not be decoded, if readable.
fn generation_of(body: &[u8]) -> Option<Generation> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["body"]["generation"].as_u64().map(Generation)
}

impl Machine {
    /// A machine for a board with `keys`, which pinned `hub` (joined) or
    /// joins with `token`. Starts disconnected at `now`.
    pub fn new(
        cfg: MachineConfig,
        keys: SecretKeys,
        hub: Option<PublicKeys>,
        token: Option<JoinToken>,
        now: Instant,
    ) -> Machine {
        let login = if hub.is_some() {
            Login::Key
        } else {
            Login::Token
        };
        let heartbeat = cfg.heartbeat;
        Machine {
            cfg,
            keys,
            hub,
            token,
            login,
            connected: false,
            switching: false,
            accepted: false,
            outage_logged: false,
            refusal_logged: false,
            pending_logged: false,
            hello_at: None,
            hello_delay: HELLO_FIRST,
            heartbeat,
            started: now,
            next_status: now,
            seq: 0,
            sent_change: 0,
            rpc: ReplayWindow::default(),
        }
    }

    /// How it logs in now.
    pub fn login(&self) -> Login {
        self.login
    }

    /// Whether the hub accepted this session's hello on this connection.
    pub fn accepted(&self) -> bool {
        self.accepted
    }

    /// The pinned hub's keys (for sealing RPC responses).
    pub fn hub(&self) -> Option<&PublicKeys> {
        self.hub.as_ref()
    }

    /// When to be called again at the latest, even without input.
    pub fn next_wake(&self, now: Instant) -> Instant {
        let mut wake = now + Duration::from_secs(1);
        if let Some(h) = self.hello_at {
            wake = wake.min(h);
        }
        if self.accepted {
            wake = wake.min(self.next_status);
        }
        wake
    }

    /// Handles one input at `now`.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Connected { connection } => self.on_connected(now, connection, &mut out),
            Input::Failed { refused, error } => self.on_failed(refused, &error, &mut out),
            Input::Publish { topic, payload } => self.on_publish(now, topic, payload, &mut out),
            Input::Tick { report, change } => self.on_tick(now, report, change, &mut out),
        }
        out
    }

    fn frame<M: Message>(&self, kind: TopicKind, msg: &M, out: &mut Vec<Output>) {
        let retain = kind.retained();
        let Ok(topic) = Topic::new(&self.cfg.node, kind) else {
            return;
        };
        match encode_frame(&self.keys, &topic, msg, self.hub.as_ref()) {
            Ok(payload) => out.push(Output::Publish {
                topic: topic.to_string(),
                payload,
                retain,
            }),
            Err(e) => tracing::error!(%topic, error = %e, "encoding a message"),
        }
    }

    fn send_hello(&self, out: &mut Vec<Output>) {
        let mut h = self.cfg.hello.clone();
        h.incarnation = self.cfg.incarnation;
        h.keys = keys_text(self.keys.public());
        h.auth = HelloAuth::Key;
        if self.login == Login::Token
            && let Some(t) = &self.token
        {
            h.prove_token(t);
        }
        self.frame(TopicKind::Hello, &h, out);
    }

    fn on_connected(&mut self, now: Instant, connection: u64, out: &mut Vec<Output>) {
        if self.outage_logged {
            tracing::info!(node = %self.cfg.node, "connected to the broker again");
        } else {
            tracing::info!(node = %self.cfg.node, login = ?self.login, "connected to the broker");
        }
        self.outage_logged = false;
        self.refusal_logged = false;
        self.switching = false;
        self.connected = true;
        self.accepted = false;
        let subs = match self.login {
            // A join-token login may only hear its helloAck.
            Login::Token => Topic::new(&self.cfg.node, TopicKind::HelloAck)
                .map(|t| vec![t.to_string()])
                .unwrap_or_default(),
            Login::Key => topics::agent_subscriptions(&self.cfg.node).unwrap_or_default(),
        };
        out.push(Output::Subscribe(subs));
        if self.login == Login::Key {
            self.frame(
                TopicKind::Online,
                &Online::up(&self.cfg.session, connection),
                out,
            );
        }
        self.send_hello(out);
        self.hello_delay = HELLO_FIRST;
        self.hello_at = Some(now + self.hello_delay);
    }

    fn on_failed(&mut self, refused: bool, error: &str, out: &mut Vec<Output>) {
        let was_connected = self.connected;
        self.connected = false;
        self.accepted = false;
        if refused {
            match self.login {
                Login::Token => out.push(Output::Fatal(format!(
                    "the broker refused the join token's login of node {node}: the token is \
                     wrong, expired or used up (check --token against DATA_DIR/node-token on the \
                     hub, or create one with `bramble token create`)",
                    node = self.cfg.node
                ))),
                Login::Key => {
                    if !self.refusal_logged {
                        tracing::error!(node = %self.cfg.node,
                            "the broker refused this board's key; if the node was deleted on the \
                             hub, remove {} and rejoin with --token",
                            super::identity::path(&self.cfg.data_dir).display());
                        self.refusal_logged = true;
                    }
                }
            }
            return;
        }
        if self.switching {
            tracing::debug!(%error, "reconnecting with the board's key");
            return;
        }
        if !self.outage_logged {
            if was_connected {
                tracing::warn!(%error, "lost the broker; reconnecting (pods keep running)");
            } else {
                tracing::warn!(%error, "cannot reach the broker; retrying (pods keep running)");
            }
            self.outage_logged = true;
        }
    }

    fn on_publish(&mut self, now: Instant, topic: &str, payload: &[u8], out: &mut Vec<Output>) {
        if payload.is_empty() {
            return; // a cleared retained message
        }
        let hub = match (&self.hub, &self.token) {
            (Some(k), _) => HubKey::Pinned(k),
            (None, Some(t)) => HubKey::Expected(t.hub()),
            (None, None) => return,
        };
        let verified = match verify_from_hub(&self.cfg.node, topic, payload, hub, &self.keys) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%topic, error = %e, "ignoring a message that is not the hub's");
                return;
            }
        };
        let is_desired = verified.kind() == &TopicKind::Desired;
        let generation = generation_of(verified.body());
        match verified.decode() {
            Ok(from) => match from.message {
                HubMessage::HelloAck(ack) => self.on_ack(now, ack, from.hub, out),
                HubMessage::Desired(d) => {
                    tracing::debug!(generation = %d.generation, "desired set received");
                    out.push(Output::Desired(Box::new(d)));
                }
                HubMessage::RpcRequest(req) => self.on_rpc(req, out),
            },
            Err(e) if is_desired => {
                tracing::warn!(%topic, error = %e, "refusing a desired set");
                out.push(Output::Rejected(Rejection {
                    generation,
                    reason: e.to_string(),
                }));
            }
            Err(e) => tracing::warn!(%topic, error = %e, "refusing a message of the hub"),
        }
    }

    fn on_ack(&mut self, now: Instant, ack: HelloAck, hub: PublicKeys, out: &mut Vec<Output>) {
        if ack.session() != self.cfg.session {
            tracing::debug!(
                session = ack.session(),
                "helloAck of another session; ignored"
            );
            return;
        }
        match ack {
            HelloAck::Accepted(a) => self.on_accepted(now, a, hub, out),
            HelloAck::Pending(p) => {
                if !self.pending_logged {
                    tracing::warn!(reason = %p.reason, "waiting for the hub's approval");
                    self.pending_logged = true;
                }
                self.hello_at = Some(now + PENDING_RETRY);
            }
            HelloAck::Refused(r) => self.on_refused(now, r, out),
        }
    }

    fn on_accepted(&mut self, now: Instant, a: Accepted, hub: PublicKeys, out: &mut Vec<Output>) {
        self.hello_at = None;
        if let Some(ms) = a.heartbeat_millis.filter(|ms| *ms > 0) {
            self.heartbeat = Duration::from_millis(ms);
        }
        if self.hub.is_none() {
            tracing::info!(node = %self.cfg.node, hub = %hub.fingerprint(), "joined the hub; its key is pinned");
            self.hub = Some(hub.clone());
            out.push(Output::Pin(hub));
        }
        if self.login == Login::Token {
            // A token login may only say hello: reconnect with the key.
            self.login = Login::Key;
            self.switching = true;
            self.connected = false;
            out.push(Output::Relogin {
                login: Login::Key,
                reconnect: true,
            });
            return;
        }
        tracing::info!(node = %self.cfg.node, heartbeat_ms = self.heartbeat.as_millis() as u64, "hello accepted");
        self.accepted = true;
        self.next_status = now;
    }

    fn on_refused(&mut self, now: Instant, r: Refused, out: &mut Vec<Output>) {
        tracing::error!(code = ?r.code, reason = %r.reason, "the hub refused this node");
        let node = &self.cfg.node;
        let identity = super::identity::path(&self.cfg.data_dir);
        let fix = match r.code {
            RefusalCode::InvalidToken => {
                "check --token against DATA_DIR/node-token on the hub, or create one with \
                 `bramble token create`"
                    .to_string()
            }
            RefusalCode::UnknownNode => format!(
                "the hub no longer knows this board's key (node deleted?): remove {} and rejoin \
                 with --token",
                identity.display()
            ),
            RefusalCode::NameTaken => format!(
                "another board is registered as {node}: pick another --node-name, or delete that \
                 node on the hub first"
            ),
            RefusalCode::Replay => format!(
                "is another board running with this board's identity ({})? Each board needs its \
                 own data directory",
                identity.display()
            ),
            RefusalCode::InvalidHello => {
                // Not fatal: logged, retried with back-off (a hub upgrade
                // or a freed pod CIDR may fix it).
                self.hello_at = Some(now + self.hello_delay);
                return;
            }
            RefusalCode::Other => "see the hub's reason".to_string(),
        };
        out.push(Output::Fatal(format!(
            "the hub refused node {node} ({:?}): {}; {fix}",
            r.code, r.reason
        )));
    }

    fn on_rpc(&mut self, req: RpcRequest, out: &mut Vec<Output>) {
        if req.session != self.cfg.session {
            tracing::warn!(id = %req.id, session = %req.session,
                "ignoring an rpc request of another session (a replay?)");
            return;
        }
        if let Err(why) = self.rpc.accept(req.seq) {
            tracing::warn!(id = %req.id, seq = req.seq, ?why, "ignoring a replayed rpc request");
            return;
        }
        match req.call {
            RpcCall::Cancel(c) => out.push(Output::Cancel(c.id)),
            RpcCall::Stdin(s) => out.push(Output::Stdin(s)),
            _ => out.push(Output::Rpc(req)),
        }
    }

    fn on_tick(&mut self, now: Instant, report: &NodeReport, change: u64, out: &mut Vec<Output>) {
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
            self.send_hello(out);
            self.hello_delay = (self.hello_delay * 2).min(HELLO_MAX);
            self.hello_at = Some(now + self.hello_delay);
        }
        if self.accepted && (now >= self.next_status || change != self.sent_change) {
            self.seq += 1;
            let uptime = now.duration_since(self.started).as_millis() as u64;
            let mut status = report.status(&self.cfg.session, self.seq, uptime);
            status.rpc_seq = (self.rpc.highest() > 0).then(|| self.rpc.highest());
            self.frame(TopicKind::Status, &status, out);
            self.sent_change = change;
            self.next_status = now + self.heartbeat;
        }
    }
}

#[cfg(test)]
mod tests;
