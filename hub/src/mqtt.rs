//! The hub's MQTT client task: connects to the embedded broker (with the
//! hub's secret) or an external one (`--mqtt-url`), subscribes to
//! [`topics::hub_subscriptions`] after every CONNACK, hands each publication
//! to the [`Ingest`] (in order, on one task), and publishes what others queue
//! in the [`Fleet`] outbox (QoS 1, retained as asked). Reconnects on errors
//! with a short backoff, logging once per outage. With mosquitto's dynamic
//! security provisioned by the hub, it also subscribes to the plugin's
//! answers and hands them to the provisioner (`crate::dynsec`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bramble_api::protocol::{MAX_PACKET_BYTES, topics};
use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeFilter};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::fleet::{Fleet, Outgoing};
use crate::identity::HUB_USERNAME;
use crate::ingest::Ingest;

/// MQTT keep-alive of the hub's connection.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Publications waiting for the ingest.
const INGEST_QUEUE: usize = 1024;

/// Where the hub's client connects and as whom.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttEndpoint {
    pub host: String,
    pub port: u16,
    /// Username and password, if the broker wants them.
    pub login: Option<(String, String)>,
    pub client_id: String,
    /// MQTT over TLS, trusting only this CA (the embedded broker's, the
    /// cluster CA); `None` speaks plain MQTT.
    pub ca: Option<rustls_pki_types::CertificateDer<'static>>,
}

impl fmt::Debug for MqttEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttEndpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.login.as_ref().map(|(u, _)| u))
            .field("client_id", &self.client_id)
            .field("tls", &self.ca.is_some())
            .finish()
    }
}

/// Why `--mqtt-url` is refused (the URL itself is not repeated: it may
/// carry a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttError {
    #[error(
        "--mqtt-url: {reason} (expected mqtts://[user:pass@]host[:port], or mqtt:// for plain MQTT)"
    )]
    BadUrl { reason: String },
}

impl MqttEndpoint {
    /// The embedded broker listening on `addr` (loopback when it listens on
    /// every address), as the hub's own client; over TLS when `ca` is the
    /// broker's CA.
    pub fn embedded(
        addr: SocketAddr,
        hub_password: &str,
        ca: Option<rustls_pki_types::CertificateDer<'static>>,
    ) -> MqttEndpoint {
        let host = if addr.ip().is_unspecified() {
            if addr.is_ipv4() { "127.0.0.1" } else { "::1" }.to_string()
        } else {
            addr.ip().to_string()
        };
        MqttEndpoint {
            host,
            port: addr.port(),
            login: Some((HUB_USERNAME.into(), hub_password.into())),
            client_id: HUB_USERNAME.into(),
            ca,
        }
    }

    /// Parses `mqtts://[user:pass@]host[:port]` (MQTT over TLS trusting only
    /// `tls_ca`, port 8883 by default) or `mqtt://...` (plain, port 1883);
    /// no path, no percent-decoding.
    pub fn parse_url(
        url: &str,
        tls_ca: Option<rustls_pki_types::CertificateDer<'static>>,
    ) -> Result<MqttEndpoint, MqttError> {
        let bad = |why: &str| MqttError::BadUrl {
            reason: why.to_string(),
        };
        let (rest, tls) = if let Some(r) = url.strip_prefix("mqtts://") {
            (r, true)
        } else if let Some(r) = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
        {
            (r, false)
        } else {
            return Err(bad("the scheme must be mqtts:// or mqtt://"));
        };
        let ca = match (tls, tls_ca) {
            (true, Some(ca)) => Some(ca),
            (true, None) => return Err(bad("mqtts:// needs the broker's CA (--mqtt-ca)")),
            (false, _) => None,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a path or query is not allowed"));
        }
        let (login, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hp)) => {
                let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                if u.is_empty() {
                    return Err(bad("empty username"));
                }
                (Some((u.to_string(), p.to_string())), hp)
            }
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h, p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad(&format!("invalid port {p:?}")))?,
            None if tls => 8883,
            None => 1883,
        };
        Ok(MqttEndpoint {
            host: host.to_string(),
            port,
            login,
            client_id: HUB_USERNAME.into(),
            ca,
        })
    }

    fn options(&self) -> MqttOptions {
        let mut o = MqttOptions::new(&self.client_id, &self.host, self.port);
        o.set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        if let Some((u, p)) = &self.login {
            o.set_credentials(u, p);
        }
        if let Some(ca) = &self.ca {
            match bramble_trust::tls::client_config(std::slice::from_ref(ca)) {
                Ok(config) => {
                    o.set_transport(rumqttc::Transport::tls_with_config(
                        rumqttc::TlsConfiguration::Rustls(config),
                    ));
                }
                Err(e) => tracing::error!(error = %e, "the broker's CA is unusable"),
            }
        }
        o
    }
}

/// Handles of the client's tasks; they end when the stop flag turns true.
#[derive(Debug)]
pub struct MqttClient {
    poll: JoinHandle<()>,
    publish: JoinHandle<()>,
    ingest: JoinHandle<()>,
}

