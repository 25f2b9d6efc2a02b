//! A whole cluster on this machine for end-to-end tests: one `bramble-hub`
//! process (with its embedded broker, or pointed at a mosquitto the test
//! starts) and N `bramble-agent` processes, each with its own data dir, run
//! dir, cgroup parent and node name, so they behave like separate boards.
//! Everything is removed on drop, also when a test fails: agents are reset
//! (their pods stopped and cleaned), processes killed, directories deleted.
//!
//! [`Cluster::start_in_lab`] runs the same processes on a [`Lab`] instead:
//! the hub (and mosquitto) in the lab's `hub` host listening on all its
//! addresses, each agent in its own `nodeK` host dialing
//! `https://10.77.0.2:7480`; the test process and the CLI reach the API
//! through a port forward (`Hub::url`). Declare the lab before the cluster
//! so that the cluster drops first.
//!
//! Length: over 600 lines because one concept (a whole cluster's processes
//! and their cleanup); its parts share the cleanup that must run on every
//! failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::lab::{Host, Lab};
pub use crate::mosquitto::Mosquitto;
use crate::ports::logged_addr;
use crate::{Client, bin, eventually};

/// The hub's API port inside a lab's `hub` host.
pub const LAB_API_PORT: u16 = 7480;
/// The MQTT port (embedded broker or mosquitto) inside a lab's `hub` host.
pub const LAB_MQTT_PORT: u16 = 1883;

/// Pod and service ranges for a cluster on this machine's loopback
/// (`--cluster-cidr`, `--service-cidr`): its agents route pod IPs and
/// program ClusterIPs in the machine's own network namespace, so two such
/// clusters at once (tests of two processes, or two tests of one) must not
/// share them. One of 1,024 slots, from the process id and a counter:
/// `10.64-127.x.0/20` (16 node blocks of /24) and `172.16-31.x.0/24`.
pub fn unique_ranges() -> (String, String) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let slot = (std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(n.wrapping_mul(131)))
        % 1024;
    let (hi, lo) = (slot / 16, slot % 16);
    (
        format!("10.{}.{}.0/20", 64 + hi, lo * 16),
        format!("172.{}.{}.0/24", 16 + hi % 16, (hi / 16) * 16 + lo),
    )
}

/// A short name unique to this test process and call: `t<pid>x<n>`.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id())
}

