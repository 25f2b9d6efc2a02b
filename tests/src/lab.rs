//! A multi-host LAN on one machine, made of network namespaces, for
//! end-to-end tests: a `lan` namespace holding the bridge `lan0`, and one
//! namespace per host — the `hub` (10.77.0.2), `node1..nodeN` (10.77.0.11,
//! .12, ...) and LAN clients (10.77.0.100, .101, ...) — each with a veth
//! `eth0` into the bridge, `lo` up and IP forwarding on.
//!
//! Every name holds the prefix `bl<pid>x<n>` (unique to this process and
//! call). On drop the lab stops its port forwards, kills whatever still runs
//! in its namespaces and deletes them (which removes their veths), also when
//! a test panics. [`Lab::new`] first sweeps namespaces left by test processes
//! that no longer exist (killed runs).
//!
//! Two ways to run a program in a host: [`Host::command`] (`ip netns exec`,
//! which also gives the program a private mount namespace with a `/sys` of
//! the host's network namespace — and no cgroup hierarchy) for short tools,
//! and [`Host::daemon_command`] (`nsenter --net`, network namespace only) for
//! `bramble-hub`, `bramble-agent` and brokers, which need the machine's
//! cgroups and mounts. The test process reaches a server inside a host
//! through [`Host::forward`], a loopback port forward that adds nothing to
//! the root namespace's network.
//!
//! Tools the machine lacks (`ping`, `wget`, `nc`, `httpd`) come from the
//! fixture `busybox-static` and are on the `PATH` of [`Host::command`] (after
//! the machine's own).
//!
//! Length: over 600 lines because one concept (the namespace LAN and its
//! cleanup), with its unit tests.

use std::collections::HashMap;
use std::fs::File;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::sched::{CloneFlags, setns};

/// The LAN's network, a /24.
pub const LAN_NET: [u8; 3] = [10, 77, 0];
/// The hub host's address.
pub const HUB_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// Node `k` (1-based) is at `.NODE_BASE + k`.
const NODE_BASE: u8 = 10;
/// Client `k` (1-based) is at `.CLIENT_BASE + k`.
const CLIENT_BASE: u8 = 99;
/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Applets of the fixture busybox offered to [`Host::command`].
const TOOLS: &[&str] = &["ping", "wget", "nc", "httpd", "traceroute", "arping"];

/// State shared by a lab and its hosts: the forwards to stop on drop.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Open forwarded connections by id (both ends), to shut on drop.
    conns: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    next_conn: AtomicU64,
}

/// One host of a [`Lab`]. Cheap to clone; valid while its lab lives.
#[derive(Clone)]
pub struct Host {
    role: String,
    ns: String,
    ip: Ipv4Addr,
    shared: Arc<Shared>,
}

/// A LAN of network namespaces. See the module docs.
pub struct Lab {
    prefix: String,
    lan: String,
    hub: Host,
    nodes: Vec<Host>,
    clients: Vec<Host>,
    /// Namespaces made, in creation order (deleted in reverse).
    made: Vec<String>,
    shared: Arc<Shared>,
}

impl Lab {
    /// A lab with a hub host and `nodes` node hosts. Panics with the failing
    /// command and its stderr if it cannot be built.
    pub fn new(nodes: usize) -> Lab {
        Lab::try_new(nodes).unwrap_or_else(|e| panic!("building the namespace lab: {e:#}"))
    }

    /// Like [`Lab::new`], returning the error.
    pub fn try_new(nodes: usize) -> Result<Lab> {
        crate::require_root("network namespaces");
        sweep_stale();
        static N: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "bl{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let shared = Arc::new(Shared::default());
        let host = |role: &str, ip| Host {
            role: role.to_string(),
            ns: format!("{prefix}-{role}"),
            ip,
            shared: shared.clone(),
        };
        let mut lab = Lab {
            lan: format!("{prefix}-lan"),
            hub: host("hub", HUB_IP),
            nodes: (1..=nodes)
                .map(|k| host(&format!("node{k}"), lan_ip(NODE_BASE, k)))
                .collect(),
            clients: Vec::new(),
            made: Vec::new(),
            shared: shared.clone(),
            prefix,
        };
        lab.make_lan()?;
        let hosts: Vec<Host> = std::iter::once(lab.hub.clone())
            .chain(lab.nodes.iter().cloned())
            .collect();
        for h in &hosts {
            lab.make_host(h)?;
        }
        Ok(lab)
    }

    /// The prefix of every name in this lab (`bl<pid>x<n>`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespace holding the bridge `lan0`.
    pub fn lan_ns(&self) -> &str {
        &self.lan
    }

