//! Image builds on the boards, end to end: a context tar uploaded to the
//! hub's registry with `curl` (as `bramble build` does it), a
//! `bramble.dev/v1` Build naming it, the hub planning it and handing it to
//! the real agent, which runs the steps in real containers and pushes the
//! layers; `skopeo inspect` reads the image Docker would have made, a pod
//! runs it, and the same build again runs nothing. Also: a build for a
//! platform no node has is refused naming the platforms that can build,
//! and a failing `RUN` reports its exit code and output. `bramble logs
//! build/NAME` reads (and follows) the log the board keeps: each step,
//! cached or run, and the output of what ran. A build whose board is lost
//! mid-step moves to another board, its context kept by the registry's
//! collection while it runs. A `RUN` is on the pod network: it
//! fetches from a Service by name, and its layer keeps no trace of the
//! `resolv.conf` it was given.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster, deployment};
use bramble_tests::{eventually, skopeo};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BUILDS: &str = "/apis/bramble.dev/v1/namespaces/default/builds";

/// This machine's platform as OCI names it.
fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64",
        "arm" => "linux/arm/v7",
        other => panic!("no OCI platform for {other}"),
    }
}

/// Writes `files` into `dir`, tars them with GNU tar (sorted, owners 0)
/// and uploads the tar to repository `repo`; returns (digest, size).
fn upload_context(c: &Cluster, dir: &Path, repo: &str, files: &[(&str, &str)]) -> (String, u64) {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    for (name, text) in files {
        std::fs::write(ctx.join(name), text).unwrap();
    }
    let tar = dir.join("ctx.tar");
    let out = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(&ctx)
        .arg(".")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&tar).unwrap();
    let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, c.hub.ca_pem()).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&ca)
        .args(["-H", &format!("Authorization: Bearer {}", c.hub.token)])
        .args(["-H", "Content-Type: application/octet-stream"])
        .arg("--data-binary")
        .arg(format!("@{}", tar.display()))
        .arg(format!(
            "{}/v2/{repo}/blobs/uploads/?digest={digest}",
            c.hub.url
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "201",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (digest, bytes.len() as u64)
}

fn create_build(c: &Cluster, name: &str, image: &str, ctx: (String, u64), platforms: &[&str]) {
    let body = json!({"apiVersion": "bramble.dev/v1", "kind": "Build",
        "metadata": {"name": name},
        "spec": {"image": image, "platforms": platforms,
                 "context": {"digest": ctx.0, "size": ctx.1}}});
    let (code, v) = c.client().post(BUILDS, &body);
    assert_eq!(code, 201, "{v}");
}

/// Waits for Build `name` to end; returns it.
fn finished(c: &Cluster, name: &str) -> Value {
    eventually("the build to end", Duration::from_secs(180), || {
        let (code, b) = c.client().get(&format!("{BUILDS}/{name}"));
        assert_eq!(code, 200, "{b}");
        matches!(b["status"]["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(b)
    })
}

const DOCKERFILE: &str = "FROM bb:1\n\
ENV GREETING=hello\n\
ARG FLAVOUR=plain\n\
RUN echo \"$GREETING from a $FLAVOUR board\" > /greeting && mkdir -p /data && rm -f /bin/vi && echo ran-on-the-$FLAVOUR-board\n\
EXPOSE 8080\n\
LABEL org.example.kind=demo\n\
USER 1000\n\
CMD [\"cat\", \"/greeting\"]\n";

#[test]
fn a_board_builds_an_image_that_skopeo_reads_and_a_pod_runs_and_a_rebuild_runs_nothing() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().unwrap();
    let ctx = upload_context(&c, dir.path(), "demo/hello", &[("Dockerfile", DOCKERFILE)]);
    create_build(&c, "hello-1", "demo/hello:1", ctx.clone(), &[platform()]);
    // Its log, followed from the board that builds it until the job ends
    // (refused until a node has it).
    let log = eventually("the build's log", Duration::from_secs(180), || {
        let (ok, out) = c.cli(&["logs", "-f", "build/hello-1"]);
        ok.then_some(out)
    });
    assert!(log.contains("#1 [2/2] RUN echo"), "{log}");
    assert!(log.contains("\nran-on-the-plain-board\n#1 DONE "), "{log}");
    assert!(log.lines().last().unwrap().starts_with("DONE "), "{log}");
    let b = finished(&c, "hello-1");
    assert_eq!(b["status"]["phase"], "Succeeded", "{b}");
    let p = &b["status"]["platforms"][0];
    assert_eq!(p["node"], c.agents[0].name.as_str(), "{b}");
    let steps = p["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "one RUN: {b}");
    assert!(
        steps[0]["name"].as_str().unwrap().contains("RUN echo"),
        "{b}"
    );
    assert_eq!(steps[0]["cached"], Value::Null, "{b}");

    // skopeo reads the config Docker would write.
    let cfg = skopeo::inspect(&c, dir.path(), "demo/hello:1", true);
    let conf = &cfg["config"];
    assert_eq!(conf["Cmd"], json!(["cat", "/greeting"]), "{cfg}");
    assert_eq!(conf["User"], "1000", "{cfg}");
    assert!(conf["ExposedPorts"].get("8080/tcp").is_some(), "{cfg}");
    assert_eq!(conf["Labels"]["org.example.kind"], "demo", "{cfg}");
    assert!(
        conf["Env"]
            .as_array()
            .unwrap()
            .contains(&json!("GREETING=hello")),
        "{cfg}"
    );
    let layers = cfg["rootfs"]["diff_ids"].as_array().unwrap().len();
    let info = skopeo::inspect(&c, dir.path(), "demo/hello:1", false);
    assert_eq!(info["Layers"].as_array().unwrap().len(), layers, "{info}");
    assert_eq!(info["Architecture"], platform().split('/').nth(1).unwrap());

    // A pod runs the built image: the RUN's file is there, the deleted one gone.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "demo/hello:1",
            "command": ["sh", "-c", "cat /greeting; test -e /bin/vi && echo vi-still-there; id -u"]}]}});
    let (code, v) = c.client().post("/api/v1/namespaces/default/pods", &pod);
    assert_eq!(code, 201, "{v}");
    let logs = eventually("the pod's output", Duration::from_secs(60), || {
        let (ok, out) = c.cli(&["logs", "hello"]);
        (ok && out.contains("board")).then_some(out)
    });
    assert!(logs.contains("hello from a plain board"), "{logs}");
    assert!(!logs.contains("vi-still-there"), "{logs}");
    assert!(logs.contains("1000"), "{logs}");

    // The same build again: every step from the cache, nothing run.
    create_build(&c, "hello-2", "demo/hello:2", ctx, &[platform()]);
    let b = finished(&c, "hello-2");
    assert_eq!(b["status"]["phase"], "Succeeded", "{b}");
    let steps = b["status"]["platforms"][0]["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["cached"] == true), "{b}");
    let (ok, log) = c.cli(&["logs", "build/hello-2"]);
    assert!(ok, "{log}");
    assert!(log.contains("#1 CACHED"), "{log}");
    assert!(
        !log.contains("\nran-on-the-plain-board"),
        "nothing ran: {log}"
    );
    let again = skopeo::inspect(&c, dir.path(), "demo/hello:2", true);
    assert_eq!(again, cfg, "a build of cached layers is the same image");
}

