//! The session's I/O, on its own thread: feeds the MQTT connection's events,
//! time and report changes into the [`Machine`] and carries out what it
//! says (publish, subscribe, log in again, store the pinned hub key, hand
//! desired sets to the node loop, answer RPCs on threads of their own, end
//! the process). All protocol decisions are the machine's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bramble_api::protocol::rpc::ExecCall;
use bramble_api::protocol::rpc_stdin::StdinCall;
use bramble_api::protocol::topics::{Topic, TopicKind};
use bramble_api::protocol::{RpcCall, RpcId, RpcRequest, RpcResponse, encode_frame};
use bramble_trust::{PublicKeys, SecretKeys};
use rumqttc::{Client, ConnectReturnCode, ConnectionError, Event, Packet, QoS};

use super::config::SessionConfig;
use super::connection::{ConnectionEvent, PinnedHub, SharedLogin};
use super::identity::{self, BoardIdentity};
use super::machine::{Input as MachineInput, Machine, Output};
use super::node_loop::NodeCommand;
use super::report::SharedReport;

/// What wakes the worker.
#[derive(Debug)]
pub enum Input {
    Mqtt(ConnectionEvent),
    /// The node report changed.
    Changed,
}

/// Stdin calls queued per exec: the hub keeps at most
/// `STDIN_WINDOW_CALLS` unacknowledged; twice that is a misbehaving hub,
/// which ends the exec.
const STDIN_QUEUE: usize = 2 * bramble_api::protocol::rpc_stdin::STDIN_WINDOW_CALLS;

/// A request being answered.
struct RunningRpc {
    /// Set by a `cancel`.
    cancel: Arc<AtomicBool>,
    /// Where an exec with stdin takes its `stdin` calls.
    stdin: Option<(SyncSender<StdinCall>, Arc<AtomicBool>)>,
}

/// Requests being answered, by id.
type Running = Arc<Mutex<HashMap<RpcId, RunningRpc>>>;

/// See the module docs.
pub struct Worker {
    cfg: SessionConfig,
    machine: Machine,
    identity: BoardIdentity,
    client: Client,
    login: SharedLogin,
    pinned: PinnedHub,
    to_node: Sender<NodeCommand>,
    report: Arc<SharedReport>,
    rpcs: Running,
}

