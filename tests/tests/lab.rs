//! The network-namespace lab itself: hosts reach each other over the LAN,
//! nothing is left after a lab drops, the loopback port forward reaches a
//! server inside a host, and a whole cluster runs on it (hub in the `hub`
//! host, one agent per node host).

use bramble_tests::eventually;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, IDLE, Proc, deployment};
use bramble_tests::lab::{Lab, busybox};

/// One cluster at a time: each is a hub and agents on 2 cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn netns_list() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn root_links() -> String {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link show");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hosts_reach_each_other_and_nothing_is_left() {
    let mut lab = Lab::new(3);
    let prefix = lab.prefix().to_string();
    assert_eq!(lab.namespaces().len(), 5, "{:?}", lab.namespaces());
    let listed = netns_list();
    for ns in lab.namespaces() {
        assert!(listed.contains(&ns), "{ns} missing from:\n{listed}");
    }

    let (n1, n2, n3) = (
        lab.node(1).clone(),
        lab.node(2).clone(),
        lab.node(3).clone(),
    );
    assert_eq!(lab.hub().ip().to_string(), "10.77.0.2");
    assert_eq!(n1.ip().to_string(), "10.77.0.11");
    assert_eq!(n3.ip().to_string(), "10.77.0.13");
    let addr = n1.sh_ok("ip -4 -o addr show dev eth0");
    assert!(addr.contains("10.77.0.11/24"), "{addr}");
    let fwd = n2.sh_ok("cat /proc/sys/net/ipv4/ip_forward");
    assert_eq!(fwd.trim(), "1");

    n1.sh_ok(&format!("ping -c1 -W1 {}", n3.ip()));
    let client = lab.add_client();
    assert_eq!(client.ip().to_string(), "10.77.0.100");
    client.sh_ok(&format!("ping -c1 -W1 {}", n2.ip()));
    lab.hub().sh_ok(&format!("ping -c1 -W1 {}", client.ip()));
    // Hosts are isolated from the machine: no route off the LAN.
    let off = n1.sh("ping -c1 -W1 10.78.0.1");
    assert!(!off.status.success(), "a lab host reached 10.78.0.1");

    let namespaces = lab.namespaces();
    assert_eq!(namespaces.len(), 6);
    drop(lab);
    let listed = netns_list();
    for ns in &namespaces {
        assert!(!listed.contains(ns), "{ns} left after drop:\n{listed}");
    }
    assert!(!listed.contains(&prefix), "{listed}");
    let links = root_links();
    assert!(!links.contains(&prefix), "links left:\n{links}");
    assert!(
        !std::path::Path::new(&format!("/run/netns/{prefix}-lan")).exists(),
        "the lan namespace file is left"
    );
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let lab = Lab::new(1);
        tx.send(lab.namespaces()).unwrap();
        panic!("a failing test");
    });
    assert!(result.is_err());
    let namespaces = rx.recv().unwrap();
    assert_eq!(namespaces.len(), 3, "{namespaces:?}");
    let listed = netns_list();
    for ns in &namespaces {
        assert!(!listed.contains(ns), "{ns} left after a panic:\n{listed}");
    }
}

#[test]
fn new_labs_sweep_namespaces_of_dead_test_processes() {
    // A pid that no longer exists: a child that has exited and been reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("bl{dead}x0-lan");
    let made = Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .unwrap();
    assert!(made.success());
    let lab = Lab::new(0);
    let listed = netns_list();
    let left = listed.contains(&stale);
    // Not ours to keep either way.
    let _ = Command::new("ip").args(["netns", "del", &stale]).output();
    assert!(!left, "{stale} survived the sweep:\n{listed}");
    assert!(listed.contains(lab.lan_ns()), "{listed}");
}

/// GET `/` over `stream`, HTTP/1.0; the whole response.
fn http_get(stream: TcpStream) -> String {
    try_http_get(stream).expect("reading the reply")
}

/// [`http_get`], with the error (a reset while the server is not up yet).
fn try_http_get(mut stream: TcpStream) -> std::io::Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\nHost: lab\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

