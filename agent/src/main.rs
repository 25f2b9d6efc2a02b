//! `bramble-agent`: the node agent.
//!
//! - `bramble-agent --hub URL --node-name NAME --token TOKEN` joins a hub
//!   over MQTT (see `bramble_agent::session`) and runs the pods it is
//!   given; it restores them from `RUN_DIR/desired.json` while the hub is
//!   away.
//! - `bramble-agent run -f pod.yaml --image NAME=ARCHIVE` runs the pods of
//!   local YAML files instead, printing each pod's status as a JSON line
//!   when it changes.
//!
//! Both run the same `NodeLoop` (retries, back-off, usage), over a runtime
//! and images owned here. Both keep the pods running (restarts, probes) and on SIGTERM/SIGINT exit
//! **leaving the pods running**; the next start adopts them (and stops the
//! ones no longer wanted). `bramble-agent reset` stops every pod and removes
//! all leftovers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bramble_agent::logs::{LogConfig, LogPump};
use bramble_agent::node::images::LocalImages;
use bramble_agent::node::info::NodeInfo;
use bramble_agent::node::network::{self, NetSettings};
use bramble_agent::node::pull::{PullingImages, RegistryLogin};
use bramble_agent::node::{Node, NodeDirs, NodeEvent, Waker, manifests, tmpfs};
use bramble_agent::pod::{PodDirs, PodOptions};
#[cfg(target_pointer_width = "64")]
use bramble_agent::runtime::clone_helper;
#[cfg(target_pointer_width = "64")]
use bramble_agent::runtime::libcontainer::{LibcontainerOptions, LibcontainerRuntime};
use bramble_agent::runtime::select::{self, Backend};
use bramble_agent::runtime::{OciBinaryOptions, OciBinaryRuntime, Runtime};
use bramble_agent::session::report_lines::ReportLines;
use bramble_agent::session::{
    self, Broker, LoopEnd, NodeCommand, NodeLoop, Session, SessionConfig, SharedReport, config,
};
use bramble_api::protocol::topics;
use clap::{Args, Parser, Subcommand};

/// Why a subcommand failed: any of the library's errors (or a message of
/// main's own), printed as `bramble-agent: <error>`.
type Failure = Box<dyn std::error::Error>;

/// Bramble node agent: without a subcommand, joins the hub given by
/// --hub and runs the pods it schedules here.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    join: JoinArgs,
}

#[derive(Args, Debug)]
struct JoinArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The hub's URL, e.g. `http://hub.local:7480` (its registry; the MQTT
    /// broker defaults to the same host, port 1883).
    #[arg(long, env = "BRAMBLE_HUB")]
    hub: Option<String>,
    /// `--join auto`: find the hub on the LAN by mDNS (`_bramble._tcp.local`)
    /// instead of --hub.
    #[arg(long, value_name = "auto")]
    join: Option<String>,
    /// This node's name (default: the hostname, lowercased).
    #[arg(long, env = "BRAMBLE_NODE_NAME")]
    node_name: Option<String>,
    /// A join token of the hub (DATA_DIR/node-token on the hub, or one from
    /// `bramble token create`); needed until the board joined (its key and
    /// the hub's are then in DATA_DIR/identity.json).
    #[arg(long, env = "BRAMBLE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The MQTT broker, `mqtt://HOST[:PORT]` (default: the hub's host, port
    /// 1883).
    #[arg(long, env = "BRAMBLE_MQTT_URL")]
    mqtt_url: Option<String>,
    /// Import an image archive under NAME before joining, e.g.
    /// `busybox=./busybox.tar`.
    #[arg(long = "image", value_name = "NAME=ARCHIVE")]
    images: Vec<String>,
    /// Longest pause between supervision rounds, in milliseconds.
    #[arg(long, default_value_t = 200)]
    tick_ms: u64,
    /// This node's LAN address, reported to the hub as its InternalIP (the
    /// other nodes route its pods via it). Default: the address this host
    /// uses toward the broker (toward the default route when the broker is
    /// on loopback).
    #[arg(long, env = "BRAMBLE_NODE_IP")]
    node_ip: Option<std::net::Ipv4Addr>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the pods of local YAML files (Pods, ConfigMaps, Secrets) until
    /// SIGTERM/SIGINT; pods keep running after exit and are adopted by the
    /// next run.
    Run(RunArgs),
    /// Stop every pod of this agent and remove all it left on the node.
    Reset(NodeArgs),
}