/// Whether the broker refused the login itself.
fn refused(e: &ConnectionError) -> bool {
    matches!(
        e,
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword
        )
    )
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: SessionConfig,
        machine: Machine,
        identity: BoardIdentity,
        client: Client,
        login: SharedLogin,
        pinned: PinnedHub,
        to_node: Sender<NodeCommand>,
        report: Arc<SharedReport>,
    ) -> Worker {
        Worker {
            cfg,
            machine,
            identity,
            client,
            login,
            pinned,
            to_node,
            report,
            rpcs: Running::default(),
        }
    }

    /// Runs until every sender of `rx` is gone.
    pub fn run(mut self, rx: Receiver<Input>) {
        loop {
            let now = Instant::now();
            let (report, change) = self.report.snapshot();
            let out = self.machine.handle(
                now,
                MachineInput::Tick {
                    report: &report,
                    change,
                },
            );
            self.apply(out);
            let wake = self.machine.next_wake(now);
            let input = match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(i) => i,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let now = Instant::now();
            let out = match input {
                Input::Mqtt(ConnectionEvent::Connected(connection)) => self
                    .machine
                    .handle(now, MachineInput::Connected { connection }),
                Input::Mqtt(ConnectionEvent::Event(Event::Incoming(Packet::Publish(p)))) => {
                    self.machine.handle(
                        now,
                        MachineInput::Publish {
                            topic: &p.topic,
                            payload: &p.payload,
                        },
                    )
                }
                Input::Mqtt(ConnectionEvent::Error(e)) => self.machine.handle(
                    now,
                    MachineInput::Failed {
                        refused: refused(&e),
                        error: e.to_string(),
                    },
                ),
                Input::Mqtt(ConnectionEvent::Event(_)) | Input::Changed => Vec::new(),
            };
            self.apply(out);
        }
    }

    fn apply(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Subscribe(filters) => {
                    let filters = filters
                        .into_iter()
                        .map(|t| rumqttc::SubscribeFilter::new(t, QoS::AtLeastOnce));
                    if let Err(e) = self.client.try_subscribe_many(filters) {
                        tracing::warn!(error = %e, "queueing the subscriptions");
                    }
                }
                Output::Publish {
                    topic,
                    payload,
                    retain,
                } => {
                    if let Err(e) =
                        self.client
                            .try_publish(&topic, QoS::AtLeastOnce, retain, payload)
                    {
                        tracing::warn!(%topic, error = %e, "queueing a publication");
                    }
                }
                Output::Relogin { login, reconnect } => {
                    *self.login.lock().unwrap_or_else(|p| p.into_inner()) = login;
                    if reconnect && let Err(e) = self.client.try_disconnect() {
                        tracing::warn!(error = %e, "disconnecting to log in with the key");
                    }
                }
                Output::Pin(hub) => {
                    // Key logins and registry pulls need it from now on.
                    *self.pinned.lock().unwrap_or_else(|p| p.into_inner()) = Some(hub.clone());
                    if let Err(e) = identity::pin_hub(&self.cfg.data_dir, &mut self.identity, hub) {
                        tracing::error!(error = %e, "storing the hub's key");
                    }
                }
                Output::Desired(d) => {
                    let _ = self.to_node.send(NodeCommand::Desired(d));
                }
                Output::Rejected(r) => {
                    let _ = self.to_node.send(NodeCommand::Rejected(r));
                }
                Output::Rpc(req) => self.on_rpc(req),
                Output::Cancel(id) => {
                    match self.rpcs.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
                        Some(r) => r.cancel.store(true, Ordering::Relaxed),
                        None => tracing::debug!(%id, "cancel of a request not running"),
                    }
                }
                Output::Stdin(call) => self.on_stdin(call),
                Output::Fatal(msg) => {
                    let _ = self.to_node.send(NodeCommand::Refused(msg));
                }
            }
        }
    }

    /// Queues `call` for its exec; a full queue ends the exec.
    fn on_stdin(&mut self, call: StdinCall) {
        let running = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        let Some((tx, overflow)) = running.get(&call.id).and_then(|r| r.stdin.as_ref()) else {
            tracing::debug!(id = %call.id, "stdin for no exec reading stdin; dropped");
            return;
        };
        match tx.try_send(call) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(call)) => {
                tracing::warn!(id = %call.id, "stdin beyond the window; ending the exec");
                overflow.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Answers on a thread of its own (reading logs must not delay the
    /// heartbeat), publishing chunks sealed to the hub as they come.
    fn on_rpc(&mut self, req: RpcRequest) {
        tracing::info!(id = %req.id, call = ?req.call, "rpc request");
        let Some(hub) = self.machine.hub().cloned() else {
            return;
        };
        let mut running = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        if running.contains_key(&req.id) {
            tracing::debug!(id = %req.id, "duplicate rpc request ignored");
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (feed, stdin) = match &req.call {
            RpcCall::Exec(ExecCall { stdin: true, .. }) | RpcCall::PortForward(_) => {
                let (tx, rx) = sync_channel(STDIN_QUEUE);
                let overflow = Arc::new(AtomicBool::new(false));
                (
                    Some(super::rpc_exec::StdinFeed {
                        calls: rx,
                        overflow: overflow.clone(),
                    }),
                    Some((tx, overflow)),
                )
            }
            _ => (None, None),
        };
        running.insert(
            req.id.clone(),
            RunningRpc {
                cancel: cancel.clone(),
                stdin,
            },
        );
        drop(running);
        let client = self.client.clone();
        let ctx = super::rpc::RpcContext {
            logs_dir: self.cfg.data_dir.join("logs"),
            records_dir: self.cfg.run_dir.join("pods"),
            build_logs_dir: self.cfg.data_dir.join("build-logs"),
            runtime: self.cfg.runtime.clone(),
            follow: super::rpc_follow::FollowLimits::default(),
        };
        let node = self.cfg.node.clone();
        let keys = self.identity.keys.clone();
        let rpcs = self.rpcs.clone();
        let id = req.id.clone();
        let spawned = std::thread::Builder::new()
            .name("rpc".into())
            .spawn(move || {
                answer(&node, &keys, &hub, &client, &ctx, &req, &cancel, feed);
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

/// Answers `req`, publishing each chunk signed by `keys` and sealed to
/// `hub` as it comes.
#[allow(clippy::too_many_arguments)]
fn answer(
    node: &str,
    keys: &SecretKeys,
    hub: &PublicKeys,
    client: &Client,
    ctx: &super::rpc::RpcContext,
    req: &RpcRequest,
    cancel: &AtomicBool,
    stdin: Option<super::rpc_exec::StdinFeed>,
) {
    let Ok(topic) = Topic::new(node, TopicKind::RpcResponse(req.id.clone())) else {
        return;
    };
    let mut seq = 0u64;
    let mut sink = |chunk| {
        let resp = RpcResponse {
            id: req.id.clone(),
            seq,
            chunk,
        };
        seq += 1;
        let frame = encode_frame(keys, &topic, &resp, Some(hub));
        match frame.map(|b| client.publish(topic.to_string(), QoS::AtLeastOnce, false, b)) {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(id = %req.id, %error, "sending an rpc response");
                false
            }
            Err(error) => {
                tracing::warn!(id = %req.id, %error, "encoding an rpc response");
                false
            }
        }
    };
    super::rpc::answer(ctx, &req.call, cancel, stdin, &mut sink);
    tracing::debug!(id = %req.id, chunks = seq, "rpc answered");
}
