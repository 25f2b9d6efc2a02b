//! The real kubectl (1.32, only `KUBECONFIG` set) against a real hub and a
//! real agent running real containers: `kubectl exec` over WebSocket
//! (`v5.channel.k8s.io`) with exit codes, stdout and stderr apart, stdin;
//! `kubectl cp` both ways (tar through exec with stdin); `kubectl logs`
//! with its flags; a WebSocket exec without the bearer token refused;
//! `kubectl port-forward` (SPDY tunnelled in WebSocket) with curl through
//! it, to a server listening on the pod's loopback only; and `kubectl
//! attach` streaming a container's new output until it stops.

use bramble_tests::eventually;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bramble_tests::cluster::{Broker, Cluster, unique};
use serde_json::{Value, json};

/// One cluster at a time: each is a hub and an agent on 2 cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const PODS: &str = "/api/v1/namespaces/default/pods";

fn kubeconfig(c: &Cluster) -> PathBuf {
    c.hub.data_dir.join("kubeconfig.yaml")
}

/// `kubectl ARGS` with `stdin` piped in.
fn kubectl_in(c: &Cluster, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig(c))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn kubectl(c: &Cluster, args: &[&str]) -> Output {
    Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig(c))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("kubectl is installed")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `kubectl ARGS`, which must succeed: its stdout.
fn ok(c: &Cluster, args: &[&str]) -> String {
    let out = kubectl(c, args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A busybox pod running `script`, with `tar` and `md5sum` linked in and a
/// `/tmp` (the fixture image has only a few applets and no /tmp), and
/// `restartPolicy`.
fn pod(name: &str, script: &str, restart: &str) -> Value {
    let setup =
        "busybox ln -sf busybox /bin/tar; busybox ln -sf busybox /bin/md5sum; mkdir -p /tmp; ";
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": "busybox:kx",
            "command": ["sh", "-c", format!("{setup}{script}")]}]
    }})
}

fn start_pod(c: &Cluster, name: &str, script: &str, restart: &str) {
    let (code, v) = c.client().post(PODS, &pod(name, script, restart));
    assert_eq!(code, 201, "{v}");
    eventually(
        format!("pod {name} running"),
        Duration::from_secs(60),
        || {
            let (_, p) = c.client().get(&format!("{PODS}/{name}"));
            (p["status"]["phase"] == "Running").then_some(())
        },
    );
}

fn cluster() -> Cluster {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "kx");
    c
}

fn md5(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, bytes).unwrap();
    let out = Command::new("md5sum").arg(&f).output().unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Bytes that are not text.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b
}