    /// The hub host (10.77.0.2).
    pub fn hub(&self) -> &Host {
        &self.hub
    }

    /// Node host `k`, 1-based (`node1` is 10.77.0.11).
    pub fn node(&self, k: usize) -> &Host {
        assert!(
            (1..=self.nodes.len()).contains(&k),
            "the lab has nodes 1..={}, not {k}",
            self.nodes.len()
        );
        &self.nodes[k - 1]
    }

    /// All node hosts, `node1` first.
    pub fn nodes(&self) -> &[Host] {
        &self.nodes
    }

    /// The LAN clients added so far.
    pub fn clients(&self) -> &[Host] {
        &self.clients
    }

    /// Adds a LAN client host `clientK` (10.77.0.100, .101, ...).
    pub fn add_client(&mut self) -> Host {
        self.try_add_client()
            .unwrap_or_else(|e| panic!("adding a lab client: {e:#}"))
    }

    /// Like [`Lab::add_client`], returning the error.
    pub fn try_add_client(&mut self) -> Result<Host> {
        let k = self.clients.len() + 1;
        let host = Host {
            role: format!("client{k}"),
            ns: format!("{}-client{k}", self.prefix),
            ip: lan_ip(CLIENT_BASE, k),
            shared: self.shared.clone(),
        };
        self.make_host(&host)?;
        self.clients.push(host.clone());
        Ok(host)
    }

    /// Every namespace of this lab that exists now.
    pub fn namespaces(&self) -> Vec<String> {
        self.made.clone()
    }

    fn make_lan(&mut self) -> Result<()> {
        let lan = self.lan.clone();
        self.add_netns(&lan)?;
        ip(&["-n", &lan, "link", "set", "lo", "up"])?;
        ip(&["-n", &lan, "link", "add", "lan0", "type", "bridge"])?;
        ip(&["-n", &lan, "link", "set", "lan0", "up"])?;
        Ok(())
    }

    /// The host's namespace, its veth pair (`eth0` inside, the role's name
    /// on the bridge), addresses, and forwarding.
    fn make_host(&mut self, h: &Host) -> Result<()> {
        self.add_netns(&h.ns)?;
        let lan = self.lan.as_str();
        let port = bridge_port_name(&h.role)?;
        ip(&[
            "-n", lan, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &h.ns,
        ])?;
        ip(&["-n", lan, "link", "set", &port, "master", "lan0", "up"])?;
        ip(&["-n", &h.ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &h.ns,
            "addr",
            "add",
            &format!("{}/24", h.ip),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &h.ns, "link", "set", "eth0", "up"])?;
        run(Command::new("ip").args([
            "netns",
            "exec",
            &h.ns,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]))?;
        Ok(())
    }

    fn add_netns(&mut self, ns: &str) -> Result<()> {
        // The first `ip netns add` on a machine makes /run/netns a shared
        // mount; concurrent first calls can stack mounts. One at a time here.
        static ADD: Mutex<()> = Mutex::new(());
        let one = lock(&ADD);
        ip(&["netns", "add", ns])?;
        drop(one);
        self.made.push(ns.to_string());
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Accept loops first (they may still open a connection), then the
        // open connections.
        self.shared.stop.store(true, Ordering::SeqCst);
        let threads: Vec<JoinHandle<()>> = lock(&self.shared.threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
        for (_, (a, b)) in lock(&self.shared.conns).drain() {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
        for ns in self.made.drain(..).rev() {
            if let Err(e) = remove_netns(&ns) {
                eprintln!("lab cleanup: {e:#}");
            }
        }
    }
}

impl Host {
    /// The role: `hub`, `node1`, `client1`, ...
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The network namespace's name (for `ip netns exec`, `ip -n`).
    pub fn ns_name(&self) -> &str {
        &self.ns
    }

    /// `/run/netns/NAME`.
    pub fn ns_path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.ns)
    }

