//! Shared parts of Bramble's end-to-end tests: locating the workspace's
//! binaries, a spawned `bramble-hub` process, and an HTTP client that never
//! turns statuses into errors. Used by this crate's tests and by other crates'
//! integration tests and benches.

use std::path::PathBuf;

pub mod arm_rig;
pub mod attacker;
pub mod bench;
pub mod breaking;
pub mod busybox;
pub mod cluster;
pub mod debian_image;
pub mod fixtures;
pub mod kubectl;
pub mod lab;
pub mod mosquitto;
pub mod net;
pub mod panic_note;
pub mod pod_addr;
pub mod ports;
pub mod procs;
pub mod projects;
pub mod root;
pub mod skopeo;
pub mod syscall_probe;
pub mod throttle;
pub mod wait;

pub use root::require_root;
pub use wait::{eventually, eventually_async, try_eventually, try_eventually_async};

/// Path of a workspace binary (`bramble-hub`, `bramble`, ...) next to the
/// running test executable (`target/<profile>/`). `cargo test --workspace`
/// builds every binary of a package that has integration tests.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries of this profile first, `cargo build --workspace --bins` \
         (`--release` for target/release/; scripts/test and scripts/bench do)",
        path.display()
    );
    path
}

/// The workspace root (for `examples/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Flags that keep a test hub's DNS and ingress (HTTP and HTTPS) on
/// loopback (free ports), its mDNS announcement off the machine's LAN and
/// its routes out of the machine's routing table.
pub const LOOPBACK_HUB_FLAGS: [&str; 8] = [
    "--dns-listen",
    "127.0.0.1:0",
    "--ingress-listen",
    "127.0.0.1:0",
    "--ingress-tls-listen",
    "127.0.0.1:0",
    "--no-mdns",
    "--no-pod-routes",
];

/// TLS on `tcp` (the handshake runs with the first read or write), verified
/// against `ca_pem` for the name `host`.
pub fn tls_stream(
    tcp: std::net::TcpStream,
    ca_pem: &[u8],
    host: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let roots = bramble_trust::tls::pem_certs(ca_pem).expect("the hub's CA");
    let config = bramble_trust::tls::client_config(&roots).expect("a TLS client");
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).expect("a server name");
    let conn = rustls::ClientConnection::new(config, name).expect("a TLS connection");
    rustls::StreamOwned::new(conn, tcp)
}

/// ureq's TLS settings trusting only `ca_pem` (none when empty).
pub fn tls_trusting(ca_pem: &[u8]) -> ureq::tls::TlsConfig {
    let roots = if ca_pem.is_empty() {
        Vec::new()
    } else {
        bramble_trust::tls::pem_certs(ca_pem).expect("the hub's ca.crt is PEM")
    };
    bramble_trust::tls::ureq_config(&roots)
}

/// A ureq agent (statuses are not errors) trusting only `ca_pem` for
/// `https://` (none when empty).
pub fn agent_trusting(ca_pem: &[u8], timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(tls_trusting(ca_pem))
        .build()
        .into()
}

/// A client bound to one hub.
pub struct Client {
    pub agent: ureq::Agent,
    pub base: String,
    pub token: String,
    /// The CA trusted for an `https://` base (PEM; empty for `http://`).
    pub ca: Vec<u8>,
}

/// A byte stream to the hub (TLS or plain TCP) for hand-written requests.
pub trait RawStream: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> RawStream for T {}

impl Client {
    /// A client of a plain `http://` hub (`--insecure-http`).
    pub fn new(base: &str, token: &str) -> Client {
        Self::with_ca(base, token, b"")
    }

    /// A client trusting only `ca_pem` (the hub's `ca.crt`) for `https://`.
    pub fn with_ca(base: &str, token: &str, ca_pem: &[u8]) -> Client {
        Client {
            agent: agent_trusting(ca_pem, Duration::from_secs(10)),
            base: base.to_string(),
            token: token.to_string(),
            ca: ca_pem.to_vec(),
        }
    }

    /// `HOST:PORT` of the base URL.
    pub fn authority(&self) -> &str {
        let rest = self
            .base
            .split_once("://")
            .map_or(&self.base[..], |(_, r)| r);
        rest.trim_end_matches('/')
    }

