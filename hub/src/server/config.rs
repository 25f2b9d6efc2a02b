//! What a hub is started with ([`HubConfig`]: data dir, listeners, broker,
//! network, limits) and its checks ([`HubConfig::validate`], without
//! touching the disk or the network); [`ConfigError`] names the flag to fix.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::control::ControlConfig;
use crate::network::NetworkSettings;

/// Hub configuration, validated by [`HubConfig::validate`] before any side effect.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Address of the embedded MQTT broker (`--mqtt-listen`); `None` with
    /// `mqtt_url` set uses that broker instead, `None` without it runs no
    /// MQTT at all (API-only tests).
    pub mqtt_listen: Option<SocketAddr>,
    /// External broker `mqtts://[user:pass@]host:port` (or plain `mqtt://`,
    /// `--mqtt-url`); excludes `mqtt_listen`.
    pub mqtt_url: Option<String>,
    /// The CA an `mqtts://` external broker's certificate is checked
    /// against (`--mqtt-ca`, PEM); `None`: the cluster CA (a certificate
    /// from `bramble-hub issue-cert`, which the boards trust too).
    pub mqtt_ca: Option<PathBuf>,
    /// Timings of the controllers (heartbeat grace, eviction timeout) and
    /// the Pod Security settings the API and the controllers apply.
    pub control: ControlConfig,
    /// The cluster's address plan (pod and service CIDRs, DNS domain).
    pub network: NetworkSettings,
    /// Cluster DNS for the LAN (`--dns-listen`); `None` serves none.
    pub dns: Option<DnsConfig>,
    /// The HTTP ingress (`--ingress-listen`); `None` serves none.
    pub ingress: Option<SocketAddr>,
    /// The HTTPS ingress (`--ingress-tls-listen`): certificates from the
    /// Ingresses' `spec.tls` Secrets; `None` serves none.
    pub ingress_tls: Option<SocketAddr>,
    /// The load balancer of `type: LoadBalancer` Services listens on this
    /// address (`--lb-address`); `None` serves none (`--no-service-lb`).
    pub service_lb: Option<std::net::IpAddr>,
    /// Announce the hub with mDNS (`--no-mdns` turns it off).
    pub mdns: bool,
    /// Route this host to the nodes' pod CIDRs (`--no-pod-routes`).
    pub pod_routes: bool,
    /// New nodes wait for `bramble nodes approve NAME` (`--approve-nodes`).
    pub approve_nodes: bool,
    /// Provision the `--mqtt-url` mosquitto's dynamic security plugin with
    /// the nodes' logins and topics (`--mqtt-dynsec`; the URL's user must
    /// have the plugin's admin role).
    pub mqtt_dynsec: bool,
    /// TLS on the API, registry and MQTT ports, the serving certificate,
    /// and the API port's connection caps.
    pub ports: PortSettings,
    /// The event recorder's batching and retention (`--event-ttl`,
    /// `--events-per-namespace`).
    pub events: crate::events::EventsConfig,
}

/// How the hub's ports speak (TLS, what the certificate names) and how
/// many connections the API/registry port takes.
#[derive(Debug, Clone)]
pub struct PortSettings {
    /// Plain HTTP instead of HTTPS (`--insecure-http`, labs only: tokens,
    /// Secrets and images cross the LAN in clear).
    pub insecure_http: bool,
    /// Extra names of the serving certificate (`--tls-san`).
    pub sans: Vec<crate::tls::ServingName>,
    /// Lifetime of a serving certificate; renewed after two thirds of it.
    pub cert_lifetime: std::time::Duration,
    /// Caps on the API/registry port's connections: in total, per client.
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// Cap on the watches one token holds open (`--max-watches-per-token`).
    pub max_watches_per_token: usize,
    /// Quiet time before a watch that allows bookmarks gets one
    /// (`--watch-bookmark-interval`).
    pub watch_bookmark_interval: std::time::Duration,
    /// Plain MQTT on the embedded broker instead of MQTT over TLS
    /// (`--insecure-mqtt`, labs only: logins and frames in clear; the
    /// frames stay signed and sealed).
    pub insecure_mqtt: bool,
}

