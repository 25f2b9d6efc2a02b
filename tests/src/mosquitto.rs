//! A real mosquitto (Debian package `mosquitto`) on a free loopback port,
//! started by a test and killed on drop; it can be stopped and resumed on the
//! same port (a broker outage). Every test that needs an external broker
//! uses this one. [`Mosquitto::start_in_netns`] runs it inside a lab host
//! instead (see `crate::lab`), listening on all of that host's addresses.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A mosquitto process. See the module docs.
pub struct Mosquitto {
    pub port: u16,
    conf: PathBuf,
    /// The network namespace it runs in (`None`: the test's own).
    netns: Option<String>,
    child: Option<Child>,
    _dir: tempfile::TempDir,
    /// What the broker keeps besides its config (the plugin's state).
    extra: Option<tempfile::TempDir>,
}

impl Mosquitto {
    /// A broker allowing anonymous clients.
    pub fn start() -> Mosquitto {
        Mosquitto::start_with("allow_anonymous true\n")
    }

    /// A broker with `auth` as its authentication settings (config lines).
    pub fn start_with(auth: &str) -> Mosquitto {
        Mosquitto::start_conf(crate::ports::probed_port(), "127.0.0.1", auth, None)
    }

    /// A broker with the dynamic security plugin (Debian's
    /// `mosquitto_dynamic_security.so`) and no anonymous access: its only
    /// client is `admin` / `password` with the plugin's admin role
    /// (`mosquitto_ctrl dynsec init`), whom `bramble-hub --mqtt-dynsec`
    /// logs in as to provision the nodes.
    pub fn start_dynsec(admin: &str, password: &str) -> Mosquitto {
        let dir = tempfile::tempdir().expect("tempdir");
        let json = dir.path().join("dynamic-security.json");
        let out = Command::new("mosquitto_ctrl")
            .args(["dynsec", "init"])
            .arg(&json)
            .args([admin, password])
            .output()
            .expect("running mosquitto_ctrl (Debian package mosquitto-clients)");
        assert!(out.status.success(), "mosquitto_ctrl dynsec init: {out:?}");
        let plugin = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so";
        assert!(
            std::path::Path::new(plugin).exists(),
            "{plugin} is missing (Debian package mosquitto)"
        );
        let auth = format!(
            "allow_anonymous false\nplugin {plugin}\nplugin_opt_config_file {}\n",
            json.display()
        );
        let mut m = Mosquitto::start_conf(crate::ports::probed_port(), "127.0.0.1", &auth, None);
        m.extra = Some(dir);
        m
    }

    /// An anonymous broker on 0.0.0.0:1883 inside network namespace `netns`
    /// (a lab host): reach it at `mqtt://127.0.0.1:1883` from that host, at
    /// the host's address from the others.
    pub fn start_in_netns(netns: &str) -> Mosquitto {
        Mosquitto::start_conf(1883, "0.0.0.0", "allow_anonymous true\n", Some(netns))
    }

    fn start_conf(port: u16, bind: &str, auth: &str, netns: Option<&str>) -> Mosquitto {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} {bind}\n{auth}persistence false\nmessage_size_limit 0\n\
                 max_connections -1\n"
            ),
        )
        .expect("writing mosquitto.conf");
        let mut m = Mosquitto {
            port,
            conf,
            netns: netns.map(str::to_string),
            child: None,
            _dir: dir,
            extra: None,
        };
        m.resume();
        m
    }

    /// Starts it again (same port and config) after [`Mosquitto::stop`]; returns
    /// once it accepts connections.
    pub fn resume(&mut self) {
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("mosquitto is not installed: apt-get install -y mosquitto");
        let mut cmd = match &self.netns {
            Some(ns) => crate::lab::netns_command(ns, bin),
            None => Command::new(bin),
        };
        let child = cmd
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning mosquitto");
        self.child = Some(child);
        crate::eventually(
            "mosquitto to listen",
            Duration::from_secs(10),
            || match &self.netns {
                Some(ns) => crate::lab::connect_in(ns, self.addr()).map(drop),
                None => TcpStream::connect(self.addr()).map(drop),
            },
        );
    }

    /// Kills it (SIGKILL): an abrupt broker outage.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process id while it runs (for RSS figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `127.0.0.1:PORT` (inside its network namespace, if it has one).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
