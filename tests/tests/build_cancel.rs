//! Ctrl-C cancels a build, as `docker build`'s does: `bramble build`
//! interrupted while a `RUN` runs on the board deletes its Build and exits
//! 130, and the board kills the step's process at once (it would sleep
//! for 100 minutes).

use std::process::Stdio;
use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster};
use bramble_tests::eventually;

const BUILDS: &str = "/apis/bramble.dev/v1/namespaces/default/builds";

/// Processes whose command line is exactly `argv`.
fn running(argv: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).replace('\0', " ").trim() == argv)
        .count()
}

#[test]
fn ctrl_c_deletes_the_build_and_the_board_kills_its_running_step() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    // A number no other test sleeps for, so the process is this test's.
    let nap = format!("{}", 6000 + std::process::id() % 1000);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM bb:1\nRUN sleep {nap}\n"),
    )
    .unwrap();
    let mut build = c
        .cli_command(&["build", "-t", "demo/long:1", dir.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let name = eventually("the step to run", Duration::from_secs(120), || {
        let (_, list) = c.client().get(BUILDS);
        let b = list["items"].as_array()?.first()?.clone();
        (b["status"]["platforms"][0]["steps"][0]["phase"] == "Running"
            && running(&format!("sleep {nap}")) == 1)
            .then(|| b["metadata"]["name"].as_str().unwrap().to_string())
    });
    let sent = std::process::Command::new("kill")
        .args(["-INT", &build.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = build.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let (code, b) = c.client().get(&format!("{BUILDS}/{name}"));
    assert_eq!(code, 404, "the Build is deleted: {b}");
    eventually(
        "the board to kill the step",
        Duration::from_secs(60),
        || (running(&format!("sleep {nap}")) == 0).then_some(()),
    );
}