impl Default for PortSettings {
    fn default() -> Self {
        PortSettings {
            insecure_http: false,
            sans: Vec::new(),
            cert_lifetime: crate::tls::serving::DEFAULT_LIFETIME,
            max_connections: crate::conn_limits::DEFAULT_TOTAL,
            max_connections_per_client: crate::conn_limits::DEFAULT_PER_CLIENT,
            max_watches_per_token: crate::api::watch_limit::DEFAULT_MAX_WATCHES_PER_TOKEN,
            watch_bookmark_interval: crate::api::watch::DEFAULT_BOOKMARK_INTERVAL,
            insecure_mqtt: false,
        }
    }
}

/// Where the hub serves cluster DNS and relays other names.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub listen: SocketAddr,
    /// The site's resolvers (`--dns-upstream`, else the host's resolv.conf).
    pub upstreams: Vec<SocketAddr>,
}

/// Default `--dns-listen`.
pub const DEFAULT_DNS_LISTEN: &str = "0.0.0.0:53";

/// Default `--mqtt-listen`.
pub const DEFAULT_MQTT_LISTEN: &str = "0.0.0.0:8883";

/// Default `--mqtt-listen` with `--insecure-mqtt`.
pub const DEFAULT_MQTT_LISTEN_PLAIN: &str = "0.0.0.0:1883";

/// Why a [`HubConfig`] is refused; each names the flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--data-dir must not be empty")]
    EmptyDataDir,
    #[error("--data-dir {path} exists and is not a directory")]
    DataDirNotADirectory { path: PathBuf },
    #[error("--event-ttl must be longer than 0s (events would be deleted as written)")]
    ZeroEventTtl,
    #[error("--events-per-namespace must be at least 1")]
    ZeroEventsPerNamespace,
    #[error(
        "--mqtt-url and --mqtt-listen {listen} exclude each other: an external broker \
         replaces the embedded one"
    )]
    ExternalAndEmbeddedBroker { listen: SocketAddr },
    #[error(transparent)]
    MqttUrl(#[from] crate::mqtt::MqttError),
    #[error(
        "--mqtt-dynsec provisions an external mosquitto: give --mqtt-url \
         mqtt://ADMIN:PASSWORD@HOST:PORT with a user of the dynamic security \
         plugin's admin role"
    )]
    DynsecWithoutAdmin,
    #[error(transparent)]
    Network(#[from] crate::network::NetworkConfigError),
}

impl HubConfig {
    /// Checks the configuration without touching the disk or the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::EmptyDataDir);
        }
        if self.data_dir.exists() && !self.data_dir.is_dir() {
            return Err(ConfigError::DataDirNotADirectory {
                path: self.data_dir.clone(),
            });
        }
        if self.events.ttl.is_zero() {
            return Err(ConfigError::ZeroEventTtl);
        }
        if self.events.namespace_cap == 0 {
            return Err(ConfigError::ZeroEventsPerNamespace);
        }
        if let (Some(listen), Some(_)) = (self.mqtt_listen, &self.mqtt_url) {
            return Err(ConfigError::ExternalAndEmbeddedBroker { listen });
        }
        if let Some(url) = &self.mqtt_url {
            // Syntax only: the CA is read at start.
            let placeholder = rustls_pki_types::CertificateDer::from(Vec::new());
            crate::mqtt::MqttEndpoint::parse_url(url, Some(placeholder))?;
        }
        if self.mqtt_dynsec {
            let user = self
                .mqtt_url
                .as_deref()
                .map(|url| {
                    let placeholder = rustls_pki_types::CertificateDer::from(Vec::new());
                    crate::mqtt::MqttEndpoint::parse_url(url, Some(placeholder))
                })
                .transpose()?
                .and_then(|e| e.login);
            if user.is_none() {
                return Err(ConfigError::DynsecWithoutAdmin);
            }
        }
        Ok(self.network.validate()?)
    }
}
