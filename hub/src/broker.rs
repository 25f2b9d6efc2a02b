//! The embedded MQTT broker (rumqttd): one MQTT 3.1.1 listener (TLS with
//! the hub's serving certificate unless `--insecure-mqtt`), payloads up to
//! [`MAX_PACKET_BYTES`], bounded in-memory logs, CONNECT checked by
//! [`Identity::check_connect`], and every topic a client uses checked by a
//! [`TopicAcl`] (the [`Identity`]'s rules: the hub's own client anything, a
//! node only its own topics, a join-token login only its hello). A refused PUBLISH is not routed and closes the client's
//! connection; a refused SUBSCRIBE filter gets return code 0x80 (so no
//! retained message through it); a last will on a refused topic refuses the
//! CONNECT ("not authorized"). [`EmbeddedBroker::disconnect`] closes a
//! client's connection at once (its will is published).
//!
//! The topic ACL and the disconnect are a local patch of rumqttd 0.20
//! (`third_party/rumqttd`, see its `PATCH.md`).
//!
//! rumqttd runs on its own threads and has **no shutdown API**: once started it
//! lives until the process exits (stopping a [`crate::Hub`] leaves it
//! listening; tests use a fresh port per hub). [`EmbeddedBroker::start`]
//! binds the listener itself (a clear error if the address is taken; port 0
//! gets a free port, [`EmbeddedBroker::addr`] says which) and hands it to
//! rumqttd (`ServerSettings::set_listener`, also part of the patch), then
//! waits until the broker accepts connections. Nothing is persisted: a restart loses sessions and retained
//! messages, and the hub republishes what it needs (see `docs/protocol.md`).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bramble_api::protocol::MAX_PACKET_BYTES;
use rumqttd::{
    AclAction, AclRequest, Broker, BrokerHandle, Config, ConnectionSettings, RouterConfig,
    ServerSettings,
};
use tokio::net::TcpStream;

use crate::identity::Identity;

/// Most simultaneous MQTT connections (rumqttd needs ~43 KiB each, ~63 KiB
/// with an agent's subscriptions: broker_bench).
pub const MAX_CONNECTIONS: usize = 1024;
/// Size of one in-memory log segment per topic filter.
const SEGMENT_BYTES: usize = 1024 * 1024;
/// Segments kept per filter (older messages are dropped for slow readers).
const SEGMENT_COUNT: usize = 4;
/// How long to wait for the listener to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where each MQTT client may publish and subscribe on the embedded broker.
///
/// Asked after CONNECT was accepted, with the client id and username of the
/// CONNECT packet: for the last will topic (as a publish), every PUBLISH and
/// every SUBSCRIBE filter. It runs on the broker's router thread, which
/// serves all clients: answer from memory, never block.
pub trait TopicAcl: Send + Sync + 'static {
    /// Whether the client may publish on `topic` (or leave a will on it).
    fn may_publish(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool;
    /// Whether the client may subscribe to `filter` (wildcards included, as
    /// sent: `bramble/#` is a filter of its own, not a set of topics).
    fn may_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool;
}

/// The broker's router has stopped (it runs until the process exits, so
/// this means it failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the embedded MQTT broker has stopped")]
pub struct BrokerStopped;

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "binding the MQTT listener {listen} (is another broker running? use --mqtt-listen): {source}"
    )]
    Bind {
        listen: SocketAddr,
        source: std::io::Error,
    },
    #[error("spawning the MQTT broker thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error(
        "the embedded MQTT broker did not start listening on {listen} within {waited:?}: {source}"
    )]
    NotListening {
        listen: SocketAddr,
        waited: Duration,
        source: std::io::Error,
    },
    #[error("the embedded MQTT broker on {listen} does not answer")]
    NoAnswer { listen: SocketAddr },
}

/// A started embedded broker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    handle: BrokerHandle,
}

