//! The cluster network end to end in the namespace lab: a hub host and three
//! node hosts on one LAN bridge, real agents programming veths, routes and
//! nftables in their hosts, real containers. Pods reach pods on other nodes
//! by IP and Services by DNS name, connections spread over every node's
//! endpoints, an unready pod leaves the rotation, the hub's ingress serves a
//! LAN client and survives a node dying, and a NetworkPolicy admits only
//! the frontend.

use bramble_tests::eventually;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, IDLE};
use bramble_tests::lab::{HUB_IP, Lab};
use bramble_tests::net::{WEB, exec, pinned_pod, service, wait_running, web_deployment};
use serde_json::json;

/// One lab cluster at a time: a hub and three agents on 2 cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn cli(c: &Cluster, args: &[&str]) -> (bool, String) {
    c.cli(args)
}

/// Hostnames answering `n` requests made with `wget` inside pod `from`.
fn hits(c: &Cluster, from: &str, url: &str, n: usize) -> BTreeMap<String, usize> {
    let script = format!("for i in $(seq {n}); do timeout 3 wget -qO- {url} || echo FAILED; done");
    let (_, out) = exec(c, from, &script);
    let mut m = BTreeMap::new();
    for l in out.lines().filter(|l| !l.is_empty()) {
        *m.entry(l.trim().to_string()).or_insert(0) += 1;
    }
    m
}

/// SIGKILLs every process in the cgroup `parent` and below (any hierarchy:
/// this machine mounts cgroup v1 controllers); returns how many.
fn kill_cgroup_tree(parent: &str) -> usize {
    fn walk(dir: &std::path::Path, pids: &mut std::collections::BTreeSet<i32>) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), pids);
            }
        }
    }
    let mut pids = std::collections::BTreeSet::new();
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        walk(&h.path().join(parent.trim_start_matches('/')), &mut pids);
    }
    for pid in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    pids.len()
}

