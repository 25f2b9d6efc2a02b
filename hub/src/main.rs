//! `bramble-hub`: parses flags, sets up logging, runs the hub until SIGTERM/SIGINT.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bramble_api::cidr::Cidr;
use bramble_hub::admission::pod_security::config::parse_exempt_namespace;
use bramble_hub::admission::pod_security::{AllowedHostPath, Level, PodSecurityConfig};
use bramble_hub::control::ControlConfig;
use bramble_hub::controllers::NodeLifecycleConfig;
use bramble_hub::network::NetworkSettings;
use bramble_hub::server::{DnsConfig, PortSettings};
use bramble_hub::tls::ServingName;
use bramble_hub::{Hub, HubConfig};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

/// What `bramble-hub` can do besides serving.
#[derive(clap::Subcommand, Debug)]
enum HubCommand {
    /// Issue a TLS certificate from the cluster CA for another server the
    /// boards connect to (an external MQTT broker such as mosquitto): writes
    /// OUT/tls.crt (the certificate, then the CA), OUT/tls.key (0600) and
    /// OUT/ca.crt, then exits. Boards trust it as they trust the hub.
    IssueCert {
        /// A DNS name or IP address the certificate covers (repeatable).
        #[arg(long = "name", required = true, value_parser = parse_san)]
        names: Vec<ServingName>,
        /// Directory to write the files into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// How long the certificate is valid.
        #[arg(long, default_value = "365d")]
        valid_for: humantime::Duration,
    },
}

