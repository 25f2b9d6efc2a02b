//! The hub's HTTPS ingress end to end on loopback: a "pod" (an HTTP server
//! on an address of the node's pod CIDR, reported by a scripted agent) behind a Service and an
//! Ingress whose `spec.tls` names `kubernetes.io/tls` Secrets signed by a
//! test CA. SNI picks each host's certificate, the pod sees
//! `X-Forwarded-Proto: https`, a replaced Secret serves new handshakes while
//! an open keep-alive connection goes on, and the API refuses a TLS Secret
//! without its key.

mod mqtt_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bramble_api::protocol::TopicKind;
use bramble_hub::testing::TestHub;
use bramble_tests::Client;
use bramble_tests::eventually_async;
use bramble_tests::pod_addr::PodAddr;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mqtt_support::{create_pod, join_with_network, pod_status};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const WAIT: Duration = Duration::from_secs(15);
const SECRETS: &str = "/api/v1/namespaces/default/secrets";
const INGRESSES: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A test CA and leaf certificates it signs.
struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    der: CertificateDer<'static>,
}

/// A leaf certificate: PEM chain, PEM key and its DER.
struct Leaf {
    crt: String,
    key: String,
    der: Vec<u8>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bramble test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca {
            issuer: rcgen::Issuer::new(params, key),
            der,
        }
    }

    fn leaf(&self, host: &str) -> Leaf {
        let params = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            crt: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsConnector::from(Arc::new(config))
    }
}

/// A `kubernetes.io/tls` Secret, its values given as `stringData`.
fn tls_secret(name: &str, leaf: &Leaf) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "type": "kubernetes.io/tls", "stringData": {"tls.crt": leaf.crt, "tls.key": leaf.key}})
}

/// A "pod": answers every request with
/// `x-forwarded-proto|x-forwarded-port|host|path`, keep-alive.
async fn backend(ip: std::net::Ipv4Addr) -> u16 {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let h = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    let text = format!(
                        "{}|{}|{}|{}",
                        h("x-forwarded-proto"),
                        h("x-forwarded-port"),
                        h("host"),
                        req.uri().path()
                    );
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(text))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    port
}