impl EmbeddedBroker {
    /// Starts rumqttd on `listen` (port 0: a free port), logins checked by
    /// `auth` and topics by `acl`, MQTT over TLS with `tls`'s certificate
    /// (each handshake in its connection's own task, see rumqttd's
    /// `Acceptor`), and returns once it
    /// accepts connections.
    pub async fn start(
        listen: SocketAddr,
        auth: Arc<Identity>,
        acl: Arc<dyn TopicAcl>,
        tls: Option<Arc<crate::tls::ServingCert>>,
    ) -> Result<EmbeddedBroker, BrokerError> {
        let scheme = if tls.is_some() { "mqtts" } else { "mqtt" };
        let bind = |source| BrokerError::Bind { listen, source };
        let listener = TcpListener::bind(listen).map_err(bind)?;
        let listen = listener.local_addr().map_err(bind)?;
        let mut broker = Broker::new(config(listener, listen, auth, acl, tls));
        let handle = broker.handle();
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded MQTT broker stopped");
                }
            })
            .map_err(BrokerError::Thread)?;
        wait_ready(listen).await?;
        tracing::info!(%listen, %scheme, "embedded MQTT broker listening");
        Ok(EmbeddedBroker {
            addr: listen,
            handle,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the connection of the client `client_id` at once, as the
    /// broker: its last will is published and its session forgotten. Does
    /// nothing if it is not connected. It may connect again if CONNECT still
    /// accepts it: revoke its login first.
    pub fn disconnect(&self, client_id: &str) -> Result<(), BrokerStopped> {
        tracing::info!(client_id, "closing an MQTT client's connection");
        self.handle.disconnect(client_id).map_err(|_| BrokerStopped)
    }
}

/// Answers rumqttd's ACL questions with `acl`, logging refusals.
fn check_topic(acl: &dyn TopicAcl, request: &AclRequest<'_>) -> bool {
    let (client_id, username) = (request.client_id, request.username);
    match request.action {
        AclAction::Publish { topic } => {
            let allowed = acl.may_publish(client_id, username, topic);
            if !allowed {
                tracing::warn!(client_id, topic, "MQTT publish refused (topic ACL)");
            }
            allowed
        }
        AclAction::Subscribe { filter } => {
            let allowed = acl.may_subscribe(client_id, username, filter);
            if !allowed {
                tracing::warn!(client_id, filter, "MQTT subscription refused (topic ACL)");
            }
            allowed
        }
        _ => {
            tracing::warn!(client_id, action = ?request.action, "MQTT action refused (unknown to the topic ACL)");
            false
        }
    }
}

/// The rumqttd configuration (no config file).
fn config(
    listener: TcpListener,
    listen: SocketAddr,
    auth: Arc<Identity>,
    acl: Arc<dyn TopicAcl>,
    tls: Option<Arc<crate::tls::ServingCert>>,
) -> Config {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: MAX_PACKET_BYTES,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        external_acl: None,
        external_acceptor: None,
        dynamic_filters: true,
    };
    if let Some(serving) = tls {
        let acceptor = crate::tls::accept::acceptor(serving, &[b"mqtt"]);
        connections.set_acceptor(move |stream, peer| {
            let acceptor = acceptor.clone();
            async move {
                match crate::tls::accept::handshake(stream, &acceptor, peer, "mqtt").await {
                    Ok(tls) => Some(Box::new(tls) as Box<dyn rumqttd::N>),
                    Err(crate::tls::accept::NoTls::Plain(_)) => {
                        tracing::info!(%peer, "plain MQTT on the TLS port refused: the client must use mqtts:// (or the hub --insecure-mqtt)");
                        None
                    }
                    Err(crate::tls::accept::NoTls::Gone) => None,
                }
            }
        });
    }
    connections.set_auth_handler(move |client_id: String, user: String, pass: String| {
        let verdict = auth.check_connect(&client_id, &user, &pass);
        if let Err(why) = &verdict {
            tracing::warn!(client_id, username = user, reason = %why, "MQTT CONNECT refused");
        }
        std::future::ready(verdict.is_ok())
    });
    connections.set_acl_handler(move |request: &AclRequest<'_>| check_topic(&*acl, request));
    let mut server = ServerSettings {
        name: "bramble-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
        external_listener: None,
    };
    server.set_listener(listener);
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: MAX_CONNECTIONS,
            max_outgoing_packet_count: 200,
            max_segment_size: SEGMENT_BYTES,
            max_segment_count: SEGMENT_COUNT,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("bramble".to_string(), server)])),
        ..Default::default()
    }
}

/// Polls until something accepts TCP connections on `listen`.
async fn wait_ready(listen: SocketAddr) -> Result<(), BrokerError> {
    let probe = crate::server::loopback(listen);
    let start = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(probe)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(source)) if start.elapsed() > READY_TIMEOUT => {
                return Err(BrokerError::NotListening {
                    listen,
                    waited: READY_TIMEOUT,
                    source,
                });
            }
            Err(_) if start.elapsed() > READY_TIMEOUT => {
                return Err(BrokerError::NoAnswer { listen });
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