#[test]
fn builds_that_cannot_run_or_fail_say_why() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().unwrap();
    let ctx = upload_context(
        &c,
        dir.path(),
        "demo/broken",
        &[("Dockerfile", "FROM bb:1\nRUN echo about to fail; exit 3\n")],
    );
    // No node of that platform: the platforms that can build are named.
    let other = if platform() == "linux/amd64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    create_build(&c, "elsewhere", "demo/broken:1", ctx.clone(), &[other]);
    let b = finished(&c, "elsewhere");
    assert_eq!(b["status"]["phase"], "Failed", "{b}");
    let msg = b["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("no Ready node can build {other}")),
        "{msg}"
    );
    assert!(msg.contains(platform()), "{msg}");
    let (ok, out) = c.cli(&["logs", "build/elsewhere"]);
    assert!(!ok, "{out}");
    assert!(out.contains("has not started on a node for"), "{out}");

    // A RUN that exits 3: its code and output.
    create_build(&c, "fails", "demo/broken:1", ctx, &[platform()]);
    let b = finished(&c, "fails");
    assert_eq!(b["status"]["phase"], "Failed", "{b}");
    let msg = b["status"]["message"].as_str().unwrap();
    assert!(msg.contains("exit code 3"), "{msg}");
    assert!(msg.contains("about to fail"), "{msg}");
    let step = &b["status"]["platforms"][0]["steps"][0];
    assert_eq!(step["exitCode"], 3, "{b}");
    assert_eq!(step["phase"], "Failed", "{b}");
    // The log keeps the whole output and how the job ended.
    let (ok, log) = c.cli(&["logs", "build/fails"]);
    assert!(ok, "{log}");
    assert!(
        log.contains("about to fail\n#1 ERROR: exit code 3\n"),
        "{log}"
    );
    let (ok, last) = c.cli(&["logs", "--tail", "1", "build/fails"]);
    assert!(ok, "{last}");
    assert!(
        last.starts_with("ERROR: ") && last.contains("exit code 3"),
        "{last}"
    );
    assert_eq!(last.trim_end().lines().count(), 1, "{last}");
    // Nothing was tagged.
    let (code, _) = c.client().get("/v2/demo/broken/manifests/1");
    assert_eq!(code, 404);
}

