//! The agent on emulated ARM boards: QEMU (TCG) boots the pinned Debian
//! kernel with the rig's initramfs ([`bramble_tests::arm_rig`],
//! `docs/arm.md`); the agent built for the board, handed over by 9p, joins
//! a real hub on this machine through QEMU's user network (`10.0.2.2` =
//! this machine's loopback), pulls its platform's build of a multi-arch
//! image from the hub's registry and runs it inside the guest:
//!
//! - arm64 (`qemu-system-aarch64`): the `aarch64-unknown-linux-musl` agent,
//!   containers in-process with libcontainer;
//! - armv7 (`qemu-system-arm`, cortex-a7): the 32-bit
//!   `armv7-unknown-linux-gnueabihf` agent, containers with Debian's armhf
//!   `runc` (`--runtime auto`).
//!
//! Needs (see `docs/arm.md`): Debian `qemu-system-arm`, `kmod`, dpkg's
//! `arm64` and `armhf` architectures (for `apt-get download`), and the
//! guests' agents built first: `cargo build --profile agent --target
//! aarch64-unknown-linux-musl -p bramble-agent`, likewise for
//! `armv7-unknown-linux-gnueabihf`.

use bramble_tests::{eventually, try_eventually};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bramble_tests::arm_rig::{
    self, Arch, ArmBoard, BoardConfig, CONSOLE_MARKER, HOST_FROM_GUEST, agent_script,
};
use bramble_tests::cluster::{Broker, Cluster, DEPLOYMENTS, deployment, unique};
use bramble_tests::debian_image::{self, Base};
use bramble_tests::projects::{STATIC_SITE, write_tree};
use serde_json::{Value, json};

/// One board at a time: QEMU takes a core of the two.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Prints `uname -m` of the container's busybox, then idles until SIGTERM.
const UNAME_IDLE: &str =
    "echo arch=$(busybox uname -m); trap 'exit 0' TERM; while true; do sleep 1; done";

/// The guest reaches the hub through QEMU's NAT at `HOST_FROM_GUEST`, an
/// address the host has no interface for: the hub's certificate must name
/// it, as a hub behind any NAT needs `--tls-san`.
const HUB_FLAGS: &[&str] = &["--tls-san", HOST_FROM_GUEST];

/// A hub URL as the guest reaches it.
fn from_guest(url: &str) -> String {
    url.replace("127.0.0.1", HOST_FROM_GUEST)
}

/// The guest's agent for `arch` (checked before anything starts).
fn guest_agent(arch: Arch) -> PathBuf {
    arm_rig::agent_binary(arch).unwrap_or_else(|e| panic!("{e}"))
}