#[derive(Args, Debug)]
struct NodeArgs {
    /// Pods' rootfses, volumes, logs and the image store (disk).
    #[arg(
        long,
        env = "BRAMBLE_DATA_DIR",
        default_value = "/var/lib/bramble-agent"
    )]
    data_dir: PathBuf,
    /// Runtime state, pod records, namespaces, log FIFOs (tmpfs: records
    /// and runtime state hold Secret env).
    #[arg(long, env = "BRAMBLE_RUN_DIR", default_value = "/run/bramble-agent")]
    run_dir: PathBuf,
    /// Parent cgroup of the containers.
    #[arg(long, default_value = "/bramble")]
    cgroup_parent: String,
    /// `libcontainer` (in-process; 64-bit builds only, their default),
    /// `auto` (the first of crun, runc in PATH; the default of 32-bit
    /// builds), or an OCI runtime binary (`runc`, `crun`, or a path).
    #[arg(long, env = "BRAMBLE_RUNTIME", default_value = select::DEFAULT)]
    runtime: String,
    /// Rotate a container's log file at this size (bytes).
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    log_max_size: u64,
    /// Log files kept per container, the current one included.
    #[arg(long, default_value_t = 5)]
    log_max_files: usize,
    /// The nftables table (family ip) this agent owns for services,
    /// masquerade and hostPorts; agents sharing a network namespace need
    /// different ones.
    #[arg(long, env = "BRAMBLE_NFT_TABLE", default_value = network::DEFAULT_TABLE)]
    nft_table: String,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// YAML files with the pods to run (and their ConfigMaps and Secrets).
    #[arg(short = 'f', long = "file")]
    files: Vec<PathBuf>,
    /// Import an image archive (OCI layout/archive or `docker save`) under
    /// NAME, e.g. `busybox=./busybox.tar`.
    #[arg(long = "image", value_name = "NAME=ARCHIVE")]
    images: Vec<String>,
    /// Longest pause between supervision rounds, in milliseconds.
    #[arg(long, default_value_t = 200)]
    tick_ms: u64,
    /// Print each pod's CPU and memory usage (from the cgroups) as a JSON
    /// line every this many seconds; 0: never.
    #[arg(long, default_value_t = 0)]
    usage_every: u64,
}

/// A flag set by SIGTERM or SIGINT, which the node loop reads.
fn stop_on_signals() -> Result<Arc<AtomicBool>, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // Only stores to the flag (async-signal-safe); exec resets the
        // handler to the default in containers.
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("installing the handler of signal {sig}: {e}"))?;
    }
    Ok(stop)
}

/// The backend `--runtime` selects (`auto` resolved against `PATH`).
fn choose_backend(args: &NodeArgs) -> Result<Backend, Failure> {
    Ok(select::choose(
        &args.runtime,
        std::env::var_os("PATH").as_deref(),
    )?)
}

fn make_runtime(args: &NodeArgs, backend: &Backend) -> Result<Arc<dyn Runtime>, Failure> {
    let root = args.run_dir.join("runtime");
    match backend {
        #[cfg(target_pointer_width = "64")]
        Backend::Libcontainer => {
            let helper = std::env::current_exe().map_err(|e| {
                format!("locating the bramble-agent binary (the clone helper): {e}")
            })?;
            LibcontainerRuntime::new(LibcontainerOptions {
                root,
                cgroup_parent: args.cgroup_parent.clone(),
                helper,
            })
            .map(|r| Arc::new(r) as Arc<dyn Runtime>)
            .map_err(Into::into)
        }
        Backend::Binary(binary) => {
            let mut options = OciBinaryOptions::runc(root, args.cgroup_parent.clone());
            options.binary = binary.clone();
            OciBinaryRuntime::new(options)
                .map(|r| Arc::new(r) as Arc<dyn Runtime>)
                .map_err(Into::into)
        }
    }
}