/// Bramble hub: cluster state and the Kubernetes-style API.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Directory for the state database and the admin token.
    #[arg(long, env = "BRAMBLE_DATA_DIR", default_value = "/var/lib/bramble")]
    data_dir: PathBuf,
    /// Address of the API and the registry (HTTPS; plain HTTP with
    /// --insecure-http).
    #[arg(long, env = "BRAMBLE_LISTEN", default_value = "0.0.0.0:7480")]
    listen: SocketAddr,
    /// Address of the embedded MQTT broker the agents connect to (MQTT over
    /// TLS) [default: 0.0.0.0:8883; 0.0.0.0:1883 with --insecure-mqtt].
    #[arg(long, env = "BRAMBLE_MQTT_LISTEN")]
    mqtt_listen: Option<SocketAddr>,
    /// The embedded broker speaks plain MQTT instead of MQTT over TLS. For
    /// labs only: node logins cross the network in clear and can be
    /// replayed (a warning says so at every start).
    #[arg(long, env = "BRAMBLE_INSECURE_MQTT")]
    insecure_mqtt: bool,
    /// Use this external broker instead of the embedded one:
    /// `mqtts://[user:pass@]host[:port]` (MQTT over TLS, port 8883; e.g.
    /// mosquitto with a certificate from `bramble-hub issue-cert` and
    /// `message_size_limit 0`), or `mqtt://` for plain MQTT (labs).
    #[arg(long, env = "BRAMBLE_MQTT_URL")]
    mqtt_url: Option<String>,
    /// The CA (PEM) the `mqtts://` broker's certificate is checked against
    /// [default: the cluster CA, DATA_DIR/ca.crt, which signs
    /// `bramble-hub issue-cert` certificates and which the boards trust].
    #[arg(long, env = "BRAMBLE_MQTT_CA", requires = "mqtt_url")]
    mqtt_ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<HubCommand>,
    /// A node without a heartbeat for this long is NotReady (agents beat
    /// every second).
    #[arg(long, default_value = "4s")]
    node_heartbeat_grace: humantime::Duration,
    /// A node NotReady for this long has its pods replaced on other nodes.
    #[arg(long, default_value = "60s")]
    node_eviction_timeout: humantime::Duration,
    /// Events not seen again for this long are deleted (kube-apiserver's `--event-ttl`).
    #[arg(long, default_value = "1h")]
    event_ttl: humantime::Duration,
    /// Most events kept in a namespace; the least recently seen go first.
    #[arg(long, default_value_t = bramble_hub::events::NAMESPACE_CAP)]
    events_per_namespace: usize,
    /// Addresses of every node's pods; each node gets a block of it.
    #[arg(long, env = "BRAMBLE_CLUSTER_CIDR", default_value = bramble_hub::network::DEFAULT_CLUSTER_CIDR)]
    cluster_cidr: Cidr,
    /// Prefix length of each node's pod CIDR (26: 61 pods per node, 1,024
    /// nodes in a /16; k3s' 24: 110 pods, 256 nodes).
    #[arg(long, default_value_t = bramble_hub::network::DEFAULT_NODE_CIDR_PREFIX)]
    node_cidr_mask_size: u8,
    /// Virtual IPs of Services (ClusterIPs).
    #[arg(long, env = "BRAMBLE_SERVICE_CIDR", default_value = bramble_hub::network::DEFAULT_SERVICE_CIDR)]
    service_cidr: Cidr,
    /// DNS domain of Services: `<svc>.<ns>.svc.<domain>`.
    #[arg(long, default_value = bramble_hub::network::DEFAULT_CLUSTER_DOMAIN)]
    cluster_domain: String,
    /// Address of the cluster DNS for the LAN (`<svc>.<ns>.svc.<domain>`).
    #[arg(long, env = "BRAMBLE_DNS_LISTEN", default_value = bramble_hub::server::DEFAULT_DNS_LISTEN)]
    dns_listen: SocketAddr,
    /// Resolvers for names outside the cluster (repeatable); default: the
    /// `nameserver`s of /etc/resolv.conf.
    #[arg(long = "dns-upstream")]
    dns_upstreams: Vec<SocketAddr>,
    /// Serve no DNS.
    #[arg(long)]
    no_dns: bool,
    /// Address of the HTTP ingress (Ingress objects' host and path rules).
    #[arg(long, env = "BRAMBLE_INGRESS_LISTEN", default_value = bramble_hub::ingress::DEFAULT_INGRESS_LISTEN)]
    ingress_listen: SocketAddr,
    /// Address of the HTTPS ingress: certificates from the Ingresses'
    /// `spec.tls` (`kubernetes.io/tls` Secrets), chosen by SNI.
    #[arg(long, env = "BRAMBLE_INGRESS_TLS_LISTEN", default_value = bramble_hub::ingress::DEFAULT_INGRESS_TLS_LISTEN)]
    ingress_tls_listen: SocketAddr,
    /// Serve no HTTPS ingress (the plain one still runs).
    #[arg(long)]
    no_ingress_tls: bool,
    /// Serve no ingress, neither HTTP nor HTTPS.
    #[arg(long)]
    no_ingress: bool,
    /// Address the load balancer of `type: LoadBalancer` Services listens
    /// on (each Service port on it, TCP and UDP) [default: the --listen
    /// address].
    #[arg(long, env = "BRAMBLE_LB_ADDRESS")]
    lb_address: Option<std::net::IpAddr>,
    /// Serve no LoadBalancer Services (their EXTERNAL-IP stays pending;
    /// their node ports still work), as k3s' `--disable servicelb`.
    #[arg(long, env = "BRAMBLE_NO_SERVICE_LB")]
    no_service_lb: bool,
    /// Do not announce the hub on the LAN with mDNS (`_bramble._tcp.local`,
    /// what `bramble-agent --join auto` looks for).
    #[arg(long, env = "BRAMBLE_NO_MDNS")]
    no_mdns: bool,
    /// Leave this host's routes and nftables alone: no routes to the nodes'
    /// pod CIDRs (the ingress then reaches only pods on this host) and no
    /// service table for ClusterIPs.
    #[arg(long)]
    no_pod_routes: bool,
    /// Provision the --mqtt-url mosquitto's dynamic security plugin with the
    /// nodes' logins and topics, so the broker too keeps each node to its
    /// own topics (the URL's user needs the plugin's admin role).
    #[arg(long, env = "BRAMBLE_MQTT_DYNSEC", requires = "mqtt_url")]
    mqtt_dynsec: bool,
    /// New boards wait for `bramble nodes approve NAME` after they joined
    /// with a valid token (as k3s' and kubeadm's node approval).
    #[arg(long, env = "BRAMBLE_APPROVE_NODES")]
    approve_nodes: bool,
    /// Serve the API and registry over plain HTTP instead of HTTPS. For labs
    /// only: the admin token, node logins, Secrets and images then cross the
    /// network in clear (a warning says so at every start).
    #[arg(long, env = "BRAMBLE_INSECURE_HTTP")]
    insecure_http: bool,
    /// Another name or address the serving certificate covers (repeatable;
    /// it always covers the host name, `localhost` and the host's
    /// addresses), e.g. a DNS alias or a NAT address clients use.
    #[arg(long = "tls-san", value_parser = parse_san)]
    tls_sans: Vec<ServingName>,
    /// Most open connections to the API/registry port; more get 503.
    #[arg(long, default_value_t = bramble_hub::conn_limits::DEFAULT_TOTAL)]
    max_connections: usize,
    /// Most open connections to the API/registry port from one address;
    /// more get 429.
    #[arg(long, default_value_t = bramble_hub::conn_limits::DEFAULT_PER_CLIENT)]
    max_connections_per_client: usize,
    /// Most watches one token may hold open at once; more get 429.
    #[arg(long, default_value_t = bramble_hub::api::watch_limit::DEFAULT_MAX_WATCHES_PER_TOKEN)]
    max_watches_per_token: usize,
    /// A watch that allows bookmarks (`allowWatchBookmarks=true`, as
    /// informers ask) and saw nothing for this long gets a BOOKMARK with its
    /// current resourceVersion.
    #[arg(long, default_value = "1m")]
    watch_bookmark_interval: humantime::Duration,
    /// Pod Security level (privileged, baseline or restricted) that
    /// namespaces without `pod-security.kubernetes.io/enforce`, `audit` or
    /// `warn` labels get for that mode, as Kubernetes' PodSecurity
    /// admission configuration defaults.
    #[arg(
        long,
        env = "BRAMBLE_DEFAULT_POD_SECURITY",
        value_name = "LEVEL",
        default_value = "baseline"
    )]
    default_pod_security: Level,
    /// Namespaces whose pods and workloads skip Pod Security
    /// (comma-separated); `kube-system` always does.
    #[arg(long, value_name = "NS[,NS...]", value_delimiter = ',', value_parser = parse_exempt_namespace)]
    pod_security_exempt_namespaces: Vec<String>,
    /// Host directories whose `hostPath` volumes the baseline level admits
    /// (comma-separated absolute paths, each with what is below it;
    /// restricted still refuses every hostPath). The node follows symbolic
    /// links inside them: allow only directories pods cannot write links
    /// into.
    #[arg(long, value_name = "PATH[,PATH...]", value_delimiter = ',')]
    allowed_host_paths: Vec<AllowedHostPath>,
    /// Lifetime of the serving certificate (renewed after two thirds of it).
    #[arg(long, default_value = "365d", hide = true)]
    tls_cert_lifetime: humantime::Duration,
    /// Log filter, e.g. `info` or `bramble_hub=debug`.
    /// The embedded broker (rumqttd) logs every connection at info.
    #[arg(long, env = "BRAMBLE_LOG", default_value = "info,rumqttd=warn")]
    log: String,
}

