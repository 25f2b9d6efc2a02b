//! Service networking figures in the namespace lab: prints figures, asserts
//! nothing about time.
//!
//! `cargo bench -p bramble-tests --bench network_bench` (as root; needs the
//! workspace binaries of the bench's profile beside it: `cargo build
//! --release --bins` for `cargo bench`, `cargo build --bins` for `cargo bench
//! --profile dev`; `scripts/bench` does) builds a lab of a hub host
//! and three node hosts, starts a real hub and three real agents in it,
//! pushes the busybox fixture image, and runs:
//!
//! - a client pod (idle) pinned to node 1, and a Deployment `web` of three
//!   busybox httpd pods answering their hostname on 8080, Ready while
//!   `/tmp/ready` exists (exec probe every 1 s, one failure unready), behind
//!   the Service `web` (ClusterIP port 80). The bench makes the pods on
//!   nodes 2 and 3 ready (the one on node 1, if any, stays out of the
//!   Service), so every Service connection is DNATed to another node.
//!
//! 1. Connection setup: `NET_BENCH_CONNECTS` (default 500) connections each
//!    to the ClusterIP and directly to the two endpoint pod IPs (alternating),
//!    interleaved, from a thread inside the client pod's network namespace
//!    (the pod's namespace file `RUN_DIR/netns/default_client`). For each:
//!    `connect` (from the call to the handshake done) and first byte (from
//!    the call to `connect` to the first byte of the reply to `GET /
//!    HTTP/1.0`). The same again from the node 1 host's namespace (where the
//!    node's nat `output` chain DNATs the ClusterIP).
//! 2. Endpoint add/remove: `NET_BENCH_ROUNDS` (default 8) rounds on the pod
//!    of node 3 (the other stays ready): at t0 the bench removes (then, in
//!    the second half of the round, creates) `/tmp/ready` in the container's
//!    root directly (`/proc/<httpd pid>/root/tmp/ready`, so t0 is exact;
//!    `bramble exec` if that process cannot be found), while a thread in the
//!    client pod connects to the ClusterIP in a loop (pause
//!    `NET_BENCH_PAUSE_MS`, default 1 ms, between connections) and reads who
//!    answered. Splits: t0 → the hub's pod watch shows the pod (not) Ready →
//!    the Endpoints watch shows its address (not) in `addresses` → the
//!    client pod's connections reach it (first answer from it) / no longer
//!    reach it (first connection after its last answer). The readiness
//!    probe period (1 s) bounds the first split; the sleeps between rounds
//!    put t0 at different points of that period, so it spreads over 0–1 s
//!    and only its minimum comes near the probe + status report floor.
//!    Watch instants are when the bench reads the event (through the lab's
//!    port forward), a few ms after the hub's write at worst, so the last
//!    split may rarely come out ~0 or negative; a removal is typically seen
//!    about one connection early (the last answers before the change may
//!    come from the other pod by chance).
//!
//! `BENCH_QUICK=1`: 20 connections per target after 5 warm-up, 2 rounds
//! (`NET_BENCH_CONNECTS` and `NET_BENCH_ROUNDS` override it).
//!
//! Everything started is removed at the end, also on a panic (the cluster
//! and the lab clean up on drop).
//!
//! Length: over 600 lines because one benchmark program: its lab, workloads
//! and printed figures belong together.

use bramble_tests::eventually;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bramble_tests::bench;
use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, IDLE, is_ready};
use bramble_tests::lab::{Lab, run_in_netns};
use bramble_tests::net::{
    WEB_UNREADY, exec, pinned_pod, pod_netns, service, wait_running, web_deployment_running,
};
use serde_json::Value;

const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// One connection: connect, `GET /`, read the reply to the end.
struct Conn {
    /// `connect` call → handshake done.
    connect: Duration,
    /// `connect` call → first byte of the reply.
    first_byte: Duration,
    /// The reply's body (the answering pod's hostname).
    who: String,
}

fn one(addr: SocketAddr) -> std::io::Result<Conn> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    let connect = start.elapsed();
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut buf = [0u8; 2048];
    let n = s.read(&mut buf)?;
    if n == 0 {
        return Err(std::io::Error::other("closed without a reply"));
    }
    let first_byte = start.elapsed();
    let mut reply = buf[..n].to_vec();
    s.read_to_end(&mut reply)?;
    let text = String::from_utf8_lossy(&reply);
    let who = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .trim()
        .to_string();
    Ok(Conn {
        connect,
        first_byte,
        who,
    })
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn msf(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", msf(d))
}