fn make_pump(args: &NodeArgs) -> Result<Arc<LogPump>, Failure> {
    let config = LogConfig {
        max_size: args.log_max_size,
        max_files: args.log_max_files,
        ..LogConfig::default()
    };
    LogPump::start(args.run_dir.join("fifo"), config)
        .map(Arc::new)
        .map_err(Into::into)
}

/// What every pod of this node gets besides its spec: the log pump, and
/// `DATA_DIR/seccomp` for `Localhost` seccomp profiles.
fn pod_options(args: &NodeArgs) -> Result<PodOptions, Failure> {
    Ok(PodOptions {
        log_pump: Some(make_pump(args)?),
        seccomp_dir: Some(args.data_dir.join("seccomp")),
        ..PodOptions::default()
    })
}

/// The pods' threads wake the node loop through `to_loop`, and are
/// supervised at least every `tick_ms`.
fn waker(to_loop: std::sync::mpsc::Sender<NodeCommand>, tick_ms: u64) -> Waker {
    Waker {
        wake: Arc::new(move || {
            let _ = to_loop.send(NodeCommand::PodsReported);
        }),
        max_pause: Duration::from_millis(tick_ms.max(1)),
    }
}

fn dirs(args: &NodeArgs) -> NodeDirs {
    NodeDirs {
        pods: PodDirs {
            data: args.data_dir.join("pods"),
            logs: args.data_dir.join("logs"),
            netns: args.run_dir.join("netns"),
        },
        records: args.run_dir.join("pods"),
        cgroup_parent: args.cgroup_parent.clone(),
        volumes: args.data_dir.join("volumes"),
    }
}

fn print_events(events: &[NodeEvent]) {
    for e in events {
        match e {
            NodeEvent::StartFailed { pod, error, .. } | NodeEvent::StopFailed { pod, error } => {
                eprintln!("bramble-agent: pod {pod}: {error}");
            }
            NodeEvent::LeftoverError { error } => eprintln!("bramble-agent: leftover: {error}"),
            _ => {}
        }
    }
}

/// Opens the image store and imports `--image NAME=ARCHIVE` archives.
fn open_images(data_dir: &Path, specs: &[String]) -> Result<LocalImages, Failure> {
    let images = LocalImages::open(&data_dir.join("images"))?;
    for spec in specs {
        let (name, archive) = spec
            .split_once('=')
            .ok_or_else(|| format!("--image {spec:?}: expected NAME=ARCHIVE"))?;
        let names = images.import(archive.as_ref(), Some(name))?;
        tracing::info!(archive, ?names, "image imported");
    }
    Ok(images)
}

/// Reads and logs the node's facts.
fn node_info() -> Option<NodeInfo> {
    match NodeInfo::read() {
        Ok(info) => {
            tracing::info!(arch = %info.architecture, kernel = %info.kernel, cpus = info.cpus,
                memory_mib = info.memory_bytes >> 20, cgroup_v2 = info.cgroup_v2, "node");
            for w in info.warnings() {
                tracing::warn!("{w}");
            }
            Some(info)
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the node's facts");
            None
        }
    }
}

/// Writes the report's changes to stdout as JSON lines ([`ReportLines`]).
fn print_report(report: Arc<SharedReport>) -> Box<dyn Fn() + Send> {
    let printed = Mutex::new(ReportLines::default());
    Box::new(move || {
        let (now, _) = report.snapshot();
        let lines = printed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lines(&now);
        let mut out = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    })
}