const MULTI_STAGE: &str = "FROM bb:1 AS build\n\
WORKDIR /src\n\
COPY app.sh lib/ ./\n\
COPY . /ctx/\n\
RUN test ! -e /ctx/secret.txt && chmod +x app.sh && echo built > /src/stamp\n\
FROM bb:1\n\
RUN mkdir -p /etc /app && echo 'app:x:1234:1234::/app:/bin/sh' >> /etc/passwd && chown app /app\n\
WORKDIR /app\n\
COPY --from=build /src/ /app/\n\
USER app\n\
RUN id -u > /app/uid\n\
CMD [\"/app/app.sh\"]\n";

#[test]
fn multi_stage_builds_copy_from_the_context_and_stages_with_workdir_and_named_users() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ctx/lib")).unwrap();
    let ctx = upload_context(
        &c,
        dir.path(),
        "demo/multi",
        &[
            ("Dockerfile", MULTI_STAGE),
            (".dockerignore", "secret.txt\n"),
            ("secret.txt", "not for the image\n"),
            (
                "app.sh",
                "#!/bin/sh\ncat /app/stamp /app/uid /app/lib.txt\n",
            ),
            ("lib/lib.txt", "from lib\n"),
        ],
    );
    create_build(&c, "multi", "demo/multi:1", ctx, &[platform()]);
    let b = finished(&c, "multi");
    assert_eq!(b["status"]["phase"], "Succeeded", "{b}");
    let names: Vec<&str> = b["status"]["platforms"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"[build 3/5] COPY app.sh lib/ ./"),
        "{names:?}"
    );
    assert!(
        names.contains(&"[stage-1 4/5] COPY --from=build /src/ /app/"),
        "{names:?}"
    );
    let cfg = skopeo::inspect(&c, dir.path(), "demo/multi:1", true);
    assert_eq!(cfg["config"]["WorkingDir"], "/app", "{cfg}");
    assert_eq!(cfg["config"]["User"], "app", "{cfg}");

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "multi"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "demo/multi:1"}]}});
    let (code, v) = c.client().post("/api/v1/namespaces/default/pods", &pod);
    assert_eq!(code, 201, "{v}");
    let pod = bramble_tests::try_eventually(Duration::from_secs(60), || {
        let (_, p) = c.client().get("/api/v1/namespaces/default/pods/multi");
        matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(p)
    })
    .unwrap_or_else(|e| {
        let (_, p) = c.client().get("/api/v1/namespaces/default/pods/multi");
        panic!("{e}: {p}")
    });
    let (_, logs) = c.cli(&["logs", "multi"]);
    assert_eq!(pod["status"]["phase"], "Succeeded", "{logs}\n{pod}");
    assert_eq!(
        logs.lines().collect::<Vec<_>>(),
        ["built", "1234", "from lib"],
        "{logs}"
    );
}