/// A child process whose stderr is collected; killed on drop.
pub struct Proc {
    pub child: Child,
    log: Arc<Mutex<String>>,
    /// Reads stderr into `log` until the pipe closes.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Spawns `cmd` collecting stderr (stdout discarded).
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let keep = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = keep.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        Proc {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// Everything written to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// For a process that has exited: everything it wrote to stderr, its
    /// last lines included (the reader may still be copying them when the
    /// exit is seen; this waits for the pipe to close).
    pub fn exited_log(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log()
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Which broker a cluster uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// The hub's embedded rumqttd.
    Embedded,
    /// A mosquitto started for the test (`--mqtt-url`).
    Mosquitto,
    /// A mosquitto with the dynamic security plugin and no anonymous
    /// access, which the hub provisions (`--mqtt-url` with the plugin's
    /// admin, `--mqtt-dynsec`).
    MosquittoDynsec,
}

/// The plugin admin of [`Broker::MosquittoDynsec`] clusters.
pub const DYNSEC_ADMIN: (&str, &str) = ("bramble-admin", "admin-pass-for-tests");

/// The hub of a test cluster.
pub struct Hub {
    pub proc: Proc,
    /// The API as the test process reaches it (a port forward in a lab).
    pub url: String,
    /// The API as agents reach it (`http://10.77.0.2:7480` in a lab).
    pub lan_url: String,
    pub token: String,
    pub node_token: String,
    /// The broker as agents reach it.
    pub mqtt_url: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    /// The lab host's network namespace it runs in, if any.
    netns: Option<String>,
    /// The API port inside its network namespace.
    api_port: u16,
    /// Where its load balancer serves `LoadBalancer` Services (an address
    /// of its own on loopback; `0.0.0.0` in a lab host).
    pub lb_address: std::net::IpAddr,
}

impl Hub {
    /// A hub on loopback: its API and embedded broker get port 0 at the
    /// first start, and the ports they got are kept for restarts (its
    /// agents keep their URLs).
    fn start(data_dir: &Path, mqtt: HubMqtt, extra: &[&str]) -> Hub {
        let mut args = vec![
            "--data-dir".to_string(),
            data_dir.display().to_string(),
            "--log".into(),
            "info".into(),
        ];
        args.extend(crate::LOOPBACK_HUB_FLAGS.iter().map(|s| s.to_string()));
        let lb_address = std::net::IpAddr::from(crate::ports::unique_loopback());
        args.extend(["--lb-address".into(), lb_address.to_string()]);
        let (pods, services) = unique_ranges();
        args.extend([
            "--cluster-cidr".into(),
            pods,
            "--service-cidr".into(),
            services,
        ]);
        let mqtt_url = match mqtt {
            HubMqtt::Embedded => None,
            HubMqtt::External(port) => {
                let url = format!("mqtt://127.0.0.1:{port}");
                args.extend(["--mqtt-url".into(), url.clone()]);
                Some(url)
            }
            HubMqtt::Dynsec(port) => {
                let (user, pw) = DYNSEC_ADMIN;
                args.extend([
                    "--mqtt-url".into(),
                    format!("mqtt://{user}:{pw}@127.0.0.1:{port}"),
                    "--mqtt-dynsec".into(),
                ]);
                Some(format!("mqtt://127.0.0.1:{port}"))
            }
        };
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut first = Command::new(bin("bramble-hub"));
        first.args(&args).args(["--listen", "127.0.0.1:0"]);
        if mqtt_url.is_none() {
            first.args(["--mqtt-listen", "127.0.0.1:0"]);
        }
        let mut proc = Proc::spawn(first);
        // The broker logs its address before the API does.
        let api = eventually(
            "the hub to log its API address",
            Duration::from_secs(20),
            || {
                let log = proc.log();
                if !proc.running() {
                    panic!("bramble-hub exited: {}", proc.exited_log());
                }
                logged_addr(&log, "hub listening", "addr")
            },
        );
        args.extend(["--listen".into(), api.to_string()]);
        let mqtt_url = mqtt_url.unwrap_or_else(|| {
            let broker = logged_addr(&proc.log(), "embedded MQTT broker listening", "listen")
                .expect("the embedded broker's address in the hub's log");
            args.extend(["--mqtt-listen".into(), broker.to_string()]);
            format!("{}://{broker}", mqtt_scheme(extra))
        });
        let url = format!("{}://{api}", scheme(extra));
        let mut hub = Hub {
            proc,
            lan_url: url.clone(),
            url,
            token: String::new(),
            node_token: String::new(),
            mqtt_url,
            data_dir: data_dir.to_path_buf(),
            args,
            netns: None,
            api_port: api.port(),
            lb_address,
        };
        hub.await_start();
        hub
    }

    /// A hub in lab host `host`, listening on 0.0.0.0 there, with the
    /// embedded broker or (`external`) a broker already on
    /// 127.0.0.1:[`LAB_MQTT_PORT`] in that host.
    fn start_in(data_dir: &Path, host: &Host, external: bool, extra: &[&str]) -> Hub {
        let mut args = vec![
            "--data-dir".to_string(),
            data_dir.display().to_string(),
            "--listen".into(),
            format!("0.0.0.0:{LAB_API_PORT}"),
            "--log".into(),
            "info".into(),
        ];
        if external {
            args.extend([
                "--mqtt-url".into(),
                format!("mqtt://127.0.0.1:{LAB_MQTT_PORT}"),
            ]);
        } else {
            args.extend(["--mqtt-listen".into(), format!("0.0.0.0:{LAB_MQTT_PORT}")]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let forwarded = host.forward(LAB_API_PORT);
        let mut hub = Hub {
            proc: Proc::spawn(Command::new("true")),
            url: format!("{}://127.0.0.1:{forwarded}", scheme(extra)),
            lan_url: format!("{}://{}:{LAB_API_PORT}", scheme(extra), host.ip()),
            token: String::new(),
            node_token: String::new(),
            mqtt_url: format!(
                "{}://{}:{LAB_MQTT_PORT}",
                if external { "mqtt" } else { mqtt_scheme(extra) },
                host.ip()
            ),
            data_dir: data_dir.to_path_buf(),
            args,
            netns: Some(host.ns_name().to_string()),
            api_port: LAB_API_PORT,
            lb_address: std::net::Ipv4Addr::UNSPECIFIED.into(),
        };
        hub.restart();
        hub
    }

    /// Whether something accepts connections on the API port (inside the
    /// hub's network namespace).
    fn api_listening(&self) -> bool {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.api_port));
        match &self.netns {
            Some(ns) => crate::lab::connect_in(ns, addr).is_ok(),
            None => std::net::TcpStream::connect(addr).is_ok(),
        }
    }

    /// (Re)starts the hub process with the same flags and data.
    pub fn restart(&mut self) {
        self.proc.kill9();
        let mut cmd = in_netns(self.netns.as_deref(), bin("bramble-hub"));
        cmd.args(&self.args);
        self.proc = Proc::spawn(cmd);
        self.await_start();
    }

    /// Waits until the hub's API answers, then reads its tokens.
    fn await_start(&mut self) {
        eventually("the hub to answer", Duration::from_secs(20), || {
            self.api_listening().then_some(())?;
            let client = Client::for_data_dir(&self.url, "", &self.data_dir);
            assert!(
                self.proc.running(),
                "bramble-hub exited: {}",
                self.proc.log()
            );
            (client.get_noauth("/healthz").0 == 200).then_some(())
        });
        let read = |f: &str| {
            std::fs::read_to_string(self.data_dir.join(f))
                .unwrap_or_else(|e| panic!("reading {f}: {e}"))
                .trim()
                .to_string()
        };
        self.token = read("token");
        self.node_token = read("node-token");
    }

    pub fn client(&self) -> Client {
        Client::for_data_dir(&self.url, &self.token, &self.data_dir)
    }

    /// The hub's CA (`DATA_DIR/ca.crt`, PEM).
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.data_dir.join("ca.crt")).expect("the hub's ca.crt")
    }
}