/// The node loop over local files: no hub, no session; the report goes to
/// stdout.
fn run(args: RunArgs) -> Result<(), Failure> {
    let backend = choose_backend(&args.node)?;
    let images = open_images(&args.node.data_dir, &args.images)?;
    let wanted = manifests::load(&args.files)?;
    tmpfs::ensure(&args.node.run_dir)?;
    node_info();
    let runtime = make_runtime(&args.node, &backend)?;
    let options = pod_options(&args.node)?;
    let stop = stop_on_signals()?;
    // No session: only the pods' threads send (their reports).
    let (to_loop, commands) = std::sync::mpsc::channel();
    let waker = waker(to_loop, args.tick_ms);
    let (node, events) = Node::open(runtime, Arc::new(images), dirs(&args.node), options, waker)?;
    print_events(&events);
    let report = SharedReport::new();
    let usage_every = (args.usage_every > 0).then(|| Duration::from_secs(args.usage_every));
    let mut node_loop = NodeLoop::new(
        node,
        args.node.run_dir.clone(),
        report.clone(),
        print_report(report),
    )
    .with_usage_every(usage_every);
    node_loop.apply_local(wanted);
    node_loop.run(&stop, &commands, Duration::from_millis(args.tick_ms.max(1)));
    Ok(())
}