    /// A connection to the hub for hand-written HTTP: TLS (verified against
    /// the CA, by the name in the base URL) for `https://`, else TCP.
    pub fn raw(&self) -> Box<dyn RawStream> {
        let authority = self.authority().to_string();
        let tcp = std::net::TcpStream::connect(&authority).expect("connecting to the hub");
        if !self.base.starts_with("https://") {
            return Box::new(tcp);
        }
        let host = authority
            .rsplit_once(':')
            .map_or(&authority[..], |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        Box::new(tls_stream(tcp, &self.ca, host))
    }

    /// A client of the hub whose data directory is `data_dir` (trusting its
    /// `ca.crt`, when it has one).
    pub fn for_data_dir(base: &str, token: &str, data_dir: &Path) -> Client {
        let ca = std::fs::read(data_dir.join("ca.crt")).unwrap_or_default();
        Self::with_ca(base, token, &ca)
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    fn finish(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
        let mut resp = resp.expect("request failed at the transport level");
        let code = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (code, v)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        Self::finish(
            self.agent
                .get(format!("{}{path}", self.base))
                .header("Authorization", self.auth())
                .call(),
        )
    }
    pub fn get_noauth(&self, path: &str) -> (u16, Value) {
        Self::finish(self.agent.get(format!("{}{path}", self.base)).call())
    }
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        Self::finish(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("Authorization", self.auth())
                .send_json(body),
        )
    }
    pub fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        Self::finish(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("Authorization", self.auth())
                .content_type("application/json")
                .send(body),
        )
    }
    pub fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        Self::finish(
            self.agent
                .put(format!("{}{path}", self.base))
                .header("Authorization", self.auth())
                .send_json(body),
        )
    }
    pub fn merge_patch(&self, path: &str, body: &Value) -> (u16, Value) {
        Self::finish(
            self.agent
                .patch(format!("{}{path}", self.base))
                .header("Authorization", self.auth())
                .content_type("application/merge-patch+json")
                .send(serde_json::to_vec(body).unwrap().as_slice()),
        )
    }
    pub fn delete(&self, path: &str) -> (u16, Value) {
        Self::finish(
            self.agent
                .delete(format!("{}{path}", self.base))
                .header("Authorization", self.auth())
                .call(),
        )
    }
}

/// A `bramble-hub` child process, killed on drop. Its stderr is kept.
pub struct HubProcess {
    pub child: Child,
    /// `https://127.0.0.1:PORT` as the hub logged it.
    pub url: String,
    pub token: String,
    pub data_dir: PathBuf,
    /// Where its load balancer serves `LoadBalancer` Services (an address
    /// of its own on loopback).
    pub lb_address: std::net::IpAddr,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl HubProcess {
    /// Starts the `bramble-hub` binary at `bin` on 127.0.0.1 port 0 (its
    /// embedded MQTT broker too) and waits for its listen line.
    pub fn start(bin: &Path, data_dir: &Path) -> HubProcess {
        Self::start_with_log(bin, data_dir, "info")
    }

    /// Like [`HubProcess::start`] with a tracing filter (`--log`).
    pub fn start_with_log(bin: &Path, data_dir: &Path, filter: &str) -> HubProcess {
        Self::start_with_args(bin, data_dir, filter, &[])
    }

    /// Like [`HubProcess::start_with_log`] with more flags.
    pub fn start_with_args(
        bin: &Path,
        data_dir: &Path,
        filter: &str,
        extra: &[&str],
    ) -> HubProcess {
        let lb_address = std::net::IpAddr::from(ports::unique_loopback());
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--log", filter])
            .args(["--mqtt-listen", "127.0.0.1:0"])
            .args(LOOPBACK_HUB_FLAGS)
            .args(["--lb-address", &lb_address.to_string()])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawning bramble-hub");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let keep = log.clone();
        let reader = std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = keep.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if !sent
                    && line.contains("hub listening")
                    && let Some(i) = line.find(" url=")
                {
                    let url = line[i + 5..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(url);
                    sent = true;
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => url,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                // Its last lines: the reader ends when the pipe closes.
                let _ = reader.join();
                let log = log.lock().map(|l| l.clone()).unwrap_or_default();
                panic!("bramble-hub did not report its URL ({e}); its log:\n{log}");
            }
        };
        let token = std::fs::read_to_string(data_dir.join("token"))
            .unwrap()
            .trim()
            .to_string();
        HubProcess {
            child,
            url,
            token,
            data_dir: data_dir.to_path_buf(),
            lb_address,
            log,
        }
    }

    /// Everything the hub wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        Client::for_data_dir(&self.url, &self.token, &self.data_dir)
    }

    /// The hub's CA (`DATA_DIR/ca.crt`, PEM).
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.data_dir.join("ca.crt")).expect("the hub's ca.crt")
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for exit after SIGTERM; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        let rc = unsafe_kill(pid, libc::SIGTERM);
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        eventually(
            "the hub to exit after SIGTERM",
            Duration::from_secs(15),
            || self.child.try_wait().unwrap(),
        )
    }
}

#[allow(unsafe_code)]
fn unsafe_kill(pid: libc::pid_t, sig: libc::c_int) -> libc::c_int {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
