//! How the joined agent reaches its hub: the node name, the broker address
//! (from `--mqtt-url`, or the host of `--hub`: MQTT over TLS on port 8883
//! for an `https://` hub, plain MQTT on 1883 for a lab's `http://` one)
//! and the secrets. A flag that names no broker is a [`BrokerError`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The plain MQTT port used when none is given.
pub const DEFAULT_MQTT_PORT: u16 = 1883;
/// The MQTT over TLS port used when none is given.
pub const DEFAULT_MQTTS_PORT: u16 = 8883;

/// Everything the session needs besides the node's facts.
#[derive(Clone)]
pub struct SessionConfig {
    /// The node name: MQTT client id and username.
    pub node: String,
    /// Random per process start.
    pub session: String,
    pub broker: Broker,
    /// `DATA_DIR`, where the board's identity lives.
    pub data_dir: PathBuf,
    /// The join token (`--token`), used until the board joined.
    pub token: Option<bramble_trust::JoinToken>,
    /// Status interval until a `helloAck` says otherwise.
    pub heartbeat: Duration,
    /// `RUN_DIR`, where the pod records (container handles) are.
    pub run_dir: PathBuf,
    /// The container runtime, for `exec` requests (`None`: exec refused).
    pub runtime: Option<std::sync::Arc<dyn crate::runtime::Runtime>>,
    /// The CA a `mqtts://` broker must be certified by (the hub's, pinned).
    pub broker_ca: Vec<rustls_pki_types::CertificateDer<'static>>,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("node", &self.node)
            .field("session", &self.session)
            .field("broker", &self.broker)
            .field("data_dir", &self.data_dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// An MQTT broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    /// MQTT over TLS (`mqtts://`).
    pub tls: bool,
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Why a URL is not `scheme://HOST[:PORT]` of a supported scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{url:?}: expected {}://HOST[:PORT]", .schemes[0])]
    NoScheme {
        url: String,
        schemes: &'static [&'static str],
    },
    #[error("{url:?}: scheme {scheme:?} not supported (use {})", .schemes.join(" or "))]
    Scheme {
        url: String,
        scheme: String,
        schemes: &'static [&'static str],
    },
    #[error("{url:?}: unclosed [ in the host")]
    UnclosedBracket { url: String },
    #[error("{url:?}: no host")]
    NoHost { url: String },
    #[error("{url:?}: invalid port {port:?}")]
    Port { url: String, port: String },
}

/// Why `--hub` or `--mqtt-url` names no broker (the flag leads the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error("--hub {0}")]
    Hub(#[source] UrlError),
    #[error("--mqtt-url {0}")]
    MqttUrl(#[source] UrlError),
}

/// Splits `scheme://host[:port][/...]` into host and port; `schemes` (the
/// first is named in the hint) are the ones accepted.
fn host_port(
    url: &str,
    schemes: &'static [&'static str],
) -> Result<(String, Option<u16>), UrlError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| UrlError::NoScheme {
        url: url.to_string(),
        schemes,
    })?;
    if !schemes.contains(&scheme) {
        return Err(UrlError::Scheme {
            url: url.to_string(),
            scheme: scheme.to_string(),
            schemes,
        });
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| UrlError::UnclosedBracket {
                url: url.to_string(),
            })?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost {
            url: url.to_string(),
        });
    }
    let port = port
        .map(|p| {
            p.parse::<u16>().map_err(|_| UrlError::Port {
                url: url.to_string(),
                port: p.to_string(),
            })
        })
        .transpose()?;
    Ok((host, port))
}

impl Broker {
    /// The broker of `--mqtt-url` if given, else `mqtts://<host of hub>:8883`
    /// (`mqtt://…:1883` for an `http://` hub).
    pub fn resolve(hub: &str, mqtt_url: Option<&str>) -> Result<Broker, BrokerError> {
        if let Some(u) = mqtt_url {
            let (host, port) =
                host_port(u, &["mqtts", "ssl", "mqtt", "tcp"]).map_err(BrokerError::MqttUrl)?;
            let tls = u.starts_with("mqtts://") || u.starts_with("ssl://");
            let default = if tls {
                DEFAULT_MQTTS_PORT
            } else {
                DEFAULT_MQTT_PORT
            };
            return Ok(Broker {
                host,
                port: port.unwrap_or(default),
                tls,
            });
        }
        let (host, _) = host_port(hub, &["https", "http"]).map_err(BrokerError::Hub)?;
        let tls = hub.starts_with("https://");
        Ok(Broker {
            host,
            port: if tls {
                DEFAULT_MQTTS_PORT
            } else {
                DEFAULT_MQTT_PORT
            },
            tls,
        })
    }
}

/// A random session id (16 hex digits) from the kernel's random source.
pub fn new_session_id() -> String {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b = (t.as_nanos() as u64 ^ u64::from(std::process::id())).to_be_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_from_flags() {
        let b = Broker::resolve("https://hub.local:7480", None).unwrap();
        assert_eq!(b.to_string(), "mqtts://hub.local:8883");
        let b = Broker::resolve("http://hub.local:7480", None).unwrap();
        assert_eq!(b.to_string(), "mqtt://hub.local:1883");
        let b = Broker::resolve("https://hub.local:7480", Some("mqtt://127.0.0.1:18830")).unwrap();
        assert_eq!(b.to_string(), "mqtt://127.0.0.1:18830");
        let b = Broker::resolve("https://hub.local:7480", Some("mqtts://10.0.0.2")).unwrap();
        assert_eq!(b.to_string(), "mqtts://10.0.0.2:8883");
        let b = Broker::resolve("https://[fd00::1]:7480/", None).unwrap();
        assert_eq!(b.host, "fd00::1");
        let e = Broker::resolve("hub.local", None).unwrap_err();
        assert!(
            matches!(e, BrokerError::Hub(UrlError::NoScheme { .. })),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            r#"--hub "hub.local": expected https://HOST[:PORT]"#
        );
        let e = Broker::resolve("https://h", Some("ws://h:8883")).unwrap_err();
        assert!(
            matches!(e, BrokerError::MqttUrl(UrlError::Scheme { .. })),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            r#"--mqtt-url "ws://h:8883": scheme "ws" not supported (use mqtts or ssl or mqtt or tcp)"#
        );
    }

    #[test]
    fn session_ids_are_random_hex() {
        let (a, b) = (new_session_id(), new_session_id());
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        let c = SessionConfig {
            node: "pi-1".into(),
            session: a,
            broker: Broker {
                host: "h".into(),
                port: 1,
                tls: true,
            },
            data_dir: "/d".into(),
            token: Some(
                bramble_trust::JoinToken::parse(&format!(
                    "K10{}::abcdef.{}",
                    "0".repeat(64),
                    &"k10secret".repeat(4)[..32]
                ))
                .unwrap(),
            ),
            heartbeat: Duration::from_secs(1),
            run_dir: "/r".into(),
            runtime: None,
            broker_ca: Vec::new(),
        };
        assert!(!format!("{c:?}").contains("k10secret"));
    }
}
