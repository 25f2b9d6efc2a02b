//! The ingress listener has the API port's limits, against a `bramble-hub`
//! process: connections over `--max-connections-per-client` are answered
//! 429 naming the flag, a half-sent request is closed after the header
//! timeout, and the freed slot admits the next client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use bramble_tests::HubProcess;

/// The plain ingress listener's address, from the hub's log.
fn ingress_addr(hub: &HubProcess) -> String {
    let log = hub.log();
    let line = log
        .lines()
        .find(|l| l.contains("ingress listening"))
        .unwrap_or_else(|| panic!("no ingress listening line in:\n{log}"));
    let at = line.find("addr=").expect("addr= in the line") + 5;
    line[at..].split_whitespace().next().unwrap().to_string()
}

fn ask(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: nowhere.example\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn ingress_connections_are_capped_per_client_and_slow_headers_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start_with_args(
        Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        dir.path(),
        "info",
        &["--max-connections-per-client", "2"],
    );
    let addr = ingress_addr(&hub);
    // Without a rule the ingress answers 404: it serves.
    assert!(ask(&addr).starts_with("HTTP/1.1 404"), "{}", ask(&addr));

    let mut slow = TcpStream::connect(&addr).unwrap();
    let _idle = TcpStream::connect(&addr).unwrap();
    // Accepted in the order they connected: the third is over the cap.
    let refused = ask(&addr);
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(
        refused.contains("--max-connections-per-client"),
        "{refused}"
    );

    // Half a request: the hub closes it after its header timeout.
    slow.write_all(b"GET / HTTP/1.1\r\nHost: nowhere.example\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let r = slow.read_to_end(&mut rest);
    assert!(
        r.is_ok(),
        "the half-sent request was still open after {:?}: {r:?}",
        started.elapsed()
    );
    eprintln!(
        "closed after {:?} with {:?}",
        started.elapsed(),
        String::from_utf8_lossy(&rest)
    );
    // Its slot is free again.
    let again = ask(&addr);
    assert!(again.starts_with("HTTP/1.1 404"), "{again}");
}
