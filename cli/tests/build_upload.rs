//! `bramble build` against an in-process hub: the context tar it uploads
//! (read back from the registry), a second build sending nothing, chunked
//! uploads resumed by a new client after an interrupted sequence and after
//! a `PATCH` broken off mid-body, the Build it creates, and a Dockerfile
//! error stopping it before anything is sent. The hub does not run builds
//! here: the build is cancelled by deleting it, which ends the CLI's wait.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use bramble_cli::build::upload::{Blob, Outcome, Uploader};
use bramble_images::Digest;
use bramble_tests::breaking::Breaking;
use bramble_tests::eventually;
use serde_json::Value;

mod support;

use support::Env;

impl Env {
    fn client(&self) -> bramble_tests::Client {
        bramble_tests::Client::with_ca(
            &self.hub().url(),
            self.hub().token(),
            self.hub().ca_pem().as_bytes(),
        )
    }

    fn uploader(&self) -> Uploader {
        let roots = bramble_trust::tls::pem_certs(self.hub().ca_pem().as_bytes()).unwrap();
        Uploader::new(
            &self.hub().url(),
            Some(self.hub().token()),
            bramble_trust::tls::ureq_config(&roots),
        )
    }

    /// The raw bytes of a registry GET.
    fn registry_get(&self, path: &str) -> (u16, Vec<u8>) {
        let agent =
            bramble_tests::agent_trusting(self.hub().ca_pem().as_bytes(), Duration::from_secs(60));
        let mut resp = agent
            .get(format!("{}{path}", self.hub().url()))
            .header("Authorization", format!("Bearer {}", self.hub().token()))
            .call()
            .unwrap();
        let code = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap();
        (code, body)
    }

    /// Runs a build until its Build exists, deletes that Build (as a
    /// cancel would) and returns the Build as created plus the CLI's output.
    fn build_then_cancel(&self, args: &[&str]) -> (Value, Output) {
        let child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = Killed(Some(child));
        let client = self.client();
        let builds = "/apis/bramble.dev/v1/namespaces/default/builds";
        let known: Vec<String> = names(&client.get(builds).1);
        let build = eventually("the CLI to create a Build", Duration::from_secs(60), || {
            if let Ok(Some(status)) = child.0.as_mut().unwrap().try_wait() {
                let out = child.0.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "bramble build exited ({status}) before creating a Build: {}",
                    text(&out.stderr)
                );
            }
            let (_, list) = client.get(builds);
            list["items"]
                .as_array()?
                .iter()
                .find(|b| {
                    !known
                        .iter()
                        .any(|k| Some(k.as_str()) == b["metadata"]["name"].as_str())
                })
                .cloned()
        });
        let name = build["metadata"]["name"].as_str().unwrap();
        let (code, body) = client.delete(&format!("{builds}/{name}"));
        assert!((200..300).contains(&code), "{body}");
        let out = child.0.take().unwrap().wait_with_output().unwrap();
        (build, out)
    }
}

/// Kills the CLI if the test fails while it runs.
struct Killed(Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["metadata"]["name"].as_str().map(String::from))
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const DOCKERFILE: &str = "FROM busybox\nCOPY . /app\nRUN test -f /app/a.txt\n";