#[test]
fn bramble_build_uploads_the_context_follows_the_steps_and_names_the_image() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("app");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:1\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /copy.txt && echo output-of-the-run\nCMD [\"cat\", \"/copy.txt\"]\n",
    )
    .unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello from bramble build\n").unwrap();
    let ctx = ctx.to_str().unwrap();
    let (ok, out) = c.cli(&["build", "-t", "demo/cli:1", ctx]);
    assert!(ok, "{out}");
    assert!(out.contains("COPY hello.txt /hello.txt"), "{out}");
    assert!(out.contains("RUN cat /hello.txt > /copy.txt"), "{out}");
    // The RUN's own output, as docker build --progress=plain shows it.
    assert!(out.contains("\noutput-of-the-run\n"), "{out}");
    assert!(out.contains("DONE"), "{out}");
    assert!(!out.contains("CACHED"), "{out}");
    assert!(out.contains("naming to demo/cli:1 done"), "{out}");

    // Again: the context is not sent again, every step is cached.
    let (ok, out) = c.cli(&["build", "-t", "demo/cli:2", ctx]);
    assert!(ok, "{out}");
    assert!(out.contains("nothing sent"), "{out}");
    assert_eq!(out.matches("CACHED").count(), 2, "{out}");
    // One source file changed: its COPY and what follows run again.
    std::fs::write(Path::new(ctx).join("hello.txt"), "hello again\n").unwrap();
    let (ok, out) = c.cli(&["build", "-t", "demo/cli:3", ctx]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("CACHED").count(), 0, "{out}");
    let (ok, listed) = c.cli(&["get", "builds"]);
    assert!(ok, "{listed}");
    assert_eq!(listed.matches("Succeeded").count(), 3, "{listed}");
}

#[test]
fn a_build_whose_board_is_lost_mid_step_finishes_on_another() {
    let mut c = Cluster::start(
        Broker::Embedded,
        2,
        &[
            "--node-heartbeat-grace",
            "1s",
            "--node-eviction-timeout",
            "2s",
        ],
    );
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().unwrap();
    let ctx = upload_context(
        &c,
        dir.path(),
        "demo/slow",
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN sleep 10 && echo slow > /made\n",
        )],
    );
    create_build(&c, "slow", "demo/slow:1", ctx.clone(), &[platform()]);
    // The board is running the step: it dies there.
    let first = eventually("the step to run", Duration::from_secs(120), || {
        let (_, b) = c.client().get(&format!("{BUILDS}/slow"));
        let p = &b["status"]["platforms"][0];
        (p["steps"][0]["phase"] == "Running").then(|| p["node"].as_str().unwrap().to_string())
    });
    // The registry's collection keeps the context of a Build that runs
    // (the build moving off the lost board reads it again), and only then.
    let context_blob = format!("/v2/demo/slow/blobs/{}", ctx.0);
    let (code, report) = c.client().post("/v2/_gc?graceSeconds=0", &json!({}));
    assert_eq!(code, 200, "{report}");
    assert_eq!(c.client().get(&context_blob).0, 200, "{report}");
    let lost = c.agents.iter().position(|a| a.name == first).unwrap();
    c.agents[lost].proc.kill9();
    let b = finished(&c, "slow");
    assert_eq!(b["status"]["phase"], "Succeeded", "{b}");
    let p = &b["status"]["platforms"][0];
    assert_eq!(p["node"], c.agents[1 - lost].name.as_str(), "{b}");
    assert_eq!(p["steps"][0]["cached"], Value::Null, "it ran there: {b}");
    let (ok, log) = c.cli(&["logs", "build/slow"]);
    assert!(ok && log.contains("#1 DONE "), "{log}");
    let (code, report) = c.client().post("/v2/_gc?graceSeconds=0", &json!({}));
    assert_eq!(code, 200, "{report}");
    assert_eq!(c.client().get(&context_blob).0, 404, "{report}");
    // The lost board, back, drops what its killed job left (its step's
    // overlay) before the cluster is taken down.
    c.agents[lost].restart();
    c.wait_node_ready(&first, Duration::from_secs(60));
}

