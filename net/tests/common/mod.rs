//! Throwaway network namespaces for the root tests: `ip netns add` with a
//! unique name, removed on drop (also when the test fails), which takes
//! their links, routes and nft tables with them.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Runs a command; panics with its output on failure; returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace at `/run/netns/NAME`.
pub struct TestNs {
    pub name: String,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl TestNs {
    pub fn new(tag: &str) -> TestNs {
        let name = format!(
            "bnt-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        TestNs { name }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `ip -n NAME ARGS...`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// `ip netns exec NAME ARGS...`.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// Gives the namespace a "LAN" link `lan0` (a veth whose peer stays in
    /// it, up) with `addr/24`.
    pub fn with_lan(self, addr: &str) -> TestNs {
        self.ip(&[
            "link", "add", "lan0", "type", "veth", "peer", "name", "lan1",
        ]);
        self.ip(&["addr", "add", &format!("{addr}/24"), "dev", "lan0"]);
        self.ip(&["link", "set", "lan0", "up"]);
        self.ip(&["link", "set", "lan1", "up"]);
        self
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        std::thread::spawn(move || {
            bramble_net::netns::enter(&path).unwrap();
            f()
        })
        .join()
        .unwrap()
    }

    /// A TCP listener at `addr` inside the namespace answering every
    /// connection with `reply` then closing; runs until the process ends.
    pub fn serve(&self, addr: (Ipv4Addr, u16), reply: &'static str) {
        let path = self.path();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            bramble_net::netns::enter(&path).unwrap();
            let l = std::net::TcpListener::bind(addr).unwrap();
            tx.send(()).unwrap();
            for mut s in l.incoming().flatten() {
                let _ = std::io::Write::write_all(&mut s, reply.as_bytes());
            }
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
    }

    /// Connects from inside the namespace to `addr` and reads the reply.
    pub fn fetch(&self, addr: (Ipv4Addr, u16)) -> std::io::Result<String> {
        self.run(move || {
            let mut s = std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_secs(3))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut out = String::new();
            std::io::Read::read_to_string(&mut s, &mut out)?;
            Ok(out)
        })
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