#[test]
fn forward_reaches_a_server_inside_a_host() {
    let mut lab = Lab::new(1);
    let node = lab.node(1).clone();
    let www = tempfile::tempdir().unwrap();
    let marker = format!("hello from {}", node.ns_name());
    std::fs::write(www.path().join("index.html"), &marker).unwrap();
    let mut httpd = node.command(busybox().expect("fixture busybox"));
    httpd
        .args(["httpd", "-f", "-p", "127.0.0.1:8080", "-h"])
        .arg(www.path())
        .stdin(Stdio::null());
    let _httpd = Proc::spawn(httpd);

    let port = node.forward(8080);
    // Nothing listens on that port in the root namespace's loopback... but
    // the forward does: its replies come from inside node1.
    let reply = eventually("httpd through the forward", Duration::from_secs(10), || {
        // Until httpd listens, the forward resets the connection.
        let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        let r = try_http_get(s).ok()?;
        r.contains("200 OK").then_some(r)
    });
    assert!(reply.ends_with(&marker), "{reply}");
    // Several connections, also at once.
    let streams: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for s in streams {
        assert!(http_get(s).ends_with(&marker));
    }
    // The same server from another host over the LAN, and not from the
    // root namespace directly.
    let client = lab.add_client();
    let lan = client.sh(&format!("timeout 5 wget -qO- http://{}:8080/", node.ip()));
    assert!(
        !lan.status.success(),
        "httpd bound 127.0.0.1 only, yet reachable over the LAN"
    );
    drop(lab);
    // The forward is gone with the lab.
    let after = TcpStream::connect(("127.0.0.1", port));
    assert!(after.is_err(), "the forward still accepts after drop");
}

#[test]
fn forward_to_a_closed_port_closes_the_connection() {
    let lab = Lab::new(1);
    let port = lab.node(1).forward(9);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected EOF");
}

fn cluster_on_lab(broker: Broker) {
    let _one = serial();
    let lab = Lab::new(2);
    let mut c = Cluster::start_in_lab(&lab, broker, &[]);
    assert_eq!(c.hub.lan_url, "https://10.77.0.2:7480");
    assert_eq!(c.agents.len(), 2);
    for a in &c.agents {
        assert_eq!(c.node_ready(&a.name).as_deref(), Some("True"));
    }
    c.push_busybox("busybox", "lab");
    let (code, v) = c
        .client()
        .post(DEPLOYMENTS, &deployment("spread", 2, "busybox:lab", IDLE));
    assert_eq!(code, 201, "{v}");
    let ready = eventually("2 ready replicas", Duration::from_secs(90), || {
        let r = c.ready_pods("app=spread");
        (r.len() == 2).then_some(r)
    });
    let mut nodes: Vec<&str> = ready.iter().map(|(_, n)| n.as_str()).collect();
    nodes.sort();
    let mut agents: Vec<&str> = c.agents.iter().map(|a| a.name.as_str()).collect();
    agents.sort();
    assert_eq!(nodes, agents, "one pod per node");

    // The CLI through the forward.
    let out = Command::new(bramble_tests::bin("bramble"))
        .args(["--hub", &c.hub.url, "--token", &c.hub.token])
        .arg("--data-dir")
        .arg(&c.hub.data_dir)
        .args(["get", "nodes"])
        .output()
        .expect("running bramble");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for a in &c.agents {
        assert!(text.contains(&a.name), "{text}");
    }
    // A node's InternalIP (when this hub build reports one) is its LAN
    // address.
    for (a, host) in c.agents.iter().zip(lab.nodes()) {
        let node = c.node(&a.name).expect("node object");
        let internal: Vec<&str> = node["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x["type"] == "InternalIP")
            .filter_map(|x| x["address"].as_str())
            .collect();
        if !internal.is_empty() {
            assert_eq!(internal, [host.ip().to_string()], "{node}");
        }
    }
    // The agents' connections come over the LAN (from their own addresses).
    let conns = lab.hub().sh_ok("ss -Htn state established");
    for host in lab.nodes() {
        assert!(conns.contains(&host.ip().to_string()), "{conns}");
    }

    // Restarts keep their namespaces: the hub comes back behind the same
    // forward, a restarted agent rejoins, the pods stay.
    c.hub.restart();
    c.agents[1].restart();
    for a in &c.agents {
        c.wait_node_ready(&a.name, Duration::from_secs(30));
    }
    assert_eq!(c.ready_pods("app=spread").len(), 2);
}

#[test]
fn cluster_runs_on_the_lab_embedded_broker() {
    cluster_on_lab(Broker::Embedded);
}

#[test]
fn cluster_runs_on_the_lab_with_mosquitto() {
    cluster_on_lab(Broker::Mosquitto);
}
