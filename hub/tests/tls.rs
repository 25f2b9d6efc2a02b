//! HTTPS on the API and registry port of a `bramble-hub` process, with the
//! clients users have (curl, kubectl): the cluster CA and kubeconfig the hub
//! writes, plain HTTP refused with a reason, a certificate renewed without
//! a restart, and slow clients that hold only their own connection.

use bramble_tests::eventually;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bramble_tests::HubProcess;

fn hub_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_bramble-hub"))
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "-m", "20"])
        .args(args)
        .output()
        .expect("curl is installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn curl_and_kubectl_reach_the_hub_over_https_and_plain_http_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = HubProcess::start(hub_bin(), &data);
    assert!(hub.url.starts_with("https://"), "{}", hub.url);
    let ca = data.join("ca.crt");
    // The data directory is private, and so is everything in it.
    assert_eq!(mode(&data), 0o700);
    for f in [
        "ca.crt",
        "ca.key",
        "kubeconfig.yaml",
        "state.redb",
        "token",
        "node-token",
        "hub-key",
    ] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&data.join("registry")), 0o700);

    let (ok, out) = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        &format!("{}/version", hub.url),
    ]);
    assert!(ok && out.contains("gitVersion"), "{out}");
    // k3s' path for the CA, for scripts that pin it themselves.
    let (ok, out) = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        &format!("{}/cacerts", hub.url),
    ]);
    assert!(ok, "{out}");
    assert_eq!(out, std::fs::read_to_string(&ca).unwrap());

    // Without the CA, curl's own roots do not vouch for the hub.
    let (ok, out) = curl(&[&format!("{}/version", hub.url)]);
    assert!(!ok, "{out}");
    assert!(out.contains("certificate"), "{out}");

    // Plain HTTP on the HTTPS port: a 400 that says what to do.
    let plain = hub.url.replacen("https://", "http://", 1);
    let (_, out) = curl(&["-w", "\n%{http_code}", &format!("{plain}/version")]);
    assert!(out.ends_with("\n400"), "{out}");
    assert!(out.contains("HTTP request to an HTTPS server"), "{out}");
    assert!(out.contains("use https://"), "{out}");

    // kubectl with the kubeconfig the hub wrote, nothing else.
    let out = Command::new("kubectl")
        .args(["version", "-o", "json"])
        .env("KUBECONFIG", data.join("kubeconfig.yaml"))
        .env("HOME", dir.path())
        .output()
        .expect("kubectl is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        v["serverVersion"]["gitVersion"]
            .as_str()
            .is_some_and(|g| g.contains("bramble")),
        "{v}"
    );
}

/// The hub's leaf certificate as a TLS client verifying against the CA sees it.
fn served_leaf(addr: &str, ca_pem: &[u8]) -> Vec<u8> {
    let mut s = tls_on(TcpStream::connect(addr).unwrap(), ca_pem);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .expect("a verified handshake");
    }
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn the_serving_certificate_is_renewed_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = HubProcess::start_with_args(hub_bin(), &data, "info", &["--tls-cert-lifetime", "3s"]);
    let addr = hub.url.trim_start_matches("https://").to_string();
    let ca = hub.ca_pem();
    let first = served_leaf(&addr, &ca);
    let renewed = eventually("a renewed certificate", Duration::from_secs(30), || {
        let now = served_leaf(&addr, &ca);
        (now != first).then_some(now)
    });
    assert_ne!(renewed, first);
    assert!(
        hub.log().contains("serving certificate renewed"),
        "{}",
        hub.log()
    );
    // Same process, and it still answers.
    assert_eq!(hub.client().get_noauth("/healthz").0, 200);
}

/// A TCP connection to `addr` from the loopback address `from` (a client
/// other than the test's own 127.0.0.1).
fn connect_from(from: &str, addr: &str) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    sock.bind(&src.into()).unwrap();
    let dst: std::net::SocketAddr = addr.parse().unwrap();
    sock.connect(&dst.into()).unwrap();
    sock.into()
}

/// TLS on `tcp`, verified against `ca_pem` for the name 127.0.0.1.
fn tls_on(
    tcp: TcpStream,
    ca_pem: &[u8],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    bramble_tests::tls_stream(tcp, ca_pem, "127.0.0.1")
}

/// Sends `GET path` with `token` on `stream` and reads the status line (a
/// refused connection may be answered before the request is written: the
/// write's failure is not the test's concern, the answer is).
fn request<S: Read + Write>(stream: &mut S, path: &str, token: &str) -> String {
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .and_then(|()| stream.flush());
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut b) {
            Ok(1) => line.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&line).trim().to_string()
}

