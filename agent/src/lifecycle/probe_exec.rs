//! Running one probe: `httpGet` (a minimal HTTP/1.1 GET, 200..=399 passes),
//! `tcpSocket` (a connect) and `exec` (through [`ExecProbe`], which the
//! runtime implements). Blocking, bounded by the probe's timeout.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bramble_api::IntOrString;
use bramble_api::objects::container::ContainerPort;
use bramble_api::objects::probe::Probe;

use super::probe::ProbeResult;

/// A probe result with a human-readable message (for events and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub result: ProbeResult,
    pub message: String,
}

impl ProbeOutcome {
    fn new(result: ProbeResult, message: impl Into<String>) -> Self {
        Self {
            result,
            message: message.into(),
        }
    }
}

/// Runs a command inside a container (implemented by the runtime).
pub trait ExecProbe {
    /// Runs `command` in the container and returns its exit code; an error of
    /// kind [`io::ErrorKind::TimedOut`] when it ran past `timeout`.
    fn exec(&self, command: &[String], timeout: Duration) -> io::Result<i32>;
}

/// Why a probe's port names no port (the probe fails with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("port {0:?} is not a named port of the container")]
    NotNamed(String),
    #[error("invalid port {0}")]
    Invalid(i32),
}

/// Resolves a probe port: a number, or the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, PortError> {
    let n = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .ok_or_else(|| PortError::NotNamed(name.clone()))?,
    };
    u16::try_from(n)
        .ok()
        .filter(|&p| p != 0)
        .ok_or(PortError::Invalid(n))
}

/// Runs `probe` against a container reachable at `host` (the pod IP, or
/// 127.0.0.1 for `hostNetwork` pods) whose ports are `ports`.
pub fn run_probe(
    probe: &Probe,
    host: IpAddr,
    ports: &[ContainerPort],
    exec: &dyn ExecProbe,
    timeout: Duration,
) -> ProbeOutcome {
    let port = |p: &IntOrString| resolve_port(p, ports).map(|n| SocketAddr::new(host, n));
    if let Some(h) = &probe.http_get {
        if h.scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"))
        {
            return ProbeOutcome::new(ProbeResult::Unknown, "HTTPS probes are not supported");
        }
        let addr = match port(&h.port) {
            Ok(a) => a,
            Err(e) => return ProbeOutcome::new(ProbeResult::Failure, e.to_string()),
        };
        let headers: Vec<(&str, &str)> = h
            .http_headers
            .iter()
            .map(|x| (x.name.as_str(), x.value.as_str()))
            .collect();
        return http_get(addr, h.path.as_deref().unwrap_or("/"), &headers, timeout);
    }
    if let Some(t) = &probe.tcp_socket {
        return match port(&t.port) {
            Ok(addr) => tcp_socket(addr, timeout),
            Err(e) => ProbeOutcome::new(ProbeResult::Failure, e.to_string()),
        };
    }
    if let Some(e) = &probe.exec {
        return exec_probe(exec, &e.command, timeout);
    }
    ProbeOutcome::new(ProbeResult::Unknown, "probe has no handler")
}

/// `tcpSocket`: passes when a TCP connection opens within `timeout`.
pub fn tcp_socket(addr: SocketAddr, timeout: Duration) -> ProbeOutcome {
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(_) => ProbeOutcome::new(ProbeResult::Success, ""),
        Err(e) => ProbeOutcome::new(ProbeResult::Failure, format!("dial tcp {addr}: {e}")),
    }
}

/// `exec`: passes when the command exits 0; a timeout is a failure.
pub fn exec_probe(exec: &dyn ExecProbe, command: &[String], timeout: Duration) -> ProbeOutcome {
    match exec.exec(command, timeout) {
        Ok(0) => ProbeOutcome::new(ProbeResult::Success, ""),
        Ok(code) => ProbeOutcome::new(
            ProbeResult::Failure,
            format!("command {command:?} exited with {code}"),
        ),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => ProbeOutcome::new(
            ProbeResult::Failure,
            format!("command {command:?} timed out after {timeout:?}"),
        ),
        Err(e) => ProbeOutcome::new(ProbeResult::Unknown, format!("exec {command:?}: {e}")),
    }
}