/// Boots an `arch` board whose script runs `agent` joining `c`'s hub as
/// node `name`, with extra kernel command line words; waits until the
/// agent started.
fn boot_agent(c: &Cluster, arch: Arch, agent: &Path, name: &str, cmdline: &[&str]) -> ArmBoard {
    let args: Vec<String> = [
        "--hub",
        &from_guest(&c.hub.url),
        "--mqtt-url",
        &from_guest(&c.hub.mqtt_url),
        "--token",
        &c.hub.node_token,
        "--node-name",
        name,
        "--data-dir",
        "/var/lib/bramble-agent",
        "--run-dir",
        "/run/bramble-agent",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut cfg = BoardConfig::new(arch, name)
        .file("bramble-agent", agent)
        .script(agent_script(&args))
        .max_lifetime(Duration::from_secs(420));
    for w in cmdline {
        cfg = cfg.cmdline(w);
    }
    let board = ArmBoard::boot(cfg);
    board.wait_for_console(
        &format!("{CONSOLE_MARKER} agent start"),
        Duration::from_secs(120),
    );
    board
}

/// Waits until node `name` is Ready, failing early (with the console)
/// when the board stopped.
fn wait_board_ready(c: &Cluster, board: &ArmBoard, name: &str) -> Value {
    eventually(
        format!("{} node {name} Ready", board.arch.oci()),
        Duration::from_secs(90),
        || {
            assert!(
                board.running(),
                "the board stopped; console:\n{}",
                board.console_tail(40)
            );
            (c.node_ready(name).as_deref() == Some("True")).then(|| c.node(name))?
        },
    )
}

/// `bramble logs POD` once it contains `needle` (asked once the pod is
/// Running).
fn wait_logs(c: &Cluster, board: &ArmBoard, pod: &str, needle: &str, timeout: Duration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    let running = try_eventually(timeout, || {
        assert!(board.running(), "the board stopped");
        let (_, p) = c.client().get(&format!("{PODS}/{pod}"));
        match &p["status"]["phase"] {
            phase if phase == "Running" => Ok(()),
            phase => Err(format!("phase {phase}")),
        }
    });
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    let found = running.and_then(|()| {
        try_eventually(left, || {
            assert!(board.running(), "the board stopped");
            let (ok, out) = c.cli(&["logs", pod]);
            if ok && out.contains(needle) {
                Ok(out)
            } else {
                Err(format!("output: {out}"))
            }
        })
    });
    found.unwrap_or_else(|t| {
        let (_, pods) = c.client().get("/api/v1/namespaces/default/pods");
        panic!(
            "`bramble logs {pod}` never showed {needle:?} in {timeout:?} (first the pod Running, then the logs): {t}\npods: {pods}\nboard console (tail):\n{}",
            board.console_tail(40)
        )
    })
}

fn pod(name: &str, script: &str, node_selector: Option<Value>, limits: Option<Value>) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox:multi",
                            "command": ["sh", "-c", script]}]
        }
    });
    if let Some(sel) = node_selector {
        p["spec"]["nodeSelector"] = sel;
    }
    if let Some(l) = limits {
        p["spec"]["containers"][0]["resources"] = json!({"limits": l});
    }
    p
}

const PODS: &str = "/api/v1/namespaces/default/pods";

/// Prints how long the test has run at a step (`--nocapture` shows it).
fn step(start: std::time::Instant, what: &str) {
    eprintln!("[arm {:>6.1?}] {what}", start.elapsed());
}

