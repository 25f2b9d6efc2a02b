//! The hub's ingress end to end: three "pods" (HTTP servers on an address
//! of the scripted node's pod CIDR held by a dummy interface, each reported
//! by a scripted agent with its own container port) behind a Service and an Ingress. Host rules, spreading, the
//! `X-Forwarded-*` headers, retry when an endpoint refuses, 503 when none is
//! ready, 404 without a rule, and a tunnelled `Upgrade`.

mod mqtt_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bramble_api::protocol::TopicKind;
use bramble_hub::testing::TestHub;
use bramble_tests::Client;
use bramble_tests::eventually_async;
use bramble_tests::pod_addr::PodAddr;
use mqtt_support::{WAIT, create_pod, join_with_network, pod_status};
use serde_json::json;

/// A tiny HTTP/1.1 server standing in for a pod: answers every request
/// with `name|x-forwarded-for|x-forwarded-host|path|body`, keeps
/// connections alive, and on `Upgrade: echo` switches protocols and echoes.
struct Backend {
    ip: std::net::IpAddr,
    port: u16,
    stopped: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Backend {
    fn start(name: &'static str, ip: std::net::Ipv4Addr) -> Backend {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let ip = std::net::IpAddr::V4(ip);
        let port = listener.local_addr().unwrap().port();
        let stopped = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
        let (s, c) = (stopped.clone(), conns.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                c.lock().unwrap().push(conn.try_clone().unwrap());
                std::thread::spawn(move || serve(name, conn));
            }
        });
        Backend {
            ip,
            port,
            stopped,
            conns,
        }
    }

    /// Dies like a killed pod: open connections reset, the port closed.
    fn kill(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        // Wake the accept loop so that it returns and drops the listener.
        let _ = TcpStream::connect((self.ip, self.port));
    }
}