/// Everything left on `stream` until the hub closes it.
fn rest<S: Read>(stream: &mut S) -> String {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn slow_clients_hold_only_their_own_connection_and_are_closed() {
    const SLOW: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(hub_bin(), &dir.path().join("hub"));
    let addr = hub.url.trim_start_matches("https://").to_string();
    // Half a TLS handshake: the record type byte, then nothing.
    let mut stalled: Vec<TcpStream> = (0..SLOW)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            // Past its share (256) the hub may have closed it already.
            let _ = s.write_all(&[0x16]);
            s
        })
        .collect();
    // Half an HTTP request inside a finished handshake (another address).
    let half = {
        let mut s = tls_on(connect_from("127.0.0.2", &addr), &hub.ca_pem());
        s.write_all(b"GET /version HTTP/1.1\r\nHost: hub\r\n")
            .unwrap();
        s.flush().unwrap();
        s
    };
    // A keep-alive connection left idle after one answered request.
    let mut idle = tls_on(connect_from("127.0.0.4", &addr), &hub.ca_pem());
    assert_eq!(request(&mut idle, "/version", ""), "HTTP/1.1 200 OK");
    // Everyone else (another address: this one is over its share now) is
    // served meanwhile.
    for _ in 0..20 {
        let mut other = tls_on(connect_from("127.0.0.3", &addr), &hub.ca_pem());
        assert_eq!(request(&mut other, "/version", ""), "HTTP/1.1 200 OK");
    }
    // The hub closes the stalled ones (handshake and header timeouts).
    let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for s in stalled.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    }
    std::thread::scope(|scope| {
        for chunk in stalled.chunks_mut(100) {
            let closed = closed.clone();
            scope.spawn(move || {
                for s in chunk {
                    let mut b = [0u8; 64];
                    match s.read(&mut b) {
                        Ok(0) => {}
                        Ok(n) => panic!("the hub answered a half handshake with {n} bytes"),
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                        Err(e) => panic!("not closed: {e}"),
                    }
                    closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(closed.load(std::sync::atomic::Ordering::Relaxed), SLOW);
    let mut half = half;
    let text = rest(&mut half);
    assert!(
        !text.contains("gitVersion"),
        "a half request was served: {text}"
    );
    // The idle keep-alive connection is closed too (the header timeout
    // covers the wait for a next request): reading it to the end returns.
    idle.sock
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut left = Vec::new();
    let end = idle.read_to_end(&mut left);
    assert!(
        end.is_ok()
            || matches!(&end, Err(e) if e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut),
        "an idle keep-alive connection stayed open: {end:?}"
    );
    // Its connections closed, the first client is served again.
    assert_eq!(hub.client().get_noauth("/version").0, 200);
}

/// An MQTT 3.1.1 CONNECT with a login (clean session, keep-alive 60 s).
fn connect_packet(client_id: &str, user: &str, pass: &str) -> Vec<u8> {
    let field = |s: &str| {
        let mut v = (s.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    };
    let mut body = field("MQTT");
    body.extend_from_slice(&[4, 0xC2, 0, 60]);
    for s in [client_id, user, pass] {
        body.extend(field(s));
    }
    let mut p = vec![0x10, body.len() as u8];
    p.extend(body);
    p
}

#[test]
fn mqtt_over_tls_is_served_past_clients_stalled_in_their_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = HubProcess::start(hub_bin(), &data);
    let line = hub
        .log()
        .lines()
        .find(|l| l.contains("embedded MQTT broker listening"))
        .map(str::to_string)
        .expect("the broker's listen line");
    assert!(line.contains("mqtts"), "{line}");
    let port: u16 = line
        .split("listen=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("the broker's port");
    let addr = format!("127.0.0.1:{port}");
    // Clients that open a TLS handshake and never finish it.
    let stalled: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(&[0x16]).unwrap();
            s
        })
        .collect();
    // Meanwhile a client verifying the cluster CA is served MQTT: its
    // (wrong) login is answered, CONNACK "bad user name or password".
    let tcp = TcpStream::connect(&addr).unwrap();
    // Not a time bound on the hub: a stalled accept loop would never answer.
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut tls = tls_on(tcp, &hub.ca_pem());
    tls.write_all(&connect_packet("probe", "probe", "wrong"))
        .unwrap();
    let mut connack = [0u8; 4];
    tls.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 4], "CONNACK refusing the login");
    // Plain MQTT on the TLS port is not spoken to.
    let mut plain = TcpStream::connect(&addr).unwrap();
    plain
        .write_all(&connect_packet("probe", "probe", "wrong"))
        .unwrap();
    let mut b = [0u8; 4];
    assert!(matches!(plain.read(&mut b), Ok(0) | Err(_)), "{b:?}");
    drop(stalled);
}

#[test]
fn connections_over_the_caps_are_answered_429_and_503() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start_with_args(
        hub_bin(),
        &dir.path().join("hub"),
        "info",
        &[
            "--max-connections",
            "6",
            "--max-connections-per-client",
            "3",
        ],
    );
    let addr = hub.url.trim_start_matches("https://").to_string();
    let ca = hub.ca_pem();
    let watch = "/api/v1/namespaces/default/configmaps?watch=true";
    // Watches hold their connections for as long as they run.
    let mut held = Vec::new();
    for from in ["127.0.0.1", "127.0.0.2"] {
        for _ in 0..3 {
            let mut s = tls_on(connect_from(from, &addr), &ca);
            assert_eq!(request(&mut s, watch, &hub.token), "HTTP/1.1 200 OK");
            held.push(s);
        }
    }
    // One more from an address holding its share: 429, saying why.
    let mut s = tls_on(connect_from("127.0.0.1", &addr), &ca);
    assert_eq!(
        request(&mut s, "/version", ""),
        "HTTP/1.1 429 Too Many Requests"
    );
    let text = rest(&mut s);
    assert!(text.contains("127.0.0.1 holds 3 connections"), "{text}");
    assert!(text.contains("--max-connections-per-client"), "{text}");
    // A new address while the hub holds its total: 503.
    let mut s = tls_on(connect_from("127.0.0.3", &addr), &ca);
    assert_eq!(
        request(&mut s, "/version", ""),
        "HTTP/1.1 503 Service Unavailable"
    );
    assert!(rest(&mut s).contains("maximum of 6 connections"));
    // A watch ends: its address is served again.
    drop(held.remove(0));
    let served = eventually("a freed slot", Duration::from_secs(30), || {
        let mut s = tls_on(connect_from("127.0.0.1", &addr), &ca);
        let status = request(&mut s, "/version", "");
        (status == "HTTP/1.1 200 OK").then_some(status)
    });
    assert_eq!(served, "HTTP/1.1 200 OK");
}