#[test]
fn uploads_the_context_once_and_creates_the_build() {
    let env = Env::start();
    env.write("Dockerfile", DOCKERFILE);
    env.write("a.txt", "a\n");
    env.write("sub/b.txt", "b\n");
    env.write("secret.log", "not for the hub\n");
    env.write(".dockerignore", "*.log\n");
    std::os::unix::fs::symlink("a.txt", env.work.path().join("sub/link")).unwrap();
    let ctx = env.work.path().to_str().unwrap();
    let args = [
        "build",
        "-t",
        "team/web:1",
        "--platform",
        "linux/arm64,linux/arm/v7",
        "--build-arg",
        "A=1",
        "--no-cache",
        ctx,
    ];

    let (build, out) = env.build_then_cancel(&args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("#1 sent "), "{err}");
    assert!(err.contains("deleted before it ended (cancelled)"), "{err}");
    let name = build["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    let spec = &build["spec"];
    assert_eq!(spec["image"], "team/web:1");
    assert_eq!(spec["dockerfile"], "Dockerfile");
    assert_eq!(
        spec["platforms"],
        serde_json::json!(["linux/arm64", "linux/arm/v7"])
    );
    assert_eq!(spec["buildArgs"], serde_json::json!({"A": "1"}));
    assert_eq!(spec["noCache"], true);
    let digest = spec["context"]["digest"].as_str().unwrap().to_string();
    assert!(err.contains(&digest), "{err}");

    // The blob in the registry is the context: what a build may read, the
    // Dockerfile and the ignore file; not the ignored file.
    let (code, blob) = env.registry_get(&format!("/v2/team/web/blobs/{digest}"));
    assert_eq!(code, 200);
    assert_eq!(Digest::of(&blob).to_string(), digest);
    assert_eq!(spec["context"]["size"], blob.len() as u64);
    let mut entries = Vec::new();
    for e in tar::Archive::new(&blob[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let kind = e.header().entry_type();
        let mut body = String::new();
        match kind {
            tar::EntryType::Symlink => {
                body = e.link_name().unwrap().unwrap().display().to_string();
            }
            _ => {
                e.read_to_string(&mut body).unwrap();
            }
        }
        entries.push(format!("{path} {kind:?} {body}"));
    }
    assert_eq!(
        entries,
        [
            ".dockerignore Regular *.log\n",
            &format!("Dockerfile Regular {DOCKERFILE}"),
            "a.txt Regular a\n",
            "sub Directory ",
            "sub/b.txt Regular b\n",
            "sub/link Symlink a.txt",
        ]
    );

    // The same context again: the registry has it, nothing is sent.
    let (again, out) = env.build_then_cancel(&args);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "#1 context {digest} already in the hub's registry: nothing sent"
        )),
        "{err}"
    );
    assert!(!err.contains("#1 sent"), "{err}");
    assert_eq!(again["spec"]["context"]["digest"], digest.as_str());
    assert_ne!(again["metadata"]["name"], build["metadata"]["name"]);
}

#[test]
fn dockerfile_errors_stop_the_build_before_anything_is_sent() {
    let env = Env::start();
    env.write("Dockerfile", "FROM busybox\nCOPY missing.txt /\n");
    let ctx = env.work.path().to_str().unwrap();
    let out = env.cmd(&["build", "-t", "bad:1", ctx]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("missing.txt"), "{err}");
    let empty = serde_json::json!([]);
    let (code, catalog) = env.client().get("/v2/_catalog");
    assert_eq!(code, 200);
    assert_eq!(catalog["repositories"], empty, "nothing was uploaded");
    let (_, builds) = env
        .client()
        .get("/apis/bramble.dev/v1/namespaces/default/builds");
    assert!(names(&builds).is_empty(), "{builds}");

    // A name the hub refuses stops it before the upload too.
    env.write("Dockerfile", DOCKERFILE);
    env.write("a.txt", "a\n");
    let out = env
        .cmd(&["build", "-t", "Bad:1", "--platform", "linux/arm64", ctx])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let (_, catalog) = env.client().get("/v2/_catalog");
    assert_eq!(catalog["repositories"], empty, "nothing was uploaded");
}

/// A file of `n` bytes that is not all the same.
fn blob_file(dir: &Path, n: usize) -> (std::path::PathBuf, Vec<u8>, Digest) {
    let bytes: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
    let path = dir.join("blob.tar");
    std::fs::write(&path, &bytes).unwrap();
    let d = Digest::of(&bytes);
    (path, bytes, d)
}

