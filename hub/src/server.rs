//! Starting and stopping a hub: config checks first, then the store, the token
//! and the listener; one shutdown path for signals and tests alike.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bramble_api::resource::by_plural;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{AppState, router};
use crate::broker::EmbeddedBroker;
use crate::control::ControlConfig;
use crate::fleet::Fleet;
use crate::identity::Identity;
use crate::ingest::{Ingest, RpcEvent};
use crate::ingress::{IngressServer, IngressState};
use crate::metrics::HubMetrics;
use crate::mqtt::{MqttClient, endpoint_for};
use crate::network::NetworkSettings;
use crate::rpc::Rpc;
use crate::store::{Sealer, Store, StoreOptions};
use crate::{secrets_key, token};
use bramble_dns::{DnsOptions, DnsServer, Zone};

/// The tables sealed with `DATA_DIR/secrets.key`: Secrets and the join
/// tokens' secrets.
const SEALED_TABLES: [&str; 2] = ["secrets", crate::identity::tokens::TOKENS_TABLE];

/// Directory of the registry's blobs inside the data directory.
pub const REGISTRY_DIR: &str = "registry";

/// File name of the redb database inside the data directory.
pub const DB_FILE: &str = "state.redb";

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
    #[error("--mqtt-listen {listen}: the embedded broker needs a fixed port")]
    MqttListenPortZero { listen: SocketAddr },
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
        if let Some(listen) = self.mqtt_listen
            && listen.port() == 0
        {
            return Err(ConfigError::MqttListenPortZero { listen });
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

/// Why a hub did not start. Each names what it was doing and, for files,
/// the path.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("creating data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(#[from] token::TokenError),
    #[error("loading the cluster CA: {0}")]
    Ca(#[source] crate::tls::TlsError),
    #[error("issuing the serving certificate: {0}")]
    ServingCert(#[source] crate::tls::TlsError),
    #[error(transparent)]
    SecretsKey(#[from] secrets_key::SecretsKeyError),
    #[error("opening store {path}: {source}")]
    Store {
        path: PathBuf,
        source: crate::store::StoreError,
    },
    #[error("creating the default namespace: {0}")]
    DefaultNamespace(#[source] crate::store::StoreError),
    #[error("opening the registry blob store {path}: {source}")]
    Registry {
        path: PathBuf,
        source: bramble_images::BlobError,
    },
    #[error("loading the hub's keys, the node keys and the join tokens: {0}")]
    Identity(#[source] crate::identity::IdentityError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reading the address the API listener bound: {0}")]
    ListenerAddr(#[source] std::io::Error),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error("reading --mqtt-ca {path}: {source}")]
    ReadMqttCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--mqtt-ca {path}: no PEM certificate in it")]
    NoCertInMqttCa { path: PathBuf },
    #[error(transparent)]
    MqttUrl(#[from] crate::mqtt::MqttError),
    #[error("serving the API: {0}")]
    Serve(#[source] std::io::Error),
}

/// A running hub.
pub struct Hub {
    addr: SocketAddr,
    token: String,
    store: Store,
    stop: watch::Sender<bool>,
    server: crate::listener::Listener,
    tls: Arc<crate::tls::HubTls>,
    fleet: Arc<Fleet>,
    identity: Arc<Identity>,
    ingest: Ingest,
    broker: Option<EmbeddedBroker>,
    mqtt: Option<MqttClient>,
    control: Option<JoinHandle<()>>,
    /// The event recorder's flusher (flushes what is pending when stopped).
    events: JoinHandle<()>,
    dns: Option<Arc<DnsServer>>,
    ingress: Option<IngressServer>,
    ingress_tls: Option<IngressServer>,
    /// The other tasks started here (each ends once the stop flag is set),
    /// by what they do.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    _mdns: Option<Arc<crate::mdns::Announcement>>,
}

/// Starts the DNS server; a busy or forbidden address is logged, not fatal
/// (the API, broker and pods work without it).
fn start_dns(config: &DnsConfig, network: &NetworkSettings) -> Option<Arc<DnsServer>> {
    let opts = DnsOptions {
        listen: config.listen,
        upstreams: config.upstreams.clone(),
        freebind: false,
    };
    match DnsServer::start(opts, Zone::build(&network.cluster_domain, &[])) {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            tracing::error!(error = %e, "cluster DNS not served: free the port or pass --dns-listen ADDR:PORT (or --no-dns)");
            None
        }
    }
}

/// The ingress listeners that could bind, sharing one route table and one
/// certificate table; a busy or forbidden address is logged, not fatal.
async fn start_ingress(
    config: &HubConfig,
    shutdown: watch::Receiver<bool>,
) -> (
    Option<IngressState>,
    Option<IngressServer>,
    Option<IngressServer>,
) {
    if config.ingress.is_none() && config.ingress_tls.is_none() {
        return (None, None, None);
    }
    let state = IngressState::new(shutdown).with_limits(crate::conn_limits::ConnLimits::new(
        config.ports.max_connections,
        config.ports.max_connections_per_client,
    ));
    let http = match config.ingress {
        Some(listen) => match state.serve(listen).await {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::error!(error = %e, "ingress not served: free the port or pass --ingress-listen ADDR:PORT (or --no-ingress)");
                None
            }
        },
        None => None,
    };
    let https = match config.ingress_tls {
        Some(listen) => match state.serve_tls(listen).await {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::error!(error = %e, "ingress TLS not served: free the port or pass --ingress-tls-listen ADDR:PORT (or --no-ingress-tls)");
                None
            }
        },
        None => None,
    };
    let state = (http.is_some() || https.is_some()).then_some(state);
    (state, http, https)
}

impl Hub {
    /// Opens the store, ensures the token and the `default` namespace, binds
    /// and starts serving.
    pub async fn start(config: HubConfig) -> Result<Hub, StartError> {
        config.validate()?;
        make_private(&config.data_dir, true).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let token = token::load_or_create(&config.data_dir.join(token::TOKEN_FILE))?;
        let tls = start_tls(&config)?;
        let db_path = config.data_dir.join(DB_FILE);
        let key_path = config.data_dir.join(secrets_key::SECRETS_KEY_FILE);
        let (keyring, _) = secrets_key::load_or_create(&key_path)?;
        let sealer = Arc::new(Sealer::new(SEALED_TABLES.to_vec(), keyring));
        let store = Store::open(
            &db_path,
            StoreOptions {
                sealer: Some(sealer),
                ..StoreOptions::default()
            },
        )
        .map_err(|source| StartError::Store {
            path: db_path.clone(),
            source,
        })?;
        let secrets_key = Arc::new(secrets_key::SecretsKey::new(key_path));
        // Keys left by a rotation a crash interrupted: everything is sealed
        // under the active key now.
        secrets_key.retire_unused(&store)?;
        bootstrap(&store).await?;
        let registry_dir = config.data_dir.join(REGISTRY_DIR);
        let registry = crate::registry::Registry::open(registry_dir.clone(), store.clone())
            .map_err(|source| StartError::Registry {
                path: registry_dir.clone(),
                source,
            })?;
        let registry = Arc::new(registry);
        let identity = Identity::open(&config.data_dir, store.clone(), config.approve_nodes)
            .await
            .map_err(StartError::Identity)?;
        let (fleet, outbox) = Fleet::new();
        let fleet = Arc::new(fleet);
        let network = Arc::new(config.network.clone());
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks: Vec<(&'static str, JoinHandle<()>)> = Vec::new();
        let event_metrics = Arc::new(crate::events::EventMetrics::default());
        let (recorder, events) = crate::events::spawn(
            store.clone(),
            config.events.clone(),
            event_metrics.clone(),
            stop_rx.clone(),
        );
        let ingest = Ingest::new(
            store.clone(),
            fleet.clone(),
            identity.clone(),
            network.clone(),
        )
        .with_events(recorder.clone());
        let bind_failed = |source| StartError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(bind_failed)?;
        let addr = listener.local_addr().map_err(StartError::ListenerAddr)?;
        let broker = match config.mqtt_listen {
            Some(listen) => {
                let serving = (!config.ports.insecure_mqtt).then(|| tls.serving.clone());
                match EmbeddedBroker::start(listen, identity.clone(), identity.clone(), serving)
                    .await
                {
                    Ok(broker) => Some(broker),
                    Err(e) => {
                        store.shutdown().await;
                        return Err(StartError::Broker(e));
                    }
                }
            }
            None => None,
        };
        if let Some(b) = &broker {
            // A revoked node's session is dropped at once (its logins are
            // refused from then on).
            let b = b.clone();
            identity.on_revoke(Box::new(move |node| {
                if let Err(e) = b.disconnect(node) {
                    tracing::error!(node, error = %e, "dropping a revoked node's MQTT session");
                }
            }));
        }
        let mqtt_addr = broker.as_ref().map(EmbeddedBroker::addr);
        let external_ca = match &config.mqtt_ca {
            Some(path) => read_ca(path)?,
            None => tls.ca.der().clone(),
        };
        let mqtt = endpoint_for(
            mqtt_addr,
            config.mqtt_url.as_deref(),
            identity.hub_password(),
            (!config.ports.insecure_mqtt).then(|| tls.ca.der().clone()),
            external_ca,
        )?
        .map(|endpoint| {
            let dynsec = config.mqtt_dynsec.then(|| {
                let (tx, rx) = tokio::sync::mpsc::channel(64);
                let user = endpoint.login.clone().map(|(u, _)| u).unwrap_or_default();
                tasks.push((
                    "dynamic security",
                    crate::dynsec::spawn(
                        identity.clone(),
                        fleet.clone(),
                        user,
                        rx,
                        stop_rx.clone(),
                    ),
                ));
                tx
            });
            MqttClient::spawn(
                endpoint,
                fleet.clone(),
                outbox,
                ingest.clone(),
                dynsec,
                stop_rx.clone(),
            )
        });
        // Chunks of RPC answers go to whoever waits for them.
        let rpc = Arc::new(Rpc::new(identity.clone()));
        tasks.push((
            "revoker",
            spawn_revoker(&store, identity.clone(), stop_rx.clone()),
        ));
        {
            let rpc = rpc.clone();
            let mut responses = ingest.rpc_responses();
            let mut stop = stop_rx.clone();
            tasks.push((
                "RPC fan-out",
                tokio::spawn(async move {
                    use tokio::sync::broadcast::error::RecvError;
                    loop {
                        let response = tokio::select! {
                            _ = stop.wait_for(|s| *s) => break,
                            r = responses.recv() => r,
                        };
                        match response {
                            Ok(ev) => rpc.deliver(ev.response),
                            Err(RecvError::Lagged(n)) => {
                                tracing::warn!(missed = n, "RPC chunks dropped (callers too slow)")
                            }
                            Err(RecvError::Closed) => break,
                        }
                    }
                }),
            ));
        }
        let dns = config
            .dns
            .as_ref()
            .and_then(|d| start_dns(d, &config.network));
        let (ingress_state, ingress, ingress_tls) = start_ingress(&config, stop_rx.clone()).await;
        let mdns = config
            .mdns
            .then(|| {
                let name = crate::mdns::instance_name();
                crate::mdns::Announcement::start(
                    &name,
                    addr.port(),
                    !config.ports.insecure_http,
                    mqtt_addr.map(|a| (a.port(), !config.ports.insecure_mqtt)),
                )
                .map_err(
                    |e| tracing::warn!(error = %e, "not announced on mDNS (agents need --hub)"),
                )
                .ok()
                .map(Arc::new)
            })
            .flatten();
        let pod_security = config.control.pod_security.clone();
        tracing::info!(
            default = %pod_security.default_level,
            exempt = ?pod_security.exempt_namespaces,
            allowed_host_paths = ?pod_security.allowed_host_paths.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "pod security admission"
        );
        // Controllers, scheduler and dispatcher run when there are agents to
        // talk to (an API-only hub just stores objects).
        let control = mqtt.is_some().then(|| {
            crate::control::spawn(
                store.clone(),
                fleet.clone(),
                config.control,
                crate::control::Parts {
                    dispatcher: crate::dispatch::Dispatcher::new(
                        config.network.clone(),
                        identity.clone(),
                    ),
                    registry: Some(registry.clone()),
                    edge: crate::control::Edge {
                        dns: dns.clone(),
                        ingress: ingress_state,
                        pod_routes: config.pod_routes,
                        host: None,
                        mdns: mdns.clone(),
                    },
                    events: recorder,
                },
                stop_rx.clone(),
            )
        });
        let state = AppState {
            store: store.clone(),
            token: Arc::from(token.as_str()),
            metrics: HubMetrics::new().with_events(event_metrics),
            shutdown: stop_rx.clone(),
            registry: registry.clone(),
            fleet: Some(fleet.clone()),
            rpc: Some(rpc),
            identity: Some(identity.clone()),
            network,
            allocations: Arc::default(),
            tls: Some(tls.clone()),
            secrets_key: Some(secrets_key),
            watches: crate::api::watch_limit::WatchLimits::new(config.ports.max_watches_per_token),
            pod_security,
            bookmark_every: config.ports.watch_bookmark_interval,
        };
        let app = router(state);
        tasks.push((
            "certificate renewal",
            crate::tls::serving::spawn_renewal(tls.clone(), stop_rx.clone()),
        ));
        let serving = (!config.ports.insecure_http).then(|| tls.serving.clone());
        let limits = crate::conn_limits::ConnLimits::new(
            config.ports.max_connections,
            config.ports.max_connections_per_client,
        );
        let server = crate::listener::Listener::spawn(listener, app, serving, limits, stop_rx)
            .map_err(StartError::Serve)?;
        let scheme = server.scheme();
        // Every file is in place now (the store, the keys, the CA): none
        // may be readable by other users, whoever made it (redb creates
        // its file 0644, inside the already private directory).
        if let Err(e) = make_private(&config.data_dir, false) {
            tracing::error!(error = %e, "making the data directory private failed");
        }
        if let Err(e) = crate::kubeconfig::write(
            &config.data_dir,
            &format!("{scheme}://{}", loopback(addr)),
            &tls.ca,
            &token,
        ) {
            tracing::warn!(error = %e, "writing the kubeconfig failed");
        }
        tracing::info!(%addr, url = %format!("{scheme}://{addr}"), data_dir = %config.data_dir.display(), ca = %tls.ca.hash(), "hub listening");
        Ok(Hub {
            addr,
            token,
            store,
            stop,
            server,
            tls,
            fleet,
            identity,
            ingest,
            broker,
            mqtt,
            control,
            events,
            dns,
            ingress,
            ingress_tls,
            tasks,
            _mdns: mdns,
        })
    }

    /// The address the ingress serves on, if it runs.
    pub fn ingress_addr(&self) -> Option<SocketAddr> {
        self.ingress.as_ref().map(|i| i.addr())
    }

    /// The address the TLS ingress serves on, if it runs.
    pub fn ingress_tls_addr(&self) -> Option<SocketAddr> {
        self.ingress_tls.as_ref().map(|i| i.addr())
    }

    /// The address the cluster DNS serves on, if it runs.
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.dns.as_ref().map(|d| d.addr())
    }

    /// The live view of the agents (MQTT sessions, heartbeats, reports).
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    /// The embedded MQTT broker's address, if it runs.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.broker.as_ref().map(EmbeddedBroker::addr)
    }

    /// The embedded MQTT broker, if it runs.
    pub fn broker(&self) -> Option<&EmbeddedBroker> {
        self.broker.as_ref()
    }

    /// The cluster's join token (`DATA_DIR/node-token`).
    pub fn join_token(&self) -> String {
        self.identity
            .join_token()
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// The hub's keys, the node keys and the join tokens.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// RPC response chunks from the agents (logs, exec).
    pub fn rpc_responses(&self) -> tokio::sync::broadcast::Receiver<RpcEvent> {
        self.ingest.rpc_responses()
    }

    /// `https://ADDR` (or `http://` with `--insecure-http`).
    pub fn url(&self) -> String {
        format!("{}://{}", self.server.scheme(), self.addr)
    }

    /// The cluster CA and the serving certificate.
    pub fn tls(&self) -> &Arc<crate::tls::HubTls> {
        &self.tls
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The store (for in-process callers such as tests and controllers).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops accepting (the API and ingress ports are closed when this
    /// returns), ends watches, finishes in-flight requests (up to `grace`),
    /// waits for every task it started, then commits queued writes and
    /// closes the store. Never fails (`Infallible`): what goes wrong on the
    /// way is logged where it happens.
    pub async fn stop(self, grace: std::time::Duration) -> Result<(), std::convert::Infallible> {
        let _ = self.stop.send(true);
        let api = async {
            if tokio::time::timeout(grace, self.server.closed())
                .await
                .is_err()
            {
                tracing::warn!(
                    ?grace,
                    "requests still running after the grace period; closing anyway"
                );
            }
        };
        let ingress = async {
            for (what, listener) in [("ingress", self.ingress), ("ingress TLS", self.ingress_tls)] {
                if let Some(l) = listener
                    && !l.join(grace).await
                {
                    tracing::warn!(
                        listener = what,
                        ?grace,
                        "ingress requests still running after the grace period; closed"
                    );
                }
            }
        };
        tokio::join!(api, ingress);
        if let Some(control) = self.control {
            let _ = control.await;
        }
        if let Some(mqtt) = self.mqtt {
            mqtt.join().await;
        }
        // After the control loop and the ingest, the last events' writers.
        let _ = self.events.await;
        for (what, task) in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(task = what, error = %e, "hub task failed");
            }
        }
        // The control task held the other reference; dropping stops it.
        drop(self.dns);
        self.store.shutdown().await;
        tracing::info!("hub stopped");
        Ok(())
    }
}

/// The cluster CA (created at first start) and a fresh serving certificate;
/// `--insecure-http` is announced on every start.
/// The first certificate of the PEM file `path` (`--mqtt-ca`).
fn read_ca(
    path: &std::path::Path,
) -> Result<rustls_pki_types::CertificateDer<'static>, StartError> {
    let pem = std::fs::read(path).map_err(|source| StartError::ReadMqttCa {
        path: path.to_path_buf(),
        source,
    })?;
    bramble_trust::tls::pem_certs(&pem)
        .ok()
        .and_then(|certs| certs.into_iter().next())
        .ok_or_else(|| StartError::NoCertInMqttCa {
            path: path.to_path_buf(),
        })
}

fn start_tls(config: &HubConfig) -> Result<Arc<crate::tls::HubTls>, StartError> {
    let ca = crate::tls::ClusterCa::load_or_create(&config.data_dir).map_err(StartError::Ca)?;
    let serving =
        crate::tls::ServingCert::new(&ca, config.ports.sans.clone(), config.ports.cert_lifetime)
            .map_err(StartError::ServingCert)?;
    if config.ports.insecure_mqtt && config.mqtt_listen.is_some() {
        tracing::warn!(
            "--insecure-mqtt: the embedded broker speaks plain MQTT; node logins can be \
             replayed by anyone on the network (frames stay signed and sealed). For labs only."
        );
    }
    if config.ports.insecure_http {
        tracing::warn!(
            "--insecure-http: the API and registry speak plain HTTP; the admin token, node \
             logins, Secrets and images cross the network in clear. For labs only."
        );
    }
    Ok(Arc::new(crate::tls::HubTls {
        ca,
        serving: Arc::new(serving),
    }))
}

/// Creates `DATA_DIR` private or makes it so; `found` (before this start
/// wrote anything) warns about what was open.
fn make_private(dir: &std::path::Path, found: bool) -> std::io::Result<()> {
    let changed = crate::data_dir::secure(dir)?;
    if found && !changed.is_empty() {
        tracing::warn!(changed = ?changed, "the data directory was readable by other users; made private");
    } else if !changed.is_empty() {
        tracing::debug!(changed = ?changed, "files of this start made private");
    }
    Ok(())
}

/// The address a client on this machine dials: loopback for a wildcard bind.
pub(crate) fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], addr.port()))
        }
        _ => addr,
    }
}

