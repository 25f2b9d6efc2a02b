//! The cgroup v2 device filter (`runtime::devices_bpf`) against the kernel:
//! programs built from device rules pass the verifier, attach to a cgroup2
//! directory, and decide what a process in that cgroup may open or mknod.
//!
//! Each test makes its own cgroup under the host's cgroup2 mount (on this
//! hybrid host `/sys/fs/cgroup/unified`; `/sys/fs/cgroup` on a unified one),
//! runs a shell there that tries the devices, and runs the same script
//! outside as a control (so an error seen inside is the filter's doing).
//! The child is moved in by writing its pid to `cgroup.procs` while it
//! waits on stdin. Cgroup and child are removed on drop, also after a
//! failed assertion. Needs root (fails without it); skipped (with a message)
//! where cgroup2 is not mounted.
//!
//! The last test runs the runtime suite's device cases against the
//! libcontainer backend on a unified host: on a hybrid host like this one
//! in a private mount namespace with the cgroup2 hierarchy mounted at
//! `/sys/fs/cgroup`, which libcgroups (it looks at that path's filesystem
//! type) and the agent then take for a unified host. There libcgroups
//! ignores device rules and the process's v1 device cgroup is the root's,
//! so only the agent's filter denies anything.

mod common;
#[allow(dead_code, unused_macros, unused_imports)]
mod runtime_suite;

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bramble_agent::runtime::cgroup::CgroupLayout;
use bramble_agent::runtime::devices_bpf::{self, DeviceFilter, DeviceFilterError, Program, insn};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

const EPERM: &str = "Operation not permitted";

/// The cgroup2 mount point, if any (`/proc/self/mountinfo`, field 5 is the
/// mount point, the filesystem type follows the ` - `).
fn cgroup2_root() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next() == Some("cgroup2"))
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// The cgroup2 root when this test can run, else `None` after saying why
/// (fails without root).
fn setup(test: &str) -> Option<PathBuf> {
    bramble_tests::require_root("cgroups and BPF device filters");
    let root = cgroup2_root();
    if root.is_none() {
        eprintln!("{test}: skipped, no cgroup2 mount");
    }
    root
}

/// A cgroup of its own; removed on drop (after its processes are gone).
struct TestCgroup {
    dir: PathBuf,
}

impl TestCgroup {
    fn create(root: &Path, test: &str) -> TestCgroup {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = root.join(format!(
            "bramble-devtest-{test}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        TestCgroup { dir }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        eprintln!("could not remove test cgroup {}", self.dir.display());
    }
}

/// A child killed and reaped on drop unless it was waited for.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Tries each device access in `$1`'s directory (which holds `blk`, a
/// block node 42:0 no driver has) once stdin has a line, printing
/// `NAME ok` or `NAME err MESSAGE`.
const SCRIPT: &str = r#"
read go || exit 1
D=$1
t() { name=$1; shift; if out=$( (eval "$*") 2>&1 ); then echo "$name ok"; else echo "$name err $out"; fi; }
t null_rw 'true <>/dev/null'
t zero_r 'true </dev/zero'
t zero_w 'true >/dev/zero'
t full_r 'true </dev/full'
t random_r 'true </dev/random'
t urandom_r 'true </dev/urandom'
t tty_rw 'true <>/dev/tty'
t ptmx_rw 'true <>/dev/ptmx'
t kmsg_r 'true </dev/kmsg'
t blk_r "true <$D/blk"
t blk_mknod "mknod $D/blk2 b 42 1"
t null_mknod "mknod $D/null2 c 1 3"
t kmsg_mknod "mknod $D/kmsg2 c 1 11"
"#;

/// Runs [`SCRIPT`] in a fresh directory, moved into `cgroup` first (if
/// any); its results by name.
fn try_devices(cgroup: Option<&Path>) -> HashMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("mknod")
        .arg(dir.path().join("blk"))
        .args(["b", "42", "0"])
        .status()
        .unwrap();
    assert!(status.success(), "mknod of the test block node");
    let child = Command::new("/bin/sh")
        .args(["-c", SCRIPT, "sh"])
        .arg(dir.path())
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut running = Running(Some(child));
    let child = running.0.as_mut().unwrap();
    if let Some(cg) = cgroup {
        std::fs::write(cg.join("cgroup.procs"), child.id().to_string())
            .unwrap_or_else(|e| panic!("moving the child into {}: {e}", cg.display()));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let out = running.0.take().unwrap().wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, rest)| (name.to_string(), rest.to_string()))
        .collect()
}

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: i64,
    minor: i64,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access);
    if let Some(typ) = typ {
        b = b.typ(typ).major(major).minor(minor);
    }
    b.build().unwrap()
}

fn deny_all() -> LinuxDeviceCgroup {
    rule(false, None, 0, 0, "rwm")
}

fn allow_all() -> LinuxDeviceCgroup {
    rule(true, None, 0, 0, "rwm")
}

fn allow_char(major: i64, minor: i64, access: &str) -> LinuxDeviceCgroup {
    rule(true, Some(LinuxDeviceType::C), major, minor, access)
}

/// Asserts `name` succeeded (`"ok"`) or failed with a message containing
/// `want`.
fn expect(results: &HashMap<String, String>, name: &str, want: &str) {
    let got = results
        .get(name)
        .unwrap_or_else(|| panic!("no result for {name}: {results:?}"));
    if want == "ok" {
        assert_eq!(got, "ok", "{name}: {results:?}");
    } else {
        assert!(
            got.starts_with("err") && got.contains(want),
            "{name}: want an error with {want:?}, got {got:?}"
        );
    }
}