    /// The host's LAN address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// `program` run in this host (`ip netns exec NAME program`), with the
    /// lab's busybox tools at the end of `PATH`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(program)
            .env("PATH", tools_path());
        cmd
    }

    /// `program` run in this host's network namespace only (`nsenter
    /// --net`): it shares the machine's mounts and cgroups. For daemons.
    pub fn daemon_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        netns_command(&self.ns, program)
    }

    /// Runs `sh -c script` in this host (see [`Host::command`]).
    pub fn sh(&self, script: &str) -> Output {
        let mut cmd = self.command("sh");
        cmd.arg("-c").arg(script);
        cmd.output()
            .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
    }

    /// Runs `sh -c script` in this host and returns its stdout; panics with
    /// its output if it fails.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "`{script}` in {} failed ({}): {}{}",
            self.role,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A TCP connection to `addr` made from inside this host.
    pub fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        connect_in(&self.ns, addr)
    }

    /// Runs `f` on a thread inside this host's network namespace (threads
    /// it starts are in it too) and returns its result.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        run_in_netns(&self.ns_path(), f).unwrap_or_else(|e| panic!("in {}: {e:#}", self.role))
    }

    /// Forwards a fresh port on 127.0.0.1 of the test process to
    /// 127.0.0.1:`port` inside this host; returns the local port. Each
    /// accepted connection gets its own connection inside (none if nothing
    /// listens there yet: the client sees the connection closed). Stops when
    /// the lab drops.
    pub fn forward(&self, port: u16) -> u16 {
        self.try_forward(port).unwrap_or_else(|e| {
            panic!("forwarding to {}:{port}: {e:#}", self.role);
        })
    }

    /// Like [`Host::forward`], returning the error.
    pub fn try_forward(&self, port: u16) -> Result<u16> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?.port();
        let shared = self.shared.clone();
        let handle = spawn_in(&self.ns, &format!("fwd-{}-{port}", self.role), move || {
            accept_loop(&listener, port, &shared);
        })?;
        lock(&self.shared.threads).push(handle);
        Ok(local)
    }
}

/// `program` run in network namespace `ns` only (`nsenter --net=/run/netns/NS`).
pub fn netns_command(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={NETNS_DIR}/{ns}"))
        .arg("--")
        .arg(program);
    cmd
}

/// A TCP connection to `addr` made from inside network namespace `ns` (a
/// short-lived thread enters it; the socket stays in it).
pub fn connect_in(ns: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let handle = spawn_in(ns, "connect-in", move || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
    })
    .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    handle
        .join()
        .map_err(|_| std::io::Error::other("connect thread panicked"))?
}

/// Runs `f` on a thread inside the network namespace pinned at `path` (a
/// `/run/netns` file, a pod's namespace file, `/proc/PID/ns/net`) and
/// returns its result; threads `f` starts are in it too.
pub fn run_in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    spawn_in_path(path.to_path_buf(), "run-in-netns", f)?
        .join()
        .map_err(|_| anyhow!("the thread in {} panicked", path.display()))
}

/// Spawns a thread that first enters network namespace `ns`, then runs `f`.
/// Returns once the thread is in the namespace.
fn spawn_in<T: Send + 'static>(
    ns: &str,
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>> {
    spawn_in_path(Path::new(NETNS_DIR).join(ns), name, f)
}

/// [`spawn_in`] for the namespace pinned at `path`.
fn spawn_in_path<T: Send + 'static>(
    path: PathBuf,
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>> {
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let entered = setns(&file, CloneFlags::CLONE_NEWNET);
            drop(file);
            let ok = entered.is_ok();
            let _ = tx.send(entered);
            // Never run `f` outside the namespace.
            assert!(ok, "setns failed");
            f()
        })
        .context("spawning a thread")?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(anyhow!("setns into {}: {e}", path.display()))
        }
        Err(_) => bail!("the thread for {} died", path.display()),
    }
}

