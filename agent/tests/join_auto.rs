//! `--join auto` against a real mDNS responder (root, a throwaway network
//! namespace with a LAN link): the hub's announcement as `bramble-hub`
//! makes it (mdns-sd, `_bramble._tcp.local.`) answers the agent's one-shot
//! DNS-SD question on the same host, both on `*:5353`; with no responder
//! the agent gives up with its hint after the timeout.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bramble_agent::session::discover::{DiscoverError, FoundHub, discover};
use bramble_agent::session::hub_ca::ProofError;
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

#[test]
fn the_hub_announced_on_the_same_host_is_found() {
    bramble_tests::require_root("network namespaces");
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
        found.unwrap(),
        FoundHub {
            instance: "pi-hub".into(),
            url: "http://10.77.0.11:7480".into(),
            mqtt_url: Some("mqtt://10.77.0.11:1883".into()),
        }
    );
    let _ = daemon.shutdown();
}

#[test]
fn without_a_hub_it_gives_up_with_a_hint() {
    bramble_tests::require_root("network namespaces");
    let ns = TestNs::new("joinnone");
    let start = Instant::now();
    let e = bramble_net::netns::run_in(Some(&ns.path()), || {
        Ok(discover(Duration::from_millis(1500), |_| Ok(())))
    })
    .unwrap()
    .unwrap_err();
    // It asked for the whole timeout before giving up.
    assert!(start.elapsed() >= Duration::from_millis(1500));
    assert!(matches!(e, DiscoverError::NoHub(_)), "{e}");
    let e = e.to_string();
    assert!(e.contains("no Bramble hub answered"), "{e}");
    assert!(e.contains("--hub https://HUB:7480"), "{e}");
}

/// A stand-in hub's `GET /bramble/v2/identity` on a listener bound in the
/// current namespace, on a thread: it names the keys `claimed` and signs the
/// challenges with `signer` (an honest hub: the same keys).
fn identity_server(claimed: bramble_trust::PublicKeys, signer: bramble_trust::SecretKeys) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let challenge = first
                .split_once("challenge=")
                .map(|(_, c)| c.split_whitespace().next().unwrap_or_default())
                .unwrap_or_default();
            let raw = bramble_trust::text::unb64::<32>(challenge).unwrap_or([0; 32]);
            let proof = bramble_trust::challenge::prove(&signer, &raw);
            let body = serde_json::json!({
                "signing": claimed.signing_text(),
                "encryption": claimed.encryption_text(),
                "proof": bramble_trust::text::b64(&proof),
            })
            .to_string();
            let mut w = stream;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// Announces a hub instance `name` on `port` (as hub/src/mdns does).
fn announce(d: &mdns_sd::ServiceDaemon, name: &str, port: u16) {
    let props = [("v", "1"), ("mqtt", "1883")];
    let info = mdns_sd::ServiceInfo::new(
        MDNS_SERVICE_TYPE,
        name,
        &format!("{name}.local."),
        "",
        port,
        &props[..],
    )
    .unwrap()
    .enable_addr_auto();
    d.register(info).unwrap();
}

#[test]
fn a_rogue_hub_on_the_lan_is_refused_and_the_real_one_found() {
    bramble_tests::require_root("network namespaces");
    use bramble_agent::session::discover::prove;
    let real = bramble_trust::SecretKeys::generate().unwrap();
    let rogue = bramble_trust::SecretKeys::generate().unwrap();
    let expected = real.public().fingerprint();

    // Only a rogue answers: refused, named in the error.
    let ns = TestNs::new("rogue");
    let path = ns.path();
    let (daemon, rogue_port) = bramble_net::netns::run_in(Some(&path), || {
        let port = identity_server(rogue.public().clone(), rogue.clone());
        let d = mdns_sd::ServiceDaemon::new().unwrap();
        let _ = d.disable_interface(mdns_sd::IfKind::IPv6);
        announce(&d, "rogue-hub", port);
        Ok((d, port))
    })
    .unwrap();
    let e = bramble_net::netns::run_in(Some(&path), || {
        Ok(discover(Duration::from_secs(3), |h| prove(h, expected)))
    })
    .unwrap()
    .unwrap_err();
    assert!(
        matches!(&e, DiscoverError::AllRefused(r) if !r.is_empty()
            && r.iter().all(|(_, why)| matches!(why, ProofError::WrongKey { .. }))),
        "{e}"
    );
    let e = e.to_string();
    assert!(e.contains("no hub on the LAN proved the key"), "{e}");
    assert!(e.contains(&format!("10.77.0.11:{rogue_port}")), "{e}");
    assert!(e.contains("is not the one the join token names"), "{e}");

    // A rogue naming the real key without holding it: refused too.
    let (impostor_port, real_port) = bramble_net::netns::run_in(Some(&path), || {
        let real_port = identity_server(real.public().clone(), real.clone());
        let impostor_port = identity_server(real.public().clone(), rogue.clone());
        Ok((impostor_port, real_port))
    })
    .unwrap();
    bramble_net::netns::run_in(Some(&path), || {
        announce(&daemon, "impostor-hub", impostor_port);
        announce(&daemon, "real-hub", real_port);
        Ok(())
    })
    .unwrap();
    let found = bramble_net::netns::run_in(Some(&path), || {
        Ok(discover(Duration::from_secs(10), |h| prove(h, expected)))
    })
    .unwrap()
    .unwrap();
    assert_eq!(found.url, format!("http://10.77.0.11:{real_port}"));
    assert_eq!(found.instance, "real-hub");
    let impostor = FoundHub {
        instance: "impostor-hub".into(),
        url: format!("http://10.77.0.11:{impostor_port}"),
        mqtt_url: None,
    };
    let e = bramble_net::netns::run_in(Some(&path), || Ok(prove(&impostor, expected)))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, ProofError::CannotSign), "{e}");
    assert!(e.to_string().contains("cannot sign with it"), "{e}");
    let _ = daemon.shutdown();
}
