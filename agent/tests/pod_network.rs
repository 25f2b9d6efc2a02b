//! The pod network with real containers (root): in a throwaway network
//! namespace standing in for the node's (the test's node thread enters it,
//! so veths, routes, `ip_forward` and the nft table are all made there and
//! vanish with it), a desired network config gives a busybox pod `eth0`
//! with the first pod address, the pod reaches a listener on its gateway,
//! its status carries `podIP`, a Service VIP and a hostPort reach it from
//! the node, the address survives adoption by a restarted agent, and
//! stopping the pod and removing the network leave no veth, route or table.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bramble_agent::node::network::{NetSettings, NetworkError};
use bramble_agent::node::{Node, NodeDirs, Waker};
use bramble_agent::pod::{PodInputs, PodOptions};
use bramble_api::objects::pod::Pod;
use bramble_api::objects::pod_status::PodStatus;
use bramble_api::protocol::{Endpoint, NetworkConfig, ServiceEntry, ServicePortEntry};
use bramble_tests::require_root;
use common::{Backend, PodEnv, fixture_images};

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop (with everything in it).
struct TestNs(String);

impl TestNs {
    fn new() -> TestNs {
        TestNs::new_named(&format!("bat-podnet-{}", std::process::id()))
    }
    fn new_named(name: &str) -> TestNs {
        let name = name.to_string();
        ip(&["netns", "add", &name]);
        let ns = TestNs(name);
        ns.ip(&["link", "set", "lo", "up"]);
        // The node's "LAN" link, holding the node address.
        ns.ip(&[
            "link", "add", "lan0", "type", "veth", "peer", "name", "lan1",
        ]);
        ns.ip(&["addr", "add", "10.77.0.11/24", "dev", "lan0"]);
        ns.ip(&["link", "set", "lan0", "up"]);
        ns.ip(&["link", "set", "lan1", "up"]);
        ns
    }
    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.0];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Stops the node's pods on drop, also after a failed assertion.
struct NodeGuard(Option<Node>);

impl NodeGuard {
    fn get(&mut self) -> &mut Node {
        self.0.as_mut().expect("a node")
    }

    /// What a restarted agent does: the old node (its pods' threads) gone
    /// first, then a new one opened on the same directories.
    fn restart(
        &mut self,
        open: impl FnOnce() -> (Node, Vec<bramble_agent::node::NodeEvent>),
    ) -> Vec<bramble_agent::node::NodeEvent> {
        drop(self.0.take());
        let (node, events) = open();
        self.0 = Some(node);
        events
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if let Some(node) = &mut self.0 {
            node.stop_all();
        }
    }
}

fn pod() -> Pod {
    serde_yaml_ng::from_str(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: netpod, namespace: default, uid: u-netpod}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    command: [sh, -c, "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{containerPort: 8080, hostPort: 18080}]
  - name: probe
    image: busybox
    command: [sh, -c, "echo pod=$POD_IP host=$HOST_IP; until wget -q -O - http://10.42.7.1:7001/; do sleep 0.2; done; echo; echo probe-done; exec sleep 3600"]
    env:
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
"#,
    )
    .unwrap()
}

fn config() -> NetworkConfig {
    NetworkConfig {
        pod_cidr: Some("10.42.7.0/24".into()),
        cluster_cidr: Some("10.42.0.0/16".into()),
        service_cidr: Some("10.43.0.0/16".into()),
        services: vec![ServiceEntry {
            namespace: "default".into(),
            name: "web".into(),
            cluster_ip: Some("10.43.0.30".into()),
            client_ip_affinity_seconds: None,
            addresses: Vec::new(),
            ports: vec![ServicePortEntry {
                name: "http".into(),
                protocol: "TCP".into(),
                port: 80,
                node_port: None,
                endpoints: vec![Endpoint {
                    ip: "10.42.7.2".into(),
                    port: 8080,
                    node: "n1".into(),
                }],
            }],
        }],
        ..NetworkConfig::default()
    }
}

/// `GET /` at `addr` (from the calling thread's namespace).
fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Ticks `node` until `done` holds for the pod's status, or panics;
/// returns that status and the node's events meanwhile.
fn tick_until(
    node: &mut Node,
    logs: &Path,
    what: &str,
    mut done: impl FnMut(&PodStatus) -> bool,
) -> (PodStatus, Vec<bramble_agent::node::NodeEvent>) {
    let mut last = BTreeMap::new();
    let mut seen = Vec::new();
    let waited = bramble_tests::try_eventually(Duration::from_secs(30), || {
        let (statuses, events) = node.tick(Instant::now());
        seen.extend(events);
        for (id, s) in statuses {
            last.insert(id, s);
        }
        last.get("default_netpod").filter(|s| done(s)).cloned()
    });
    let status = waited.unwrap_or_else(|t| {
        let logs = format!(
            "probe: {}\nweb: {}",
            log_of(logs, "probe"),
            log_of(logs, "web")
        );
        let links = Command::new("ip").args(["addr"]).output().unwrap();
        let routes = Command::new("ip").args(["route"]).output().unwrap();
        panic!(
            "timed out waiting for {what} {t}: {last:?}\nLOGS {logs:?}\n{}{}",
            String::from_utf8_lossy(&links.stdout),
            String::from_utf8_lossy(&routes.stdout)
        );
    });
    (status, seen)
}

