//! Build steps in real containers (root): a `RUN` on the busybox fixture's
//! layers changes files, its upper directory becomes a layer
//! (`bramble_images::layer_diff`) that the safe unpacker unpacks, and a
//! second step stacked on it sees the change; a failing step reports its
//! exit code; a step past its timeout is killed; a working directory
//! through symlinks is made inside the image (an absolute link to a
//! directory of the board is taken from the image's root, and makes
//! nothing on the board). Nothing is left mounted or running.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use bramble_agent::build::step::{Step, StepError, run_step};
use bramble_agent::runtime::ExitStatus;
use bramble_images::layer_diff::{DiffOptions, write_layer};
use bramble_images::unpack::{Compression, UnpackOptions, unpack_layer};
use common::{Sandbox, image, mounts_under};

fn step(sb: &Sandbox, name: &str, layers: &[PathBuf], script: &str) -> Step {
    Step {
        id: sb.id(name),
        layers: layers.to_vec(),
        dir: sb.dir().join(name),
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/bin".into(), "GREETING=built".into()],
        cwd: "/app".into(),
        uid: 0,
        user: None,
        gid: 0,
        log: sb.dir().join(format!("{name}.log")),
        timeout: None,
        cancel: None,
        network: None,
        mounts: Vec::new(),
    }
}

#[test]
fn a_run_step_becomes_a_layer_the_next_step_sees() {
    let sb = Sandbox::new("build-step");
    let base: Vec<PathBuf> = image().layers.clone();
    let first = step(
        &sb,
        "one",
        &base,
        "echo $GREETING in $(pwd) > note.txt && rm /bin/true && hostname",
    );
    let out = run_step(&*sb.runtime, &first).unwrap();
    assert_eq!(out.exit, Some(ExitStatus::Code(0)));
    assert_eq!(
        std::fs::read_to_string(&first.log).unwrap(),
        "buildkitsandbox\n"
    );
    assert!(
        mounts_under(sb.dir()).is_empty(),
        "{:?}",
        mounts_under(sb.dir())
    );

    let mut blob = Vec::new();
    let info = write_layer(&out.upper, &mut blob, &DiffOptions::default()).unwrap();
    let layer = sb.dir().join("layer-one");
    unpack_layer(
        blob.as_slice(),
        Compression::Gzip,
        &layer,
        &info.diff_id,
        &UnpackOptions::default(),
    )
    .unwrap();
    let mut stacked = base.clone();
    stacked.push(layer);
    let second = step(
        &sb,
        "two",
        &stacked,
        "cat /app/note.txt; if [ -e /bin/true ]; then echo true-still-there; fi",
    );
    let out = run_step(&*sb.runtime, &second).unwrap();
    assert_eq!(out.exit, Some(ExitStatus::Code(0)));
    assert_eq!(
        std::fs::read_to_string(&second.log).unwrap(),
        "built in /app\n"
    );
}

#[test]
fn a_failing_step_reports_its_code_and_a_slow_one_is_killed() {
    let sb = Sandbox::new("build-fail");
    let base: Vec<PathBuf> = image().layers.clone();
    let failing = step(&sb, "fail", &base, "echo oops; exit 3");
    let out = run_step(&*sb.runtime, &failing).unwrap();
    assert_eq!(out.exit, Some(ExitStatus::Code(3)));
    assert_eq!(std::fs::read_to_string(&failing.log).unwrap(), "oops\n");

    let mut slow = step(&sb, "slow", &base, "sleep 600");
    slow.timeout = Some(Duration::from_millis(300));
    let out = run_step(&*sb.runtime, &slow).unwrap();
    assert_eq!(out.exit, None, "killed after its timeout");
    assert!(
        mounts_under(sb.dir()).is_empty(),
        "{:?}",
        mounts_under(sb.dir())
    );

    // A cancelled step (its Build deleted) is killed, timeout or not.
    let mut cancelled = step(&sb, "cancelled", &base, "sleep 600");
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    cancelled.cancel = Some(flag.clone());
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let out = run_step(&*sb.runtime, &cancelled).unwrap();
    setter.join().unwrap();
    assert_eq!(out.exit, None, "killed when cancelled");
    assert!(
        mounts_under(sb.dir()).is_empty(),
        "{:?}",
        mounts_under(sb.dir())
    );
}

#[test]
fn a_workdir_through_symlinks_stays_in_the_image() {
    let sb = Sandbox::new("build-workdir");
    let outside = sb.dir().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // A layer whose /app points at a directory of the board, by its
    // absolute path, and whose /var/run points at /run as images have it.
    let links = sb.dir().join("links-layer");
    std::fs::create_dir_all(links.join("var")).unwrap();
    std::os::unix::fs::symlink(&outside, links.join("app")).unwrap();
    std::os::unix::fs::symlink("/run", links.join("var/run")).unwrap();
    std::fs::create_dir_all(links.join("run")).unwrap();
    let mut layers: Vec<PathBuf> = image().layers.clone();
    layers.push(links);

    // The link's target is taken from the image's root, where it does not
    // exist: refused, and nothing made on the board.
    let mut s = step(&sb, "escape", &layers, "pwd");
    s.cwd = "/app/made".into();
    let err = run_step(&*sb.runtime, &s).unwrap_err();
    assert!(matches!(err, StepError::Workdir { .. }), "{err}");
    assert!(
        !outside.join("made").exists(),
        "a directory was made outside the image"
    );

    let mut s = step(&sb, "varrun", &layers, "pwd");
    s.cwd = "/var/run/app".into();
    let out = run_step(&*sb.runtime, &s).unwrap();
    assert_eq!(out.exit, Some(ExitStatus::Code(0)));
    assert!(out.upper.join("run/app").is_dir());
    // The process starts in the directory the link names.
    assert_eq!(std::fs::read_to_string(&s.log).unwrap(), "/run/app\n");
    assert!(
        mounts_under(sb.dir()).is_empty(),
        "{:?}",
        mounts_under(sb.dir())
    );
}