/// Revokes a node's key when its `Node` object is deleted (through the API
/// or by anyone else): from then on its frames, broker logins and registry
/// pulls are refused, and the broker drops its session.
fn spawn_revoker(
    store: &Store,
    identity: Arc<Identity>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let nodes = by_plural("", "v1", "nodes").expect("registered");
    let mut changes = store.changes();
    let store = store.clone();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let event = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                e = changes.recv() => e,
            };
            let gone: Vec<String> = match event {
                Ok(ev) if ev.resource == nodes && ev.kind == crate::store::EventType::Deleted => {
                    vec![ev.name.clone()]
                }
                Ok(_) => continue,
                // Missed events: revoke every approved key without a Node.
                Err(RecvError::Lagged(_)) => identity
                    .nodes()
                    .all()
                    .into_iter()
                    .filter(|(n, r)| r.approved && matches!(store.get(nodes, None, n), Ok(None)))
                    .map(|(n, _)| n)
                    .collect(),
                Err(RecvError::Closed) => return,
            };
            for node in gone {
                if let Err(e) = identity.revoke(&node).await {
                    tracing::error!(node, error = %e, "revoking the deleted node's key failed");
                }
            }
        }
    })
}

/// Creates what a new cluster needs: the `default` namespace.
async fn bootstrap(store: &Store) -> Result<(), StartError> {
    let namespaces = by_plural("", "v1", "namespaces").expect("registered");
    let existing = store
        .get(namespaces, None, "default")
        .map_err(StartError::DefaultNamespace)?;
    if existing.is_none() {
        store
            .create(
                namespaces,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
            )
            .await
            .map_err(StartError::DefaultNamespace)?;
    }
    Ok(())
}
