//! Shared parts of Bramble's end-to-end tests: locating the workspace's
//! binaries, a spawned `bramble-hub` process, and an HTTP client that never
//! turns statuses into errors. Used by this crate's tests and by other crates'
//! integration tests and benches.

use std::path::PathBuf;

pub mod arm_rig;
pub mod attacker;
pub mod bench;
pub mod busybox;
pub mod cluster;
pub mod fixtures;
pub mod lab;
pub mod mosquitto;
pub mod net;

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
use std::time::{Duration, Instant};

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

/// A client bound to one hub.
pub struct Client {
    pub agent: ureq::Agent,
    pub base: String,
    pub token: String,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Client {
            agent,
            base: base.to_string(),
            token: token.to_string(),
        }
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
    pub url: String,
    pub token: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl HubProcess {
    /// Starts the `bramble-hub` binary at `bin` on 127.0.0.1 port 0 (its
    /// embedded MQTT broker on a free loopback port) and waits for its
    /// listen line.
    pub fn start(bin: &Path, data_dir: &Path) -> HubProcess {
        Self::start_with_log(bin, data_dir, "info")
    }

    /// Like [`HubProcess::start`] with a tracing filter (`--log`).
    pub fn start_with_log(bin: &Path, data_dir: &Path, filter: &str) -> HubProcess {
        let mqtt = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port");
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--log", filter])
            .args(["--mqtt-listen", &mqtt.to_string()])
            .args(LOOPBACK_HUB_FLAGS)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawning bramble-hub");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = keep.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if !sent
                    && line.contains("hub listening")
                    && let Some(i) = line.find(" addr=")
                {
                    let addr = line[i + 6..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("bramble-hub did not report its address");
        let token = std::fs::read_to_string(data_dir.join("token"))
            .unwrap()
            .trim()
            .to_string();
        HubProcess {
            child,
            url: format!("http://{addr}"),
            token,
            log,
        }
    }

    /// Everything the hub wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url, &self.token)
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
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "hub did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
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
