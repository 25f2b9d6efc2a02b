//! `type: LoadBalancer` Services end to end: a real hub and agent, busybox
//! `httpd` pods. The hub's load balancer (on a loopback address of this
//! test's own) forwards TCP to the ready pods of a Service and UDP to a
//! server of the test (bound in a pod's network namespace), reports its
//! address in the Service's status (`EXTERNAL-IP`), and says why a port is
//! not served — held by an older Service, or by another
//! program — until the port is free, then serves it. Deleting a Service
//! closes its port. In the namespace lab, a board chosen by
//! `bramble.dev/lb-nodes` serves the Service on its own address too, to a
//! LAN client, and the Service lists it.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, IDLE};
use bramble_tests::eventually;
use bramble_tests::lab::{HUB_IP, Lab};
use bramble_tests::net::{pod_netns, wait_running, web_deployment};
use serde_json::{Value, json};

const SERVICES: &str = "/api/v1/namespaces/default/services";

/// A LoadBalancer Service `name` for the pods `app=app`: `port` to their
/// port named `target`.
fn lb_service(name: &str, app: &str, port: u16, protocol: &str, target: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "selector": {"app": app},
            "ports": [{"name": "p", "port": port, "protocol": protocol, "targetPort": target}]}})
}

fn service(c: &Cluster, name: &str) -> Value {
    let (code, v) = c.client().get(&format!("{SERVICES}/{name}"));
    assert_eq!(code, 200, "{v}");
    v
}

/// The Service's load balancer condition: (status, message).
fn lb_condition(svc: &Value) -> Option<(String, String)> {
    svc["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "LoadBalancerReady")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            )
        })
}

/// Waits until the Service lists `ip` as its load balancer's address.
fn wait_served(c: &Cluster, name: &str, ip: IpAddr) {
    eventually(
        format!("service {name} served on {ip}"),
        Duration::from_secs(30),
        || {
            let svc = service(c, name);
            (svc["status"]["loadBalancer"]["ingress"][0]["ip"] == ip.to_string()
                && lb_condition(&svc).is_some_and(|(s, _)| s == "True"))
            .then_some(())
        },
    );
}

/// Waits until the Service is refused with a message containing `needle`;
/// checks that it lists no address meanwhile.
fn wait_refused(c: &Cluster, name: &str, needle: &str) -> String {
    eventually(
        format!("service {name} refused: {needle}"),
        Duration::from_secs(30),
        || {
            let svc = service(c, name);
            let (status, message) = lb_condition(&svc)?;
            (status == "False" && message.contains(needle)).then(|| {
                assert!(svc["status"]["loadBalancer"].is_null(), "{svc}");
                message
            })
        },
    )
}

/// `curl` of `http://addr/`: the body, or `None` if it failed.
fn curl(addr: SocketAddr) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", &format!("http://{addr}/")])
        .output()
        .expect("running curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A UDP server on port 5353 in the network namespace at `netns` (a pod's),
/// answering each datagram with it in upper case until it gets `stop`.
fn udp_upper_server(netns: &std::path::Path) -> (std::thread::JoinHandle<()>, UdpSocket) {
    let socket = bramble_tests::lab::run_in_netns(netns, || UdpSocket::bind("0.0.0.0:5353"))
        .expect("entering the pod's network namespace")
        .expect("binding 5353/udp in the pod");
    let server = socket.try_clone().unwrap();
    let handle = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            if &buf[..n] == b"stop" {
                return;
            }
            let _ = server.send_to(&buf[..n].to_ascii_uppercase(), from);
        }
    });
    (handle, socket)
}

