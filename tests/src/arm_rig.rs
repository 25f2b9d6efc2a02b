//! An emulated ARM board for end-to-end tests: a pinned Debian kernel and
//! `busybox-static` booted with `qemu-system-aarch64` or `qemu-system-arm`
//! (TCG, no KVM needed), user networking (the guest reaches this machine's
//! loopback at [`HOST_FROM_GUEST`]) and a 9p share through which the test
//! hands the board its binaries and the script `/init` runs. See
//! `docs/arm.md`.
//!
//! - [`fetch`]: the kernel, busybox, `nftables` (and on armv7 `runc`)
//!   packages (`apt-get download`), kept in a machine-wide cache
//!   ([`cache_root`]) between runs;
//! - [`initramfs`]: the `/init` and the newc archive (busybox, `nft` and
//!   `runc` with their libraries, the modules a node needs, loaded in
//!   dependency order);
//! - [`board`]: [`ArmBoard`], one running QEMU with its console log, killed
//!   on drop and by a watchdog.
//!
//! The agent for the guest is built by the caller, never by the rig:
//! [`agent_binary`] says which command builds it when it is missing or
//! older than the sources; [`agent_script`] is the guest script that runs it.

use std::path::{Path, PathBuf};

pub mod board;
pub mod fetch;
pub mod initramfs;

pub use board::{ArmBoard, BoardConfig, CONSOLE_MARKER};
pub use fetch::{Kit, cache_root, kit};

/// This machine as the guest sees it (QEMU user networking): a connection
/// to `10.0.2.2:PORT` reaches `127.0.0.1:PORT` here.
pub const HOST_FROM_GUEST: &str = "10.0.2.2";
/// The guest's own address on its user network.
pub const GUEST_IP: &str = "10.0.2.15";

/// The pinned Debian kernel: package ABI name and exact version. The
/// mirror drops old ABIs some weeks after a newer point release or security
/// upload; to bump, pick the newest from
/// `apt-cache policy 'linux-image-6.1.0-*-arm64:arm64'` (prefer one from
/// the `bookworm/main` suite, which stays longest), set both constants (the
/// armhf `armmp-lpae` flavour shares the ABI), and run `tests/tests/arm.rs`:
/// the cache directory is keyed by them, so the new kernel is fetched once.
pub const KERNEL_ABI: &str = "6.1.0-50";
/// See [`KERNEL_ABI`].
pub const KERNEL_VERSION: &str = "6.1.176-1";

/// A board's CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// 64-bit ARM (Raspberry Pi 3/4/5 with a 64-bit OS): `-M virt -cpu max`.
    Arm64,
    /// 32-bit ARMv7 (Raspberry Pi OS 32-bit): `-M virt -cpu cortex-a7`, the
    /// `armmp-lpae` kernel, armhf busybox, and Debian's armhf `runc`: the
    /// 32-bit agent has no libcontainer (0.7 does not compile for 32-bit
    /// ARM) and runs containers with the OCI runtime binary it finds in
    /// `PATH`.
    Armv7,
}

impl Arch {
    /// Debian's architecture name (`dpkg --add-architecture` it first).
    pub fn debian(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::Armv7 => "armhf",
        }
    }

    /// The kernel flavour of the pinned ABI.
    pub fn kernel_flavour(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::Armv7 => "armmp-lpae",
        }
    }

    /// `6.1.0-50-arm64`: the directory name under `/lib/modules`.
    pub fn kernel_release(self) -> String {
        format!("{KERNEL_ABI}-{}", self.kernel_flavour())
    }

    /// The kernel package name (without architecture and version).
    pub fn kernel_package(self) -> String {
        format!("linux-image-{}", self.kernel_release())
    }

    /// The QEMU system emulator (Debian `qemu-system-arm` has both).
    pub fn qemu(self) -> &'static str {
        match self {
            Arch::Arm64 => "qemu-system-aarch64",
            Arch::Armv7 => "qemu-system-arm",
        }
    }

    /// The Rust target the guest's agent is built for.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::Arm64 => "aarch64-unknown-linux-musl",
            Arch::Armv7 => "armv7-unknown-linux-gnueabihf",
        }
    }

    /// What `uname -m` prints in the guest.
    pub fn uname_m(self) -> &'static str {
        match self {
            Arch::Arm64 => "aarch64",
            Arch::Armv7 => "armv7l",
        }
    }

    /// The OCI / Kubernetes architecture (`kubernetes.io/arch`).
    pub fn oci(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::Armv7 => "arm",
        }
    }
}

