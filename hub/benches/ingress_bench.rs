//! Ingress benchmark: prints figures, asserts nothing about time.
//!
//! `cargo bench -p bramble-hub --bench ingress_bench` starts, in this process,
//! three backend "pods" (hyper HTTP/1.1 servers on 127.0.0.1 answering a
//! 64-byte body with keep-alive) and the hub's [`IngressServer`] on
//! 127.0.0.1:0 routing `bench.lan /` to them through a [`RouteTable`] (no hub,
//! no MQTT). A load generator (hyper client connections, each sending one
//! request after the other) then measures, after a warm-up:
//! - direct to one backend and to the three (connections spread), the baseline;
//! - through the hub ingress (`Host: bench.lan`);
//! - through nginx as a reverse proxy to the same backends (`worker_processes`
//!   1 and `auto`), when `nginx` is installed (Debian: `apt-get install
//!   nginx-light`), with a generated config in a temporary directory;
//! - a new connection per request (connection setup), direct, through the
//!   ingress and through nginx;
//! - one connection (latency without queueing).
//!
//! It prints requests/s, p50 and p99 latency, the CPU time each side used per
//! request (threads of this process by name, nginx processes by pid), and the
//! ratios to direct and to nginx. Backends, ingress and load generator run on
//! their own tokio runtimes (threads `backend`, `ingress`, `loadgen`).
//!
//! Environment: `BENCH_QUICK=1` (0.5 s warm-up, 2 s per scenario instead of 1 s
//! and 5 s), `BENCH_CONNS=N` (concurrent connections, default 32),
//! `BENCH_ONLY=text` (only scenarios whose name contains it),
//! `BENCH_INGRESS_THREADS=N` (ingress runtime workers, default 2 as the hub's
//! main), `BENCH_NO_NGINX=1`.
//!
//! Length: over 600 lines because one benchmark program: its setup (hub,
//! backends, clients) and the figures it prints belong together.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bramble_api::objects::Ingress;
use bramble_api::protocol::ServiceEntry;
use bramble_hub::ingress::{IngressServer, RouteTable};
use bramble_hub::network::table::ServiceTable;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONNECTION, HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// The size of every backend answer.
const BODY_SIZE: usize = 64;
/// The host the Ingress rule (and the nginx server block) answers.
const HOST_NAME: &str = "bench.lan";
const BACKENDS: usize = 3;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok().filter(|n| *n > 0)
}

struct Settings {
    conns: usize,
    warmup: Duration,
    measure: Duration,
    ingress_threads: usize,
    only: Option<String>,
    nginx: bool,
}

impl Settings {
    fn from_env() -> Settings {
        let quick = bramble_tests::bench::quick();
        Settings {
            conns: env_usize("BENCH_CONNS").unwrap_or(32),
            warmup: Duration::from_millis(if quick { 500 } else { 1000 }),
            measure: Duration::from_secs(if quick { 2 } else { 5 }),
            ingress_threads: env_usize("BENCH_INGRESS_THREADS").unwrap_or(2),
            only: std::env::var("BENCH_ONLY").ok().filter(|s| !s.is_empty()),
            nginx: std::env::var_os("BENCH_NO_NGINX").is_none(),
        }
    }

    fn wanted(&self, scenario: &str) -> bool {
        self.only.as_deref().is_none_or(|o| scenario.contains(o))
    }
}