/// The joined agent: the session on its threads, the node loop here.
fn join(mut args: JoinArgs) -> Result<(), Failure> {
    let token = args
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(bramble_trust::JoinToken::parse)
        .transpose()
        .map_err(|e| format!("--token: {e}"))?;
    let hub = match (args.hub.clone(), args.join.as_deref()) {
        (Some(_), Some(_)) => {
            return Err("--hub and --join auto exclude each other: give one".into());
        }
        (Some(hub), None) => hub,
        (None, Some("auto")) => {
            let pinned = session::identity::load_or_create(&args.node.data_dir)?
                .hub
                .map(|h| h.fingerprint());
            let Some(expected) = pinned.or_else(|| token.as_ref().map(|t| t.hub())) else {
                return Err(
                    "--join auto needs --token (it names the hub's key, which a hub found on \
                     the LAN must prove)"
                        .into(),
                );
            };
            let found = session::discover::discover(session::discover::DISCOVERY_TIMEOUT, |hub| {
                session::discover::prove(hub, expected)
            })?;
            tracing::info!(hub = %found.url, instance = %found.instance, "hub found on mDNS");
            if args.mqtt_url.is_none() {
                args.mqtt_url = found.mqtt_url;
            }
            found.url
        }
        (None, Some(other)) => {
            return Err(format!(
                "--join {other:?}: only `--join auto` is known (or give --hub URL)"
            )
            .into());
        }
        (None, None) => {
            return Err(
                "no hub given: bramble-agent --hub URL --token TOKEN, or --join auto to \
                 find it on the LAN (or a subcommand: run, reset; see --help)"
                    .into(),
            );
        }
    };
    let node_name = match &args.node_name {
        Some(n) => n.clone(),
        None => rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .to_lowercase(),
    };
    topics::check_node(&node_name).map_err(|why| {
        format!("node name {node_name:?}: {why} (give a valid one with --node-name)")
    })?;
    let broker = Broker::resolve(&hub, args.mqtt_url.as_deref())?;
    let board = session::identity::load_or_create(&args.node.data_dir)?;
    if token.is_none() && board.hub.is_none() {
        return Err(format!(
            "node {node_name} has not joined yet: give a join token of the hub with --token or \
             BRAMBLE_TOKEN (DATA_DIR/node-token on the hub, or `bramble token create`)"
        )
        .into());
    }
    // The hub's key as pinned (or as the token names it) vouches for its CA.
    let expected = board
        .hub
        .as_ref()
        .map(|h| h.fingerprint())
        .or_else(|| token.as_ref().map(|t| t.hub()));
    let hub_ca = session::hub_ca::ensure(&args.node.data_dir, &hub, expected)?;
    let registry_tls = hub_ca.as_deref().map(bramble_trust::tls::ureq_config);
    let backend = choose_backend(&args.node)?;
    let images = open_images(&args.node.data_dir, &args.images)?;
    tmpfs::ensure(&args.node.run_dir)?;
    let info = node_info().ok_or("cannot read the node's facts for the hello")?;
    let mut cfg = SessionConfig {
        node: node_name.clone(),
        session: config::new_session_id(),
        broker,
        data_dir: args.node.data_dir.clone(),
        token,
        heartbeat: Duration::from_secs(1),
        run_dir: args.node.run_dir.clone(),
        runtime: None,
        broker_ca: hub_ca.clone().unwrap_or_default(),
    };
    let node_ip = args
        .node_ip
        .or_else(|| network::detect_node_ip(&cfg.broker.host, cfg.broker.port));
    let mut hello = session::hello::build(
        &node_name,
        &cfg.session,
        &info,
        &session::hello::os_image(),
        &backend.flag(),
    );
    tracing::info!(node_ip = ?node_ip, nft_table = %args.node.nft_table, "pod network");
    hello.internal_ip = node_ip.map(|ip| ip.to_string());
    hello
        .features
        .push(bramble_api::protocol::FEATURE_NETWORK.to_string());
    hello
        .features
        .push(bramble_api::protocol::rpc::FEATURE_EXEC_STREAM.to_string());
    hello
        .features
        .push(bramble_api::protocol::rpc::FEATURE_LOGS_PREVIOUS.to_string());
    hello
        .features
        .push(bramble_api::protocol::rpc::FEATURE_PORT_FORWARD.to_string());
    hello
        .features
        .push(bramble_api::protocol::FEATURE_VOLUMES.to_string());
    hello
        .features
        .push(bramble_api::protocol::FEATURE_POD_HOSTNAMES.to_string());
    hello
        .features
        .push(bramble_api::protocol::FEATURE_BUILD.to_string());
    hello
        .features
        .push(bramble_api::protocol::rpc::FEATURE_BUILD_LOGS.to_string());
    hello.volumes_dir = std::path::absolute(args.node.data_dir.join("volumes"))
        .ok()
        .map(|d| d.display().to_string());
    let runtime = make_runtime(&args.node, &backend)?;
    cfg.runtime = Some(runtime.clone());
    let options = pod_options(&args.node)?;
    let (to_node, from_session) = std::sync::mpsc::channel();
    let pulled = std::sync::Mutex::new(to_node.clone());
    let to_node_builds = to_node.clone();
    let pinned: session::connection::PinnedHub =
        std::sync::Arc::new(std::sync::Mutex::new(board.hub.clone()));
    let registry_login = match std::env::var("BRAMBLE_REGISTRY_TOKEN") {
        Ok(t) => RegistryLogin::Bearer(t),
        Err(_) => RegistryLogin::Node {
            user: node_name.clone(),
            keys: Box::new(board.keys.clone()),
            hub: pinned.clone(),
        },
    };
    let mut build_env = build_env(
        &args.node.data_dir,
        runtime.clone(),
        &hub,
        registry_login.clone(),
        registry_tls.clone(),
    )?;
    // RUN steps join the pod network with addresses the node hands out.
    build_env.addresses = Some(Arc::new(bramble_agent::build::network::NodeAddresses::new(
        to_node.clone(),
    )));
    build_env.netns_dir = args.node.run_dir.join("netns");
    let source = PullingImages::new(
        Arc::new(images),
        &hub,
        registry_login,
        registry_tls,
        std::sync::Arc::new(move || {
            let tx = pulled.lock().unwrap_or_else(|p| p.into_inner());
            let _ = tx.send(NodeCommand::PullDone);
        }),
    );
    let stop = stop_on_signals()?;
    let waker = waker(to_node.clone(), args.tick_ms);
    let (mut node, events) =
        Node::open(runtime, Arc::new(source), dirs(&args.node), options, waker)?;
    print_events(&events);
    node.enable_network(NetSettings {
        node_ip,
        table: args.node.nft_table.clone(),
    });
    let report = SharedReport::new();
    let session = Session::start(cfg, hello, pinned, report.clone(), to_node)?;
    let built = std::sync::Mutex::new(to_node_builds);
    let builder = bramble_agent::build::runner::Builder::new(
        build_env,
        Arc::new(move || {
            let tx = built.lock().unwrap_or_else(|p| p.into_inner());
            let _ = tx.send(NodeCommand::PodsReported);
        }),
    );
    let mut node_loop = NodeLoop::new(node, args.node.run_dir.clone(), report, session.notifier())
        .with_builder(builder);
    node_loop.restore();
    match node_loop.run(
        &stop,
        &from_session,
        Duration::from_millis(args.tick_ms.max(1)),
    ) {
        LoopEnd::Stopped => Ok(()),
        LoopEnd::Refused(why) => Err(why.into()),
    }
}