#[test]
fn pods_services_dns_and_ingress_across_nodes() {
    let _one = serial();
    let mut lab = Lab::new(3);
    let mut c = Cluster::start_in_lab(&lab, Broker::Embedded, &[]);
    c.push_busybox("busybox", "net");
    let client = c.client();
    let nodes: Vec<String> = c.agents.iter().map(|a| a.name.clone()).collect();

    // Every node has a pod CIDR of its own.
    let cidrs: Vec<String> = nodes
        .iter()
        .map(|n| {
            c.node(n).unwrap()["spec"]["podCIDR"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        cidrs
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "{cidrs:?}"
    );

    // A pod on node 1 reaches a pod on node 3 by IP.
    let (code, v) = client.post(
        "/api/v1/namespaces/default/pods",
        &pinned_pod("client", "client", &nodes[0], IDLE),
    );
    assert_eq!(code, 201, "{v}");
    let (code, v) = client.post(
        "/api/v1/namespaces/default/pods",
        &pinned_pod("far", "far", &nodes[2], WEB),
    );
    assert_eq!(code, 201, "{v}");
    let client_ip = wait_running(&c, "client");
    let far_ip = wait_running(&c, "far");
    assert!(client_ip.parse::<std::net::Ipv4Addr>().is_ok());
    let (ok, out) = eventually(
        "node 1 → node 3 by pod IP",
        Duration::from_secs(20),
        || {
            let r = exec(
                &c,
                "client",
                &format!("timeout 3 wget -qO- http://{far_ip}:8080/"),
            );
            r.0.then_some(r)
        },
    );
    assert!(ok && out.trim() == "far", "{out}");
    let (_, wide) = cli(&c, &["get", "pods", "-o", "wide"]);
    assert!(wide.contains(&far_ip) && wide.contains(&nodes[2]), "{wide}");
    let (_, far) = client.get("/api/v1/namespaces/default/pods/far");
    assert_eq!(
        far["status"]["hostIP"].as_str(),
        Some(lab.node(3).ip().to_string().as_str()),
        "{far}"
    );

    // A Service by DNS name; connections spread over endpoints on all nodes.
    let (code, v) = client.post(DEPLOYMENTS, &web_deployment("web", 3));
    assert_eq!(code, 201, "{v}");
    let (code, v) = client.post("/api/v1/namespaces/default/services", &service("web"));
    assert_eq!(code, 201, "{v}");
    let ready = eventually("3 ready web pods", Duration::from_secs(90), || {
        let r = c.ready_pods("app=web");
        (r.len() == 3).then_some(r)
    });
    let on: std::collections::BTreeSet<&String> = ready.iter().map(|(_, n)| n).collect();
    assert_eq!(on.len(), 3, "one web pod per node: {ready:?}");
    // Reachable, with every endpoint in the rotation: a sample taken while
    // the last one joins may show it only once, so the spread is measured
    // on a fresh sample after. 90 connections over 3 endpoints chosen at
    // random: each gets 30 ± 4.5; fewer than 10 is a 1-in-300,000 event.
    eventually("web reachable by name", Duration::from_secs(20), || {
        let m = hits(&c, "client", "http://web/", 30);
        (m.len() == 3 && !m.contains_key("FAILED")).then_some(())
    });
    let spread = hits(&c, "client", "http://web/", 90);
    assert!(
        spread.len() == 3 && spread.values().all(|&n| n >= 10),
        "spread: {spread:?}"
    );
    let (ok, out) = exec(&c, "client", "nslookup web.default.svc.cluster.local");
    assert!(ok, "{out}");

    // A pod that turns unready leaves the rotation within a second.
    let (victim, _) = ready[0].clone();
    let (ok, out) = exec(&c, &victim, "rm /tmp/ready");
    assert!(ok, "{out}");
    let started = Instant::now();
    eventually(
        "the unready pod out of the rotation",
        Duration::from_secs(10),
        || {
            let m = hits(&c, "client", "http://web/", 9);
            (!m.contains_key(&victim) && m.len() == 2).then_some(())
        },
    );
    eprintln!(
        "unready pod left the rotation after {:?}",
        started.elapsed()
    );
    let (ok, out) = exec(&c, &victim, "touch /tmp/ready");
    assert!(ok, "{out}");
    eventually(
        "the pod back in the rotation",
        Duration::from_secs(10),
        || {
            hits(&c, "client", "http://web/", 9)
                .contains_key(&victim)
                .then_some(())
        },
    );

    // The hub's ingress from a LAN client: 200 requests over 3 nodes.
    let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
        "spec": {"rules": [{"host": "web.lan", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    let (code, v) = client.post(
        "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
        &ing,
    );
    assert_eq!(code, 201, "{v}");
    let lan_client = lab.add_client();
    let through_ingress = |n: usize| -> BTreeMap<String, usize> {
        let out = lan_client.sh_ok(&format!(
            "for i in $(seq {n}); do timeout 3 wget -qO- --header 'Host: web.lan' http://{HUB_IP}/ || echo FAILED; done"
        ));
        let mut m = BTreeMap::new();
        for l in out.lines().filter(|l| !l.is_empty()) {
            *m.entry(l.trim().to_string()).or_insert(0) += 1;
        }
        m
    };
    eventually(
        "the ingress routes web.lan",
        Duration::from_secs(20),
        || (through_ingress(3).len() == 3).then_some(()),
    );
    let m = through_ingress(200);
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(!m.contains_key("FAILED"), "{m:?}");

    // The hub host reaches the Service's ClusterIP through its own table.
    let (_, svc) = client.get("/api/v1/namespaces/default/services/web");
    let vip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    let from_hub = eventually(
        "the ClusterIP from the hub host",
        Duration::from_secs(20),
        || {
            let out = lab.hub().sh_ok(&format!(
                "for i in $(seq 30); do timeout 3 wget -qO- http://{vip}/ || echo FAILED; done"
            ));
            let hosts: std::collections::BTreeSet<&str> = out.lines().collect();
            (hosts.len() == 3 && !hosts.contains("FAILED")).then(|| out.clone())
        },
    );
    assert_eq!(from_hub.lines().count(), 30, "{from_hub}");
    let hub_table = lab.hub().sh_ok("nft list table ip bramble-hub");
    assert!(hub_table.contains(&vip), "{hub_table}");

    // Node 3's agent and pods die: the rest keep answering.
    let dead = c.agents[2].name.clone();
    c.agents[2].proc.kill9();
    let killed = kill_cgroup_tree(&c.agents[2].cgroup_parent);
    assert!(killed > 0, "no pod process found to kill");
    let m = through_ingress(100);
    let failed = m.get("FAILED").copied().unwrap_or(0);
    assert!(failed <= 1, "only in-flight requests may fail: {m:?}");
    let dead_pod = ready.iter().find(|(_, n)| *n == dead).unwrap().0.clone();
    assert!(!m.contains_key(&dead_pod), "{m:?}");
    drop(c);
    let names = lab.namespaces();
    drop(lab);
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for n in names {
        assert!(!listed.contains(&n), "{n} left behind: {listed}");
    }
}

#[test]
fn network_policy_admits_only_the_frontend_across_nodes() {
    let _one = serial();
    let lab = Lab::new(3);
    let c = Cluster::start_in_lab(&lab, Broker::Embedded, &[]);
    c.push_busybox("busybox", "net");
    let client = c.client();
    let nodes: Vec<String> = c.agents.iter().map(|a| a.name.clone()).collect();
    for (name, app, node, script) in [
        ("db", "db", &nodes[2], WEB),
        ("frontend", "frontend", &nodes[0], IDLE),
        ("other", "other", &nodes[1], IDLE),
    ] {
        let (code, v) = client.post(
            "/api/v1/namespaces/default/pods",
            &pinned_pod(name, app, node, script),
        );
        assert_eq!(code, 201, "{v}");
    }
    let db = wait_running(&c, "db");
    wait_running(&c, "frontend");
    wait_running(&c, "other");
    let get = |from: &str| exec(&c, from, &format!("timeout 2 wget -qO- http://{db}:8080/")).0;
    eventually(
        "both reach the db before any policy",
        Duration::from_secs(20),
        || (get("frontend") && get("other")).then_some(()),
    );
    let policy = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "db-from-frontend"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                         "ports": [{"port": "http"}]}]}});
    let (code, v) = client.post(
        "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies",
        &policy,
    );
    assert_eq!(code, 201, "{v}");
    eventually("the other pod blocked", Duration::from_secs(20), || {
        (!get("other")).then_some(())
    });
    assert!(get("frontend"), "the frontend is still allowed");
    // Deleting the policy opens the db again.
    let (code, _) = client
        .delete("/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/db-from-frontend");
    assert_eq!(code, 200);
    eventually(
        "the other pod allowed again",
        Duration::from_secs(20),
        || get("other").then_some(()),
    );
}

