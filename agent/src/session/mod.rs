//! The joined agent's session with the hub over MQTT (see
//! `docs/protocol.md`): [`connection`] drives the MQTT client on a thread,
//! [`worker`] speaks the protocol on another, and [`node_loop`] reconciles
//! the pods on the main thread. They talk through std channels and the
//! [`report::SharedReport`]. The pods never depend on the connection: a
//! hub or broker outage only pauses reporting.

pub mod config;
pub mod connection;
pub mod credentials;
pub mod desired_file;
pub mod discover;
pub mod files;
pub mod hello;
pub mod node_loop;
pub mod report;
pub mod rpc;
pub mod rpc_follow;
pub mod worker;

use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use bramble_api::protocol::Hello;

pub use config::{Broker, SessionConfig};
pub use node_loop::{NodeCommand, NodeLoop};
pub use report::SharedReport;
use worker::{Fatal, Input, Worker};

/// A running session: call [`Session::notifier`] for the node loop's
/// change callback.
pub struct Session {
    to_worker: Sender<Input>,
}

impl Session {
    /// Connects (in the background) and starts speaking the protocol.
    /// `hello` is the template sent after every connect; `fatal` ends the
    /// process when the node is refused.
    pub fn start(
        cfg: SessionConfig,
        hello: Hello,
        report: Arc<SharedReport>,
        to_node: Sender<NodeCommand>,
        fatal: Fatal,
    ) -> Result<Session, String> {
        let creds = credentials::load(&cfg.data_dir)?;
        let password = match (&creds, &cfg.token) {
            (Some(c), _) => c.password.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => {
                return Err(format!(
                    "node {} has no credentials yet ({} is absent): give the hub's join token \
                     with --token or BRAMBLE_TOKEN (DATA_DIR/node-token on the hub)",
                    cfg.node,
                    credentials::path(&cfg.data_dir).display()
                ));
            }
        };
        tracing::info!(node = %cfg.node, broker = %cfg.broker, session = %cfg.session,
            login = if creds.is_some() { "credentials" } else { "join token" }, "joining the hub");
        let (client, conn) = connection::client(&cfg, &password)?;
        let pending = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::channel();
        connection::spawn(conn, pending.clone(), tx.clone())
            .map_err(|e| format!("starting the MQTT thread: {e}"))?;
        let worker = Worker::new(cfg, hello, client, pending, creds, to_node, report, fatal);
        std::thread::Builder::new()
            .name("session".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| format!("starting the session thread: {e}"))?;
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