#[test]
fn kubectl_exec_and_cp_over_websocket() {
    let _one = serial();
    let c = cluster();
    let name = unique("kx");
    start_pod(
        &c,
        &name,
        "trap 'exit 0' TERM; while true; do sleep 1; done",
        "Always",
    );

    // Output apart, and the exit code.
    let out = kubectl(
        &c,
        &[
            "exec",
            &name,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(text(&out.stdout), "out\n");
    assert!(
        text(&out.stderr).starts_with("err\n"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = kubectl(&c, &["exec", &name, "-c", "main", "--", "true"]);
        times.push(t.elapsed());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    times.sort();
    eprintln!("kubectl exec -- true: median {:?} of 5", times[2]);

    // What the agent says goes to the user: a container that is not there.
    let out = kubectl(&c, &["exec", &name, "-c", "nope", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("\"nope\""),
        "{}",
        text(&out.stderr)
    );
    let out = kubectl(&c, &["exec", "no-such-pod", "--", "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );

    // Stdin, text and then 3 MB of random bytes (beyond the stdin window).
    let out = kubectl_in(&c, &["exec", "-i", &name, "--", "cat"], b"hello\nworld\n");
    assert_eq!(text(&out.stdout), "hello\nworld\n", "{}", text(&out.stderr));
    assert!(out.status.success());
    let big = random_bytes(3 << 20);
    let out = kubectl_in(&c, &["exec", "-i", &name, "--", "md5sum"], &big);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).split_whitespace().next(),
        Some(md5(&big).as_str())
    );
    // A process that reads part of its stdin and exits.
    let out = kubectl_in(&c, &["exec", "-i", &name, "--", "head", "-c", "5"], &big);
    assert_eq!(out.stdout, &big[..5]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // kubectl cp both ways: 4 MB in, and back out (debug builds seal and
    // open every 16 KiB chunk slowly; BRAMBLE_CP_MB=10 for a measurement).
    let mb: usize = std::env::var("BRAMBLE_CP_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("copied.bin");
    let payload = random_bytes(mb << 20);
    std::fs::write(&local, &payload).unwrap();
    let t = Instant::now();
    ok(
        &c,
        &[
            "cp",
            local.to_str().unwrap(),
            &format!("default/{name}:/tmp/copied.bin"),
        ],
    );
    eprintln!("kubectl cp {mb} MB into the pod: {:?}", t.elapsed());
    let out = ok(&c, &["exec", &name, "--", "md5sum", "/tmp/copied.bin"]);
    assert_eq!(out.split_whitespace().next(), Some(md5(&payload).as_str()));
    let back = dir.path().join("back.bin");
    let t = Instant::now();
    ok(
        &c,
        &[
            "cp",
            &format!("default/{name}:/tmp/copied.bin"),
            back.to_str().unwrap(),
        ],
    );
    eprintln!("kubectl cp {mb} MB out of the pod: {:?}", t.elapsed());
    assert!(std::fs::read(&back).unwrap() == payload, "the copy differs");

    // The bearer token is checked before any upgrade.
    refuses_without_token(&c, &name);
}

/// A WebSocket upgrade of `pods/NAME/exec` with no token, or a wrong one,
/// is answered 401 (and never switches protocols).
fn refuses_without_token(c: &Cluster, name: &str) {
    let url = format!("{}{PODS}/{name}/exec?command=true&stdout=true", c.hub.url);
    let ca = c.hub.data_dir.join("ca.crt");
    for auth in [None, Some("Authorization: Bearer not-the-token")] {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg("--cacert")
        .arg(&ca)
        .args([
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "-H",
            "Sec-WebSocket-Protocol: v5.channel.k8s.io",
        ]);
        if let Some(h) = auth {
            cmd.args(["-H", h]);
        }
        let out = cmd.arg(&url).output().expect("curl is installed");
        assert_eq!(text(&out.stdout), "401", "{auth:?}: {}", text(&out.stderr));
    }
}

/// Lines of `kubectl logs` output.
fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn kubectl_logs_flags() {
    let _one = serial();
    let c = cluster();
    let name = unique("kl");
    // Three lines, then a marker per run, then it exits 1 after a while
    // (time for the checks of one run): restarted (Always), its previous
    // run's log stays readable.
    start_pod(
        &c,
        &name,
        "echo one; echo two; echo three >&2; echo run-$(date +%s); sleep 8; exit 1",
        "Always",
    );
    eventually("three lines", Duration::from_secs(20), || {
        (ok(&c, &["logs", &name]).lines().count() >= 4).then_some(())
    });
    let all = ok(&c, &["logs", &name]);
    // stdout in order; stderr's line may come before or after the marker
    // (two pipes, as with the kubelet).
    assert!(
        all.starts_with("one\ntwo\n") && lines(&all).contains(&"three"),
        "{all}"
    );
    let last_two = format!("{}\n", lines(&all)[2..].join("\n"));
    assert_eq!(ok(&c, &["logs", &name, "--tail=2"]), last_two);
    assert_eq!(lines(&ok(&c, &["logs", &name, "--tail=1"])).len(), 1);
    assert_eq!(ok(&c, &["logs", &name, "-c", "main", "--since=1h"]), all);
    let stamped = ok(&c, &["logs", &name, "--timestamps", "--tail=2"]);
    for l in lines(&stamped) {
        let (ts, rest) = l.split_once(' ').unwrap_or(("", ""));
        assert!(
            ts.len() >= 20 && ts.contains('T') && ts.ends_with('Z') && !rest.is_empty(),
            "{l:?}"
        );
    }
    // -f streams the next run's lines (the container restarts).
    let mut follow = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig(&c))
        .args(["logs", "-f", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    let mut stdout = follow.stdout.take().unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text(&got).contains("run-") && Instant::now() < deadline {
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(text(&got).starts_with("one\n"), "{}", text(&got));

    // After a restart, --previous shows the run before.
    eventually("a restart", Duration::from_secs(60), || {
        let (_, p) = c.client().get(&format!("{PODS}/{name}"));
        (p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)).then_some(())
    });
    eventually("the new run's marker", Duration::from_secs(20), || {
        let now = ok(&c, &["logs", &name]);
        now.lines().any(|l| l.starts_with("run-")).then_some(now)
    });
    let previous = ok(&c, &["logs", &name, "--previous"]);
    let current = ok(&c, &["logs", &name]);
    let marker = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("run-"))
            .map(str::to_string)
    };
    assert!(
        previous.starts_with("one\ntwo\n") && lines(&previous).contains(&"three"),
        "{previous}"
    );
    assert!(
        marker(&previous).is_some() && marker(&previous) != marker(&current),
        "previous:\n{previous}\ncurrent:\n{current}"
    );
}

/// A running `kubectl port-forward`, killed when dropped.
struct PortForward {
    child: std::process::Child,
    /// The local port kubectl chose.
    port: u16,
}

impl PortForward {
    /// `kubectl port-forward pod/NAME :REMOTE`, once it listens.
    fn start(c: &Cluster, name: &str, remote: u16) -> PortForward {
        let mut child = Command::new("kubectl")
            .env("KUBECONFIG", kubeconfig(c))
            .args([
                "port-forward",
                &format!("pod/{name}"),
                &format!(":{remote}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl is installed");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        // "Forwarding from 127.0.0.1:40123 -> 8080"
        let port = line
            .strip_prefix("Forwarding from 127.0.0.1:")
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("kubectl port-forward said {line:?}; {}", text(&out.stderr));
        };
        // Keep reading ("Handling connection for ...") so kubectl never
        // blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        PortForward { child, port }
    }

    /// Stops kubectl; its stderr.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = self.child.wait();
        err
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl ARGS` (fails on HTTP errors): status, stdout.
fn curl(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["-sS", "--fail"])
        .args(args)
        .output()
        .expect("curl is installed");
    (out.status.success(), out.stdout, text(&out.stderr))
}

#[test]
fn kubectl_port_forward_with_curl() {
    let _one = serial();
    let c = cluster();
    let name = unique("pf");
    let marker = unique("served-by");
    // httpd on the pod's loopback only: reachable through port-forward
    // (which connects inside the pod's network namespace), not from the
    // node. A CGI answers the md5 of what is posted to it.
    let script = format!(
        "mkdir -p /www/cgi-bin; echo {marker} > /www/index.html; \
         dd if=/dev/urandom of=/www/big.bin bs=1024 count=2048 2>/dev/null; \
         (echo '#!/bin/sh'; echo 'echo Content-Type: text/plain'; echo echo; echo md5sum) \
           > /www/cgi-bin/md5; busybox chmod 755 /www/cgi-bin/md5; \
         exec httpd -f -p 127.0.0.1:8080 -h /www"
    );
    start_pod(&c, &name, &script, "Always");
    let pf = PortForward::start(&c, &name, 8080);
    let base = format!("http://127.0.0.1:{}", pf.port);

    let (ok1, body, err) = curl(&[&format!("{base}/index.html")]);
    assert!(ok1, "curl through kubectl port-forward: {err}");
    assert_eq!(text(&body).trim(), marker);

    // Several connections at once, 2 MiB each, byte for byte.
    let want = ok(&c, &["exec", &name, "--", "md5sum", "/www/big.bin"]);
    let want = want.split_whitespace().next().unwrap().to_string();
    let gets: Vec<_> = (0..3)
        .map(|_| {
            let url = format!("{base}/big.bin");
            std::thread::spawn(move || curl(&[&url]))
        })
        .collect();
    for g in gets {
        let (ok2, body, err) = g.join().unwrap();
        assert!(ok2, "{err}");
        assert_eq!(md5(&body), want);
    }

    // The other way: 1 MiB posted through the tunnel reaches the pod whole.
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("up.bin");
    let payload = random_bytes(1 << 20);
    std::fs::write(&upload, &payload).unwrap();
    let (ok3, body, err) = curl(&[
        "--data-binary",
        &format!("@{}", upload.display()),
        &format!("{base}/cgi-bin/md5"),
    ]);
    assert!(ok3, "{err}");
    assert_eq!(
        text(&body).split_whitespace().next(),
        Some(md5(&payload).as_str())
    );
    pf.stop();

    // Nothing listens on 9999: the connection fails and kubectl says why.
    let pf = PortForward::start(&c, &name, 9999);
    let (ok4, _, _) = curl(&[&format!("http://127.0.0.1:{}/", pf.port)]);
    assert!(!ok4, "a connection to a port nothing listens on succeeded");
    let err = pf.stop();
    assert!(
        err.contains("error forwarding port 9999 to pod default/")
            && err.contains("connecting to port 9999"),
        "{err}"
    );
}

#[test]
fn kubectl_attach_streams_new_output_until_the_container_stops() {
    let _one = serial();
    let c = cluster();
    let name = unique("at");
    // A numbered line on each stream every 0.2 s, until told to stop.
    start_pod(
        &c,
        &name,
        "i=0; while [ ! -f /tmp/stop ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); sleep 0.2; done; exit 0",
        "Never",
    );
    // Some history first: attach must not repeat it (that is `logs`).
    eventually("three lines logged", Duration::from_secs(30), || {
        ok(&c, &["logs", &name]).contains("out-2").then_some(())
    });
    let mut child = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig(&c))
        .args(["attach", &name, "-c", "main"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    let n: u32 = first
        .trim()
        .strip_prefix("out-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("attach printed {first:?}"));
    assert!(n > 2, "attach repeated the history: {first:?}");
    // The container stops: attach ends, successfully.
    ok(&c, &["exec", &name, "--", "touch", "/tmp/stop"]);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("err-"), "stderr apart: {err:?}");
    assert!(
        !rest.contains("err-") && !err.contains("out-"),
        "{rest}\n{err}"
    );

    // No stdin or terminal to attach to: kubectl says why.
    let name = unique("at");
    start_pod(&c, &name, "sleep 30", "Never");
    let out = kubectl(&c, &["attach", "-i", &name]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("kubectl exec -i"),
        "{}",
        text(&out.stderr)
    );
}