fn stats(label: &str, v: Vec<Duration>) {
    stats_ms(label, v.into_iter().map(msf).collect());
}

/// p50/p90/p99/max/min of figures in milliseconds (signed: a split whose
/// end was seen before its start shows as negative).
fn stats_ms(label: &str, mut v: Vec<f64>) {
    if v.is_empty() {
        println!("  {label:<34} no samples");
        return;
    }
    v.sort_by(f64::total_cmp);
    println!(
        "  {label:<34} n={:<4} p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  (min {:.3} ms)",
        v.len(),
        pct(&v, 0.5),
        pct(&v, 0.9),
        pct(&v, 0.99),
        v[v.len() - 1],
        v[0],
    );
}

/// Part 1 in the current network namespace: `n` rounds of one connection to
/// the ClusterIP and one to a pod IP (alternating over `pods`), after
/// `warmup` unrecorded rounds. (service, direct, service answers by pod,
/// failures).
fn connect_figures(
    svc: SocketAddr,
    pods: &[SocketAddr],
    warmup: usize,
    n: usize,
) -> (Vec<Conn>, Vec<Conn>, BTreeMap<String, usize>, usize) {
    let (mut via_svc, mut direct) = (Vec::new(), Vec::new());
    let mut spread = BTreeMap::new();
    let mut failed = 0;
    for i in 0..warmup + n {
        let pod = pods[i % pods.len()];
        // Alternate which goes first, so neither always follows the other.
        let order = if i % 2 == 0 { [svc, pod] } else { [pod, svc] };
        for addr in order {
            match one(addr) {
                Ok(c) if i >= warmup => {
                    if addr == svc {
                        *spread.entry(c.who.clone()).or_insert(0) += 1;
                        via_svc.push(c);
                    } else {
                        direct.push(c);
                    }
                }
                Ok(_) => {}
                Err(_) => failed += 1,
            }
        }
    }
    (via_svc, direct, spread, failed)
}

fn print_connect_figures(
    from: &str,
    result: (Vec<Conn>, Vec<Conn>, BTreeMap<String, usize>, usize),
) {
    let (via_svc, direct, spread, failed) = result;
    println!("from {from}:");
    stats(
        "connect, ClusterIP:80",
        via_svc.iter().map(|c| c.connect).collect(),
    );
    stats(
        "connect, pod IP:8080",
        direct.iter().map(|c| c.connect).collect(),
    );
    stats(
        "first byte, ClusterIP:80",
        via_svc.iter().map(|c| c.first_byte).collect(),
    );
    stats(
        "first byte, pod IP:8080",
        direct.iter().map(|c| c.first_byte).collect(),
    );
    println!("  ClusterIP answers by pod: {spread:?}; failed connections: {failed}");
}

/// Streams `path` (a `?watch=true` URL path) of the hub: every event with
/// the instant its line was read.
fn watch(base: &str, token: &str, ca: &[u8], path: &str) -> mpsc::Receiver<(Instant, Value)> {
    let agent = bramble_tests::agent_trusting(ca, Duration::from_secs(900));
    let resp = agent
        .get(format!("{base}{path}"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .expect("watch request");
    assert_eq!(resp.status().as_u16(), 200, "watch {path} refused");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(resp.into_body().into_reader());
        for line in reader.lines().map_while(Result::ok) {
            let at = Instant::now();
            if let Ok(ev) = serde_json::from_str::<Value>(&line)
                && tx.send((at, ev["object"].clone())).is_err()
            {
                return;
            }
        }
    });
    rx
}

/// How the bench flips a pod's readiness file.
enum Toggle {
    /// `/proc/<pid>/root/tmp/ready` of the container's httpd.
    File(PathBuf),
    /// `bramble exec POD -- touch/rm /tmp/ready`.
    Exec(String),
}

