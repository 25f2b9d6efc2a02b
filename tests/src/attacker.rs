//! The attacker's tools for the trust tests: the real MQTT command-line
//! clients (`mosquitto_sub`, `mosquitto_pub` from Debian's
//! `mosquitto-clients`) against a test cluster's broker, `tcpdump` on
//! loopback, and what a thief reads off a stolen board's disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bramble_api::protocol::{Message, Topic, TopicKind, encode_frame};
use bramble_trust::login::{Service, join_login, key_password};
use bramble_trust::{JoinToken, PublicKeys, SecretKeys};

/// An MQTT login: client id, and username and password when the broker
/// wants them.
#[derive(Debug, Clone)]
pub struct Login {
    pub client_id: String,
    pub user: Option<(String, String)>,
}

impl Login {
    /// An anonymous login as `client_id`.
    pub fn anonymous(client_id: &str) -> Login {
        Login {
            client_id: client_id.to_string(),
            user: None,
        }
    }

    /// Client id = username = `name`, with `password`.
    pub fn as_node(name: &str, password: &str) -> Login {
        Login {
            client_id: name.to_string(),
            user: Some((name.to_string(), password.to_string())),
        }
    }

    /// The login of a board joining as `name` with `token`.
    pub fn joining(token: &JoinToken, name: &str) -> Login {
        let l = join_login(token, name);
        Login {
            client_id: l.client_id,
            user: Some((l.username, l.password)),
        }
    }

    fn args(&self, cmd: &mut Command) {
        cmd.args(["-i", &self.client_id]);
        if let Some((u, p)) = &self.user {
            cmd.args(["-u", u, "-P", p]);
        }
    }
}

/// The broker under attack: 127.0.0.1:`port`, over TLS when `cafile` (the
/// CA a stolen board holds, `DATA_DIR/hub-ca.crt`) is given.
#[derive(Debug, Clone)]
pub struct Target {
    pub port: u16,
    pub cafile: Option<PathBuf>,
}

impl Target {
    fn args(&self, cmd: &mut Command) {
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(ca) = &self.cafile {
            cmd.arg("--cafile").arg(ca);
        }
    }
}

fn tool(name: &str) -> Command {
    let path = format!("/usr/bin/{name}");
    assert!(
        Path::new(&path).exists(),
        "{name} is not installed: apt-get install -y mosquitto-clients tcpdump (scripts/test does)"
    );
    Command::new(path)
}

