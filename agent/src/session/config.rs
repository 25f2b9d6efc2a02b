//! How the joined agent reaches its hub: the node name, the broker address
//! (from `--mqtt-url`, or the host of `--hub` on port 1883) and the secrets.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The MQTT port used when none is given.
pub const DEFAULT_MQTT_PORT: u16 = 1883;

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
    pub runtime: Option<&'static dyn crate::runtime::Runtime>,
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
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mqtt://{}:{}", self.host, self.port)
    }
}

/// Splits `scheme://host[:port][/...]` into host and port.
fn host_port(url: &str, schemes: &[&str]) -> Result<(String, Option<u16>), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?}: expected {}://HOST[:PORT]", schemes[0]))?;
    if !schemes.contains(&scheme) {
        return Err(format!(
            "{url:?}: scheme {scheme:?} not supported (use {})",
            schemes.join(" or ")
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed [ in the host"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("{url:?}: invalid port {p:?}"))
        })
        .transpose()?;
    Ok((host, port))
}

impl Broker {
    /// The broker of `--mqtt-url` if given, else `mqtt://<host of hub>:1883`.
    pub fn resolve(hub: &str, mqtt_url: Option<&str>) -> Result<Broker, String> {
        if let Some(u) = mqtt_url {
            let (host, port) =
                host_port(u, &["mqtt", "tcp"]).map_err(|e| format!("--mqtt-url {e}"))?;
            return Ok(Broker {
                host,
                port: port.unwrap_or(DEFAULT_MQTT_PORT),
            });
        }
        let (host, _) = host_port(hub, &["http", "https"]).map_err(|e| format!("--hub {e}"))?;
        Ok(Broker {
            host,
            port: DEFAULT_MQTT_PORT,
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
        let b = Broker::resolve("http://hub.local:7480", None).unwrap();
        assert_eq!(
            b,
            Broker {
                host: "hub.local".into(),
                port: 1883
            }
        );
        let b = Broker::resolve("http://hub.local:7480", Some("mqtt://127.0.0.1:18830")).unwrap();
        assert_eq!(b.to_string(), "mqtt://127.0.0.1:18830");
        let b = Broker::resolve("https://[fd00::1]:7480/", None).unwrap();
        assert_eq!(b.host, "fd00::1");
        assert!(
            Broker::resolve("hub.local", None)
                .unwrap_err()
                .contains("--hub")
        );
        assert!(
            Broker::resolve("http://h", Some("mqtts://h:8883"))
                .unwrap_err()
                .contains("not supported")
        );
        assert!(Broker::resolve("http://h", Some("mqtt://h:x")).is_err());
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
        };
        assert!(!format!("{c:?}").contains("k10secret"));
    }
}
