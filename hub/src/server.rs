//! Starting and stopping a hub: config checks first ([`config`]), then the
//! data directory ([`open`]: token, CA, store, registry, identities), the
//! listener, the broker, the MQTT client, DNS, ingress, mDNS and the control
//! loop, each started task kept so [`Hub::stop`] awaits it; one shutdown
//! path for signals and tests alike.
//!
//! Length: over 600 lines because the wiring of every part of a hub in start
//! order, and its stop in reverse; what could stand alone is in
//! server/config.rs and server/open.rs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bramble_api::resource::by_plural;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{AppState, router};
use crate::broker::EmbeddedBroker;
use crate::fleet::Fleet;
use crate::identity::Identity;
use crate::ingest::{Ingest, RpcEvent};
use crate::ingress::{IngressServer, IngressState};
use crate::metrics::HubMetrics;
use crate::mqtt::{MqttClient, endpoint_for};
use crate::network::NetworkSettings;
use crate::rpc::Rpc;
use crate::store::Store;
use crate::{secrets_key, token};
use bramble_dns::{DnsOptions, DnsServer, Zone};

mod config;
mod open;
pub use config::{
    ConfigError, DEFAULT_DNS_LISTEN, DEFAULT_MQTT_LISTEN, DEFAULT_MQTT_LISTEN_PLAIN, DnsConfig,
    HubConfig, PortSettings,
};
pub use open::{DB_FILE, REGISTRY_DIR};
use open::{Opened, finish_data_dir, open};

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
    #[error("creating the local-path StorageClass: {0}")]
    DefaultStorageClass(#[source] crate::store::StoreError),
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
    /// The load balancer of `LoadBalancer` Services (`--lb-address`).
    service_lb: Option<Arc<crate::service_lb::ServiceLb>>,
    /// Build jobs, their reports and registry grants.
    builds: Arc<crate::build::Builds>,
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

/// The embedded broker, if `--mqtt-listen` asks for one; a revoked node's
/// session is dropped at once (its logins are refused from then on).
async fn start_broker(
    config: &HubConfig,
    identity: &Arc<Identity>,
    tls: &crate::tls::HubTls,
) -> Result<Option<EmbeddedBroker>, StartError> {
    let Some(listen) = config.mqtt_listen else {
        return Ok(None);
    };
    let serving = (!config.ports.insecure_mqtt).then(|| tls.serving.clone());
    let broker = EmbeddedBroker::start(listen, identity.clone(), identity.clone(), serving)
        .await
        .map_err(StartError::Broker)?;
    let b = broker.clone();
    identity.on_revoke(Box::new(move |node| {
        if let Err(e) = b.disconnect(node) {
            tracing::error!(node, error = %e, "dropping a revoked node's MQTT session");
        }
    }));
    Ok(Some(broker))
}

/// Hands the chunks of RPC answers to whoever waits for them, until stopped.
fn spawn_rpc_fanout(
    rpc: Arc<Rpc>,
    ingest: &Ingest,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let mut responses = ingest.rpc_responses();
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
    })
}

/// The hub's mDNS announcement (`--mdns`); failing to announce is logged,
/// not fatal.
fn announce(
    config: &HubConfig,
    addr: SocketAddr,
    mqtt_addr: Option<SocketAddr>,
) -> Option<Arc<crate::mdns::Announcement>> {
    if !config.mdns {
        return None;
    }
    let name = crate::mdns::instance_name();
    crate::mdns::Announcement::start(
        &name,
        addr.port(),
        !config.ports.insecure_http,
        mqtt_addr.map(|a| (a.port(), !config.ports.insecure_mqtt)),
    )
    .map_err(|e| tracing::warn!(error = %e, "not announced on mDNS (agents need --hub)"))
    .ok()
    .map(Arc::new)
}

impl Hub {
    /// Opens the store, ensures the token and the `default` namespace, binds
    /// and starts serving.
    pub async fn start(config: HubConfig) -> Result<Hub, StartError> {
        config.validate()?;
        let Opened {
            token,
            tls,
            store,
            secrets_key,
            registry,
            identity,
        } = open(&config).await?;
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
        let builds = Arc::new(crate::build::Builds::default());
        let ingest = Ingest::new(
            store.clone(),
            fleet.clone(),
            identity.clone(),
            network.clone(),
        )
        .with_events(recorder.clone())
        .with_builds(builds.clone());
        let bind_failed = |source| StartError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(bind_failed)?;
        let addr = listener.local_addr().map_err(StartError::ListenerAddr)?;
        let broker = match start_broker(&config, &identity, &tls).await {
            Ok(b) => b,
            Err(e) => {
                store.shutdown().await;
                return Err(e);
            }
        };
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
        tasks.push((
            "RPC fan-out",
            spawn_rpc_fanout(rpc.clone(), &ingest, stop_rx.clone()),
        ));
        let dns = config
            .dns
            .as_ref()
            .and_then(|d| start_dns(d, &config.network));
        let (ingress_state, ingress, ingress_tls) = start_ingress(&config, stop_rx.clone()).await;
        let service_lb = config.service_lb.map(|address| {
            crate::service_lb::ServiceLb::new(
                address,
                crate::service_lb::ingress_addresses(address, &config.network),
                crate::conn_limits::ConnLimits::new(
                    config.ports.max_connections,
                    config.ports.max_connections_per_client,
                ),
            )
        });
        let mdns = announce(&config, addr, mqtt_addr);
        let pod_security = config.control.pod_security.clone();
        tracing::info!(
            default = %pod_security.default_level,
            exempt = ?pod_security.exempt_namespaces,
            allowed_host_paths = ?pod_security.allowed_host_paths.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "pod security admission"
        );
        // Controllers, scheduler and dispatcher run when there are agents to
        // talk to (an API-only hub just stores objects).
        let node_lost_after = config.control.lifecycle.eviction_timeout;
        let control = mqtt.is_some().then(|| {
            crate::control::spawn(
                store.clone(),
                fleet.clone(),
                config.control,
                crate::control::Parts {
                    dispatcher: crate::dispatch::Dispatcher::new(
                        config.network.clone(),
                        identity.clone(),
                    )
                    .with_builds(builds.clone()),
                    registry: Some(registry.clone()),
                    edge: crate::control::Edge {
                        dns: dns.clone(),
                        ingress: ingress_state,
                        pod_routes: config.pod_routes,
                        host: None,
                        mdns: mdns.clone(),
                        lb: service_lb.clone(),
                    },
                    events: recorder,
                },
                stop_rx.clone(),
            )
        });
        if control.is_some() {
            tasks.push((
                "builds",
                crate::build::controller::spawn(
                    store.clone(),
                    registry.clone(),
                    builds.clone(),
                    node_lost_after,
                    stop_rx.clone(),
                ),
            ));
        }
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
            builds: Some(builds.clone()),
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
        finish_data_dir(
            &config.data_dir,
            &format!("{scheme}://{}", loopback(addr)),
            &tls,
            &token,
        );
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
            service_lb,
            builds,
            tasks,
            _mdns: mdns,
        })
    }

    /// The hub's load balancer of `LoadBalancer` Services, if it runs.
    pub fn service_lb(&self) -> Option<&Arc<crate::service_lb::ServiceLb>> {
        self.service_lb.as_ref()
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

    /// Build jobs, their reports and registry grants.
    pub fn builds(&self) -> &Arc<crate::build::Builds> {
        &self.builds
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
        // After the control loop, which opens its ports.
        if let Some(lb) = &self.service_lb {
            lb.close().await;
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