/// `mosquitto_sub -t FILTER` printing every message as `topic hex-payload`
/// into a file, until [`Sniffer::stop`].
pub struct Sniffer {
    child: Child,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sniffer {
    /// Subscribes to `filter` on the broker `target`.
    pub fn start(target: &Target, login: &Login, filter: &str) -> Sniffer {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("seen");
        let file = std::fs::File::create(&out).expect("sniffer output");
        let mut cmd = tool("mosquitto_sub");
        target.args(&mut cmd);
        cmd.args(["-q", "1"]).args(["-t", filter, "-F", "%t %x"]);
        login.args(&mut cmd);
        let child = cmd
            .stdout(file)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning mosquitto_sub");
        Sniffer {
            child,
            out,
            _dir: dir,
        }
    }

    /// What it received so far: (topic, payload).
    pub fn seen(&self) -> Vec<(String, Vec<u8>)> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (topic, hex) = l.split_once(' ').unwrap_or((l, ""));
                Some((topic.to_string(), unhex(hex)?))
            })
            .collect()
    }

    /// Whether the client is still connected (it exits when refused or
    /// dropped), and what it said on stderr if not.
    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait().expect("mosquitto_sub status") {
            None => Ok(()),
            Some(st) => {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                Err(format!("mosquitto_sub exited ({st}): {err}"))
            }
        }
    }

    /// Stops it and returns everything it received.
    pub fn stop(mut self) -> Vec<(String, Vec<u8>)> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.seen()
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `mosquitto_pub` of `payload` on `topic` (QoS 1); `Err` with its stderr
/// when the broker refuses the login or the client fails.
pub fn publish(
    target: &Target,
    login: &Login,
    topic: &str,
    payload: &[u8],
    retain: bool,
) -> Result<(), String> {
    let mut f = tempfile::NamedTempFile::new().expect("payload file");
    f.write_all(payload).expect("writing the payload");
    let mut cmd = tool("mosquitto_pub");
    target.args(&mut cmd);
    cmd.args(["-q", "1"])
        .args(["-t", topic])
        .arg("-f")
        .arg(f.path());
    if retain {
        cmd.arg("-r");
    }
    login.args(&mut cmd);
    let out = cmd.output().expect("running mosquitto_pub");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mosquitto_pub failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `mosquitto_sub` connecting with `login` and waiting up to `secs` for one
/// message on `filter`: `Err` with its stderr when the broker refuses it.
pub fn try_login(target: &Target, login: &Login, filter: &str, secs: u64) -> Result<(), String> {
    let mut cmd = tool("mosquitto_sub");
    target.args(&mut cmd);
    cmd.args(["-t", filter])
        .args(["-C", "1", "-W", &secs.to_string()]);
    login.args(&mut cmd);
    let out = cmd.output().expect("running mosquitto_sub");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    // 27: the -W timeout, i.e. connected and nothing arrived.
    match out.status.code() {
        Some(0) | Some(27) => Ok(()),
        _ => Err(format!("mosquitto_sub failed ({}): {err}", out.status)),
    }
}

/// What a thief reads off a board's data directory.
#[derive(Debug, Clone)]
pub struct Board {
    pub name: String,
    pub keys: SecretKeys,
    /// The hub's public keys the board pinned.
    pub hub: Option<PublicKeys>,
}

impl Board {
    /// The keys in `data_dir/identity.json`.
    pub fn read(name: &str, data_dir: &Path) -> Board {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(data_dir.join("identity.json")).expect("identity.json"),
        )
        .expect("identity.json is JSON");
        let k = &v["keys"];
        let keys = SecretKeys::from_text(
            k["signing"].as_str().unwrap_or_default(),
            k["encryption"].as_str().unwrap_or_default(),
        )
        .expect("the board's keys");
        let h = &v["hub"];
        let hub = PublicKeys::from_text(
            h["signing"].as_str().unwrap_or_default(),
            h["encryption"].as_str().unwrap_or_default(),
        )
        .ok();
        Board {
            name: name.to_string(),
            keys,
            hub,
        }
    }

    fn password(&self, service: Service) -> String {
        let hub = self
            .hub
            .as_ref()
            .expect("the board joined (its hub key is pinned)");
        key_password(&self.keys, hub, service, &self.name).expect("a key login")
    }

    /// Its MQTT login (embedded broker).
    pub fn mqtt_login(&self) -> Login {
        Login::as_node(&self.name, &self.password(Service::Mqtt))
    }

    /// Its registry password (basic auth with its name).
    pub fn registry_password(&self) -> String {
        self.password(Service::Registry)
    }

    /// `msg` as a frame signed by this board for `node`'s topic `kind`
    /// (sealed to `to` where the message travels sealed).
    pub fn frame<M: Message>(
        &self,
        node: &str,
        kind: TopicKind,
        msg: &M,
        to: Option<&PublicKeys>,
    ) -> (String, Vec<u8>) {
        let t = Topic::new(node, kind).expect("topic");
        let payload = encode_frame(&self.keys, &t, msg, to).expect("frame");
        (t.to_string(), payload)
    }
}

/// `tcpdump -i lo` of TCP `port` into a pcap file until [`Capture::stop`].
pub struct Capture {
    child: Child,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Capture {
    /// Starts capturing (returns once tcpdump listens).
    pub fn start(port: u16) -> Capture {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("mqtt.pcap");
        let mut child = tool("tcpdump")
            .args(["-i", "lo", "-U", "-s", "0", "-w"])
            .arg(&file)
            .args(["tcp", "port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning tcpdump");
        // tcpdump says "listening on lo" once it captures.
        let mut err = child.stderr.take().expect("tcpdump stderr");
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("listening on") {
            match std::io::Read::read(&mut err, &mut buf) {
                Ok(0) | Err(_) => panic!("tcpdump ended: {}", String::from_utf8_lossy(&seen)),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Capture {
            child,
            file,
            _dir: dir,
        }
    }

    /// Stops tcpdump (it flushes on SIGTERM) and returns the capture.
    pub fn stop(mut self) -> Vec<u8> {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        std::fs::read(&self.file).expect("the capture")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