/// (a) the board joins as an arm64 node, (b) a pod of a multi-arch image
/// runs its arm64 build there, (c) a Deployment's two replicas spread over
/// this machine's x86 agent and the board, each running its own build,
/// (e) `bramble build --platform linux/amd64,linux/arm64` builds each
/// platform natively on its node and makes an image index, (f) a real
/// project (the static site on Debian's nginx) builds on the board and its
/// image serves there.
#[test]
fn arm64_board_joins_and_runs_the_arm64_build_of_a_multi_arch_image() {
    let _one = serial();
    let agent = guest_agent(Arch::Arm64);
    let t = std::time::Instant::now();
    let c = Cluster::start(Broker::Embedded, 1, HUB_FLAGS);
    let x86 = c.agents[0].name.clone();
    c.push_busybox("busybox", "multi");
    step(t, "hub, x86 agent Ready, image pushed");
    let arm = unique("arm");
    let board = boot_agent(&c, Arch::Arm64, &agent, &arm, &[]);
    step(t, "board booted, agent started");

    // (a) Ready, and an arm64 node by its labels and nodeInfo.
    let node = wait_board_ready(&c, &board, &arm);
    step(t, "arm64 node Ready");
    assert_eq!(
        node["metadata"]["labels"]["kubernetes.io/arch"], "arm64",
        "{node}"
    );
    assert_eq!(
        node["metadata"]["labels"]["kubernetes.io/os"], "linux",
        "{node}"
    );
    assert_eq!(
        node["status"]["nodeInfo"]["architecture"], "arm64",
        "{node}"
    );
    assert!(
        node["status"]["nodeInfo"]["kernelVersion"]
            .as_str()
            .is_some_and(|k| k.starts_with(arm_rig::KERNEL_ABI)),
        "{node}"
    );
    let conditions = node["status"]["conditions"].to_string();
    assert!(!conditions.contains("MemoryCgroupMissing"), "{conditions}");
    let x86_node = c.node(&x86).expect("x86 node");
    assert_eq!(
        x86_node["metadata"]["labels"]["kubernetes.io/arch"],
        "amd64"
    );

    // (b) A pod for arm64 nodes: the arm64 manifest was pulled and runs.
    let selector = json!({"kubernetes.io/arch": "arm64"});
    let (code, v) = c
        .client()
        .post(PODS, &pod("uname-arm", UNAME_IDLE, Some(selector), None));
    assert_eq!(code, 201, "{v}");
    let out = wait_logs(&c, &board, "uname-arm", "arch=", Duration::from_secs(120));
    assert!(out.contains("arch=aarch64"), "{out}");
    let (_, p) = c.client().get(&format!("{PODS}/uname-arm"));
    assert_eq!(p["spec"]["nodeName"], arm.as_str(), "{p}");
    step(t, "arm64 pod logged aarch64");
    let (ok, out) = c.cli(&["exec", "uname-arm", "--", "busybox", "uname", "-m"]);
    assert!(ok && out.contains("aarch64"), "{out}");
    step(t, "exec in the arm64 pod");

    // (c) Two replicas: one per node, each with its platform's build.
    let (code, v) = c.client().post(
        DEPLOYMENTS,
        &deployment("mixed", 2, "busybox:multi", UNAME_IDLE),
    );
    assert_eq!(code, 201, "{v}");
    let ready = eventually("2 ready replicas", Duration::from_secs(120), || {
        assert!(board.running(), "the board stopped");
        let r = c.ready_pods("app=mixed");
        (r.len() == 2).then_some(r)
    });
    let mut nodes: Vec<&str> = ready.iter().map(|(_, n)| n.as_str()).collect();
    nodes.sort();
    let mut want = vec![arm.as_str(), x86.as_str()];
    want.sort();
    assert_eq!(nodes, want, "one replica per node: {ready:?}");
    for (pod, node) in &ready {
        let arch = if *node == arm { "aarch64" } else { "x86_64" };
        let out = wait_logs(&c, &board, pod, "arch=", Duration::from_secs(60));
        assert!(
            out.contains(&format!("arch={arch}")),
            "{pod} on {node}: {out}"
        );
    }
    step(t, "deployment spread, each replica logged its arch");

    // (e) `bramble build` for both platforms: each built natively, on the
    // x86 agent and on the board; one image index; each node runs its own.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox:multi\nRUN echo built-on-$(busybox uname -m) > /built\nCMD [\"cat\", \"/built\"]\n",
    )
    .unwrap();
    let (ok, out) = c.cli(&[
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        "demo/native:1",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        ok,
        "bramble build: {out}\nboard console (tail):\n{}",
        board.console_tail(40)
    );
    step(t, "built for amd64 and arm64");
    let (_, b) = c
        .client()
        .get("/apis/bramble.dev/v1/namespaces/default/builds");
    let platforms = &b["items"][0]["status"]["platforms"];
    let on: Vec<(String, String)> = platforms
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["platform"].as_str().unwrap().to_string(),
                p["node"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        on.contains(&("linux/arm64".to_string(), arm.clone())),
        "{b}"
    );
    assert!(
        on.contains(&("linux/amd64".to_string(), x86.clone())),
        "{b}"
    );
    for (name, arch, machine) in [
        ("built-arm", "arm64", "aarch64"),
        ("built-x86", "amd64", "x86_64"),
    ] {
        let mut p = pod(
            name,
            "cat /built; sleep 3600",
            Some(json!({"kubernetes.io/arch": arch})),
            None,
        );
        p["spec"]["containers"][0]["image"] = json!("demo/native:1");
        let (code, v) = c.client().post(PODS, &p);
        assert_eq!(code, 201, "{v}");
        let out = wait_logs(&c, &board, name, "built-on-", Duration::from_secs(120));
        assert!(
            out.contains(&format!("built-on-{machine}")),
            "{name}: {out}"
        );
    }
    step(t, "each node ran the build made on its platform");

    // (f) A real project for the board alone: the static site on Debian's
    // arm64 nginx; its `RUN nginx -t` is the board's aarch64 nginx checking
    // the site's config, and the image serves on the board.
    let nginx = debian_image::image_for(Base::Nginx, &["amd64", "arm64"])
        .unwrap_or_else(|e| panic!("the nginx fixture: {e}"));
    c.push_image("fixture/nginx", "1", &nginx);
    let site = tempfile::tempdir().unwrap();
    write_tree(site.path(), STATIC_SITE);
    let (ok, out) = c.cli(&[
        "build",
        "--platform",
        "linux/arm64",
        "-t",
        "projects/site:arm64",
        site.path().to_str().unwrap(),
    ]);
    assert!(
        ok,
        "bramble build: {out}\nboard console (tail):\n{}",
        board.console_tail(40)
    );
    assert!(out.contains("RUN nginx -t"), "{out}");
    assert!(
        out.contains("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok"),
        "the RUN's output, streamed from the board: {out}"
    );
    step(t, "the static site built on the board");
    let mut p = pod(
        "site-arm",
        "",
        Some(json!({"kubernetes.io/arch": "arm64"})),
        None,
    );
    let container = &mut p["spec"]["containers"][0];
    container["image"] = json!("projects/site:arm64");
    container.as_object_mut().unwrap().remove("command");
    let (code, v) = c.client().post(PODS, &p);
    assert_eq!(code, 201, "{v}");
    let served = eventually(
        "nginx serving on the board",
        Duration::from_secs(120),
        || {
            assert!(board.running(), "the board stopped");
            let (ok, out) = c.cli(&[
            "exec",
            "site-arm",
            "--",
            "sh",
            "-c",
            "uname -m; kill -0 \"$(cat /run/nginx.pid)\" && echo nginx-serving; cat /usr/share/nginx/html/index.html",
        ]);
            (ok && out.contains("nginx-serving")).then_some(out)
        },
    );
    assert_eq!(
        served,
        "aarch64\nnginx-serving\n<!doctype html><title>Bramble</title><h1>A static site on a board</h1>\n"
    );
    step(t, "the board serves the site with its own nginx");
}