#[test]
fn a_run_step_fetches_from_a_service_by_name_and_its_layer_keeps_no_resolv_conf() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    // A file server in the cluster, behind a Service.
    let files = deployment(
        "files",
        1,
        "bb:1",
        "mkdir -p /www && echo fetched-from-a-service > /www/hello.txt && exec httpd -f -p 8080 -h /www",
    );
    let (code, v) = c
        .client()
        .post("/apis/apps/v1/namespaces/default/deployments", &files);
    assert_eq!(code, 201, "{v}");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "files"},
        "spec": {"selector": {"app": "files"}, "ports": [{"port": 8080}]}});
    let (code, v) = c.client().post("/api/v1/namespaces/default/services", &svc);
    assert_eq!(code, 201, "{v}");
    eventually("the file server Ready", Duration::from_secs(60), || {
        (c.ready_pods("app=files").len() == 1).then_some(())
    });

    let dir = tempfile::tempdir().unwrap();
    let ctx = upload_context(
        &c,
        dir.path(),
        "demo/net",
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN wget -qO /fetched http://files:8080/hello.txt && cat /etc/resolv.conf\n",
        )],
    );
    create_build(&c, "net", "demo/net:1", ctx, &[platform()]);
    let b = finished(&c, "net");
    assert_eq!(b["status"]["phase"], "Succeeded", "{b}");
    let (ok, log) = c.cli(&["logs", "build/net"]);
    assert!(ok, "{log}");
    assert!(log.contains("search default.svc."), "{log}");

    // The layer holds what the step made, and no mount point of its own.
    let entries = bramble_tests::skopeo::top_layer_entries(&c, dir.path(), "demo/net:1");
    assert!(entries.lines().any(|e| e == "fetched"), "{entries}");
    assert!(!entries.contains("resolv.conf"), "{entries}");
    // Nor the runtime's: the base has no /dev, /proc or /sys.
    assert_eq!(entries.trim(), "fetched", "{entries}");

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "net"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "demo/net:1",
            "command": ["cat", "/fetched"]}]}});
    let (code, v) = c.client().post("/api/v1/namespaces/default/pods", &pod);
    assert_eq!(code, 201, "{v}");
    eventually("the pod's output", Duration::from_secs(60), || {
        let (ok, out) = c.cli(&["logs", "net"]);
        (ok && out.contains("fetched-from-a-service")).then_some(())
    });
}

const MOUNTS: &str = "FROM bb:1\n\
RUN <<EOF\n\
#!/bin/sh\n\
echo from a shebang heredoc > /heredoc\n\
EOF\n\
RUN --mount=type=bind,source=src,target=/src \\\n\
    --mount=type=cache,target=/var/cache/app \\\n\
    --mount=type=tmpfs,target=/scratch \\\n\
    cat /src/a.txt > /from-bind && echo run >> /var/cache/app/runs \\\n\
    && wc -l < /var/cache/app/runs | tr -d ' ' > /runs-seen && echo temp > /scratch/t\n";