/// The embedded broker's scheme for a hub started with `extra` flags.
fn mqtt_scheme(extra: &[&str]) -> &'static str {
    if extra.contains(&"--insecure-mqtt") {
        "mqtt"
    } else {
        "mqtts"
    }
}

/// The API's scheme for a hub started with `extra` flags.
fn scheme(extra: &[&str]) -> &'static str {
    if extra.contains(&"--insecure-http") {
        "http"
    } else {
        "https"
    }
}

enum HubMqtt {
    Embedded,
    External(u16),
    Dynsec(u16),
}

/// `program` as a command, run in network namespace `netns` when given
/// (network only: it keeps the machine's mounts and cgroups).
fn in_netns(netns: Option<&str>, program: PathBuf) -> Command {
    match netns {
        Some(ns) => crate::lab::netns_command(ns, program),
        None => Command::new(program),
    }
}

/// Whether this build of `bramble-agent` lists `flag` in its `--help`.
fn agent_has_flag(flag: &str) -> bool {
    static HELP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let help = HELP.get_or_init(|| {
        Command::new(bin("bramble-agent"))
            .arg("--help")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    });
    help.contains(&format!("{flag} "))
}

/// HOOK: the flags an agent gets from the lab host it runs in — its LAN
/// address as `--node-ip` when this agent build has that flag.
pub fn lab_agent_flags(host: &Host) -> Vec<String> {
    let mut flags = Vec::new();
    if agent_has_flag("--node-ip") {
        flags.extend(["--node-ip".to_string(), host.ip().to_string()]);
    }
    flags
}