/// What every script run outside any filter shows on this host: the
/// denials inside are the filter's.
fn control() -> HashMap<String, String> {
    let out = try_devices(None);
    for name in ["null_rw", "zero_r", "zero_w", "full_r", "kmsg_r", "ptmx_rw"] {
        expect(&out, name, "ok");
    }
    for name in ["blk_mknod", "null_mknod", "kmsg_mknod"] {
        expect(&out, name, "ok");
    }
    // No driver for 42:0: the open gets past the device checks.
    expect(&out, "blk_r", "No such device or address");
    out
}

#[test]
fn filter_allows_only_the_listed_devices_and_access() {
    let Some(root) = setup("filter_allows_only_the_listed_devices_and_access") else {
        return;
    };
    control();
    let cg = TestCgroup::create(&root, "listed");
    let rules = [deny_all(), allow_char(1, 3, "rwm"), allow_char(1, 5, "r")];
    devices_bpf::apply(&cg.dir, &rules).unwrap();
    let out = try_devices(Some(&cg.dir));
    expect(&out, "null_rw", "ok");
    expect(&out, "zero_r", "ok");
    expect(&out, "zero_w", EPERM);
    expect(&out, "full_r", EPERM);
    expect(&out, "kmsg_r", EPERM);
    expect(&out, "blk_r", EPERM);
    expect(&out, "blk_mknod", EPERM);
    expect(&out, "null_mknod", "ok");
    expect(&out, "kmsg_mknod", EPERM);
}

#[test]
fn container_defaults_allow_the_standard_devices_only() {
    let Some(root) = setup("container_defaults_allow_the_standard_devices_only") else {
        return;
    };
    let cg = TestCgroup::create(&root, "defaults");
    devices_bpf::apply(&cg.dir, &devices_bpf::container_rules(&[deny_all()])).unwrap();
    let out = try_devices(Some(&cg.dir));
    for name in [
        "null_rw",
        "zero_r",
        "zero_w",
        "full_r",
        "random_r",
        "urandom_r",
    ] {
        expect(&out, name, "ok");
    }
    expect(&out, "ptmx_rw", "ok");
    // Allowed, then refused by the tty driver (no controlling terminal).
    expect(&out, "tty_rw", "No such device or address");
    expect(&out, "kmsg_r", EPERM);
    expect(&out, "blk_r", EPERM);
    // `b *:* m` and `c *:* m`, as on v1: nodes may be made, not opened.
    expect(&out, "blk_mknod", "ok");
    expect(&out, "kmsg_mknod", "ok");
}

#[test]
fn privileged_allows_every_device() {
    let Some(root) = setup("privileged_allows_every_device") else {
        return;
    };
    let cg = TestCgroup::create(&root, "privileged");
    devices_bpf::apply(&cg.dir, &devices_bpf::container_rules(&[allow_all()])).unwrap();
    let out = try_devices(Some(&cg.dir));
    for name in ["null_rw", "zero_w", "full_r", "kmsg_r", "ptmx_rw"] {
        expect(&out, name, "ok");
    }
    expect(&out, "blk_r", "No such device or address");
    expect(&out, "blk_mknod", "ok");
}

#[test]
fn large_rule_sets_pass_the_verifier() {
    if setup("large_rule_sets_pass_the_verifier").is_none() {
        return;
    }
    let mut rules = devices_bpf::container_rules(&[deny_all()]);
    rules.extend((0..400).map(|i| allow_char(200, i, if i % 2 == 0 { "r" } else { "rwm" })));
    let program = DeviceFilter::from_rules(&rules).unwrap().program().unwrap();
    assert!(program.len() > 2000, "{}", program.len());
    devices_bpf::load(&program).unwrap();
}

#[test]
fn a_rejected_program_reports_the_verifier_log() {
    if setup("a_rejected_program_reports_the_verifier_log").is_none() {
        return;
    }
    // `exit` with r0 never written.
    let program = Program::from_insns(vec![insn::exit()]);
    let err = devices_bpf::load(&program).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DeviceFilterError::Load { .. }), "{err:?}");
    assert!(
        msg.contains("BPF_PROG_LOAD") && msg.contains("verifier log") && msg.contains("R0"),
        "{msg}"
    );
}

#[test]
fn attaching_to_a_plain_directory_fails_naming_it() {
    if setup("attaching_to_a_plain_directory_fails_naming_it").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = DeviceFilter::from_rules(&[deny_all()])
        .unwrap()
        .program()
        .unwrap();
    let prog = devices_bpf::load(&program).unwrap();
    let err = devices_bpf::attach(prog.as_fd(), dir.path()).unwrap_err();
    assert!(matches!(err, DeviceFilterError::Attach { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

#[test]
fn libcontainer_backend_filters_devices_on_a_unified_host() {
    let Some(root) = setup("libcontainer_backend_filters_devices_on_a_unified_host") else {
        return;
    };
    if root == Path::new("/sys/fs/cgroup") {
        unified_host_device_suite();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" --exact --ignored \
             --test-threads 1 --nocapture unified_host_device_suite",
        )
        .arg(&exe)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

#[test]
#[ignore = "run by libcontainer_backend_filters_devices_on_a_unified_host (in a mount namespace \
            with cgroup2 at /sys/fs/cgroup)"]
fn unified_host_device_suite() {
    let layout = CgroupLayout::detect().unwrap();
    if !layout.v2 {
        eprintln!("unified_host_device_suite: skipped, /sys/fs/cgroup is not cgroup2 here");
        return;
    }
    runtime_suite::listed_devices_are_usable_and_others_denied(common::Backend::Libcontainer);
    runtime_suite::privileged_has_all_capabilities_devices_and_a_writable_sys(
        common::Backend::Libcontainer,
    );
}