#[test]
fn run_mounts_bind_the_context_keep_a_cache_on_the_board_and_stay_out_of_the_layer_and_shebang_heredocs_run()
 {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ctx/src")).unwrap();
    let ctx = upload_context(
        &c,
        dir.path(),
        "demo/mounts",
        &[("Dockerfile", MOUNTS), ("src/a.txt", "from the context\n")],
    );
    let build = |name: &str, tag: &str, ctx: (String, u64)| {
        let body = json!({"apiVersion": "bramble.dev/v1", "kind": "Build",
            "metadata": {"name": name},
            "spec": {"image": format!("demo/mounts:{tag}"), "platforms": [platform()], "noCache": true,
                     "context": {"digest": ctx.0, "size": ctx.1}}});
        let (code, v) = c.client().post(BUILDS, &body);
        assert_eq!(code, 201, "{v}");
        let b = finished(&c, name);
        assert_eq!(b["status"]["phase"], "Succeeded", "{b}");
    };
    build("mounts-1", "1", ctx.clone());
    // Again, not from the layer cache: the cache mount still holds the
    // first run's line.
    build("mounts-2", "2", ctx);
    let entries = bramble_tests::skopeo::top_layer_entries(&c, dir.path(), "demo/mounts:2");
    let mut listed: Vec<&str> = entries.lines().collect();
    listed.sort_unstable();
    assert_eq!(listed, ["from-bind", "runs-seen"], "{entries}");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mounts"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "demo/mounts:2",
            "command": ["sh", "-c", "cat /from-bind /runs-seen /heredoc"]}]}});
    let (code, v) = c.client().post("/api/v1/namespaces/default/pods", &pod);
    assert_eq!(code, 201, "{v}");
    let out = eventually("the pod's output", Duration::from_secs(60), || {
        let (ok, out) = c.cli(&["logs", "mounts"]);
        (ok && out.contains("from the context")).then_some(out)
    });
    assert_eq!(out, "from the context\n2\nfrom a shebang heredoc\n");
}

const TREE_MOUNTS: &str = "FROM bb:1 AS tools\n\
RUN mkdir -p /out /etc && echo tool-from-stage > /out/tool && ln -s tool /out/link \\\n\
    && echo the-stages-etc > /etc/bramble-marker && ln -s /etc /evil\n\
FROM bb:1\n\
RUN --mount=type=bind,from=tools,source=/out,target=/tools \\\n\
    --mount=type=bind,from=tools,source=/evil,target=/stage-etc \\\n\
    --mount=type=bind,from=bb:1,source=/bin,target=/image-bin \\\n\
    --mount=type=bind,source=src,target=/src,rw \\\n\
    cat /tools/tool /tools/link /stage-etc/bramble-marker > /from-stage \\\n\
    && ls /image-bin/busybox > /from-image \\\n\
    && echo changed > /src/a.txt && cat /src/a.txt > /rw-seen \\\n\
    && if touch /tools/x 2>/dev/null; then echo writable; else echo read-only; fi > /stage-ro\n\
COPY src/a.txt /a-after\n";

/// `RUN --mount=type=bind` of an earlier stage and of an image: their
/// trees, read-only, a symlink as `source` resolved inside the stage (its
/// `/etc`, never the board's); `rw` on a context bind lets the step write,
/// and the context the next step copies is unchanged.
#[test]
fn run_mounts_bind_a_stage_an_image_and_a_writable_context_whose_writes_are_thrown_away() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ctx/src")).unwrap();
    let ctx = upload_context(
        &c,
        dir.path(),
        "demo/trees",
        &[
            ("Dockerfile", TREE_MOUNTS),
            ("src/a.txt", "from the context\n"),
        ],
    );
    let body = json!({"apiVersion": "bramble.dev/v1", "kind": "Build",
        "metadata": {"name": "trees"},
        "spec": {"image": "demo/trees:1", "platforms": [platform()],
                 "context": {"digest": ctx.0, "size": ctx.1}}});
    let (code, v) = c.client().post(BUILDS, &body);
    assert_eq!(code, 201, "{v}");
    let b = finished(&c, "trees");
    assert_eq!(b["status"]["phase"], "Succeeded", "{b}");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trees"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "demo/trees:1",
            "command": ["sh", "-c",
                "cat /from-stage /from-image /rw-seen /stage-ro /a-after; ls /tools /src 2>&1 | wc -l"]}]}});
    let (code, v) = c.client().post("/api/v1/namespaces/default/pods", &pod);
    assert_eq!(code, 201, "{v}");
    let out = eventually("the pod's output", Duration::from_secs(60), || {
        let (ok, out) = c.cli(&["logs", "trees"]);
        (ok && out.contains("tool-from-stage")).then_some(out)
    });
    assert_eq!(
        out,
        "tool-from-stage\ntool-from-stage\nthe-stages-etc\n/image-bin/busybox\nchanged\nread-only\n\
         from the context\n2\n",
        "the mount points are not in the image either (two `ls` errors)"
    );
}
