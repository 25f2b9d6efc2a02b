//! A static probe that makes one raw syscall and prints its outcome, for
//! tests of seccomp inside containers (busybox has no `keyctl`, and its
//! `mount` or `unshare` cannot tell a seccomp refusal from a kernel one).
//! Compiled once with the `rustc` in `PATH` (static, for this machine) into
//! `target/fixtures/syscall-probe-<hash>`.
//!
//! `probe NAME` prints `NAME ok` or `NAME errno=N`, for `keyctl` (get the
//! session keyring's id), `unshare-user` (`CLONE_NEWUSER`), `mount` (all
//! arguments NULL: `EFAULT` from the kernel, `EPERM` from a filter) and
//! `clone3` (NULL arguments, size 0: `EINVAL` from the kernel).

use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = r#"
extern "C" {
    fn syscall(n: i64, ...) -> i64;
    fn __errno_location() -> *mut i32;
}
#[cfg(target_arch = "x86_64")]
const NR: (i64, i64, i64, i64) = (250, 272, 165, 435);
#[cfg(target_arch = "aarch64")]
const NR: (i64, i64, i64, i64) = (219, 97, 40, 435);
fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    let (keyctl, unshare, mount, clone3) = NR;
    let r = unsafe {
        match what.as_str() {
            "keyctl" => syscall(keyctl, 0i64, -3i64, 0i64),
            "unshare-user" => syscall(unshare, 0x1000_0000i64),
            "mount" => syscall(mount, 0i64, 0i64, 0i64, 0i64, 0i64),
            "clone3" => syscall(clone3, 0i64, 0i64),
            _ => {
                eprintln!("unknown probe {what:?}");
                std::process::exit(2)
            }
        }
    };
    if r < 0 {
        println!("{what} errno={}", unsafe { *__errno_location() });
    } else {
        println!("{what} ok");
    }
}
"#;

/// The probe binary, built on first use.
pub fn probe() -> Result<PathBuf, String> {
    let hash = SOURCE.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let dir = crate::workspace_root().join("target/fixtures");
    let out = dir.join(format!("syscall-probe-{hash:016x}"));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = dir.join(format!("syscall-probe.tmp{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let src = tmp.join("probe.rs");
    std::fs::write(&src, SOURCE).map_err(|e| format!("writing {}: {e}", src.display()))?;
    let bin = tmp.join("probe");
    let status = Command::new("rustc")
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-o",
        ])
        .arg(&bin)
        .arg(&src)
        .status()
        .map_err(|e| format!("running rustc: {e}"))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!("rustc failed building the syscall probe: {status}"));
    }
    std::fs::rename(&bin, &out).map_err(|e| format!("moving the probe into place: {e}"))?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(out)
}