/// Accepts on `listener` (in the root namespace) until the lab stops; the
/// calling thread is inside the host, so its connections to `port` are too.
fn accept_loop(listener: &TcpListener, port: u16, shared: &Arc<Shared>) {
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let inner = TcpStream::connect_timeout(&target, Duration::from_secs(5));
                if let Ok(inner) = inner {
                    let _ = pipe(client, inner, shared);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Copies both directions between `a` and `b` on two threads; each shuts
/// the write side of its destination at EOF. The connection is registered
/// in `shared` (to be shut when the lab drops) until both halves are done.
fn pipe(a: TcpStream, b: TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    a.set_nonblocking(false)?;
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    lock(&shared.conns).insert(id, (a.try_clone()?, b.try_clone()?));
    let (a2, b2) = (a.try_clone()?, b.try_clone()?);
    let halves = Arc::new(AtomicU32::new(2));
    let done = {
        let shared = shared.clone();
        move || {
            if halves.fetch_sub(1, Ordering::AcqRel) == 1 {
                lock(&shared.conns).remove(&id);
            }
        }
    };
    let done2 = done.clone();
    std::thread::spawn(move || {
        copy_half(a, b);
        done();
    });
    std::thread::spawn(move || {
        copy_half(b2, a2);
        done2();
    });
    Ok(())
}

fn copy_half(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// 10.77.0.(base + k).
fn lan_ip(base: u8, k: usize) -> Ipv4Addr {
    let last = u8::try_from(usize::from(base) + k)
        .ok()
        .filter(|l| *l < 255)
        .unwrap_or_else(|| panic!("host {k} does not fit the lab's /24"));
    Ipv4Addr::new(LAN_NET[0], LAN_NET[1], LAN_NET[2], last)
}

/// The bridge-side veth of a host: its role (`hub`, `node1`, `client1`),
/// unique within the lab's own `lan` namespace.
fn bridge_port_name(role: &str) -> Result<String> {
    let name = format!("v-{role}");
    if name.len() > 15 {
        bail!("interface name {name} is longer than 15 characters");
    }
    Ok(name)
}

/// Runs `ip ARGS`; the error names the command and holds its stderr.
fn ip(args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    run(&mut cmd)
}

/// Runs `cmd` to completion; its stdout, or an error naming it with its
/// exit status and stderr.
fn run(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().with_context(|| format!("running `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kills what still runs in `ns`, then deletes it.
fn remove_netns(ns: &str) -> Result<()> {
    let pids = ip(&["netns", "pids", ns]).unwrap_or_default();
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    ip(&["netns", "del", ns]).map(|_| ())
}

/// Deletes lab namespaces (`bl<pid>x<n>-...`) whose process is gone.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for name in entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
    {
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists()
            && let Err(e) = remove_netns(&name)
        {
            eprintln!("lab sweep: {e:#}");
        }
    }
}

/// The pid in a lab namespace name `bl<pid>x<n>-<role>`.
fn owner_pid(name: &str) -> Option<u32> {
    let (head, role) = name.strip_prefix("bl")?.split_once('-')?;
    let (pid, n) = head.split_once('x')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n) && !role.is_empty()).then(|| pid.parse().ok())?
}

/// `PATH` with the lab's tool directory appended (when it can be made).
fn tools_path() -> String {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    match tools_dir() {
        Ok(dir) => format!("{path}:{}", dir.display()),
        Err(e) => {
            eprintln!("lab tools unavailable: {e}");
            path
        }
    }
}

/// A directory with the fixture busybox for this machine's architecture
/// and links named after [`TOOLS`]: `target/fixtures/lab-tools-<arch>`.
pub fn tools_dir() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(make_tools_dir).clone()
}

/// The fixture busybox binary for this machine (in [`tools_dir`]).
pub fn busybox() -> Result<PathBuf, String> {
    tools_dir().map(|d| d.join("busybox"))
}

fn make_tools_dir() -> Result<PathBuf, String> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => return Err(format!("no fixture busybox for {other}")),
    };
    let fixtures = crate::workspace_root().join("target/fixtures");
    let dir = fixtures.join(format!("lab-tools-{arch}"));
    if TOOLS.iter().all(|t| dir.join(t).exists()) && dir.join("busybox").exists() {
        return Ok(dir);
    }
    // Built aside and renamed into place, so concurrent test processes
    // never see half a directory.
    let tmp = fixtures.join(format!("lab-tools-{arch}.tmp{}", std::process::id()));
    let fail = |what: &str, e: std::io::Error| format!("{what} {}: {e}", tmp.display());
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| fail("creating", e))?;
    let bin = crate::busybox::binary(arch)?;
    let exe = tmp.join("busybox");
    std::fs::write(&exe, bin).map_err(|e| fail("writing busybox into", e))?;
    let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&exe, exec).map_err(|e| fail("chmod busybox in", e))?;
    for t in TOOLS {
        std::os::unix::fs::symlink("busybox", tmp.join(t)).map_err(|e| fail("linking in", e))?;
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process won the race (or an incomplete old one is there).
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join("busybox").exists() {
            return Err(format!("could not put {} in place", dir.display()));
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_lab_names_only() {
        assert_eq!(owner_pid("bl1234x0-lan"), Some(1234));
        assert_eq!(owner_pid("bl99x12-client3"), Some(99));
        assert_eq!(owner_pid("bl1234x0"), None);
        assert_eq!(owner_pid("blue-lan"), None);
        assert_eq!(owner_pid("bl12a4x0-lan"), None);
        assert_eq!(owner_pid("cni-1234"), None);
        assert_eq!(owner_pid("bl1234x-lan"), None);
    }

    #[test]
    fn addresses_and_port_names() {
        assert_eq!(lan_ip(NODE_BASE, 1), Ipv4Addr::new(10, 77, 0, 11));
        assert_eq!(lan_ip(CLIENT_BASE, 1), Ipv4Addr::new(10, 77, 0, 100));
        assert_eq!(bridge_port_name("client12").unwrap(), "v-client12");
        assert!(bridge_port_name("a-very-long-role").is_err());
    }
}
