//! The MQTT connection: client options (client id = username = node name,
//! keep-alive 5 s, clean session, packets up to [`MAX_PACKET_BYTES`] both
//! ways, TCP_NODELAY) and the thread that drives rumqttc's event loop,
//! forwarding every event to the session worker and pausing with back-off
//! (≤ 5 s) after a connection error. Before every connection attempt it
//! takes the client id and credentials of the current [`Login`] and, for a
//! key login, a last will signed for that connection's number.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bramble_api::protocol::MAX_PACKET_BYTES;
use rumqttc::{Client, Connection, ConnectionError, Event, LastWill, MqttOptions, QoS};

use super::config::SessionConfig;
use super::login::{Login, Logins};

/// Keep-alive interval: the broker notices a dead agent within 1.5 × this.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Longest pause between connection attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);
/// Requests queued towards the event loop.
const CHANNEL_CAPACITY: usize = 256;

/// What the connection thread forwards.
#[derive(Debug)]
pub enum ConnectionEvent {
    /// Connection number `n` was accepted (its CONNACK).
    Connected(u64),
    Event(Event),
    Error(ConnectionError),
}

/// The login of the next connection attempts (the worker changes it).
pub type SharedLogin = Arc<Mutex<Login>>;

/// The hub's keys once pinned (the worker sets them; key logins and
/// registry pulls need them).
pub type PinnedHub = Arc<Mutex<Option<bramble_trust::PublicKeys>>>;

/// Builds the client (credentials are set per attempt by [`spawn`]).
pub fn client(cfg: &SessionConfig) -> (Client, Connection) {
    let mut o = MqttOptions::new(cfg.node.clone(), cfg.broker.host.clone(), cfg.broker.port);
    o.set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    if cfg.broker.tls {
        // Only the pinned CA: with none, every handshake fails (and says so).
        match bramble_trust::tls::client_config(&cfg.broker_ca) {
            Ok(config) => {
                o.set_transport(rumqttc::Transport::tls_with_config(
                    rumqttc::TlsConfiguration::Rustls(config),
                ));
            }
            Err(e) => tracing::error!(error = %e, "the broker's CA is unusable"),
        }
    }
    let (client, mut conn) = Client::new(o, CHANNEL_CAPACITY);
    let mut net = conn.eventloop.network_options();
    net.set_tcp_nodelay(true);
    conn.eventloop.set_network_options(net);
    (client, conn)
}

/// Sets the client id, credentials (and will) of attempt `n` on `conn`.
fn prepare(conn: &mut Connection, logins: &Logins, login: Login, hub: &PinnedHub, n: u64) {
    let hub = hub.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(c) = logins.credentials(login, hub.as_ref(), n) else {
        return;
    };
    let o = &mut conn.eventloop.mqtt_options;
    o.set_client_id(c.client_id);
    o.set_credentials(c.username, c.password);
    if let Some((topic, payload)) = c.will {
        o.set_last_will(LastWill::new(topic, payload, QoS::AtLeastOnce, true));
    }
}

/// Drives `conn` on a thread of its own until the client is dropped.
pub fn spawn(
    mut conn: Connection,
    login: SharedLogin,
    hub: PinnedHub,
    logins: Logins,
    to_worker: Sender<super::worker::Input>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("mqtt".into())
        .spawn(move || {
            let mut delay = Duration::from_millis(250);
            let mut attempt = 0u64;
            let mut ready = false;
            loop {
                if !ready {
                    attempt += 1;
                    let l = *login.lock().unwrap_or_else(|p| p.into_inner());
                    prepare(&mut conn, &logins, l, &hub, attempt);
                    ready = true;
                }
                let input = match conn.recv() {
                    Ok(Ok(Event::Incoming(rumqttc::Packet::ConnAck(ack))))
                        if ack.code == rumqttc::ConnectReturnCode::Success =>
                    {
                        delay = Duration::from_millis(250);
                        ConnectionEvent::Connected(attempt)
                    }
                    Ok(Ok(event)) => ConnectionEvent::Event(event),
                    Ok(Err(e)) => ConnectionEvent::Error(e),
                    Err(_) => return,
                };
                let failed = matches!(input, ConnectionEvent::Error(_));
                if to_worker.send(super::worker::Input::Mqtt(input)).is_err() {
                    return;
                }
                if failed {
                    // The next attempt is a new connection: new will.
                    ready = false;
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                }
            }
        })
}