/// A TLS connection to the ingress with SNI `host`, trusting only the test CA.
async fn connect(
    tls: &TlsConnector,
    addr: SocketAddr,
    host: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(host.to_string()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), tls.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// The DER of the certificate the server presented.
fn peer_der(s: &TlsStream<TcpStream>) -> Vec<u8> {
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One keep-alive `GET` on `s`: (status, body).
async fn get(
    s: &mut TlsStream<TcpStream>,
    host: &str,
    path: &str,
) -> std::io::Result<(u16, String)> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return Ok((status, body));
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::other("read timed out"))??;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_by_sni_forwarded_proto_and_swapped_certificates() {
    mqtt_support::init_logs();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let tls_addr = h.ingress_tls_addr().expect("TLS ingress served");
    let store = h.store().clone();
    let (agent, pod_cidr) =
        join_with_network(h.mqtt_addr().unwrap(), &h.join_token(), "n1", "127.0.0.1").await;
    let pod_addr = PodAddr::claim(&pod_cidr);

    let port = backend(pod_addr.ip).await;
    let uid = create_pod(&store, "tls-web", "n1", port).await;
    let ip = pod_addr.ip.to_string();
    agent
        .publish(
            TopicKind::Status,
            &pod_status(1, "tls-web", &uid, &ip, true),
        )
        .await;

    let ca = Ca::new();
    let tls = ca.connector();
    let (a1, b, a2) = (ca.leaf("a.test"), ca.leaf("b.test"), ca.leaf("a.test"));
    let backend_ref = json!({"service": {"name": "tls-web", "port": {"name": "http"}}});
    let rule = |host: &str| {
        json!({"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": backend_ref}]}})
    };
    let objects = [
        (
            "/api/v1/namespaces/default/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "tls-web"},
                "spec": {"selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
        ),
        (SECRETS, tls_secret("tls-a", &a1)),
        (SECRETS, tls_secret("tls-b", &b)),
        (
            INGRESSES,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "tls-web"},
                "spec": {
                    "tls": [{"hosts": ["a.test"], "secretName": "tls-a"},
                            {"hosts": ["b.test"], "secretName": "tls-b"}],
                    "rules": [rule("a.test"), rule("b.test")]}}),
        ),
    ];
    let c = Client::with_ca(&hub.url(), hub.token(), hub.ca_pem().as_bytes());
    let (c, codes) = blocking(move || {
        let codes: Vec<u16> = objects.iter().map(|(p, o)| c.post(p, o).0).collect();
        (c, codes)
    })
    .await;
    assert_eq!(codes, [201; 4]);

    // (a) SNI a.test: a.test's certificate, the pod reached, told https.
    let (mut old, body) = eventually_async("HTTPS to a.test to reach the pod", WAIT, async || {
        let mut s = connect(&tls, tls_addr, "a.test").await.ok()?;
        let (code, body) = get(&mut s, "a.test", "/hello").await.ok()?;
        (code == 200).then_some((s, body))
    })
    .await;
    assert_eq!(
        body,
        format!("https|{}|a.test|/hello", tls_addr.port()),
        "X-Forwarded-Proto, X-Forwarded-Port, Host, path"
    );
    assert_eq!(peer_der(&old), a1.der, "a.test's certificate");
    assert_eq!(
        old.get_ref().1.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "ALPN"
    );

    // (b) SNI b.test: its own certificate.
    let mut s = connect(&tls, tls_addr, "b.test").await.unwrap();
    assert_eq!(peer_der(&s), b.der, "b.test's certificate");
    assert_ne!(a1.der, b.der);
    let (code, body) = get(&mut s, "b.test", "/").await.unwrap();
    assert_eq!(
        (code, body.as_str()),
        (200, format!("https|{}|b.test|/", tls_addr.port()).as_str())
    );

    // (c) A new certificate in the Secret: new handshakes get it, the open
    // keep-alive connection goes on.
    let patch =
        json!({"data": {"tls.crt": STANDARD.encode(&a2.crt), "tls.key": STANDARD.encode(&a2.key)}});
    let (c, code) = blocking(move || {
        let code = c.merge_patch(&format!("{SECRETS}/tls-a"), &patch).0;
        (c, code)
    })
    .await;
    assert_eq!(code, 200);
    eventually_async(
        "a new handshake to present the new certificate",
        WAIT,
        async || {
            let s = connect(&tls, tls_addr, "a.test").await.ok()?;
            (peer_der(&s) == a2.der).then_some(())
        },
    )
    .await;
    let (code, body) = get(&mut old, "a.test", "/again")
        .await
        .expect("old connection still open");
    assert_eq!(code, 200, "{body}");
    assert!(body.ends_with("|a.test|/again"), "{body}");
    assert_eq!(
        peer_der(&old),
        a1.der,
        "the open connection keeps its certificate"
    );
    drop(old);

    // Clean up: without the Ingress no certificate is left, so handshakes fail.
    let codes = blocking(move || {
        [
            c.delete(&format!("{INGRESSES}/tls-web")).0,
            c.delete(&format!("{SECRETS}/tls-a")).0,
            c.delete(&format!("{SECRETS}/tls-b")).0,
        ]
    })
    .await;
    assert_eq!(codes, [200; 3]);
    eventually_async(
        "handshakes to fail without certificates",
        WAIT,
        async || {
            connect(&tls, tls_addr, "a.test")
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_secret_without_key_is_refused() {
    let hub = TestHub::start().await.unwrap();
    let c = Client::with_ca(&hub.url(), hub.token(), hub.ca_pem().as_bytes());
    let leaf = Ca::new().leaf("d.test");
    let (status, body, ok) = blocking(move || {
        let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls-no-key"},
            "type": "kubernetes.io/tls", "data": {"tls.crt": STANDARD.encode(&leaf.crt)}});
        let (status, body) = c.post(SECRETS, &bad);
        let ok = c.post(SECRETS, &tls_secret("tls-ok", &leaf)).0;
        c.delete(&format!("{SECRETS}/tls-ok"));
        (status, body, ok)
    })
    .await;
    assert_eq!(status, 422, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains("tls.key"), "{body}");
    assert!(!msg.contains("BEGIN"), "no secret value echoed: {body}");
    assert_eq!(ok, 201, "with both keys it is stored");
    hub.stop().await.unwrap();
}