#[test]
fn a_new_client_resumes_an_interrupted_upload() {
    let env = Env::start();
    const CHUNK: u64 = 64 * 1024;
    let (path, bytes, digest) = blob_file(env.work.path(), 10 * CHUNK as usize + 123);
    let size = bytes.len() as u64;
    let blob = Blob {
        path: &path,
        digest: &digest,
        size,
    };

    // Three chunks, then the client goes away.
    let location = {
        let first = env.uploader().with_chunk(CHUNK);
        let loc = first.start("resume/a").unwrap();
        first.send_chunks(&loc, 0, blob, 3).unwrap()
    };
    let second = env.uploader().with_chunk(CHUNK);
    assert!(!second.has_blob("resume/a", &digest).unwrap());
    let outcome = second.resume("resume/a", &location, blob, &|_| {}).unwrap();
    assert_eq!(
        outcome,
        Outcome::Uploaded {
            sent: size - 3 * CHUNK,
            resumed: 1
        }
    );
    let (code, back) = env.registry_get(&format!("/v2/resume/a/blobs/{digest}"));
    assert_eq!((code, back == bytes), (200, true));
    assert_eq!(
        second.upload("resume/a", blob, &|_| {}).unwrap(),
        Outcome::AlreadyThere
    );

    // A PATCH broken off in the middle of its body: the registry keeps
    // what it received, a new client continues from there.
    let (path, bytes, digest) = {
        let dir = env.work.path().join("b");
        std::fs::create_dir(&dir).unwrap();
        blob_file(&dir, 4 * CHUNK as usize)
    };
    let size = bytes.len() as u64;
    let blob = Blob {
        path: &path,
        digest: &digest,
        size,
    };
    let location = env.uploader().start("resume/b").unwrap();
    let broken_after = 3 * CHUNK as usize;
    let agent =
        bramble_tests::agent_trusting(env.hub().ca_pem().as_bytes(), Duration::from_secs(60));
    let mut reader = Breaking {
        data: &bytes[..],
        left: broken_after,
    };
    let sent = agent
        .patch(&location)
        .header("Authorization", format!("Bearer {}", env.hub().token()))
        .header("Content-Range", format!("0-{}", size - 1))
        .send(ureq::SendBody::from_reader(&mut reader));
    assert!(sent.is_err(), "the PATCH broke off: {sent:?}");
    let progress = std::sync::Mutex::new(Vec::new());
    let outcome = env
        .uploader()
        .with_chunk(CHUNK)
        .resume("resume/b", &location, blob, &|n| {
            progress.lock().unwrap().push(n)
        })
        .unwrap();
    let first = progress.lock().unwrap()[0];
    assert!(
        first > 0,
        "the registry kept the bytes received before the break"
    );
    assert!(first <= broken_after as u64);
    assert_eq!(
        outcome,
        Outcome::Uploaded {
            sent: size - first,
            resumed: 1
        }
    );
    let (code, back) = env.registry_get(&format!("/v2/resume/b/blobs/{digest}"));
    assert_eq!((code, back == bytes), (200, true));
}

/// A TCP proxy to `upstream` that cuts the one connection carrying the
/// `cut_at`-th byte sent to the hub (a connection dropping mid-upload).
fn cutting_proxy(upstream: std::net::SocketAddr, cut_at: u64) -> std::net::SocketAddr {
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(upstream) else {
                return;
            };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let sent = sent.clone();
            std::thread::spawn(move || {
                let (mut from, mut to) = (client, server);
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let n = match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let before = sent.fetch_add(n as u64, Ordering::SeqCst);
                    if before < cut_at && before + n as u64 >= cut_at {
                        break;
                    }
                    if std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
            });
            std::thread::spawn(move || {
                let (mut from, mut to) = (s2, c2);
                let _ = std::io::copy(&mut from, &mut to);
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
            });
        }
    });
    addr
}

#[test]
fn a_connection_dropped_mid_upload_is_resumed_by_the_same_upload() {
    let env = Env::start();
    const CHUNK: u64 = 64 * 1024;
    let (path, bytes, digest) = blob_file(env.work.path(), 8 * CHUNK as usize);
    let size = bytes.len() as u64;
    let hub_url = env.hub().url();
    let upstream: std::net::SocketAddr = hub_url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    // Cut in the middle of the fourth chunk's body.
    let proxy = cutting_proxy(upstream, 3 * CHUNK + CHUNK / 2);
    let scheme = hub_url.split("://").next().unwrap();
    let roots = bramble_trust::tls::pem_certs(env.hub().ca_pem().as_bytes()).unwrap();
    let uploader = Uploader::new(
        &format!("{scheme}://{proxy}"),
        Some(env.hub().token()),
        bramble_trust::tls::ureq_config(&roots),
    )
    .with_chunk(CHUNK);
    let blob = Blob {
        path: &path,
        digest: &digest,
        size,
    };
    let outcome = uploader.upload("resume/c", blob, &|_| {}).unwrap();
    let Outcome::Uploaded { sent, resumed } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(resumed, 1, "one broken connection, one resume");
    assert!(sent <= size, "{sent}");
    let (code, back) = env.registry_get(&format!("/v2/resume/c/blobs/{digest}"));
    assert_eq!((code, back == bytes), (200, true));
}