/// (d) A board booted with `cgroup_disable=memory`: the agent warns on its
/// console, the node is Ready with the `MemoryCgroupMissing` condition and
/// annotation, a pod without memory limits runs, and one with a limit is
/// refused with the fix.
#[test]
fn arm64_board_without_memory_cgroup_joins_with_a_warning() {
    let _one = serial();
    let agent = guest_agent(Arch::Arm64);
    let t = std::time::Instant::now();
    let c = Cluster::start(Broker::Embedded, 0, HUB_FLAGS);
    c.push_busybox("busybox", "multi");
    let arm = unique("armnomem");
    let board = boot_agent(&c, Arch::Arm64, &agent, &arm, &["cgroup_disable=memory"]);
    step(t, "board booted, agent started");
    let init = board.wait_for_console(&format!("{CONSOLE_MARKER} init"), Duration::from_secs(5));
    assert!(
        !init.contains("memory"),
        "memory controller still listed: {init}"
    );

    let node = wait_board_ready(&c, &board, &arm);
    step(t, "arm64 node Ready");
    let conditions = node["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let memory = conditions
        .iter()
        .find(|c| c["type"] == "MemoryCgroupMissing")
        .unwrap_or_else(|| panic!("no MemoryCgroupMissing condition: {node}"));
    assert_eq!(memory["status"], "True", "{memory}");
    assert!(
        memory["message"]
            .as_str()
            .is_some_and(|m| m.contains("cgroup_enable=memory")),
        "{memory}"
    );
    assert!(
        node["metadata"]["annotations"]["bramble.dev/memory-cgroup"].is_string(),
        "{node}"
    );
    board.wait_for_console(
        "the memory cgroup controller is not enabled",
        Duration::from_secs(5),
    );

    // No memory limit: runs.
    let (code, v) = c
        .client()
        .post(PODS, &pod("nolimit", UNAME_IDLE, None, None));
    assert_eq!(code, 201, "{v}");
    let out = wait_logs(&c, &board, "nolimit", "arch=", Duration::from_secs(120));
    assert!(out.contains("arch=aarch64"), "{out}");
    step(t, "pod without limits logged aarch64");
    // The node network (routes, nft table with the rig's modules and nft)
    // was programmed: no other node to route to here.
    let console = board.console();
    assert!(
        !console.contains("programming the node network"),
        "{}",
        board.console_tail(30)
    );

    // A memory limit cannot be enforced: refused with the fix.
    let (code, v) = c.client().post(
        PODS,
        &pod("limited", UNAME_IDLE, None, Some(json!({"memory": "32Mi"}))),
    );
    assert_eq!(code, 201, "{v}");
    let status = eventually("the limited pod refused", Duration::from_secs(60), || {
        let (_, p) = c.client().get(&format!("{PODS}/limited"));
        let s = p["status"].to_string();
        s.contains("memory cgroup").then_some(s)
    });
    assert!(status.contains("cgroup_enable=memory"), "{status}");
    step(t, "pod with a memory limit refused");
}

/// The 32-bit board (`qemu-system-arm`, cortex-a7, the `armmp-lpae`
/// kernel, armhf busybox, nft and runc) runs the armv7 agent: it joins as
/// an `arm` node on cgroup2 with the `runc` it found in `PATH`, a pod
/// selected onto it runs the `linux/arm/v7` build of the multi-arch image
/// (`uname -m` = `armv7l`, through `bramble logs` and `bramble exec`), and
/// deleting the pod stops its container with SIGTERM and removes it.
#[test]
fn armv7_board_runs_the_32_bit_agent_with_runc() {
    let _one = serial();
    let agent = guest_agent(Arch::Armv7);
    let t = std::time::Instant::now();
    let c = Cluster::start(Broker::Embedded, 0, HUB_FLAGS);
    c.push_busybox("busybox", "multi");
    step(t, "hub up, image pushed");
    let name = unique("armv7");
    let board = boot_agent(&c, Arch::Armv7, &agent, &name, &[]);
    step(t, "armv7 board booted, agent started");
    let init = board.wait_for_console(&format!("{CONSOLE_MARKER} init"), Duration::from_secs(1));
    assert!(init.contains(Arch::Armv7.uname_m()), "{init}");
    assert!(init.contains("memory"), "cgroup2 controllers: {init}");

    // Ready, as a 32-bit ARM node running containers with runc.
    let node = wait_board_ready(&c, &board, &name);
    step(t, "armv7 node Ready");
    assert_eq!(
        node["metadata"]["labels"]["kubernetes.io/arch"], "arm",
        "{node}"
    );
    assert_eq!(
        node["metadata"]["labels"]["kubernetes.io/os"], "linux",
        "{node}"
    );
    assert_eq!(node["status"]["nodeInfo"]["architecture"], "arm", "{node}");
    assert_eq!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"], "oci:runc",
        "{node}"
    );
    assert!(
        node["status"]["nodeInfo"]["kernelVersion"]
            .as_str()
            .is_some_and(|k| k == Arch::Armv7.kernel_release()),
        "{node}"
    );
    let conditions = node["status"]["conditions"].to_string();
    assert!(!conditions.contains("MemoryCgroupMissing"), "{conditions}");

    // A pod for arm nodes: the linux/arm/v7 manifest was pulled and runs.
    let selector = json!({"kubernetes.io/arch": "arm"});
    let (code, v) = c
        .client()
        .post(PODS, &pod("uname-armv7", UNAME_IDLE, Some(selector), None));
    assert_eq!(code, 201, "{v}");
    let out = wait_logs(&c, &board, "uname-armv7", "arch=", Duration::from_secs(180));
    assert!(out.contains("arch=armv7l"), "{out}");
    let (_, p) = c.client().get(&format!("{PODS}/uname-armv7"));
    assert_eq!(p["spec"]["nodeName"], name.as_str(), "{p}");
    step(t, "armv7 pod logged armv7l");
    let (ok, out) = c.cli(&["exec", "uname-armv7", "--", "busybox", "uname", "-m"]);
    assert!(ok && out.contains("armv7l"), "{out}");
    step(t, "exec in the armv7 pod");
    // The node network (routes, the agent's nft table) was programmed.
    assert!(
        !board.console().contains("programming the node network"),
        "{}",
        board.console_tail(30)
    );

    // Deleted: runc signals the container (its trap exits 0 on SIGTERM),
    // the agent reaps it and `runc delete` removes it.
    let (code, v) = c.client().delete(&format!("{PODS}/uname-armv7"));
    assert!(code == 200 || code == 202, "{code} {v}");
    let line = board.wait_for_console("container deleted", Duration::from_secs(60));
    assert!(line.contains("Code(0)"), "{line}");
    eventually("the pod gone", Duration::from_secs(60), || {
        (c.client().get(&format!("{PODS}/uname-armv7")).0 == 404).then_some(())
    });
    step(t, "armv7 pod deleted");
}