impl Toggle {
    /// For pod `pod` whose network namespace is pinned at `netns`: the
    /// container's root through a process in that namespace running httpd.
    fn find(pod: &str, netns: &Path) -> Toggle {
        let Ok(ns) = std::fs::metadata(netns) else {
            return Toggle::Exec(pod.to_string());
        };
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|pid| {
                std::fs::metadata(format!("/proc/{pid}/ns/net"))
                    .is_ok_and(|m| m.ino() == ns.ino() && m.dev() == ns.dev())
                    && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|c| c.trim() == "httpd")
            })
            .collect();
        pids.sort();
        match pids.first() {
            Some(pid) => Toggle::File(PathBuf::from(format!("/proc/{pid}/root/tmp/ready"))),
            None => Toggle::Exec(pod.to_string()),
        }
    }

    fn set(&self, c: &Cluster, ready: bool) {
        match self {
            Toggle::File(path) => {
                let r = if ready {
                    std::fs::write(path, b"")
                } else {
                    std::fs::remove_file(path)
                };
                r.unwrap_or_else(|e| {
                    panic!(
                        "{} {}: {e}",
                        if ready { "creating" } else { "removing" },
                        path.display()
                    )
                });
            }
            Toggle::Exec(pod) => {
                let script = if ready {
                    "touch /tmp/ready"
                } else {
                    "rm /tmp/ready"
                };
                let (ok, out) = exec(c, pod, script);
                assert!(ok, "{script} in {pod}: {out}");
            }
        }
    }

    fn how(&self) -> &'static str {
        match self {
            Toggle::File(_) => "the file in the container's root (/proc/PID/root), t0 exact",
            Toggle::Exec(_) => "`bramble exec` (t0 = just before it; includes the exec's latency)",
        }
    }
}

