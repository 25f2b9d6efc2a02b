//! `--join auto` against a real mDNS responder (root, a throwaway network
//! namespace with a LAN link): the hub's announcement as `bramble-hub`
//! makes it (mdns-sd, `_bramble._tcp.local.`) answers the agent's one-shot
//! DNS-SD question on the same host, both on `*:5353`; with no responder
//! the agent gives up with its hint after the timeout.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bramble_agent::session::discover::{FoundHub, discover};
use bramble_api::protocol::MDNS_SERVICE_TYPE;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A named network namespace with `lan0` (10.77.0.11/24, up), deleted on drop.
struct TestNs(String);

impl TestNs {
    fn new(tag: &str) -> TestNs {
        let ns = TestNs(format!("bat-{tag}-{}", std::process::id()));
        ip(&["netns", "add", &ns.0]);
        for args in [
            &["link", "set", "lo", "up"][..],
            &[
                "link", "add", "lan0", "type", "veth", "peer", "name", "lan1",
            ],
            &["addr", "add", "10.77.0.11/24", "dev", "lan0"],
            &["link", "set", "lan0", "up"],
            &["link", "set", "lan1", "up"],
        ] {
            let mut all = vec!["-n", &ns.0];
            all.extend_from_slice(args);
            ip(&all);
        }
        ns
    }
    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn the_hub_announced_on_the_same_host_is_found() {
    assert!(is_root(), "this test needs root (network namespaces)");
    let ns = TestNs::new("joinauto");
    let path = ns.path();
    // The hub's announcement, as hub/src/mdns does it; its daemon thread
    // starts in the namespace and stays there.
    let daemon = bramble_net::netns::run_in(Some(&path), || {
        let d = mdns_sd::ServiceDaemon::new().unwrap();
        let _ = d.disable_interface(mdns_sd::IfKind::IPv6);
        let props = [("v", "1"), ("mqtt", "1883")];
        let info = mdns_sd::ServiceInfo::new(
            MDNS_SERVICE_TYPE,
            "pi-hub",
            "pi-hub.local.",
            "",
            7480,
            &props[..],
        )
        .unwrap()
        .enable_addr_auto();
        d.register(info).unwrap();
        Ok(d)
    })
    .unwrap();
    let found = bramble_net::netns::run_in(Some(&path), || {
        Ok(discover(Duration::from_secs(10), |_| Ok(())))
    })
    .unwrap();
    assert_eq!(
        found,
        Ok(FoundHub {
            instance: "pi-hub".into(),
            url: "http://10.77.0.11:7480".into(),
            mqtt_url: Some("mqtt://10.77.0.11:1883".into()),
        })
    );
    let _ = daemon.shutdown();
}

#[test]
fn without_a_hub_it_gives_up_with_a_hint() {
    assert!(is_root(), "this test needs root (network namespaces)");
    let ns = TestNs::new("joinnone");
    let start = Instant::now();
    let e = bramble_net::netns::run_in(Some(&ns.path()), || {
        Ok(discover(Duration::from_millis(1500), |_| Ok(())))
    })
    .unwrap()
    .unwrap_err();
    // It asked for the whole timeout before giving up.
    assert!(start.elapsed() >= Duration::from_millis(1500));
    assert!(e.contains("no Bramble hub answered"), "{e}");
    assert!(e.contains("--hub http://HUB:7480"), "{e}");
}