fn runtime(name: &str, threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `backend-N` padded to [`BODY_SIZE`] bytes, so probes can tell who answered.
fn body_of(i: usize) -> Bytes {
    let mut b = format!("backend-{i}").into_bytes();
    b.resize(BODY_SIZE - 1, b'.');
    b.push(b'\n');
    Bytes::from(b)
}

// ---------------------------------------------------------------- backends

/// The backend "pods"; they stop when the runtime drops.
struct Backends {
    addrs: Vec<SocketAddr>,
    _rt: Runtime,
}

fn start_backends(n: usize) -> Backends {
    let rt = runtime("backend", 2);
    let addrs = rt.block_on(async {
        let mut addrs = Vec::new();
        for i in 0..n {
            let l = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("backend bind");
            addrs.push(l.local_addr().expect("backend addr"));
            tokio::spawn(serve_backend(l, body_of(i)));
        }
        addrs
    });
    Backends { addrs, _rt: rt }
}

async fn serve_backend(l: TcpListener, body: Bytes) {
    loop {
        let Ok((s, _)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = s.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |_req: Request<Incoming>| {
                let b = body.clone();
                async move { Ok::<_, Infallible>(Response::new(Full::new(b))) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}

// ---------------------------------------------------------------- hub ingress

/// The hub's ingress on its own runtime; shut down (and its runtime dropped)
/// on drop.
struct HubIngress {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    _server: IngressServer,
    _rt: Runtime,
}

impl Drop for HubIngress {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

fn route_table(backends: &[SocketAddr]) -> RouteTable {
    let ing: Ingress = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {"rules": [{"host": HOST_NAME, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}))
    .expect("Ingress");
    let endpoints: Vec<_> = backends
        .iter()
        .map(|a| json!({"ip": a.ip().to_string(), "port": a.port()}))
        .collect();
    let svc: ServiceEntry = serde_json::from_value(json!({
        "namespace": "default", "name": "web", "clusterIP": "10.43.0.10",
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "endpoints": endpoints}]}))
    .expect("ServiceEntry");
    let table = RouteTable::build(&[ing], &ServiceTable(vec![svc]));
    let backend = table.route(HOST_NAME, "/").expect("bench.lan / routed");
    assert_eq!(
        backend.endpoints.len(),
        backends.len(),
        "endpoints in the route table"
    );
    table
}

fn start_ingress(backends: &[SocketAddr], threads: usize) -> HubIngress {
    let rt = runtime("ingress", threads);
    let (shutdown, rx) = watch::channel(false);
    let server = rt
        .block_on(IngressServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            rx,
        ))
        .expect("ingress start");
    server.set_table(route_table(backends));
    HubIngress {
        addr: server.addr(),
        shutdown,
        _server: server,
        _rt: rt,
    }
}

// ---------------------------------------------------------------- nginx

fn nginx_binary() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nginx"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
}

/// nginx (`daemon off`, master + workers) with a config and logs in a
/// temporary directory; stopped, its workers killed and the directory
/// removed on drop.
struct Nginx {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

fn nginx_config(dir: &Path, port: u16, backends: &[SocketAddr], workers: &str) -> String {
    let d = dir.display();
    let servers: String = backends
        .iter()
        .map(|a| format!("        server {a};\n"))
        .collect();
    format!(
        "daemon off;
master_process on;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 100000000;
    upstream web {{
{servers}        keepalive 128;
        keepalive_requests 100000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name {HOST_NAME};
        location / {{
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"
    )
}

fn start_nginx(bin: &Path, backends: &[SocketAddr], workers: &str) -> Result<Nginx, String> {
    let dir = tempfile::Builder::new()
        .prefix("bramble-ingress-bench-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    // nginx takes its port from its configuration: probed.
    let port = bramble_tests::ports::probed_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_config(dir.path(), port, backends, workers))
        .map_err(|e| format!("writing {}: {e}", conf.display()))?;
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let mut n = Nginx {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        child,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = n.child.try_wait() {
            let log = std::fs::read_to_string(n.dir.path().join("error.log")).unwrap_or_default();
            return Err(format!("nginx exited ({status}): {}", log.trim()));
        }
        // Ready once it accepts and its workers are up.
        if std::net::TcpStream::connect(n.addr).is_ok() && !n.workers().is_empty() {
            return Ok(n);
        }
        if Instant::now() > deadline {
            return Err("nginx did not listen within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Nginx {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The worker processes (children of the master).
    fn workers(&self) -> Vec<u32> {
        let pid = self.pid();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let workers = self.workers();
        signal(self.pid(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Workers outlive a killed master: make sure none is left.
        for w in workers {
            if Path::new(&format!("/proc/{w}")).exists() {
                signal(w, "KILL");
            }
        }
    }
}

// ---------------------------------------------------------------- CPU accounting

/// CPU time (ns) of a thread or process: `schedstat` (ns on CPU), else
/// `stat` utime + stime in clock ticks (assumed 100 Hz).
fn cpu_ns(proc_dir: &Path) -> u64 {
    if let Some(ns) = std::fs::read_to_string(proc_dir.join("schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
    {
        return ns;
    }
    std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks * 10_000_000)
        })
        .unwrap_or(0)
}

#[derive(Debug, Default, Clone, Copy)]
struct Cpu {
    loadgen: u64,
    backend: u64,
    proxy: u64,
}

/// CPU used so far by this process's threads, grouped by runtime name, plus
/// the nginx processes `nginx` (master and workers) as the proxy.
fn cpu_now(nginx: &[u32]) -> Cpu {
    let mut c = Cpu::default();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let ns = cpu_ns(&t.path());
            match comm.trim() {
                "loadgen" => c.loadgen += ns,
                "backend" => c.backend += ns,
                "ingress" => c.proxy += ns,
                _ => {}
            }
        }
    }
    for pid in nginx {
        c.proxy += cpu_ns(Path::new(&format!("/proc/{pid}")));
    }
    c
}

// ---------------------------------------------------------------- load generator

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    KeepAlive,
    NewConnection,
}

#[derive(Default)]
struct ConnStats {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, String> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .map_err(|e| format!("handshake {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn request(host: &str, mode: Mode) -> Request<Empty<Bytes>> {
    let mut r = Request::new(Empty::new());
    *r.uri_mut() = hyper::Uri::from_static("/");
    let h = r.headers_mut();
    h.insert(HOST, HeaderValue::from_str(host).expect("host header"));
    if mode == Mode::NewConnection {
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// One request on `sender`: the body when the answer was 200.
async fn exchange(sender: &mut SendRequest<Empty<Bytes>>, host: &str, mode: Mode) -> Option<Bytes> {
    sender.ready().await.ok()?;
    let resp = sender.send_request(request(host, mode)).await.ok()?;
    let ok = resp.status() == StatusCode::OK;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    ok.then_some(body)
}

/// One client connection sending requests back to back until `end`; counts
/// those started at or after `from` and finished by `end`.
async fn conn_loop(
    addr: SocketAddr,
    host: String,
    mode: Mode,
    from: Instant,
    end: Instant,
) -> ConnStats {
    let mut st = ConnStats {
        latencies_us: Vec::with_capacity(1 << 16),
        errors: 0,
    };
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let counted = t0 >= from;
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => sender.insert(s),
                Err(_) => {
                    st.errors += u64::from(counted);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            },
        };
        let result = exchange(s, &host, mode).await;
        let t1 = Instant::now();
        match result {
            Some(b) if b.len() == BODY_SIZE => {
                if counted && t1 <= end {
                    let us = t1.duration_since(t0).as_micros();
                    st.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            _ => {
                st.errors += u64::from(counted);
                sender = None;
            }
        }
        if mode == Mode::NewConnection {
            sender = None;
        }
    }
    st
}

struct Outcome {
    scenario: String,
    conns: usize,
    requests: u64,
    errors: u64,
    rps: f64,
    p50_us: u32,
    p99_us: u32,
    cpu: Cpu,
    /// Whether the proxy column is meaningful (a proxy was in the path).
    proxied: bool,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Load<'a> {
    rt: &'a Runtime,
    settings: &'a Settings,
}

impl Load<'_> {
    /// Runs `conns` connections spread over `targets` (connection i to
    /// target i mod n) for the warm-up plus the measured time.
    fn run(
        &self,
        scenario: &str,
        targets: &[SocketAddr],
        conns: usize,
        mode: Mode,
        nginx: &[u32],
    ) -> Outcome {
        let s = self.settings;
        let (stats, cpu_before, cpu_after) = self.rt.block_on(async {
            let start = Instant::now();
            let from = start + s.warmup;
            let end = from + s.measure;
            let tasks: Vec<_> = (0..conns)
                .map(|i| {
                    let addr = targets[i % targets.len()];
                    tokio::spawn(conn_loop(addr, HOST_NAME.into(), mode, from, end))
                })
                .collect();
            tokio::time::sleep_until(from.into()).await;
            let before = cpu_now(nginx);
            tokio::time::sleep_until(end.into()).await;
            let after = cpu_now(nginx);
            let mut stats = Vec::new();
            for t in tasks {
                stats.push(t.await.expect("load generator task"));
            }
            (stats, before, after)
        });
        let mut lat: Vec<u32> = stats
            .iter()
            .flat_map(|c| c.latencies_us.iter().copied())
            .collect();
        lat.sort_unstable();
        let requests = lat.len() as u64;
        Outcome {
            scenario: scenario.into(),
            conns,
            requests,
            errors: stats.iter().map(|c| c.errors).sum(),
            rps: requests as f64 / s.measure.as_secs_f64(),
            p50_us: percentile(&lat, 50.0),
            p99_us: percentile(&lat, 99.0),
            cpu: Cpu {
                loadgen: cpu_after.loadgen.saturating_sub(cpu_before.loadgen),
                backend: cpu_after.backend.saturating_sub(cpu_before.backend),
                proxy: cpu_after.proxy.saturating_sub(cpu_before.proxy),
            },
            proxied: false,
        }
    }

    /// `n` requests on one connection to `addr`: which backends answered.
    fn probe(&self, addr: SocketAddr, n: usize) -> Result<BTreeSet<String>, String> {
        self.rt.block_on(async {
            let mut sender = connect(addr).await?;
            let mut seen = BTreeSet::new();
            for _ in 0..n {
                let b = exchange(&mut sender, HOST_NAME, Mode::KeepAlive)
                    .await
                    .ok_or_else(|| format!("request to {addr} failed"))?;
                let text = String::from_utf8_lossy(&b);
                seen.insert(text.trim_end_matches(['.', '\n']).to_string());
            }
            Ok(seen)
        })
    }
}

// ---------------------------------------------------------------- report

fn ms(us: u32) -> String {
    format!("{:.3}", f64::from(us) / 1000.0)
}

fn ratio(a: &Outcome, b: Option<&Outcome>) -> String {
    match b {
        Some(b) if b.rps > 0.0 => format!("{:.0}%", 100.0 * a.rps / b.rps),
        _ => "-".into(),
    }
}

fn print_table(rows: &[Outcome], measure: Duration) {
    let find =
        |name: &str, conns: usize| rows.iter().find(|r| r.scenario == name && r.conns == conns);
    println!(
        "{:<36} {:>5} {:>9} {:>8} {:>8} {:>6} {:>8} {:>17} {:>7} {:>7}",
        "scenario",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "proxy",
        "CPU% lg/be/proxy",
        "vs",
        "vs"
    );
    println!(
        "{:<36} {:>5} {:>9} {:>8} {:>8} {:>6} {:>8} {:>17} {:>7} {:>7}",
        "", "", "", "", "", "", "us/req", "(of 200%)", "direct", "nginx"
    );
    for r in rows {
        let new_conn = r.scenario.contains("new conn");
        let direct = find(
            if new_conn {
                "direct 3 backends, new conn/req"
            } else {
                "direct 3 backends"
            },
            r.conns,
        );
        let nginx = find(
            if new_conn {
                "nginx (1 worker), new conn/req"
            } else {
                "nginx (1 worker)"
            },
            r.conns,
        );
        let secs = measure.as_secs_f64();
        let pct = |ns: u64| 100.0 * ns as f64 / 1e9 / secs;
        let proxy_us = if r.proxied && r.requests > 0 {
            format!("{:.1}", r.cpu.proxy as f64 / 1e3 / r.requests as f64)
        } else {
            "-".into()
        };
        let same = |o: Option<&Outcome>| o.is_some_and(|o| std::ptr::eq(o, r));
        println!(
            "{:<36} {:>5} {:>9.0} {:>8} {:>8} {:>6} {:>8} {:>17} {:>7} {:>7}",
            r.scenario,
            r.conns,
            r.rps,
            ms(r.p50_us),
            ms(r.p99_us),
            r.errors,
            proxy_us,
            format!(
                "{:.0}/{:.0}/{:.0}",
                pct(r.cpu.loadgen),
                pct(r.cpu.backend),
                pct(r.cpu.proxy)
            ),
            if same(direct) {
                "=".into()
            } else {
                ratio(r, direct)
            },
            if same(nginx) {
                "=".into()
            } else {
                ratio(r, nginx)
            },
        );
    }
}

fn verdicts(rows: &[Outcome], conns: usize) {
    let find = |name: &str| rows.iter().find(|r| r.scenario == name && r.conns == conns);
    let pairs = [
        (
            "hub ingress",
            "direct 3 backends",
            80.0,
            "ingress >= 80% of direct",
        ),
        (
            "hub ingress",
            "nginx (1 worker)",
            80.0,
            "ingress within 20% of nginx (1 worker)",
        ),
        (
            "hub ingress",
            "nginx (auto: 2 workers)",
            80.0,
            "ingress within 20% of nginx (auto)",
        ),
        (
            "hub ingress, new conn/req",
            "direct 3 backends, new conn/req",
            80.0,
            "new conn/req: ingress >= 80% of direct",
        ),
        (
            "hub ingress, new conn/req",
            "nginx (1 worker), new conn/req",
            80.0,
            "new conn/req: ingress within 20% of nginx",
        ),
    ];
    for (a, b, aim, what) in pairs {
        if let (Some(a), Some(b)) = (find(a), find(b)) {
            let pct = 100.0 * a.rps / b.rps.max(f64::MIN_POSITIVE);
            println!(
                "  {what}: {pct:.0}% of req/s, p99 {} vs {} ms -> {}",
                ms(a.p99_us),
                ms(b.p99_us),
                if pct >= aim { "met" } else { "MISSED" }
            );
        }
    }
}

fn main() {
    let s = Settings::from_env();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "ingress bench: {BACKENDS} backends answering {BODY_SIZE} B, {} connections, \
         {:.1} s warm-up + {:.1} s measured per scenario",
        s.conns,
        s.warmup.as_secs_f64(),
        s.measure.as_secs_f64()
    );
    println!(
        "note: {cores} CPU cores shared by load generator (2 threads), backends (2 threads), \
         and the proxy (hub ingress: {} threads; nginx: its workers) -- a proxy in the path \
         competes with both ends for the same CPUs, so 'vs direct' is also a CPU-budget ratio; \
         the 'proxy us/req' column is the proxy's own CPU cost",
        s.ingress_threads
    );

    let backends = start_backends(BACKENDS);
    let ingress = start_ingress(&backends.addrs, s.ingress_threads);
    let lg = runtime("loadgen", 2);
    let load = Load {
        rt: &lg,
        settings: &s,
    };

    // Shape checks before any figure: every backend answers, the ingress
    // spreads over all three.
    for a in &backends.addrs {
        load.probe(*a, 1).expect("backend answers");
    }
    let seen = load.probe(ingress.addr, 6).expect("ingress answers");
    assert_eq!(
        seen.len(),
        BACKENDS,
        "ingress spreads over all backends: {seen:?}"
    );

    let nginx_bin = if s.nginx { nginx_binary() } else { None };
    let mut notes = Vec::new();
    if nginx_bin.is_none() {
        notes.push(if s.nginx {
            "nginx not installed (Debian: apt-get install nginx-light): nginx rows skipped"
        } else {
            "BENCH_NO_NGINX set: nginx rows skipped"
        });
    }

    let mut rows: Vec<Outcome> = Vec::new();
    let all = backends.addrs.clone();
    let one = vec![backends.addrs[0]];
    let ing = vec![ingress.addr];
    let conns = s.conns;
    let run = |rows: &mut Vec<Outcome>,
               name: &str,
               targets: &[SocketAddr],
               conns: usize,
               mode: Mode,
               nginx: Option<&Nginx>| {
        if !s.wanted(name) {
            return;
        }
        let pids: Vec<u32> = nginx
            .map(|n| std::iter::once(n.pid()).chain(n.workers()).collect())
            .unwrap_or_default();
        let mut o = load.run(name, targets, conns, mode, &pids);
        o.proxied = nginx.is_some() || targets == ing.as_slice();
        eprintln!(
            "  {name} ({conns} conns): {:.0} req/s, p99 {} ms",
            o.rps,
            ms(o.p99_us)
        );
        rows.push(o);
    };

    run(
        &mut rows,
        "direct 1 backend",
        &one,
        conns,
        Mode::KeepAlive,
        None,
    );
    run(
        &mut rows,
        "direct 3 backends",
        &all,
        conns,
        Mode::KeepAlive,
        None,
    );
    run(&mut rows, "hub ingress", &ing, conns, Mode::KeepAlive, None);
    let nginx_variants = [
        ("1", "nginx (1 worker)"),
        ("auto", "nginx (auto: 2 workers)"),
    ];
    if let Some(bin) = &nginx_bin {
        for (workers, name) in nginx_variants {
            if !s.wanted(name) && !s.wanted(&format!("{name}, new conn/req")) {
                continue;
            }
            match start_nginx(bin, &backends.addrs, workers) {
                Ok(n) => {
                    let probe = load.probe(n.addr, 6);
                    assert_eq!(
                        probe.as_ref().map(|s| s.len()),
                        Ok(BACKENDS),
                        "nginx spreads over all backends: {probe:?}"
                    );
                    run(&mut rows, name, &[n.addr], conns, Mode::KeepAlive, Some(&n));
                    if workers == "1" {
                        let nc = format!("{name}, new conn/req");
                        run(
                            &mut rows,
                            &nc,
                            &[n.addr],
                            conns,
                            Mode::NewConnection,
                            Some(&n),
                        );
                        run(&mut rows, name, &[n.addr], 1, Mode::KeepAlive, Some(&n));
                    }
                }
                Err(e) => {
                    eprintln!("nginx ({workers}) did not start: {e}");
                    notes.push("nginx did not start: rows skipped (see above)");
                }
            }
        }
    }
    run(
        &mut rows,
        "direct 3 backends, new conn/req",
        &all,
        conns,
        Mode::NewConnection,
        None,
    );
    run(
        &mut rows,
        "hub ingress, new conn/req",
        &ing,
        conns,
        Mode::NewConnection,
        None,
    );
    run(
        &mut rows,
        "direct 3 backends",
        &all,
        1,
        Mode::KeepAlive,
        None,
    );
    run(&mut rows, "hub ingress", &ing, 1, Mode::KeepAlive, None);

    // Keep-alive rows first, then new connections, then one connection.
    rows.sort_by_key(|r| (r.conns == 1, r.scenario.contains("new conn")));
    println!();
    print_table(&rows, s.measure);
    println!();
    println!("aims (issue 6), at {conns} connections:");
    verdicts(&rows, conns);
    for n in notes {
        println!("note: {n}");
    }
    drop(ingress);
    drop(lg);
    drop(backends);
}