/// Whether Endpoints `ep` lists `ip` as a ready address.
fn lists(ep: &Value, ip: &str) -> bool {
    ep["subsets"].as_array().into_iter().flatten().any(|s| {
        s["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["ip"] == ip)
    })
}

/// What the bench watches during part 2.
struct Watches {
    pods: mpsc::Receiver<(Instant, Value)>,
    endpoints: mpsc::Receiver<(Instant, Value)>,
    /// (start, answering pod or None for a failure) of each connection.
    probes: mpsc::Receiver<(Instant, Option<String>)>,
}

impl Watches {
    /// Throws away what arrived so far.
    fn drain(&self) {
        while self.pods.try_recv().is_ok() {}
        while self.endpoints.try_recv().is_ok() {}
        while self.probes.try_recv().is_ok() {}
    }
}

/// The instants of one readiness change of the target, relative to t0.
#[derive(Default, Clone, Copy)]
struct Change {
    /// The hub's pod watch shows the new readiness.
    hub: Option<Duration>,
    /// The Endpoints watch shows the address added / removed.
    endpoints: Option<Duration>,
    /// Connections from the client pod reach it / no longer reach it.
    routed: Option<Duration>,
}

/// Flips the target's readiness to `ready` at t0 and follows it until it is
/// routed accordingly (removal: no answer from the target for 1 s after its
/// address left the Endpoints). Returns the splits and failed connections.
fn change(
    c: &Cluster,
    w: &Watches,
    toggle: &Toggle,
    target: &str,
    target_ip: &str,
    ready: bool,
) -> (Change, usize) {
    w.drain();
    let t0 = Instant::now();
    toggle.set(c, ready);
    let mut ch = Change::default();
    let mut failed = 0;
    // Removal: the last answer from the target, then the next connection.
    let mut last_target: Option<Instant> = None;
    let mut after_last: Option<Instant> = None;
    let deadline = t0 + Duration::from_secs(20);
    loop {
        while let Ok((at, pod)) = w.pods.try_recv() {
            if ch.hub.is_none() && pod["metadata"]["name"] == target && is_ready(&pod) == ready {
                ch.hub = Some(at - t0);
            }
        }
        while let Ok((at, ep)) = w.endpoints.try_recv() {
            if ch.endpoints.is_none()
                && ep["metadata"]["name"] == "web"
                && lists(&ep, target_ip) == ready
            {
                ch.endpoints = Some(at - t0);
            }
        }
        while let Ok((start, who)) = w.probes.try_recv() {
            if start < t0 {
                continue;
            }
            match who {
                None => failed += 1,
                Some(who) if who == target => {
                    if ready && ch.routed.is_none() {
                        ch.routed = Some(start - t0);
                    }
                    last_target = Some(start);
                    after_last = None;
                }
                Some(_) => {
                    if after_last.is_none() {
                        after_last = Some(start);
                    }
                }
            }
        }
        let now = Instant::now();
        let done = if ready {
            ch.hub.is_some() && ch.endpoints.is_some() && ch.routed.is_some()
        } else {
            ch.hub.is_some()
                && ch.endpoints.is_some()
                && after_last.is_some_and(|a| now.duration_since(a) >= Duration::from_secs(1))
        };
        if done {
            if !ready {
                // No answer from it since t0 at all: out of rotation at t0.
                ch.routed = Some(match (last_target, after_last) {
                    (Some(_), Some(a)) => a - t0,
                    _ => Duration::ZERO,
                });
            }
            return (ch, failed);
        }
        assert!(
            now < deadline,
            "{target} {} not followed within 20 s: hub {:?}, endpoints {:?}, routed {:?}",
            if ready { "ready" } else { "unready" },
            ch.hub,
            ch.endpoints,
            ch.routed
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn print_changes(what: &str, changes: &[Change]) {
    let split = |f: &dyn Fn(&Change) -> Option<Duration>| -> Vec<Duration> {
        changes.iter().filter_map(f).collect()
    };
    println!("{what} ({} rounds):", changes.len());
    for (i, c) in changes.iter().enumerate() {
        let (h, e, r) = (
            c.hub.unwrap_or_default(),
            c.endpoints.unwrap_or_default(),
            c.routed.unwrap_or_default(),
        );
        println!(
            "  round {}: hub {}  endpoints {}  routed {}",
            i + 1,
            ms(h),
            ms(e),
            ms(r)
        );
    }
    let diff = |a: Option<Duration>, b: Option<Duration>| Some(msf(b?) - msf(a?));
    stats("t0 -> hub sees readiness", split(&|c| c.hub));
    stats_ms(
        "hub readiness -> Endpoints",
        changes
            .iter()
            .filter_map(|c| diff(c.hub, c.endpoints))
            .collect(),
    );
    stats_ms(
        "Endpoints -> routed on client node",
        changes
            .iter()
            .filter_map(|c| diff(c.endpoints, c.routed))
            .collect(),
    );
    stats("total t0 -> routed", split(&|c| c.routed));
}

fn main() {
    let connects = bench::size("NET_BENCH_CONNECTS", 500, 20).max(1);
    let rounds = bench::size("NET_BENCH_ROUNDS", 8, 2).max(1);
    let warmup = bench::pick(20, 5);
    let pause = Duration::from_millis(bench::size("NET_BENCH_PAUSE_MS", 1, 1) as u64);
    let started = Instant::now();

    // The lab first: the cluster drops (and cleans up) before it.
    let lab = Lab::new(3);
    let c = Cluster::start_in_lab(&lab, Broker::Embedded, &[]);
    println!(
        "lab cluster (hub + 3 agents) Ready in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    c.push_busybox("busybox", "net");
    let client = c.client();
    let nodes: Vec<String> = c.agents.iter().map(|a| a.name.clone()).collect();

    let (code, v) = client.post(
        "/api/v1/namespaces/default/pods",
        &pinned_pod("client", "client", &nodes[0], IDLE),
    );
    assert_eq!(code, 201, "{v}");
    let (code, v) = client.post(DEPLOYMENTS, &web_deployment_running("web", 3, WEB_UNREADY));
    assert_eq!(code, 201, "{v}");
    let (code, svc) = client.post("/api/v1/namespaces/default/services", &service("web"));
    assert_eq!(code, 201, "{svc}");
    let vip: Ipv4Addr = svc["spec"]["clusterIP"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no clusterIP: {svc}"));
    wait_running(&c, "client");
    // (name, node, ip) of the web pods, those on other nodes than the client first.
    let mut web: Vec<(String, String, String)> =
        eventually("3 running web pods", Duration::from_secs(90), || {
            let pods: Vec<(String, String, String)> = c
                .pods("app=web")
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .filter_map(|p| {
                    Some((
                        p["metadata"]["name"].as_str()?.to_string(),
                        p["spec"]["nodeName"].as_str()?.to_string(),
                        p["status"]["podIP"].as_str()?.to_string(),
                    ))
                })
                .collect();
            (pods.len() == 3).then_some(pods)
        });
    web.sort_by_key(|(_, node, _)| (node == &nodes[0], node.clone()));
    let far = web.iter().filter(|(_, n, _)| n != &nodes[0]).count();
    if far < 2 {
        println!(
            "NOTE: only {far} web pod(s) off the client's node; using same-node endpoints too"
        );
    }
    let (base, target) = (web[0].clone(), web[1].clone());
    let node_of = |name: &str| {
        nodes
            .iter()
            .position(|n| n == name)
            .map_or("?".to_string(), |k| format!("node{}", k + 1))
    };
    println!(
        "client pod on node1; Service web {vip}:80 -> {} ({}, {}) and {} ({}, {})",
        base.0,
        node_of(&base.1),
        base.2,
        target.0,
        node_of(&target.1),
        target.2
    );

    let agent_of = |node: &str| {
        c.agents
            .iter()
            .find(|a| a.name == node)
            .expect("the pod's agent")
    };
    let toggles: Vec<Toggle> = [&base, &target]
        .iter()
        .map(|(pod, node, _)| Toggle::find(pod, &pod_netns(agent_of(node), pod)))
        .collect();
    println!("readiness flipped through {}", toggles[1].how());
    for t in &toggles {
        t.set(&c, true);
    }
    eventually(
        "both endpoints in Endpoints",
        Duration::from_secs(30),
        || {
            let (_, ep) = client.get("/api/v1/namespaces/default/endpoints/web");
            (lists(&ep, &base.2) && lists(&ep, &target.2)).then_some(())
        },
    );

    let client_ns = pod_netns(&c.agents[0], "client");
    assert!(
        client_ns.exists(),
        "the client pod's network namespace {} is missing",
        client_ns.display()
    );
    let svc_addr = SocketAddr::from((vip, 80));
    let pod_addrs: Vec<SocketAddr> = [&base.2, &target.2]
        .iter()
        .map(|ip| SocketAddr::new(ip.parse().unwrap(), 8080))
        .collect();
    let (b, t) = (base.0.clone(), target.0.clone());
    run_in_netns(&client_ns, move || {
        eventually(
            "the Service answering from both pods",
            Duration::from_secs(30),
            || {
                let seen: std::collections::BTreeSet<String> = (0..20)
                    .filter_map(|_| one(svc_addr).ok())
                    .map(|c| c.who)
                    .collect();
                (seen.contains(&b) && seen.contains(&t)).then_some(())
            },
        );
    })
    .expect("entering the client pod's network namespace");

    // Part 1.
    println!();
    println!(
        "== 1. connection setup, {connects} connections per target (after {warmup} warm-up) =="
    );
    let pods = pod_addrs.clone();
    let figures = run_in_netns(&client_ns, move || {
        connect_figures(svc_addr, &pods, warmup, connects)
    })
    .expect("entering the client pod's network namespace");
    print_connect_figures("inside the client pod (node1), pod netns", figures);
    let pods = pod_addrs.clone();
    let figures = run_in_netns(&lab.node(1).ns_path(), move || {
        connect_figures(svc_addr, &pods, warmup, connects)
    })
    .expect("entering node1's network namespace");
    print_connect_figures("the node1 host's netns (nat output DNAT)", figures);

    // Part 2.
    println!();
    println!(
        "== 2. endpoint add/remove: {} flipped at t0, client pod connects in a loop ({} ms pause) ==",
        target.0,
        pause.as_millis()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, probes) = mpsc::channel();
    let prober = {
        let stop = stop.clone();
        run_in_netns(&client_ns, move || {
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let who = one(svc_addr).ok().map(|c| c.who);
                    if tx.send((start, who)).is_err() {
                        return;
                    }
                    std::thread::sleep(pause);
                }
            })
        })
        .expect("entering the client pod's network namespace")
    };
    let w = Watches {
        pods: watch(
            &c.hub.url,
            &c.hub.token,
            &c.hub.ca_pem(),
            "/api/v1/namespaces/default/pods?watch=true",
        ),
        endpoints: watch(
            &c.hub.url,
            &c.hub.token,
            &c.hub.ca_pem(),
            "/api/v1/namespaces/default/endpoints?watch=true",
        ),
        probes,
    };
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let mut failed = 0;
    for round in 0..rounds {
        // Vary where in the probe period t0 falls.
        std::thread::sleep(Duration::from_millis(200 + (round as u64 * 379) % 1000));
        let (ch, f) = change(&c, &w, &toggles[1], &target.0, &target.2, false);
        removed.push(ch);
        failed += f;
        std::thread::sleep(Duration::from_millis(200 + (round as u64 * 617) % 1000));
        let (ch, f) = change(&c, &w, &toggles[1], &target.0, &target.2, true);
        added.push(ch);
        failed += f;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = prober.join();
    print_changes("new endpoint: ready at t0 -> answers", &added);
    print_changes(
        "removed endpoint: unready at t0 -> no longer answers",
        &removed,
    );
    println!("  failed connections during part 2: {failed}");
    println!(
        "NOTE: the readiness probe runs every 1 s (periodSeconds 1), so t0 -> hub is bounded by \
         ~1 s plus the probe's exec and the status report (t0 is spread over the period on \
         purpose: its min is the floor); the rest is the hub's control round and the agent's nft \
         update. hub/endpoints = when the bench read the watch event; routed times have the \
         resolution of one connection + {} ms.",
        pause.as_millis()
    );
    println!();
    println!("total bench time {:.1} s", started.elapsed().as_secs_f64());
}
