//! The embedded MQTT broker (rumqttd): one MQTT 3.1.1 listener, payloads up to
//! [`MAX_PACKET_BYTES`], bounded in-memory logs, CONNECT checked by
//! [`Identity::check_connect`].
//!
//! rumqttd runs on its own threads and has **no shutdown API**: once started it
//! lives until the process exits (stopping a [`crate::Hub`] leaves it
//! listening; tests use a fresh loopback port per hub). It also only logs a
//! bind failure, so [`EmbeddedBroker::start`] binds the address itself first
//! (reporting a clear error) and then waits until the broker accepts
//! connections. Nothing is persisted: a restart loses sessions and retained
//! messages, and the hub republishes what it needs (see `docs/protocol.md`).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use anyhow::Context;
use bramble_api::protocol::MAX_PACKET_BYTES;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio::net::TcpStream;

use std::sync::Arc;

use crate::identity::Identity;

/// Most simultaneous MQTT connections (rumqttd needs ~53 KB each).
pub const MAX_CONNECTIONS: usize = 1024;
/// Size of one in-memory log segment per topic filter.
const SEGMENT_BYTES: usize = 1024 * 1024;
/// Segments kept per filter (older messages are dropped for slow readers).
const SEGMENT_COUNT: usize = 4;
/// How long to wait for the listener to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// A started embedded broker.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts rumqttd on `listen` (port 0 is not supported: rumqttd does not
    /// tell which port it bound) and returns once it accepts connections.
    pub async fn start(listen: SocketAddr, auth: Arc<Identity>) -> anyhow::Result<EmbeddedBroker> {
        anyhow::ensure!(
            listen.port() != 0,
            "--mqtt-listen {listen}: port 0 is not supported for the embedded broker"
        );
        drop(TcpListener::bind(listen).with_context(|| {
            format!(
                "binding the MQTT listener {listen} (is another broker running? use --mqtt-listen)"
            )
        })?);
        let mut broker = Broker::new(config(listen, auth));
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded MQTT broker stopped");
                }
            })
            .context("spawning the MQTT broker thread")?;
        wait_ready(listen).await?;
        tracing::info!(%listen, "embedded MQTT broker listening");
        Ok(EmbeddedBroker { addr: listen })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// The rumqttd configuration (no config file).
fn config(listen: SocketAddr, auth: Arc<Identity>) -> Config {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: MAX_PACKET_BYTES,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        external_acl: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |client_id: String, user: String, pass: String| {
        let verdict = auth.check_connect(&client_id, &user, &pass);
        if let Err(why) = &verdict {
            tracing::warn!(client_id, username = user, reason = %why, "MQTT CONNECT refused");
        }
        std::future::ready(verdict.is_ok())
    });
    let server = ServerSettings {
        name: "bramble-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
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
async fn wait_ready(listen: SocketAddr) -> anyhow::Result<()> {
    let probe = match listen {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        a => a,
    };
    let start = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(probe)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if start.elapsed() > READY_TIMEOUT => {
                anyhow::bail!(
                    "the embedded MQTT broker did not start listening on {listen} within \
                     {READY_TIMEOUT:?}: {e}"
                )
            }
            Err(_) if start.elapsed() > READY_TIMEOUT => {
                anyhow::bail!("the embedded MQTT broker on {listen} does not answer")
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
