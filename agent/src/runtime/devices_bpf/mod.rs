//! The device cgroup on cgroup v2: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE`, built here from the container's device
//! rules and attached to its cgroup directory, as runc and crun do.
//!
//! Why: libcgroups 0.7 has the v2 device controller only behind its
//! `cgroupsv2_devices` feature (which pulls `libbpf-sys`, a C build needing
//! libelf). Without it the whole `v2::devices` module is compiled out and
//! `v2::manager::Manager::apply` skips `Devices::apply`, so
//! `linux.resources.devices` is **silently ignored** on a unified host: no
//! error, no program, every device allowed (and with `CAP_MKNOD`, in
//! Docker's default set, a container could `mknod` the host's disk and
//! open it). On v1 and hybrid hosts libcgroups writes the rules to the v1
//! `devices.deny` / `devices.allow` files, so nothing is needed there.
//!
//! What the program decides is what the v1 device controller would decide
//! for the same rules, so both kinds of host behave alike. Rules become a
//! program in pure code; only the last step talks to the kernel:
//!
//! - `rules.rs`: [`container_rules`] is the spec's rules followed by the
//!   defaults libcgroups adds on v1 (`/dev/null`, `zero`, `full`, `tty`,
//!   `random`, `urandom` rwm; mknod of any char or block device; console
//!   5:1, ptmx 5:2, pts 136:*, tun 10:200 rwm), in the order libcgroups
//!   writes them. [`DeviceFilter::from_rules`] replays them the way the
//!   kernel's v1 controller does (`security/device_cgroup.c`): an `a` rule
//!   resets the default (allow or deny) and drops every exception; another
//!   rule adds an exception when it goes against the default, or takes its
//!   access bits away from the identical exception when it agrees with it.
//!   With the default deny an access is allowed when a single exception
//!   matching type, major and minor (`*` matches any) holds all the
//!   requested bits; with the default allow it is denied when a matching
//!   exception shares any bit. [`DeviceFilter::allows`] is that decision,
//!   the reference the program is tested against.
//! - `program.rs`: [`DeviceFilter::program`] compiles it: load the type
//!   (low 16 bits of `access_type`), access (high 16 bits), major and minor
//!   of `struct bpf_cgroup_dev_ctx` into r2..r5, then one block per
//!   exception (`if type != T goto next; [if access is not covered goto
//!   next;] [if major != M goto next;] [if minor != N goto next;] return
//!   verdict`), then `return default`. Instructions are encoded by [`insn`]
//!   (`insn.rs`, a few opcodes); no libbpf.
//! - `syscall.rs`, the only `unsafe` code: [`load`] (`BPF_PROG_LOAD`; on
//!   failure the verifier's log is in the error) and [`attach`]
//!   (`BPF_PROG_ATTACH`, `BPF_CGROUP_DEVICE`, `BPF_F_ALLOW_MULTI`) are raw
//!   `bpf(2)` calls. The license string is not checked for this program (it
//!   calls no GPL-only helper). The program fd is closed after attaching:
//!   the attachment keeps the program, which goes away with the cgroup.
//! - [`apply`] (here) does all of it for one cgroup.
//!
//! Kernel ≥ 4.15 with `CONFIG_CGROUP_BPF`. Programs attach to cgroup2
//! directories, and also work on a hybrid host's `/sys/fs/cgroup/unified`
//! (there on top of the v1 device controller; the tests use that). Before
//! Linux 5.11 a program is charged to `RLIMIT_MEMLOCK`: [`load`] raises it
//! for one retry on `EPERM` and restores it.

pub mod insn;
mod program;
mod rules;
mod syscall;
#[cfg(test)]
mod testing;

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxDeviceCgroup;

pub use program::{MAX_INSNS, Program};
pub use rules::{
    ACC_ALL, ACC_MKNOD, ACC_READ, ACC_WRITE, DeviceFilter, Exception, container_rules,
};
pub use syscall::{attach, load};

/// Why a device filter could not be built, loaded or attached.
#[derive(Debug, thiserror::Error)]
pub enum DeviceFilterError {
    #[error("device cgroup rule {rule:?}: {reason}")]
    InvalidRule { rule: String, reason: String },
    #[error("device filter of {insns} instructions is longer than the kernel's {MAX_INSNS}")]
    TooLong { insns: usize },
    #[error("loading the device filter (bpf BPF_PROG_LOAD) failed: {source}{}",
        if log.is_empty() { String::new() } else { format!("; verifier log:\n{log}") })]
    Load {
        #[source]
        source: io::Error,
        log: String,
    },
    #[error("opening cgroup directory {}: {source}", dir.display())]
    OpenCgroup {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("attaching the device filter to cgroup {} (bpf BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI) failed: {source}", dir.display())]
    Attach {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Builds the filter for `rules` (complete: pass [`container_rules`] for a
/// container), loads it and attaches it to `cgroup_dir`. The program's fd
/// is closed on return; the cgroup keeps the program.
pub fn apply(cgroup_dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), DeviceFilterError> {
    let program = DeviceFilter::from_rules(rules)?.program()?;
    let prog = load(&program)?;
    attach(prog.as_fd(), cgroup_dir)
}