#[test]
fn load_balancer_services_are_served_on_the_hubs_address() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    let lb = c.hub.lb_address;
    c.push_busybox("busybox", "net");
    let (code, v) = c.client().post(DEPLOYMENTS, &web_deployment("web", 2));
    assert_eq!(code, 201, "{v}");
    let (code, v) = c
        .client()
        .post(SERVICES, &lb_service("web", "web", 18080, "TCP", "http"));
    assert_eq!(code, 201, "{v}");
    wait_served(&c, "web", lb);
    eventually("two web pods ready", Duration::from_secs(60), || {
        (c.ready_pods("app=web").len() == 2).then_some(())
    });

    // Both pods answer through the hub's address (each names its host).
    let web = SocketAddr::new(lb, 18080);
    let mut seen = BTreeSet::new();
    eventually("both pods answering", Duration::from_secs(30), || {
        if let Some(body) = curl(web) {
            seen.insert(body);
        }
        (seen.len() == 2).then_some(())
    });
    let pods: BTreeSet<String> = c.ready_pods("app=web").into_iter().map(|p| p.0).collect();
    assert_eq!(seen, pods);
    let (ok, out) = c.cli(&["get", "svc", "web"]);
    assert!(ok, "{out}");
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(row[1], "LoadBalancer", "{out}");
    assert_eq!(row[3], lb.to_string(), "{out}");
    assert!(
        row[4].starts_with("18080:3") && row[4].ends_with("/TCP"),
        "{out}"
    );

    // The same port again: held by the older Service, said so, and a
    // Warning event on the newer one.
    let (code, v) = c
        .client()
        .post(SERVICES, &lb_service("web2", "web", 18080, "TCP", "http"));
    assert_eq!(code, 201, "{v}");
    let msg = wait_refused(&c, "web2", "already served for service default/web");
    assert!(msg.contains("port 18080/TCP"), "{msg}");
    let (ok, out) = c.cli(&["get", "svc", "web2"]);
    assert!(ok && out.contains("<pending>"), "{out}");
    eventually("the PortUnavailable event", Duration::from_secs(30), || {
        let (_, events) = c
            .client()
            .get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dweb2");
        events["items"]
            .as_array()?
            .iter()
            .any(|e| e["reason"] == "PortUnavailable" && e["type"] == "Warning")
            .then_some(())
    });

    // A port another program holds: refused until that program lets go.
    let holder = TcpListener::bind((lb, 18081)).expect("holding 18081");
    let (code, v) = c
        .client()
        .post(SERVICES, &lb_service("held", "web", 18081, "TCP", "http"));
    assert_eq!(code, 201, "{v}");
    let msg = wait_refused(&c, "held", "another program on the hub");
    assert!(msg.contains(&format!("binding {lb}:18081 failed")), "{msg}");
    drop(holder);
    wait_served(&c, "held", lb);
    eventually("18081 answering", Duration::from_secs(30), || {
        curl(SocketAddr::new(lb, 18081))
    });

    // UDP, to a server of the test in a pod's network namespace.
    let (code, v) = c.client().post(
        "/api/v1/namespaces/default/pods",
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "udp", "labels": {"app": "udp"}},
            "spec": {"terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "busybox:net",
                    "command": ["sh", "-c", IDLE],
                    "ports": [{"name": "dns", "containerPort": 5353, "protocol": "UDP"}]}]}}),
    );
    assert_eq!(code, 201, "{v}");
    wait_running(&c, "udp");
    let (echo, echo_socket) = udp_upper_server(&pod_netns(&c.agents[0], "udp"));
    let (code, v) = c
        .client()
        .post(SERVICES, &lb_service("echo", "udp", 15353, "UDP", "dns"));
    assert_eq!(code, 201, "{v}");
    wait_served(&c, "echo", lb);
    let client = UdpSocket::bind((lb, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let answer = eventually("a UDP answer", Duration::from_secs(30), || {
        client.send_to(b"ping", (lb, 15353)).ok()?;
        let mut buf = [0u8; 64];
        let (n, from) = client.recv_from(&mut buf).ok()?;
        Some((buf[..n].to_vec(), from))
    });
    assert_eq!(answer, (b"PING".to_vec(), SocketAddr::new(lb, 15353)));
    // The server's own socket tells its thread to stop.
    echo_socket.send_to(b"stop", ("127.0.0.1", 5353)).unwrap();
    echo.join().unwrap();

    // Deleting the holder hands the port to the next Service; deleting
    // every Service closes the ports.
    let (code, v) = c.client().delete(&format!("{SERVICES}/web"));
    assert_eq!(code, 200, "{v}");
    wait_served(&c, "web2", lb);
    assert!(curl(web).is_some(), "web2 serves 18080");
    for name in ["web2", "held", "echo"] {
        let (code, v) = c.client().delete(&format!("{SERVICES}/{name}"));
        assert_eq!(code, 200, "{v}");
    }
    eventually("18080 and 18081 closed", Duration::from_secs(30), || {
        [18080, 18081]
            .iter()
            .all(|p| std::net::TcpStream::connect((lb, *p)).is_err())
            .then_some(())
    });
}

/// What a LAN client's `wget` of `url` got: the body, or `FAILED`.
fn lan_get(host: &bramble_tests::lab::Host, url: &str) -> String {
    host.sh_ok(&format!("timeout 3 wget -qO- {url} || echo FAILED"))
        .trim()
        .to_string()
}

#[test]
fn a_chosen_board_serves_a_load_balancer_on_its_own_address() {
    let mut lab = Lab::new(2);
    let c = Cluster::start_in_lab(&lab, Broker::Embedded, &[]);
    c.push_busybox("busybox", "net");
    let client = lab.add_client();
    let (code, v) = c.client().post(DEPLOYMENTS, &web_deployment("web", 1));
    assert_eq!(code, 201, "{v}");
    let chosen = c.agents[0].name.clone();
    let mut svc = lb_service("web", "web", 8080, "TCP", "http");
    svc["metadata"]["annotations"] =
        json!({"bramble.dev/lb-nodes": format!("kubernetes.io/hostname={chosen}")});
    let (code, v) = c.client().post(SERVICES, &svc);
    assert_eq!(code, 201, "{v}");
    eventually("one web pod ready", Duration::from_secs(60), || {
        (c.ready_pods("app=web").len() == 1).then_some(())
    });

    // The status lists the hub, then the chosen board.
    let (node1, node2) = (lab.node(1).ip(), lab.node(2).ip());
    eventually("the board in the status", Duration::from_secs(30), || {
        let svc = service(&c, "web");
        let ips: Vec<&str> = svc["status"]["loadBalancer"]["ingress"]
            .as_array()?
            .iter()
            .filter_map(|i| i["ip"].as_str())
            .collect();
        (ips == [HUB_IP.to_string(), node1.to_string()]).then_some(())
    });
    // A LAN client gets the pod through the hub and through the chosen
    // board; the other board does not answer that port.
    let pod = c.ready_pods("app=web")[0].0.clone();
    for addr in [HUB_IP, node1] {
        let got = eventually(
            format!("web through {addr}"),
            Duration::from_secs(30),
            || {
                let body = lan_get(&client, &format!("http://{addr}:8080/"));
                (body != "FAILED").then_some(body)
            },
        );
        assert_eq!(got, pod, "through {addr}");
    }
    assert_eq!(lan_get(&client, &format!("http://{node2}:8080/")), "FAILED");

    // Without the annotation the board stops serving it.
    let (code, v) = c.client().merge_patch(
        &format!("{SERVICES}/web"),
        &json!({"metadata": {"annotations": {"bramble.dev/lb-nodes": null}}}),
    );
    assert_eq!(code, 200, "{v}");
    eventually(
        "the board no longer serving",
        Duration::from_secs(30),
        || (lan_get(&client, &format!("http://{node1}:8080/")) == "FAILED").then_some(()),
    );
    assert_eq!(lan_get(&client, &format!("http://{HUB_IP}:8080/")), pod);
}