impl MqttClient {
    /// Starts the client tasks.
    pub fn spawn(
        endpoint: MqttEndpoint,
        fleet: Arc<Fleet>,
        outbox: mpsc::Receiver<Outgoing>,
        ingest: Ingest,
        dynsec: Option<mpsc::Sender<Vec<u8>>>,
        stop: watch::Receiver<bool>,
    ) -> MqttClient {
        let (client, mut eventloop) = AsyncClient::new(endpoint.options(), 64);
        let mut net = eventloop.network_options();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        let (tx, rx) = mpsc::channel(INGEST_QUEUE);
        MqttClient {
            poll: tokio::spawn(poll_loop(
                endpoint,
                eventloop,
                client.clone(),
                fleet,
                tx,
                dynsec,
                stop.clone(),
            )),
            publish: tokio::spawn(publish_loop(client, outbox, stop)),
            ingest: tokio::spawn(ingest_loop(ingest, rx)),
        }
    }

    /// Waits for the tasks to end (after the stop flag was set).
    pub async fn join(self) {
        let _ = self.poll.await;
        let _ = self.publish.await;
        let _ = self.ingest.await;
    }
}

async fn poll_loop(
    endpoint: MqttEndpoint,
    mut eventloop: EventLoop,
    client: AsyncClient,
    fleet: Arc<Fleet>,
    ingest: mpsc::Sender<(String, Bytes)>,
    dynsec: Option<mpsc::Sender<Vec<u8>>>,
    mut stop: watch::Receiver<bool>,
) {
    let broker = format!("{}:{}", endpoint.host, endpoint.port);
    let mut backoff = Duration::from_millis(100);
    let mut outage = false;
    loop {
        let event = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!(broker, reconnect = outage, "MQTT connected");
                outage = false;
                backoff = Duration::from_millis(100);
                // Queued before anything published from now on (the
                // dynamic security answers must not beat the subscription).
                let answers = dynsec
                    .is_some()
                    .then(|| crate::dynsec::RESPONSE.to_string());
                let filters: Vec<SubscribeFilter> = topics::hub_subscriptions()
                    .into_iter()
                    .chain(answers)
                    .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce))
                    .collect();
                if client.try_subscribe_many(filters.clone()).is_err() {
                    let sub = client.clone();
                    tokio::spawn(async move {
                        if let Err(e) = sub.subscribe_many(filters).await {
                            tracing::error!(error = %e, "MQTT subscribe failed");
                        }
                    });
                }
                fleet.mark_connected();
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if p.topic == crate::dynsec::RESPONSE {
                    if let Some(d) = &dynsec {
                        let _ = d.send(p.payload.to_vec()).await;
                    }
                    continue;
                }
                if ingest.send((p.topic, p.payload)).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if !outage {
                    tracing::warn!(broker, error = %e, "MQTT connection lost; reconnecting");
                    outage = true;
                }
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    let _ = client.try_disconnect();
}

async fn publish_loop(
    client: AsyncClient,
    mut outbox: mpsc::Receiver<Outgoing>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            m = outbox.recv() => match m { Some(m) => m, None => break },
        };
        let topic = msg.topic.clone();
        let publish = client.publish(msg.topic, QoS::AtLeastOnce, msg.retain, msg.payload);
        let result = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = publish => r,
        };
        if let Err(e) = result {
            tracing::error!(topic, error = %e, "MQTT publish failed");
        }
    }
}

async fn ingest_loop(ingest: Ingest, mut rx: mpsc::Receiver<(String, Bytes)>) {
    while let Some((topic, payload)) = rx.recv().await {
        ingest.handle(&topic, &payload).await;
    }
}

/// The endpoint for a hub config: the embedded broker's address, else the
/// external URL (its error names `--mqtt-url`).
pub fn endpoint_for(
    embedded: Option<SocketAddr>,
    url: Option<&str>,
    hub_password: &str,
    embedded_ca: Option<rustls_pki_types::CertificateDer<'static>>,
    external_ca: rustls_pki_types::CertificateDer<'static>,
) -> Result<Option<MqttEndpoint>, MqttError> {
    Ok(match (embedded, url) {
        (Some(addr), _) => Some(MqttEndpoint::embedded(addr, hub_password, embedded_ca)),
        (None, Some(url)) => Some(MqttEndpoint::parse_url(url, Some(external_ca))?),
        (None, None) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        let e = MqttEndpoint::parse_url("mqtt://hub:secret@10.0.0.2:1884", None).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("10.0.0.2", 1884));
        assert_eq!(e.login, Some(("hub".into(), "secret".into())));
        assert!(!format!("{e:?}").contains("secret"));
        let e = MqttEndpoint::parse_url("mqtt://broker.lan", None).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.login),
            ("broker.lan", 1883, None)
        );
        let e = MqttEndpoint::parse_url("mqtt://[::1]:1885/", None).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 1885));
        let ca = rustls_pki_types::CertificateDer::from(vec![1u8, 2, 3]);
        let e = MqttEndpoint::parse_url("mqtts://broker.lan", Some(ca.clone())).unwrap();
        assert_eq!((e.port, e.ca.is_some()), (8883, true));
        assert!(
            MqttEndpoint::parse_url("mqtt://broker.lan", Some(ca))
                .unwrap()
                .ca
                .is_none()
        );
        for bad in [
            "http://x",
            "mqtt://",
            "mqtt://x:port",
            "mqtt://x/topic",
            "mqtts://x",
        ] {
            assert!(MqttEndpoint::parse_url(bad, None).is_err(), "{bad}");
        }
        let e = MqttEndpoint::embedded("0.0.0.0:1883".parse().unwrap(), "pw", None);
        assert_eq!(
            (e.host.as_str(), e.client_id.as_str()),
            ("127.0.0.1", "bramble-hub")
        );
    }
}