/// `httpGet`: a GET of `path` that passes on a status in 200..=399 received
/// within `timeout` (connect included). Redirects are not followed (3xx
/// passes, as in Kubernetes for redirects it does not follow).
pub fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> ProbeOutcome {
    match http_status(addr, path, headers, timeout) {
        Ok(code) if (200..400).contains(&code) => ProbeOutcome::new(
            ProbeResult::Success,
            format!("HTTP probe succeeded with {code}"),
        ),
        Ok(code) => ProbeOutcome::new(
            ProbeResult::Failure,
            format!("HTTP probe failed with statuscode: {code}"),
        ),
        Err(e) => ProbeOutcome::new(
            ProbeResult::Failure,
            format!("Get http://{addr}{path}: {e}"),
        ),
    }
}

/// The longest status line read before giving up.
const MAX_STATUS_LINE: usize = 1024;

fn http_status(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> io::Result<u16> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "timeout"))
    };
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_nodelay(true)?;
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    if !has("Host") {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    if !has("User-Agent") {
        req.push_str("User-Agent: bramble-probe/1.0\r\n");
    }
    if !has("Accept") {
        req.push_str("Accept: */*\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.set_write_timeout(Some(left()?))?;
    s.write_all(req.as_bytes())?;

    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') {
        if buf.len() > MAX_STATUS_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "status line too long",
            ));
        }
        s.set_read_timeout(Some(left()?))?;
        let n = match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timeout"));
            }
            // A signal (or a stop and continue of the process) ends a read
            // with a socket timeout early: read again until the deadline.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&buf)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response"))
}