/// One agent of a test cluster.
pub struct Agent {
    pub name: String,
    pub proc: Proc,
    pub data_dir: PathBuf,
    pub run_dir: PathBuf,
    pub cgroup_parent: String,
    args: Vec<String>,
    /// The lab host's network namespace it runs in, if any.
    netns: Option<String>,
    /// Its own nft table when it shares the machine's namespace with others.
    nft_table: Option<String>,
}

impl Agent {
    /// (Re)starts the agent process with the same flags and data.
    pub fn restart(&mut self) {
        self.proc.kill9();
        let mut cmd = in_netns(self.netns.as_deref(), bin("bramble-agent"));
        cmd.args(&self.args).env("BRAMBLE_LOG", "info");
        self.proc = Proc::spawn(cmd);
    }

    /// Removes every pod and trace of this agent (`bramble-agent reset`).
    pub fn reset(&mut self) {
        self.proc.kill9();
        let out = in_netns(self.netns.as_deref(), bin("bramble-agent"))
            .arg("reset")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .args(["--cgroup-parent", &self.cgroup_parent])
            .args(
                self.nft_table
                    .iter()
                    .flat_map(|t| ["--nft-table", t.as_str()]),
            )
            .output();
        if let Ok(o) = out
            && !o.status.success()
        {
            eprintln!(
                "bramble-agent reset of {} failed: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.reset();
        let _ = std::fs::remove_dir_all(&self.run_dir);
        // `reset` leaves the (empty) parent cgroup, as a kubelet leaves
        // `kubepods`; the test's is unique, so it goes.
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = hierarchy
                .path()
                .join(self.cgroup_parent.trim_start_matches('/'));
            if dir.is_dir() {
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}

/// A hub and its agents. See the module docs.
pub struct Cluster {
    // Field order is drop order: agents (reset) first, then the hub, the
    // broker, and the directories last.
    pub agents: Vec<Agent>,
    pub hub: Hub,
    pub mosquitto: Option<Mosquitto>,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// A hub and `agents` agents, with extra hub flags (e.g.
    /// `--eviction-timeout 5s`). Waits until every node is Ready.
    pub fn start(broker: Broker, agents: usize, hub_flags: &[&str]) -> Cluster {
        crate::panic_note::install();
        let dir = tempfile::Builder::new()
            .prefix("bramble-cluster-")
            .tempdir()
            .expect("tempdir");
        let mosquitto = match broker {
            Broker::Embedded => None,
            Broker::Mosquitto => Some(Mosquitto::start()),
            Broker::MosquittoDynsec => {
                Some(Mosquitto::start_dynsec(DYNSEC_ADMIN.0, DYNSEC_ADMIN.1))
            }
        };
        let mqtt = match (&mosquitto, broker) {
            (Some(m), Broker::MosquittoDynsec) => HubMqtt::Dynsec(m.port),
            (Some(m), _) => HubMqtt::External(m.port),
            (None, _) => HubMqtt::Embedded,
        };
        let hub = Hub::start(&dir.path().join("hub"), mqtt, hub_flags);
        let mut cluster = Cluster {
            agents: Vec::new(),
            hub,
            mosquitto,
            dir,
        };
        let base = unique("t");
        for i in 0..agents {
            cluster.add_agent(&format!("{base}-n{i}"));
        }
        for a in 0..agents {
            let name = cluster.agents[a].name.clone();
            cluster.wait_node_ready(&name, Duration::from_secs(30));
        }
        cluster
    }

    /// A cluster on `lab` (see the module docs): the hub in its `hub` host
    /// (and mosquitto there too for [`Broker::Mosquitto`]), one agent per
    /// node host, with extra hub flags. Waits until every node is Ready.
    pub fn start_in_lab(lab: &Lab, broker: Broker, hub_flags: &[&str]) -> Cluster {
        crate::panic_note::install();
        let dir = tempfile::Builder::new()
            .prefix("bramble-lab-cluster-")
            .tempdir()
            .expect("tempdir");
        let mosquitto =
            (broker == Broker::Mosquitto).then(|| Mosquitto::start_in_netns(lab.hub().ns_name()));
        let external = mosquitto.is_some();
        let hub = Hub::start_in(&dir.path().join("hub"), lab.hub(), external, hub_flags);
        let mut cluster = Cluster {
            agents: Vec::new(),
            hub,
            mosquitto,
            dir,
        };
        let base = unique("t");
        for host in lab.nodes() {
            cluster.add_agent_on(&format!("{base}-{}", host.role()), host);
        }
        for a in &cluster.agents {
            cluster.wait_node_ready(&a.name, Duration::from_secs(30));
        }
        cluster
    }

    /// Starts one more agent named `name` in lab host `host`.
    pub fn add_agent_on(&mut self, name: &str, host: &Host) -> &mut Agent {
        self.add_agent_in(name, Some(host), false)
    }

    /// Starts one more agent named `name` in lab host `host` that finds the
    /// hub by mDNS (`--join auto`, no address given).
    pub fn add_agent_joining_auto(&mut self, name: &str, host: &Host) -> &mut Agent {
        self.add_agent_in(name, Some(host), true)
    }

    /// Starts one more agent named `name`.
    pub fn add_agent(&mut self, name: &str) -> &mut Agent {
        self.add_agent_in(name, None, false)
    }

    fn add_agent_in(&mut self, name: &str, host: Option<&Host>, auto: bool) -> &mut Agent {
        crate::require_root("containers: an agent runs pods");
        let root = self.dir.path().join(name);
        let data_dir = root.join("data");
        // The run dir holds Secret values: the agent mounts a tmpfs on it.
        let run_dir = PathBuf::from(format!("/run/bramble-test/{name}"));
        std::fs::create_dir_all(&data_dir).expect("agent data dir");
        std::fs::create_dir_all(&run_dir).expect("agent run dir");
        let cgroup_parent = format!("/bramble-test-{name}");
        let mut args = if auto {
            vec!["--join".to_string(), "auto".into()]
        } else {
            vec![
                "--hub".to_string(),
                self.hub.lan_url.clone(),
                "--mqtt-url".into(),
                self.hub.mqtt_url.clone(),
            ]
        };
        args.extend([
            "--node-name".into(),
            name.to_string(),
            "--token".into(),
            self.hub.node_token.clone(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--run-dir".into(),
            run_dir.display().to_string(),
            "--cgroup-parent".into(),
            cgroup_parent.clone(),
        ]);
        args.extend(host.map(lab_agent_flags).unwrap_or_default());
        // Agents sharing the machine's namespace each keep their own table.
        let nft_table = host.is_none().then(|| format!("bramble-{name}"));
        if let Some(t) = &nft_table {
            args.extend(["--nft-table".into(), t.clone()]);
        }
        let mut agent = Agent {
            name: name.to_string(),
            proc: Proc::spawn(Command::new("true")),
            data_dir,
            run_dir,
            cgroup_parent,
            args,
            netns: host.map(|h| h.ns_name().to_string()),
            nft_table,
        };
        agent.restart();
        self.agents.push(agent);
        self.agents.last_mut().expect("just pushed")
    }

    pub fn client(&self) -> Client {
        self.hub.client()
    }

    /// The `bramble` CLI against the hub, with `args`, not started.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("bramble"));
        cmd.args(["--hub", &self.hub.url, "--token", &self.hub.token])
            .arg("--data-dir")
            .arg(&self.hub.data_dir)
            .args(args);
        cmd
    }

    /// Runs the `bramble` CLI against the hub: (success, stdout + stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = self.cli_command(args).output().expect("running bramble");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Pushes the fixture `busybox` image (linux/amd64 + arm64) as `repo:tag`.
    pub fn push_busybox(&self, repo: &str, tag: &str) {
        let image = crate::busybox::busybox_image().expect("busybox fixture image");
        self.push_image(repo, tag, &image);
    }

    /// Pushes the Debian-based fixture image `base` (this machine's platform,
    /// see [`crate::debian_image`]) as `repo:tag`.
    pub fn push_debian(&self, base: crate::debian_image::Base, repo: &str, tag: &str) {
        let image = crate::debian_image::image(base)
            .unwrap_or_else(|e| panic!("the Debian fixture image {}: {e}", base.name()));
        self.push_image(repo, tag, &image);
    }

    /// Pushes `image` to the hub's registry as `repo:tag`.
    pub fn push_image(&self, repo: &str, tag: &str, image: &crate::fixtures::MultiImage) {
        crate::fixtures::push(
            &self.hub.url,
            &self.hub.token,
            &self.hub.ca_pem(),
            repo,
            tag,
            image,
        )
        .expect("pushing the fixture image");
    }

    /// The node object `name`, if registered.
    pub fn node(&self, name: &str) -> Option<Value> {
        let (code, v) = self.client().get(&format!("/api/v1/nodes/{name}"));
        (code == 200).then_some(v)
    }

    /// The `Ready` condition status of node `name` (`True`, `False`, `Unknown`).
    pub fn node_ready(&self, name: &str) -> Option<String> {
        let node = self.node(name)?;
        node["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["status"].as_str())
            .map(str::to_string)
    }

    /// Waits until node `name` is Ready.
    pub fn wait_node_ready(&self, name: &str, timeout: Duration) {
        eventually(format!("node {name} Ready"), timeout, || {
            (self.node_ready(name).as_deref() == Some("True")).then_some(())
        });
    }

    /// Pods of namespace `default` matching label selector `selector`.
    pub fn pods(&self, selector: &str) -> Vec<Value> {
        let (code, v) = self.client().get(&format!(
            "/api/v1/namespaces/default/pods?labelSelector={selector}"
        ));
        assert_eq!(code, 200, "{v}");
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// Running and Ready pods matching `selector`, as (name, node).
    pub fn ready_pods(&self, selector: &str) -> Vec<(String, String)> {
        self.pods(selector)
            .iter()
            .filter(|p| p["status"]["phase"] == "Running" && is_ready(p))
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Cluster {
    /// On a failing test, prints what the hub and the agents said and the
    /// pods as the hub sees them, then the failure's message again.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let tail = |s: String| {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(60)..].join("\n")
        };
        eprintln!("===== hub log (tail)\n{}", tail(self.hub.proc.log()));
        for a in &self.agents {
            eprintln!("===== agent {} log (tail)\n{}", a.name, tail(a.proc.log()));
        }
        let (_, pods) = self.client().get("/api/v1/pods");
        for p in pods["items"].as_array().into_iter().flatten() {
            eprintln!(
                "pod {} node={} phase={} conditions={} containers={}",
                p["metadata"]["name"],
                p["spec"]["nodeName"],
                p["status"]["phase"],
                p["status"]["conditions"],
                p["status"]["containerStatuses"]
            );
        }
        if let Some(message) = crate::panic_note::last() {
            eprintln!("===== the test failed (repeated after the logs above)\n{message}");
        }
    }
}

/// The Deployments collection of namespace `default`.
pub const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

/// A shell script that idles until SIGTERM (then exits 0 at once).
pub const IDLE: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

/// A Deployment `name` (label `app=name`) of `replicas` pods running
/// `sh -c script` from `image`: small requests, an always-passing readiness
/// probe, a 1 s grace period, and a rolling update of one pod at a time.
pub fn deployment(name: &str, replicas: i64, image: &str, script: &str) -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "main", "image": image,
                        "command": ["sh", "-c", script],
                        "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}},
                        "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}
                    }]
                }
            }
        }
    })
}

/// Whether a pod's `Ready` condition is True.
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ranges_differ_and_fit_the_hub_flags() {
        let (a, b) = (unique_ranges(), unique_ranges());
        assert_ne!(a, b);
        for (pods, services) in [a, b] {
            let p: bramble_api::cidr::Cidr = pods.parse().unwrap();
            let s: bramble_api::cidr::Cidr = services.parse().unwrap();
            assert_eq!((p.prefix, s.prefix), (20, 24), "{pods} {services}");
            assert_eq!(p.network(), p, "{pods} has host bits");
            assert_eq!(s.network(), s, "{services} has host bits");
        }
    }
}
