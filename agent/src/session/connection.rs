//! The MQTT connection: client options (client id = username = node name,
//! keep-alive 5 s, clean session, packets up to [`MAX_PACKET_BYTES`] both
//! ways, TCP_NODELAY, last will `online: false` retained) and the thread
//! that drives rumqttc's event loop, forwarding every event to the session
//! worker and pausing with back-off (≤ 5 s) after a connection error.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bramble_api::protocol::topics::{Topic, TopicKind};
use bramble_api::protocol::{MAX_PACKET_BYTES, NodeCredentials, Online, encode};
use rumqttc::{Client, Connection, ConnectionError, Event, LastWill, MqttOptions, QoS};

use super::config::SessionConfig;

/// Keep-alive interval: the broker notices a dead agent within 1.5 × this.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Longest pause between connection attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);
/// Requests queued towards the event loop.
const CHANNEL_CAPACITY: usize = 256;

/// What the connection thread forwards.
#[derive(Debug)]
pub enum ConnectionEvent {
    Event(Event),
    Error(ConnectionError),
}

/// Credentials to use from the next connect on (set by the worker when the
/// hub issued them).
pub type PendingLogin = Arc<Mutex<Option<NodeCredentials>>>;

/// Builds the client; `password` is the stored credentials' or the token.
pub fn client(cfg: &SessionConfig, password: &str) -> Result<(Client, Connection), String> {
    let mut o = MqttOptions::new(cfg.node.clone(), cfg.broker.host.clone(), cfg.broker.port);
    o.set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
        .set_credentials(cfg.node.clone(), password.to_string());
    let will_topic = Topic::new(&cfg.node, TopicKind::Online).map_err(|e| e.to_string())?;
    let will = encode(&Online::last_will(&cfg.session)).map_err(|e| e.to_string())?;
    o.set_last_will(LastWill::new(
        will_topic.to_string(),
        will,
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut conn) = Client::new(o, CHANNEL_CAPACITY);
    let mut net = conn.eventloop.network_options();
    net.set_tcp_nodelay(true);
    conn.eventloop.set_network_options(net);
    Ok((client, conn))
}

/// Drives `conn` on a thread of its own until the client is dropped.
pub fn spawn(
    mut conn: Connection,
    pending: PendingLogin,
    to_worker: Sender<super::worker::Input>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("mqtt".into())
        .spawn(move || {
            let mut delay = Duration::from_millis(250);
            loop {
                if let Some(c) = pending.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    conn.eventloop
                        .mqtt_options
                        .set_credentials(c.username, c.password);
                }
                let input = match conn.recv() {
                    Ok(Ok(event)) => {
                        if matches!(event, Event::Incoming(rumqttc::Packet::ConnAck(_))) {
                            delay = Duration::from_millis(250);
                        }
                        ConnectionEvent::Event(event)
                    }
                    Ok(Err(e)) => ConnectionEvent::Error(e),
                    Err(_) => return,
                };
                let failed = matches!(input, ConnectionEvent::Error(_));
                if to_worker.send(super::worker::Input::Mqtt(input)).is_err() {
                    return;
                }
                if failed {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                }
            }
        })
}