/// The log of the pod's `container` (`LOGS/<pod id>/<container>.log`).
fn log_of(logs: &Path, container: &str) -> String {
    std::fs::read_to_string(logs.join("default_netpod").join(format!("{container}.log")))
        .unwrap_or_default()
}

#[test]
fn a_pod_gets_eth0_its_address_a_service_and_a_host_port() {
    require_root("containers and network namespaces");
    let env = PodEnv::new("podnet", Backend::Libcontainer);
    let ns = TestNs::new();
    let table = format!("bramble_test_{}", std::process::id());
    let images: std::sync::Arc<dyn bramble_agent::pod::ImageSource> =
        std::sync::Arc::new(fixture_images());
    let dirs = NodeDirs {
        pods: env.dirs.clone(),
        records: env.path().join("run/pods"),
        cgroup_parent: env.cgroup_parent.clone(),
        volumes: env.path().join("volumes"),
    };
    let settings = NetSettings {
        node_ip: Some(Ipv4Addr::new(10, 77, 0, 11)),
        table: table.clone(),
    };
    let runtime: std::sync::Arc<dyn bramble_agent::runtime::Runtime> = env.runtime.clone();
    // What a restarted agent process opens.
    let fresh = env.fresh_runtime();
    let restarted: std::sync::Arc<dyn bramble_agent::runtime::Runtime> = fresh.clone();
    let ns_path = ns.path();
    std::thread::scope(|s| {
        s.spawn(|| {
            // This thread is the node: its network namespace is the test's.
            bramble_net::netns::enter(&ns_path).unwrap();
            let gateway = TcpListener::bind("0.0.0.0:7001").unwrap();
            gateway.set_nonblocking(true).unwrap();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stopped = stop.clone();
            let served = std::thread::spawn(move || {
                while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    match gateway.accept() {
                        Ok((mut c, _)) => {
                            // Read the request first: closing with unread
                            // data would reset the connection.
                            c.set_nonblocking(false).unwrap();
                            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                            let mut buf = [0u8; 1024];
                            let _ = c.read(&mut buf);
                            let _ = c.write_all(b"HTTP/1.0 200 OK\r\n\r\ngateway-reached");
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            });
            let open = |runtime: &std::sync::Arc<dyn bramble_agent::runtime::Runtime>| {
                Node::open(
                    runtime.clone(),
                    images.clone(),
                    dirs.clone(),
                    PodOptions::default(),
                    Waker::none(),
                )
                .unwrap()
            };
            let logs = dirs.pods.logs.clone();
            let (node, _) = open(&runtime);
            let mut node = NodeGuard(Some(node));
            node.get().enable_network(settings.clone());
            node.get().set_network(Some(config()));
            let events = node.get().apply(&[pod()], &PodInputs::default());
            assert!(events.is_empty(), "{events:?}");
            let (status, events) =
                tick_until(node.get(), &logs, "probe reaching the gateway", |st| {
                    st.pod_ip.is_some() && log_of(&logs, "probe").contains("probe-done")
                });
            assert!(
                events.contains(&bramble_agent::node::NodeEvent::Started {
                    pod: "default_netpod".into()
                }),
                "{events:?}"
            );
            assert_eq!(status.pod_ip.as_deref(), Some("10.42.7.2"));
            assert_eq!(status.pod_ips[0].ip, "10.42.7.2");
            assert!(log_of(&logs, "probe").contains("gateway-reached"));
            // The downward API's addresses, in the container's env.
            assert!(
                log_of(&logs, "probe").contains("pod=10.42.7.2 host=10.77.0.11"),
                "{}",
                log_of(&logs, "probe")
            );
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            served.join().unwrap();
            // Inside the pod: eth0 with the address, default via the gateway.
            assert!(node.get().pod("default_netpod").is_some());
            let netns = dirs.pods.netns.join("default_netpod");
            let inside = bramble_net::netns::run_in(Some(&netns), || {
                let out = Command::new("ip")
                    .args(["-4", "addr", "show", "eth0"])
                    .output()
                    .unwrap();
                let r = Command::new("ip").args(["route"]).output().unwrap();
                Ok(format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&r.stdout)
                ))
            })
            .unwrap();
            assert!(inside.contains("inet 10.42.7.2/32"), "{inside}");
            assert!(
                inside.contains("default via 10.42.7.1 dev eth0"),
                "{inside}"
            );
            // The node: forwarding on, service CIDR routed, the table there.
            assert_eq!(
                std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                    .unwrap()
                    .trim(),
                "1"
            );
            let via_vip = bramble_tests::eventually(
                "the service VIP to answer",
                Duration::from_secs(10),
                || match http_get("10.43.0.30:80".parse().unwrap()) {
                    Ok(r) if r.contains("hello-from-pod") => Ok(r),
                    r => Err(format!("{r:?}")),
                },
            );
            assert!(via_vip.contains("hello-from-pod"));
            let via_host_port = http_get("10.77.0.11:18080".parse().unwrap()).unwrap();
            assert!(via_host_port.contains("hello-from-pod"), "{via_host_port}");
            // A restarted agent adopts the pod with its address.
            let opened = node.restart(|| open(&restarted));
            assert!(
                matches!(
                    opened.as_slice(),
                    [bramble_agent::node::NodeEvent::Adopted { .. }]
                ),
                "{opened:?}"
            );
            node.get().enable_network(settings.clone());
            node.get().set_network(Some(config()));
            let events = node.get().apply(&[pod()], &PodInputs::default());
            assert!(events.is_empty(), "{events:?}");
            let (status, _) = tick_until(node.get(), &logs, "the adopted pod's status", |st| {
                st.pod_ip.is_some()
            });
            assert_eq!(status.pod_ip.as_deref(), Some("10.42.7.2"));
            // Stopped: no pod link or pod route left; then the network goes.
            node.get().stop_all();
            assert!(bramble_net::veth::pod_links(None).unwrap().is_empty());
            node.get().set_network(None);
            node.get().apply(&[], &PodInputs::default());
        })
        .join()
        .unwrap();
    });
    assert_eq!(ns.ip(&["route", "show", "proto", "78"]).trim(), "");
    assert_eq!(ns.ip(&["route", "show", "proto", "77"]).trim(), "");
    let listed = Command::new("ip")
        .args(["netns", "exec", &ns.0, "nft", "list", "table", "ip", &table])
        .output()
        .unwrap();
    assert!(!listed.status.success(), "table {table} left behind");
}

