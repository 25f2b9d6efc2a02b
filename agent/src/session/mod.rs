//! The joined agent's session with the hub over MQTT (see
//! `docs/protocol.md`): [`connection`] drives the MQTT client on a thread,
//! [`worker`] carries out on another what the protocol's state machine
//! ([`machine`]) decides, and [`node_loop`] reconciles the pods on the main
//! thread. They talk through std channels and the [`report::SharedReport`].
//! The board's keys and the hub's pinned key live in [`identity`]. The pods
//! never depend on the connection: a hub or broker outage only pauses
//! reporting. Why a session could not start is a [`SessionError`].

pub mod config;
pub mod connection;
pub mod desired_file;
pub mod discover;
pub mod files;
pub mod hello;
pub mod hub_ca;
pub mod identity;
pub mod login;
pub mod machine;
pub mod node_loop;
pub mod pull_waits;
pub mod replay;
pub mod report;
pub mod report_lines;
pub mod rpc;
pub mod rpc_build_logs;
pub mod rpc_exec;
pub mod rpc_follow;
pub mod rpc_portforward;
pub mod stdin_feed;
pub mod worker;

use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use bramble_api::protocol::Hello;
use bramble_trust::Fingerprint;

pub use config::{Broker, SessionConfig};
use identity::IdentityError;
use login::Logins;
use machine::{Machine, MachineConfig};
pub use node_loop::{LoopEnd, NodeCommand, NodeLoop};
pub use report::SharedReport;
use worker::{Input, Worker};

/// Why [`Session::start`] could not start the session; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(
        "this board joined the hub with key {pinned} and --token names another hub ({token}): \
         to move the board to that hub, remove {identity} (and delete the node on the old hub)"
    )]
    OtherHub {
        pinned: Fingerprint,
        token: Fingerprint,
        /// The identity file holding the pinned key.
        identity: PathBuf,
    },
    #[error(
        "node {node} has not joined yet: give a join token with --token or BRAMBLE_TOKEN \
         (DATA_DIR/node-token on the hub, or `bramble token create`)"
    )]
    NotJoined { node: String },
    #[error("starting the {thread} thread: {source}")]
    Thread {
        /// `MQTT` or `session`.
        thread: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A running session: call [`Session::notifier`] for the node loop's
/// change callback.
pub struct Session {
    to_worker: Sender<Input>,
}

impl Session {
    /// Connects (in the background) and starts speaking the protocol.
    /// `hello` is the template sent after every connect; a refusal of the
    /// node reaches the node loop as [`NodeCommand::Refused`].
    pub fn start(
        cfg: SessionConfig,
        hello: Hello,
        pinned: connection::PinnedHub,
        report: Arc<SharedReport>,
        to_node: Sender<NodeCommand>,
    ) -> Result<Session, SessionError> {
        let identity = identity::load_or_create(&cfg.data_dir)?;
        match (&identity.hub, &cfg.token) {
            (Some(pinned), Some(token)) if token.hub() != pinned.fingerprint() => {
                return Err(SessionError::OtherHub {
                    pinned: pinned.fingerprint(),
                    token: token.hub(),
                    identity: identity::path(&cfg.data_dir),
                });
            }
            (None, None) => {
                return Err(SessionError::NotJoined {
                    node: cfg.node.clone(),
                });
            }
            _ => {}
        }
        let incarnation = identity::next_incarnation(&cfg.data_dir)?;
        let machine = Machine::new(
            MachineConfig {
                node: cfg.node.clone(),
                session: cfg.session.clone(),
                incarnation,
                heartbeat: cfg.heartbeat,
                hello,
                data_dir: cfg.data_dir.clone(),
            },
            identity.keys.clone(),
            identity.hub.clone(),
            cfg.token.clone(),
            std::time::Instant::now(),
        );
        tracing::info!(node = %cfg.node, broker = %cfg.broker, session = %cfg.session, incarnation,
            key = %identity.keys.public().fingerprint(),
            login = ?machine.login(), "joining the hub");
        let login = Arc::new(Mutex::new(machine.login()));
        let logins = Logins {
            node: cfg.node.clone(),
            session: cfg.session.clone(),
            keys: identity.keys.clone(),
            token: cfg.token.clone(),
        };
        let (client, conn) = connection::client(&cfg);
        let (tx, rx) = mpsc::channel();
        *pinned.lock().unwrap_or_else(|p| p.into_inner()) = identity.hub.clone();
        connection::spawn(conn, login.clone(), pinned.clone(), logins, tx.clone()).map_err(
            |source| SessionError::Thread {
                thread: "MQTT",
                source,
            },
        )?;
        let worker = Worker::new(
            cfg, machine, identity, client, login, pinned, to_node, report,
        );
        std::thread::Builder::new()
            .name("session".into())
            .spawn(move || worker.run(rx))
            .map_err(|source| SessionError::Thread {
                thread: "session",
                source,
            })?;
        Ok(Session { to_worker: tx })
    }

    /// A callback that tells the session the report changed.
    pub fn notifier(&self) -> Box<dyn Fn() + Send> {
        let tx = self.to_worker.clone();
        Box::new(move || {
            let _ = tx.send(Input::Changed);
        })
    }
}