/// Raises the soft limit on open files to the hard one (as Go programs
/// do): the API, the broker and the registry each hold many sockets and
/// files, and the soft default of 1,024 is below the connection caps.
fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, soft = ?limit.current, "raising the open files limit failed");
        }
    }
}

/// `bramble-hub issue-cert`: a certificate from the cluster CA (created
/// if this data directory has none yet) for another server.
fn issue_cert(
    data_dir: &std::path::Path,
    names: &[ServingName],
    out: &std::path::Path,
    valid_for: std::time::Duration,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    bramble_hub::data_dir::secure(data_dir)
        .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    let ca =
        bramble_hub::tls::ClusterCa::load_or_create(data_dir).context("loading the cluster CA")?;
    let set = names.iter().cloned().collect();
    let (chain, key) = ca
        .issue_pem(&set, std::time::SystemTime::now(), valid_for)
        .context("issuing the certificate")?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, text: &str, mode: u32| -> anyhow::Result<std::path::PathBuf> {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
        Ok(path)
    };
    let cert = write("tls.crt", &chain, 0o644)?;
    let key = write("tls.key", &key, 0o600)?;
    let ca_file = write("ca.crt", ca.pem(), 0o644)?;
    let list: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    println!(
        "issued a certificate for {} from the cluster CA:\n  {}\n  {}\n  {}\n\
         mosquitto.conf (Debian's mosquitto runs as user mosquitto: chown mosquitto the key):\n  listener 8883\n  certfile {}\n  keyfile {}\n\
         then: bramble-hub --mqtt-url mqtts://{}:8883 (boards: --mqtt-url mqtts://{}:8883)",
        list.join(", "),
        cert.display(),
        key.display(),
        ca_file.display(),
        cert.display(),
        key.display(),
        list[0],
        list[0]
    );
    Ok(())
}