#[test]
fn join_auto_finds_the_hub_by_mdns() {
    let _one = serial();
    let mut lab = Lab::new(0);
    let mut c = Cluster::start_in_lab(&lab, Broker::Embedded, &[]);
    let fresh = lab.add_client();
    let name = bramble_tests::cluster::unique("auto");
    c.add_agent_joining_auto(&name, &fresh);
    c.wait_node_ready(&name, Duration::from_secs(40));
    let node = c.node(&name).unwrap();
    assert_eq!(
        node["status"]["addresses"][0],
        json!({"type": "InternalIP", "address": fresh.ip().to_string()})
    );
    assert!(node["spec"]["podCIDR"].is_string(), "{node}");
}

#[test]
fn annotated_node_port_service_is_announced_as_a_local_name() {
    use mdns_sd::{ServiceDaemon, ServiceEvent};
    let _one = serial();
    let mut lab = Lab::new(2);
    let c = Cluster::start_in_lab(&lab, Broker::Embedded, &[]);
    c.push_busybox("busybox", "net");
    let client = c.client();
    let (code, v) = client.post(DEPLOYMENTS, &web_deployment("shop", 2));
    assert_eq!(code, 201, "{v}");
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "shop", "annotations": {"bramble.dev/mdns": "true"}},
        "spec": {"type": "NodePort", "selector": {"app": "shop"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    let (code, v) = client.post("/api/v1/namespaces/default/services", &svc);
    assert_eq!(code, 201, "{v}");
    let node_port = v["spec"]["ports"][0]["nodePort"].as_u64().unwrap() as u16;

    // A LAN client with no cluster DNS: mDNS names `shop.local` and
    // browsing `_http._tcp` finds the node port on both nodes.
    let lan = lab.add_client();
    let (addrs, port, removed) = lan.run(move || {
        let daemon = ServiceDaemon::new().expect("mDNS daemon");
        let browse = daemon.browse("_http._tcp.local.").expect("browse");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut found = None;
        while found.is_none() && Instant::now() < deadline {
            if let Ok(ServiceEvent::ServiceResolved(info)) =
                browse.recv_timeout(Duration::from_millis(500))
                && info.get_fullname() == "shop._http._tcp.local."
                && info.get_addresses().len() == 2
            {
                found = Some(info);
            }
        }
        let info = found.expect("shop._http._tcp.local. resolved with both nodes");
        let hosts = daemon
            .resolve_hostname("shop.local.", Some(5000))
            .expect("resolve_hostname");
        let mut by_name = std::collections::BTreeSet::new();
        while let Ok(ev) = hosts.recv_timeout(Duration::from_secs(6)) {
            match ev {
                mdns_sd::HostnameResolutionEvent::AddressesFound(_, a) => by_name.extend(a),
                mdns_sd::HostnameResolutionEvent::SearchStopped(_) => break,
                _ => {}
            }
        }
        // Withdrawn when the Service is deleted (a goodbye packet).
        let removed = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(ServiceEvent::ServiceRemoved(_, name)) =
                    browse.recv_timeout(Duration::from_millis(500))
                    && name == "shop._http._tcp.local."
                {
                    return true;
                }
            }
            false
        });
        (by_name, info.get_port(), (removed, daemon))
    });
    let nodes: std::collections::BTreeSet<std::net::IpAddr> =
        lab.nodes().iter().map(|h| h.ip().into()).collect();
    assert_eq!(addrs, nodes, "shop.local names both nodes");
    assert_eq!(port, node_port);
    eventually("2 ready shop pods", Duration::from_secs(90), || {
        (c.ready_pods("app=shop").len() == 2).then_some(())
    });
    for ip in &nodes {
        let out = eventually(
            "the node port from the LAN",
            Duration::from_secs(20),
            || {
                let o = lan.sh(&format!("timeout 3 wget -qO- http://{ip}:{port}/"));
                o.status
                    .success()
                    .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
            },
        );
        assert!(out.trim().starts_with("shop-"), "{out}");
    }
    let (code, v) = client.delete("/api/v1/namespaces/default/services/shop");
    assert!(code == 200 || code == 202, "{v}");
    let (removed, daemon) = removed;
    assert!(removed.join().unwrap(), "shop.local withdrawn");
    let _ = daemon.shutdown();
}