#[test]
fn reset_removes_the_agents_table_and_node_routes() {
    require_root("containers and network namespaces");
    let ns = TestNs::new_named(&format!("bat-reset-{}", std::process::id()));
    let table = format!("bramble_reset_{}", std::process::id());
    let other = format!("keep_{}", std::process::id());
    for t in [&table, &other] {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.0, "nft", "add", "table", "ip", t])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    ns.ip(&[
        "route",
        "add",
        "10.42.9.0/24",
        "via",
        "10.77.0.12",
        "proto",
        "77",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.99.0.0/16",
        "via",
        "10.77.0.1",
        "proto",
        "static",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = ns.path();
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            // The agent process starts in the thread's network namespace.
            bramble_net::netns::enter(&path).unwrap();
            Command::new(env!("CARGO_BIN_EXE_bramble-agent"))
                .arg("reset")
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .arg("--run-dir")
                .arg(dir.path().join("run"))
                .args([
                    "--cgroup-parent",
                    &format!("/bramble-test-reset-{}", std::process::id()),
                ])
                .args(["--nft-table", &table])
                .output()
                .unwrap()
        })
        .join()
        .unwrap()
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = Command::new("ip")
        .args(["netns", "exec", &ns.0, "nft", "list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout).into_owned();
    assert!(!tables.contains(&table), "{tables}");
    assert!(
        tables.contains(&other),
        "another owner's table is kept: {tables}"
    );
    assert_eq!(ns.ip(&["route", "show", "proto", "77"]).trim(), "");
    assert!(
        ns.ip(&["route", "show"])
            .contains("10.99.0.0/16 via 10.77.0.1")
    );
}

#[test]
fn an_unreachable_node_route_does_not_keep_the_table_away() {
    require_root("containers and network namespaces");
    let ns = TestNs::new_named(&format!("bat-route-{}", std::process::id()));
    let table = format!("bramble_route_{}", std::process::id());
    let mut cfg = config();
    // Another node off this node's LAN: no link reaches 192.0.2.2.
    cfg.routes = vec![bramble_api::protocol::PodRoute {
        cidr: "10.42.8.0/24".into(),
        via: "192.0.2.2".into(),
        node: "far".into(),
    }];
    let path = ns.path();
    let (first, again) = std::thread::scope(|s| {
        s.spawn(|| {
            bramble_net::netns::enter(&path).unwrap();
            let mut net = bramble_agent::node::network::NodeNetwork::new(NetSettings {
                node_ip: None,
                table: table.clone(),
            });
            let first = net.reconcile(Some(&cfg), &[]);
            let again = net.reconcile(Some(&cfg), &[]);
            (first, again)
        })
        .join()
        .unwrap()
    });
    let error = first.expect_err("the route cannot be added");
    assert!(matches!(error, NetworkError::Routes(_)), "{error}");
    let error = error.to_string();
    assert!(
        error.contains("10.42.8.0/24") && error.contains("--node-ip"),
        "{error}"
    );
    // Retried (not taken as applied), and the service table is there.
    assert!(matches!(again, Err(NetworkError::Routes(_))), "{again:?}");
    let listed = Command::new("ip")
        .args(["netns", "exec", &ns.0, "nft", "list", "table", "ip", &table])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("10.43.0.30"), "{listed}");
}