fn serve(name: &str, conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let header = |n: &str| {
            head.iter()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(n).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let len: usize = header("content-length").parse().unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let path = head[0].split(' ').nth(1).unwrap_or("").to_string();
        if header("upgrade") == "echo" {
            out.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
            )
            .unwrap();
            let mut buf = [0u8; 1024];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            return;
        }
        let text = format!(
            "{name}|{}|{}|{path}|{}",
            header("x-forwarded-for"),
            header("x-forwarded-host"),
            String::from_utf8_lossy(&body)
        );
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// One request through the ingress: (status, body).
fn get(agent: &ureq::Agent, ingress: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let mut r = agent
        .get(&format!("http://{ingress}{path}"))
        .header("Host", host)
        .call()
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_rules_spread_retry_503_404_and_upgrade() {
    mqtt_support::init_logs();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let ingress = h.ingress_addr().expect("ingress served");
    let store = h.store().clone();
    let (agent, pod_cidr) =
        join_with_network(h.mqtt_addr().unwrap(), &h.join_token(), "n1", "127.0.0.1").await;
    let pod_addr = PodAddr::claim(&pod_cidr);
    let c = Client::with_ca(&hub.url(), hub.token(), hub.ca_pem().as_bytes());
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
        "spec": {"rules": [{"host": "shop.lan", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}});
    let (c, codes) = blocking(move || {
        let a = c.post("/api/v1/namespaces/default/services", &svc).0;
        let b = c
            .post(
                "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
                &ing,
            )
            .0;
        (c, (a, b))
    })
    .await;
    assert_eq!(codes, (201, 201));
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();

    // No ready endpoint yet: 503 naming the service; unknown host: 404.
    let hx = http.clone();
    let (code, body) = eventually_async("the Ingress to be routed", WAIT, async || {
        let r = get(&hx, ingress, "shop.lan", "/");
        (r.0 == 503).then_some(r)
    })
    .await;
    assert!(
        body.contains("no ready endpoints for service default/web"),
        "{code} {body}"
    );
    let hx = http.clone();
    let (code, body) = blocking(move || get(&hx, ingress, "other.lan", "/")).await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("other.lan"), "{body}");

    // Three ready pods: every one gets a share, headers are forwarded.
    let mut backends = Vec::new();
    let mut reports = Vec::new();
    for name in ["a", "b", "c"] {
        let b = Backend::start(name, pod_addr.ip);
        let uid = create_pod(&store, name, "n1", b.port).await;
        backends.push(b);
        let ip = pod_addr.ip.to_string();
        reports.extend(pod_status(1, name, &uid, &ip, true).pods);
    }
    let mut st = pod_status(1, "", "", "", true);
    st.pods = reports;
    agent.publish(TopicKind::Status, &st).await;
    let hx = http.clone();
    eventually_async("three endpoints", WAIT, async || {
        let seen: std::collections::BTreeSet<String> = (0..6)
            .map(|_| get(&hx, ingress, "shop.lan", "/").1)
            .filter_map(|b| b.split('|').next().map(str::to_string))
            .collect();
        (seen.len() == 3).then_some(())
    })
    .await;
    let hx = http.clone();
    let counts = blocking(move || {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..300 {
            let (code, body) = get(&hx, ingress, "shop.lan:8080", "/x?y=1");
            assert_eq!(code, 200, "{body}");
            let parts: Vec<&str> = body.split('|').collect();
            assert_eq!(parts[1], "127.0.0.1", "X-Forwarded-For: {body}");
            assert_eq!(parts[2], "shop.lan:8080", "X-Forwarded-Host: {body}");
            assert_eq!(parts[3], "/x?y=1");
            *counts.entry(parts[0].to_string()).or_default() += 1;
        }
        counts
    })
    .await;
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(
        counts.values().all(|&n| n == 100),
        "round robin: {counts:?}"
    );

    // A POST body arrives whole.
    let hx = http.clone();
    let body = blocking(move || {
        hx.post(&format!("http://{ingress}/"))
            .header("Host", "shop.lan")
            .send("hello body")
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    })
    .await;
    assert!(body.ends_with("|hello body"), "{body}");

    // An endpoint that refuses connections is skipped: nothing fails.
    backends[0].kill();
    let (ip, port) = (backends[0].ip, backends[0].port);
    eventually_async("the backend's port to close", WAIT, async || {
        TcpStream::connect((ip, port)).is_err().then_some(())
    })
    .await;
    let hx = http.clone();
    let failures = blocking(move || {
        (0..60)
            .filter(|_| get(&hx, ingress, "shop.lan", "/").0 != 200)
            .count()
    })
    .await;
    assert_eq!(failures, 0);

    // Upgrade: the tunnel echoes bytes both ways.
    let mut s = TcpStream::connect(ingress).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: shop.lan\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    loop {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        if l == "\r\n" {
            break;
        }
    }
    s.write_all(b"ping over the tunnel").unwrap();
    let mut buf = [0u8; 20];
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping over the tunnel");
    drop(c);
}

/// `Hub::stop` leaves nothing behind: when it returns, the API and both
/// ingress ports refuse connections, an ingress client's idle keep-alive
/// connection was closed, and none of the tasks the hub started is alive
/// (on this test's own runtime, which had none before).
#[tokio::test]
async fn stop_closes_every_port_and_leaves_no_task() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    mqtt_support::init_logs();
    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = alive();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let ports = [
        ("API", h.addr()),
        ("ingress", h.ingress_addr().expect("ingress")),
        ("ingress TLS", h.ingress_tls_addr().expect("ingress TLS")),
    ];
    // A keep-alive client of the ingress, idle after its answer.
    let mut idle = tokio::net::TcpStream::connect(ports[1].1).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: nowhere.example\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0; 12];
    idle.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, b"HTTP/1.1 404");
    assert!(alive() > before, "the hub started no task?");

    hub.stop().await.unwrap();

    assert_eq!(alive(), before, "tasks still alive after Hub::stop");
    for (what, addr) in ports {
        let e = tokio::net::TcpStream::connect(addr)
            .await
            .expect_err(&format!("the {what} port {addr} still accepts"));
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{what}: {e}"
        );
    }
    // The idle connection was closed by the hub (the rest of its answer,
    // then EOF), not left open.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "the idle ingress connection is still open: {read:?}"
    );
}