/// The cargo target directory this test binary was built in.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

/// The command that builds the guest's agent.
pub fn agent_build_command(arch: Arch) -> String {
    format!(
        "cargo build --profile agent --target {} -p bramble-agent",
        arch.rust_target()
    )
}

/// Set to `1` to boot an agent binary older than the sources (with a
/// warning) instead of failing.
pub const STALE_AGENT_ENV: &str = "BRAMBLE_ARM_ALLOW_STALE_AGENT";

/// The release `bramble-agent` for `arch`, built with the agent's profile
/// (`target/<triple>/agent/bramble-agent`). An error naming the build
/// command when it is missing, older than a source file it was built from
/// (cargo's `bramble-agent.d` next to it lists them), or built from another
/// checkout sharing this target directory — unless [`STALE_AGENT_ENV`] is
/// `1`, which only warns.
pub fn agent_binary(arch: Arch) -> Result<PathBuf, String> {
    let path = target_dir()
        .join(arch.rust_target())
        .join("agent/bramble-agent");
    let build = agent_build_command(arch);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|_| {
            format!(
                "{} is missing: build the guest's agent first with `{build}` (~10 min clean)",
                path.display()
            )
        })?;
    let root = crate::workspace_root();
    let sources = match std::fs::read_to_string(path.with_extension("d")) {
        Ok(dep_info) => dep_info_sources(&dep_info),
        // No dep-info: the sources of the agent's workspace crates.
        Err(_) => {
            let mut files = Vec::new();
            for krate in ["agent", "api", "net", "dns", "images"] {
                walk(&root.join(krate).join("src"), &mut |p| {
                    files.push(p.to_path_buf())
                });
            }
            files
        }
    };
    let problem = if let Some(other) = sources.iter().find(|p| !p.starts_with(&root)) {
        Some(format!(
            "{} was built from another checkout ({}), not {}: rebuild it here with `{build}`",
            path.display(),
            other.display(),
            root.display()
        ))
    } else {
        sources
            .iter()
            .find(|src| {
                std::fs::metadata(src)
                    .and_then(|m| m.modified())
                    .map_or(true, |t| t > built)
            })
            .map(|src| {
                format!(
                    "{} is older than {}: rebuild it with `{build}`",
                    path.display(),
                    src.display()
                )
            })
    };
    match problem {
        None => Ok(path),
        Some(msg) if std::env::var(STALE_AGENT_ENV).as_deref() == Ok("1") => {
            eprintln!("warning: {msg} ({STALE_AGENT_ENV}=1: booting it anyway)");
            Ok(path)
        }
        Some(msg) => Err(format!(
            "{msg} (or set {STALE_AGENT_ENV}=1 to boot it anyway)"
        )),
    }
}

/// The prerequisites in a Makefile-style dep-info file (`target: a b\ c`).
fn dep_info_sources(dep_info: &str) -> Vec<PathBuf> {
    let Some(line) = dep_info.lines().next() else {
        return Vec::new();
    };
    let Some((_, deps)) = line.split_once(": ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = deps.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            ' ' => {
                if !cur.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut cur)));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(PathBuf::from(cur));
    }
    out
}

fn walk(dir: &Path, f: &mut impl FnMut(&Path)) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

/// `s` quoted for the guest's `sh`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A guest script that copies `bramble-agent` from the share to
/// `/usr/local/bin`, prints `BRAMBLE-RIG: agent start`, and runs it with
/// `args` (logging at `info` to the console) until it exits.
pub fn agent_script(args: &[String]) -> String {
    let args: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
    format!(
        "mkdir -p /usr/local/bin /var/lib/bramble-agent\n\
         cp /mnt/share/bramble-agent /usr/local/bin/bramble-agent\n\
         echo \"{CONSOLE_MARKER} agent start\"\n\
         BRAMBLE_LOG=info /usr/local/bin/bramble-agent {} 2>&1\n\
         echo \"{CONSOLE_MARKER} agent exit $?\"\n",
        args.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_lists_prerequisites_with_escaped_spaces() {
        let d =
            "/t/bramble-agent: /w/agent/src/main.rs /w/my\\ dir/lib.rs\n\n/w/agent/src/main.rs:\n";
        assert_eq!(
            dep_info_sources(d),
            [
                PathBuf::from("/w/agent/src/main.rs"),
                PathBuf::from("/w/my dir/lib.rs")
            ]
        );
    }
}