/// `HTTP/1.x NNN ...` -> `NNN`.
fn parse_status_line(buf: &[u8]) -> Option<u16> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&buf[..end]).ok()?.trim_end();
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then_some(())?;
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::objects::probe::{HttpGetAction, HttpHeader, TcpSocketAction};
    use std::net::{Ipv4Addr, TcpListener};
    use std::sync::mpsc;
    use std::thread;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const T: Duration = Duration::from_secs(2);

    /// A one-shot HTTP server answering `response`; sends the request it got.
    fn serve_once(response: &'static str) -> (SocketAddr, mpsc::Receiver<String>) {
        let l = TcpListener::bind((LOCAL, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 512];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut b).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&b[..n]);
            }
            let _ = s.write_all(response.as_bytes());
            tx.send(String::from_utf8_lossy(&req).into_owned()).unwrap();
        });
        (addr, rx)
    }

    fn closed_port() -> SocketAddr {
        let l = TcpListener::bind((LOCAL, 0)).unwrap();
        l.local_addr().unwrap()
    }

    #[test]
    fn http_get_passes_on_2xx_and_3xx() {
        let (addr, rx) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let out = http_get(addr, "/healthz", &[("X-Probe", "1")], T);
        assert_eq!(out.result, ProbeResult::Success, "{}", out.message);
        let req = rx.recv().unwrap();
        assert!(req.starts_with("GET /healthz HTTP/1.1\r\n"), "{req}");
        assert!(req.contains(&format!("Host: {addr}\r\n")), "{req}");
        assert!(req.contains("X-Probe: 1\r\n"), "{req}");

        let (addr, _rx) = serve_once("HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n");
        assert_eq!(http_get(addr, "/", &[], T).result, ProbeResult::Success);
    }

    #[test]
    fn http_get_fails_on_4xx_5xx_garbage_refusal_and_timeout() {
        let (addr, _rx) = serve_once("HTTP/1.1 500 Internal Server Error\r\n\r\n");
        let out = http_get(addr, "/", &[], T);
        assert_eq!(out.result, ProbeResult::Failure);
        assert!(out.message.contains("500"), "{}", out.message);

        let (addr, _rx) = serve_once("HTTP/1.1 404 Not Found\r\n\r\n");
        assert_eq!(http_get(addr, "/", &[], T).result, ProbeResult::Failure);

        let (addr, _rx) = serve_once("SSH-2.0-OpenSSH\r\n");
        assert_eq!(http_get(addr, "/", &[], T).result, ProbeResult::Failure);

        assert_eq!(
            http_get(closed_port(), "/", &[], T).result,
            ProbeResult::Failure
        );

        // Accepts (backlog) but never answers.
        let silent = TcpListener::bind((LOCAL, 0)).unwrap();
        let out = http_get(
            silent.local_addr().unwrap(),
            "/",
            &[],
            Duration::from_millis(200),
        );
        assert_eq!(out.result, ProbeResult::Failure);
        assert!(out.message.contains("timeout"), "{}", out.message);
    }

    #[test]
    fn tcp_socket_connects_or_fails() {
        let l = TcpListener::bind((LOCAL, 0)).unwrap();
        let open = l.local_addr().unwrap();
        assert_eq!(tcp_socket(open, T).result, ProbeResult::Success);
        assert_eq!(tcp_socket(closed_port(), T).result, ProbeResult::Failure);
    }

    struct FakeExec(io::Result<i32>);
    impl ExecProbe for FakeExec {
        fn exec(&self, _command: &[String], _timeout: Duration) -> io::Result<i32> {
            match &self.0 {
                Ok(c) => Ok(*c),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            }
        }
    }

    #[test]
    fn run_probe_dispatches_and_resolves_named_ports() {
        let (addr, rx) = serve_once("HTTP/1.1 204 No Content\r\n\r\n");
        let ports = [ContainerPort {
            name: Some("http".into()),
            container_port: i32::from(addr.port()),
            ..Default::default()
        }];
        let probe = Probe {
            http_get: Some(HttpGetAction {
                path: Some("/ready".into()),
                port: IntOrString::from("http"),
                scheme: None,
                http_headers: vec![HttpHeader {
                    name: "Host".into(),
                    value: "web.local".into(),
                }],
            }),
            ..Default::default()
        };
        let ok = FakeExec(Ok(0));
        assert_eq!(
            run_probe(&probe, LOCAL, &ports, &ok, T).result,
            ProbeResult::Success
        );
        let req = rx.recv().unwrap();
        assert!(req.starts_with("GET /ready HTTP/1.1\r\n"), "{req}");
        assert_eq!(req.matches("Host:").count(), 1, "{req}");
        assert!(req.contains("Host: web.local\r\n"), "{req}");

        let tcp = Probe {
            tcp_socket: Some(TcpSocketAction {
                port: IntOrString::from("metrics"),
            }),
            ..Default::default()
        };
        let out = run_probe(&tcp, LOCAL, &ports, &ok, T);
        assert_eq!(out.result, ProbeResult::Failure);
        assert!(out.message.contains("metrics"), "{}", out.message);
    }

    #[test]
    fn exec_probe_uses_the_exit_code() {
        let probe = Probe {
            exec: Some(bramble_api::objects::probe::ExecAction {
                command: vec!["cat".into(), "/tmp/healthy".into()],
            }),
            ..Default::default()
        };
        let run = |fake: FakeExec| run_probe(&probe, LOCAL, &[], &fake, T).result;
        assert_eq!(run(FakeExec(Ok(0))), ProbeResult::Success);
        assert_eq!(run(FakeExec(Ok(1))), ProbeResult::Failure);
        assert_eq!(
            run(FakeExec(Err(io::ErrorKind::TimedOut.into()))),
            ProbeResult::Failure
        );
        assert_eq!(
            run(FakeExec(Err(io::ErrorKind::NotFound.into()))),
            ProbeResult::Unknown
        );
    }

    #[test]
    fn status_line_parsing() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 399\r\n"), Some(399));
        assert_eq!(parse_status_line(b"HTTP/2 200\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 20 OK\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), None);
        let e = resolve_port(&IntOrString::Int(0), &[]).unwrap_err();
        assert_eq!(e, PortError::Invalid(0));
        assert_eq!(e.to_string(), "invalid port 0");
    }
}