fn reset(args: NodeArgs) -> Result<(), Failure> {
    let backend = choose_backend(&args)?;
    tmpfs::ensure(&args.run_dir)?;
    let images = LocalImages::open(&args.data_dir.join("images"))?;
    let runtime = make_runtime(&args, &backend)?;
    let options = pod_options(&args)?;
    let (mut node, events) = Node::open(
        runtime,
        Arc::new(images),
        dirs(&args),
        options,
        Waker::none(),
    )?;
    print_events(&events);
    let events = node.stop_all();
    print_events(&events);
    // What build jobs left: their steps' overlays and files (their
    // containers went with `Node::open`'s leftovers).
    bramble_agent::build::job::remove_leftovers(&args.data_dir.join("builds"));
    node.enable_network(NetSettings {
        node_ip: None,
        table: args.nft_table.clone(),
    });
    if let Err(e) = node.remove_network() {
        eprintln!("bramble-agent: removing the node network: {e}");
    }
    let failed = events
        .iter()
        .filter(|e| matches!(e, NodeEvent::StopFailed { .. }))
        .count();
    if failed > 0 {
        return Err(format!("{failed} pods could not be removed cleanly").into());
    }
    drop(node);
    Ok(tmpfs::release(&args.run_dir)?)
}

/// Logs to stderr; `BRAMBLE_LOG` is a `target=level` list such as
/// `debug` or `info,bramble_agent=debug` (default `info`, libcgroups' notes
/// about absent v1 controllers hidden).
fn init_tracing() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let default = "info,libcgroups=error";
    let filter: Targets = std::env::var("BRAMBLE_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| default.parse().expect("valid default filter"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(filter)
        .init();
}

fn main() {
    // The clone helper: single-threaded, silent (see clone_helper). Checked
    // before anything else runs.
    #[cfg(target_pointer_width = "64")]
    {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        if args.get(1).is_some_and(|a| a == clone_helper::SUBCOMMAND) {
            std::process::exit(clone_helper::main(&args[2..]));
        }
    }
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Some(Command::Run(a)) => run(a),
        Some(Command::Reset(a)) => reset(a),
        None => join(cli.join),
    };
    if let Err(e) = result {
        eprintln!("bramble-agent: {e}");
        std::process::exit(1);
    }
}

/// What build jobs run with: the agent's runtime, its image store (blobs
/// and unpacked layers), registry clients for reading (the node's login)
/// and pushing (a job's grant), `DATA_DIR/builds` and the kept logs in
/// `DATA_DIR/build-logs`.
fn build_env(
    data_dir: &Path,
    runtime: Arc<dyn Runtime>,
    hub: &str,
    login: RegistryLogin,
    tls: Option<ureq::tls::TlsConfig>,
) -> Result<bramble_agent::build::job::JobEnv, Failure> {
    let images = data_dir.join("images");
    let (read_hub, read_tls) = (hub.to_string(), tls.clone());
    let push_hub = hub.to_string();
    Ok(bramble_agent::build::job::JobEnv {
        runtime,
        blobs: bramble_images::BlobStore::open(images.join("blobs"))?,
        layers: bramble_images::LayerStore::open(images.join("layers"))?,
        read: Box::new(move || login.client(&read_hub, read_tls.as_ref())),
        push: Box::new(move |user, password| {
            let c = bramble_images::RegistryClient::with_basic_auth(&push_hub, user, password);
            match &tls {
                Some(t) => c.with_tls(t.clone()),
                None => c,
            }
        }),
        dir: data_dir.join("builds"),
        logs: bramble_agent::build::log::BuildLogs::open(&data_dir.join("build-logs")),
        addresses: None,
        netns_dir: PathBuf::new(),
        caches: data_dir.join("build-cache"),
    })
}