fn parse_san(text: &str) -> Result<ServingName, String> {
    ServingName::parse(text).map_err(|e| e.to_string())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log)?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some(HubCommand::IssueCert {
        names,
        out,
        valid_for,
    }) = &args.command
    {
        return issue_cert(&args.data_dir, names, out, (*valid_for).into());
    }
    let config = HubConfig {
        data_dir: args.data_dir,
        listen: args.listen,
        // An external broker replaces the embedded one.
        mqtt_listen: args.mqtt_url.is_none().then(|| {
            args.mqtt_listen.unwrap_or_else(|| {
                let default = if args.insecure_mqtt {
                    bramble_hub::server::DEFAULT_MQTT_LISTEN_PLAIN
                } else {
                    bramble_hub::server::DEFAULT_MQTT_LISTEN
                };
                default.parse().expect("a valid default")
            })
        }),
        mqtt_url: args.mqtt_url,
        mqtt_ca: args.mqtt_ca,
        control: ControlConfig {
            lifecycle: NodeLifecycleConfig {
                heartbeat_grace: args.node_heartbeat_grace.into(),
                eviction_timeout: args.node_eviction_timeout.into(),
            },
            pod_security: std::sync::Arc::new(PodSecurityConfig {
                default_level: args.default_pod_security,
                exempt_namespaces: args.pod_security_exempt_namespaces.into_iter().collect(),
                allowed_host_paths: args.allowed_host_paths,
            }),
            ..ControlConfig::default()
        },
        network: NetworkSettings {
            cluster_cidr: args.cluster_cidr,
            node_cidr_prefix: args.node_cidr_mask_size,
            service_cidr: args.service_cidr,
            cluster_domain: args.cluster_domain,
        },
        dns: None,
        ingress: (!args.no_ingress).then_some(args.ingress_listen),
        ingress_tls: (!args.no_ingress && !args.no_ingress_tls).then_some(args.ingress_tls_listen),
        service_lb: (!args.no_service_lb).then(|| args.lb_address.unwrap_or(args.listen.ip())),
        mdns: !args.no_mdns,
        pod_routes: !args.no_pod_routes,
        approve_nodes: args.approve_nodes,
        mqtt_dynsec: args.mqtt_dynsec,
        ports: PortSettings {
            insecure_http: args.insecure_http,
            sans: args.tls_sans,
            cert_lifetime: args.tls_cert_lifetime.into(),
            insecure_mqtt: args.insecure_mqtt,
            max_connections: args.max_connections,
            max_connections_per_client: args.max_connections_per_client,
            max_watches_per_token: args.max_watches_per_token,
            watch_bookmark_interval: args.watch_bookmark_interval.into(),
        },
        events: bramble_hub::events::EventsConfig {
            ttl: args.event_ttl.into(),
            namespace_cap: args.events_per_namespace,
            ..Default::default()
        },
    };
    config.validate()?;
    raise_open_files_limit();
    let config = HubConfig {
        dns: (!args.no_dns).then(|| DnsConfig {
            listen: args.dns_listen,
            upstreams: if args.dns_upstreams.is_empty() {
                let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                bramble_dns::upstreams_from_resolv_conf(&text, Some(args.dns_listen))
            } else {
                args.dns_upstreams
            },
        }),
        ..config
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let hub = Hub::start(config).await?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        hub.stop(Duration::from_secs(10)).await?;
        anyhow::Ok(())
    })
}
