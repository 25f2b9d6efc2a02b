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
//! for the same rules, so both kinds of host behave alike:
//!
//! - [`container_rules`]: the spec's rules followed by the defaults
//!   libcgroups adds on v1 (`/dev/null`, `zero`, `full`, `tty`, `random`,
//!   `urandom` rwm; mknod of any char or block device; console 5:1, ptmx
//!   5:2, pts 136:*, tun 10:200 rwm), in the order libcgroups writes them.
//! - [`DeviceFilter::from_rules`] replays them the way the kernel's v1
//!   controller does (`security/device_cgroup.c`): an `a` rule resets the
//!   default (allow or deny) and drops every exception; another rule adds an
//!   exception when it goes against the default, or takes its access bits
//!   away from the identical exception when it agrees with it. With the
//!   default deny an access is allowed when a single exception matching
//!   type, major and minor (`*` matches any) holds all the requested bits;
//!   with the default allow it is denied when a matching exception shares
//!   any bit. [`DeviceFilter::allows`] is that decision, the reference the
//!   program is tested against.
//! - [`DeviceFilter::program`] compiles it: load the type (low 16 bits of
//!   `access_type`), access (high 16 bits), major and minor of
//!   `struct bpf_cgroup_dev_ctx` into r2..r5, then one block per exception
//!   (`if type != T goto next; [if access is not covered goto next;]
//!   [if major != M goto next;] [if minor != N goto next;] return verdict`),
//!   then `return default`. Instructions are encoded here (a few opcodes,
//!   [`insn`]); no libbpf.
//! - [`load`] (`BPF_PROG_LOAD`; on failure the verifier's log is in the
//!   error) and [`attach`] (`BPF_PROG_ATTACH`, `BPF_CGROUP_DEVICE`,
//!   `BPF_F_ALLOW_MULTI`) are raw `bpf(2)` calls. The license string is not
//!   checked for this program (it calls no GPL-only helper). The program
//!   fd is closed after attaching: the attachment keeps the program, which
//!   goes away with the cgroup.
//!
//! Kernel ≥ 4.15 with `CONFIG_CGROUP_BPF`. Programs attach to cgroup2
//! directories, and also work on a hybrid host's `/sys/fs/cgroup/unified`
//! (there on top of the v1 device controller; the tests use that). Before
//! Linux 5.11 a program is charged to `RLIMIT_MEMLOCK`: [`load`] raises it
//! for one retry on `EPERM` and restores it.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

use super::DeviceKind;

/// `BPF_DEVCG_ACC_MKNOD`: the `m` access.
pub const ACC_MKNOD: u8 = 1;
/// `BPF_DEVCG_ACC_READ`: the `r` access.
pub const ACC_READ: u8 = 2;
/// `BPF_DEVCG_ACC_WRITE`: the `w` access.
pub const ACC_WRITE: u8 = 4;
/// `rwm`.
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`: the type in the low 16
/// bits of `bpf_cgroup_dev_ctx.access_type`.
fn dev_type(kind: DeviceKind) -> i32 {
    match kind {
        DeviceKind::Block => 1,
        DeviceKind::Char => 2,
    }
}

// bpf(2) commands, program and attach types, flags (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// The most instructions a program may have (`BPF_MAXINSNS`; root may
/// load more on newer kernels, but no rule list here comes near it).
pub const MAX_INSNS: usize = 4096;
/// Verifier log buffer for a failed load.
const LOG_SIZE: usize = 64 * 1024;
/// License string of the program (no GPL-only helper is called).
const LICENSE: &CStr = c"Apache-2.0";
/// Program name (shown by `bpftool prog`), at most 15 bytes.
const PROG_NAME: &[u8] = b"bramble_devices";

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

// ---------------------------------------------------------------------
// Rules

/// The rules a container's device cgroup gets: `spec_rules` (the spec's
/// `linux.resources.devices`: deny-all or, privileged, allow-all, then the
/// configured devices) followed by the standard devices libcgroups allows on
/// v1, in its order (`common::default_devices` as rwm, then
/// `common::default_allow_devices`; both are private to libcgroups).
pub fn container_rules(spec_rules: &[LinuxDeviceCgroup]) -> Vec<LinuxDeviceCgroup> {
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access(access);
        if let Some(major) = major {
            b = b.major(major);
        }
        if let Some(minor) = minor {
            b = b.minor(minor);
        }
        b.build().expect("every field of a device rule is set")
    };
    use LinuxDeviceType::{B, C};
    let mut rules = spec_rules.to_vec();
    rules.extend([
        rule(C, Some(1), Some(3), "rwm"),    // null
        rule(C, Some(1), Some(5), "rwm"),    // zero
        rule(C, Some(1), Some(7), "rwm"),    // full
        rule(C, Some(5), Some(0), "rwm"),    // tty
        rule(C, Some(1), Some(9), "rwm"),    // urandom
        rule(C, Some(1), Some(8), "rwm"),    // random
        rule(C, None, None, "m"),            // mknod of any char device
        rule(B, None, None, "m"),            // mknod of any block device
        rule(C, Some(5), Some(1), "rwm"),    // console
        rule(C, Some(136), None, "rwm"),     // pts
        rule(C, Some(5), Some(2), "rwm"),    // ptmx
        rule(C, Some(10), Some(200), "rwm"), // tun
    ]);
    rules
}

/// One exception of the v1 model: a device (`None` = any major/minor) and
/// the access bits ([`ACC_READ`] ...) it allows (default deny) or denies
/// (default allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Exception {
    fn same_device(&self, other: &Exception) -> bool {
        (self.kind, self.major, self.minor) == (other.kind, other.major, other.minor)
    }

    fn matches(&self, kind: DeviceKind, major: u32, minor: u32) -> bool {
        self.kind == kind
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }
}

/// The state the v1 device controller would reach for a rule list: its
/// default and its exceptions. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Allow what no exception matches (privileged) rather than deny.
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

/// A parsed rule: `kind` `None` is the `a` (all devices) rule.
struct Rule {
    allow: bool,
    kind: Option<DeviceKind>,
    major: Option<u32>,
    minor: Option<u32>,
    access: u8,
}

fn parse_rule(rule: &LinuxDeviceCgroup) -> Result<Rule, DeviceFilterError> {
    let bad = |reason: String| DeviceFilterError::InvalidRule {
        rule: format!("{} {rule}", if rule.allow() { "allow" } else { "deny" }),
        reason,
    };
    let kind = match rule.typ() {
        None | Some(LinuxDeviceType::A) => None,
        Some(LinuxDeviceType::C) => Some(DeviceKind::Char),
        Some(LinuxDeviceType::B) => Some(DeviceKind::Block),
        // The v1 controller rejects these too (EINVAL).
        Some(other) => {
            return Err(bad(format!(
                "device type {:?} is not one of a, b, c",
                other.as_str()
            )));
        }
    };
    // Device numbers are 12 (major) and 20 (minor) bits; the program
    // compares them with sign-extended 32-bit immediates.
    let number = |n: Option<i64>, what: &str| match n {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| i32::try_from(*n).is_ok())
            .map(Some)
            .ok_or_else(|| bad(format!("{what} {n} is out of range"))),
    };
    let major = number(rule.major(), "major")?;
    let minor = number(rule.minor(), "minor")?;
    // A missing access is empty, as libcgroups writes it to the v1 files.
    let mut access = 0;
    for c in rule.access().as_deref().unwrap_or("").chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            other => return Err(bad(format!("unknown access {other:?} (not r, w, m)"))),
        };
    }
    Ok(Rule {
        allow: rule.allow(),
        kind,
        major,
        minor,
        access,
    })
}

impl DeviceFilter {
    /// Replays `rules` in order, starting (like a v1 cgroup under the root)
    /// from "allow everything".
    pub fn from_rules<'a>(
        rules: impl IntoIterator<Item = &'a LinuxDeviceCgroup>,
    ) -> Result<DeviceFilter, DeviceFilterError> {
        let mut filter = DeviceFilter {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for rule in rules {
            let rule = parse_rule(rule)?;
            let Some(kind) = rule.kind else {
                // `a`: the rest of the rule is ignored, as in the kernel.
                filter.default_allow = rule.allow;
                filter.exceptions.clear();
                continue;
            };
            let ex = Exception {
                kind,
                major: rule.major,
                minor: rule.minor,
                access: rule.access,
            };
            if rule.allow == filter.default_allow {
                filter.remove(&ex);
            } else {
                filter.add(ex);
            }
        }
        Ok(filter)
    }

    fn add(&mut self, ex: Exception) {
        if ex.access == 0 {
            return;
        }
        match self.exceptions.iter_mut().find(|e| e.same_device(&ex)) {
            Some(e) => e.access |= ex.access,
            None => self.exceptions.push(ex),
        }
    }

    fn remove(&mut self, ex: &Exception) {
        for e in self.exceptions.iter_mut().filter(|e| e.same_device(ex)) {
            e.access &= !ex.access;
        }
        self.exceptions.retain(|e| e.access != 0);
    }

    /// Whether the v1 controller in this state allows `access` (some of
    /// [`ACC_READ`], [`ACC_WRITE`], [`ACC_MKNOD`]) to the device.
    pub fn allows(&self, kind: DeviceKind, major: u32, minor: u32, access: u8) -> bool {
        let mut matching = self
            .exceptions
            .iter()
            .filter(|e| e.matches(kind, major, minor));
        if self.default_allow {
            !matching.any(|e| e.access & access != 0)
        } else {
            matching.any(|e| access & !e.access == 0)
        }
    }

    /// The `BPF_PROG_TYPE_CGROUP_DEVICE` program deciding as
    /// [`DeviceFilter::allows`] does.
    pub fn program(&self) -> Result<Program, DeviceFilterError> {
        use insn::*;
        let (r0, r1, r2, r3, r4, r5) = (0, 1, 2, 3, 4, 5);
        let mut p = vec![
            ldx_w(r2, r1, 0), // access_type
            alu32_imm(AND, r2, 0xffff),
            ldx_w(r3, r1, 0),
            alu32_imm(RSH, r3, 16),
            ldx_w(r4, r1, 4), // major
            ldx_w(r5, r1, 8), // minor
        ];
        let verdict = i32::from(!self.default_allow);
        for ex in &self.exceptions {
            // Conditional jumps to the end of the block, their targets
            // patched once its length is known.
            let mut skips = Vec::new();
            skips.push(p.len());
            p.push(jmp_imm(JNE, r2, dev_type(ex.kind), 0));
            let access = i32::from(ex.access);
            if !self.default_allow && ex.access != ACC_ALL {
                // Allow only if every requested bit is in the exception.
                p.push(mov32_reg(r0, r3));
                p.push(alu32_imm(AND, r0, access));
                skips.push(p.len());
                p.push(jmp_reg(JNE, r0, r3, 0));
            } else if self.default_allow && ex.access != ACC_ALL {
                // Deny if any requested bit is in the exception.
                p.push(mov32_reg(r0, r3));
                p.push(alu32_imm(AND, r0, access));
                skips.push(p.len());
                p.push(jmp_imm(JEQ, r0, 0, 0));
            }
            if let Some(major) = ex.major {
                skips.push(p.len());
                p.push(jmp_imm(JNE, r4, major as i32, 0));
            }
            if let Some(minor) = ex.minor {
                skips.push(p.len());
                p.push(jmp_imm(JNE, r5, minor as i32, 0));
            }
            p.push(mov32_imm(r0, verdict));
            p.push(exit());
            let end = p.len();
            for at in skips {
                let off = i16::try_from(end - at - 1)
                    .map_err(|_| DeviceFilterError::TooLong { insns: p.len() })?;
                p[at] = with_off(p[at], off);
            }
        }
        p.push(mov32_imm(r0, i32::from(self.default_allow)));
        p.push(exit());
        if p.len() > MAX_INSNS {
            return Err(DeviceFilterError::TooLong { insns: p.len() });
        }
        Ok(Program { insns: p })
    }
}

/// An assembled program: `struct bpf_insn`s as native-endian `u64` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    insns: Vec<u64>,
}

impl Program {
    /// A program assembled elsewhere (with [`insn`]).
    pub fn from_insns(insns: Vec<u64>) -> Program {
        Program { insns }
    }

    pub fn insns(&self) -> &[u64] {
        &self.insns
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
}

/// The eBPF instruction encoder: `struct bpf_insn { u8 code; u8 dst:4,
/// src:4; s16 off; s32 imm; }` as a native-endian `u64`, and the few
/// instructions the device filter needs (32-bit ALU, 64-bit jumps).
pub mod insn {
    /// `BPF_ALU` class operations (`BPF_K` immediate source).
    pub const AND: u8 = 0x50;
    pub const RSH: u8 = 0x70;
    /// `BPF_JMP` class conditions.
    pub const JEQ: u8 = 0x10;
    pub const JNE: u8 = 0x50;

    const CLASS_LDX: u8 = 0x01;
    const CLASS_ALU: u8 = 0x04;
    const CLASS_JMP: u8 = 0x05;
    const SIZE_W: u8 = 0x00;
    const MODE_MEM: u8 = 0x60;
    const SRC_X: u8 = 0x08;
    const OP_MOV: u8 = 0xb0;
    const OP_EXIT: u8 = 0x90;

    /// Encodes one instruction.
    pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
        debug_assert!(dst < 11 && src < 11);
        // Bit-fields are allocated from the low bits on little-endian
        // targets and from the high bits on big-endian ones.
        let regs = if cfg!(target_endian = "little") {
            dst | (src << 4)
        } else {
            (dst << 4) | src
        };
        let off = off.to_ne_bytes();
        let imm = imm.to_ne_bytes();
        u64::from_ne_bytes([code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3]])
    }

    /// Splits an instruction into `(code, dst, src, off, imm)`.
    pub fn decode(word: u64) -> (u8, u8, u8, i16, i32) {
        let b = word.to_ne_bytes();
        let (dst, src) = if cfg!(target_endian = "little") {
            (b[1] & 0xf, b[1] >> 4)
        } else {
            (b[1] >> 4, b[1] & 0xf)
        };
        (
            b[0],
            dst,
            src,
            i16::from_ne_bytes([b[2], b[3]]),
            i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        )
    }

    /// The same instruction with jump offset `off`.
    pub fn with_off(word: u64, off: i16) -> u64 {
        let (code, dst, src, _, imm) = decode(word);
        insn(code, dst, src, off, imm)
    }

    /// `dst = *(u32 *)(src + off)`.
    pub fn ldx_w(dst: u8, src: u8, off: i16) -> u64 {
        insn(CLASS_LDX | MODE_MEM | SIZE_W, dst, src, off, 0)
    }

    /// `dst = (u32)dst OP imm` ([`AND`], [`RSH`]).
    pub fn alu32_imm(op: u8, dst: u8, imm: i32) -> u64 {
        insn(CLASS_ALU | op, dst, 0, 0, imm)
    }

    /// `dst = (u32)src`.
    pub fn mov32_reg(dst: u8, src: u8) -> u64 {
        insn(CLASS_ALU | OP_MOV | SRC_X, dst, src, 0, 0)
    }

    /// `dst = (u32)imm`.
    pub fn mov32_imm(dst: u8, imm: i32) -> u64 {
        insn(CLASS_ALU | OP_MOV, dst, 0, 0, imm)
    }

    /// `if dst COND (s64)imm goto pc + 1 + off` ([`JEQ`], [`JNE`]).
    pub fn jmp_imm(cond: u8, dst: u8, imm: i32, off: i16) -> u64 {
        insn(CLASS_JMP | cond, dst, 0, off, imm)
    }

    /// `if dst COND src goto pc + 1 + off`.
    pub fn jmp_reg(cond: u8, dst: u8, src: u8, off: i16) -> u64 {
        insn(CLASS_JMP | cond | SRC_X, dst, src, off, 0)
    }

    /// `return r0`.
    pub fn exit() -> u64 {
        insn(CLASS_JMP | OP_EXIT, 0, 0, 0, 0)
    }
}

// ---------------------------------------------------------------------
// The kernel

/// The start of `union bpf_attr` for `BPF_PROG_LOAD` (the kernel zero-fills
/// what a shorter attr leaves out).
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// `bpf(BPF_PROG_LOAD)` of a cgroup device program; with `log`, the
/// verifier writes its log there.
#[allow(unsafe_code)]
fn sys_prog_load(insns: &[u64], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    let mut name = [0u8; 16];
    name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let (log_level, log_size, log_buf) = match log {
        Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
    };
    // SAFETY: `attr` is a fully initialized #[repr(C)] prefix of
    // `union bpf_attr`, passed with its exact size. The kernel reads
    // `insn_cnt` instructions from `insns` (a live slice of that length),
    // the NUL-terminated `license` (a static CStr), and writes at most
    // `log_size` bytes to `log_buf` (a live, exclusively borrowed slice of
    // that length, or null with size 0); all outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a successful BPF_PROG_LOAD returns a new file descriptor
    // (close-on-exec) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// `bpf(BPF_PROG_ATTACH)` of device program `prog` to cgroup `cgroup`.
#[allow(unsafe_code)]
fn sys_prog_attach(prog: BorrowedFd<'_>, cgroup: BorrowedFd<'_>) -> io::Result<()> {
    let attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attr` is a fully initialized #[repr(C)] prefix of
    // `union bpf_attr` holding only integers (two fds borrowed for the
    // call), passed with its exact size; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttachAttr,
            std::mem::size_of::<ProgAttachAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Loads `program` into the kernel (through the verifier) and returns its
/// fd. On `EPERM` with a finite `RLIMIT_MEMLOCK` (kernels before 5.11
/// charge programs to it) it retries once with the limit raised, then puts
/// the limit back; callers that fork meanwhile would pass the raised limit
/// on, so the libcontainer backend calls this under its create lock. A
/// failure carries the verifier's log.
pub fn load(program: &Program) -> Result<OwnedFd, DeviceFilterError> {
    let insns = program.insns();
    let first = match sys_prog_load(insns, None) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            with_memlock_raised(|| sys_prog_load(insns, None)).unwrap_or(Err(e))
        }
        Err(e) => Err(e),
    };
    let source = match first {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            // Not the verifier: no capability (CAP_BPF / CAP_SYS_ADMIN).
            return Err(DeviceFilterError::Load {
                source: e,
                log: String::new(),
            });
        }
        Err(e) => e,
    };
    // Rejected: once more with the verifier's log, to say why.
    let mut buf = vec![0u8; LOG_SIZE];
    let log = match sys_prog_load(insns, Some(&mut buf)) {
        Ok(fd) => return Ok(fd),
        Err(_) => {
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).trim_end().to_string()
        }
    };
    Err(DeviceFilterError::Load { source, log })
}

/// Runs `f` with `RLIMIT_MEMLOCK` raised to unlimited (or at least to its
/// hard limit), restoring it after; `None` if it is unlimited already or
/// cannot be raised.
fn with_memlock_raised<T>(f: impl FnOnce() -> T) -> Option<T> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_MEMLOCK).ok()?;
    if soft == RLIM_INFINITY {
        return None;
    }
    let raised = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY).is_ok()
        || (hard > soft && setrlimit(Resource::RLIMIT_MEMLOCK, hard, hard).is_ok());
    if !raised {
        return None;
    }
    let out = f();
    if let Err(e) = setrlimit(Resource::RLIMIT_MEMLOCK, soft, hard) {
        tracing::warn!(error = %e, "restoring RLIMIT_MEMLOCK after loading the device filter");
    }
    tracing::debug!("retried loading the device filter with RLIMIT_MEMLOCK raised");
    Some(out)
}

/// Attaches loaded device program `prog` to the cgroup2 directory
/// `cgroup_dir` (`BPF_F_ALLOW_MULTI`: programs attached above or beside it
/// still apply; a device is allowed only if all of them allow it). Fails
/// with `EPERM` if an ancestor holds a program attached without
/// `BPF_F_ALLOW_MULTI` (or `ALLOW_OVERRIDE`), which forbids more below it.
pub fn attach(prog: BorrowedFd<'_>, cgroup_dir: &Path) -> Result<(), DeviceFilterError> {
    let dir = File::open(cgroup_dir).map_err(|source| DeviceFilterError::OpenCgroup {
        dir: cgroup_dir.to_path_buf(),
        source,
    })?;
    sys_prog_attach(prog, dir.as_fd()).map_err(|source| DeviceFilterError::Attach {
        dir: cgroup_dir.to_path_buf(),
        source,
    })
}

/// Builds the filter for `rules` (complete: pass [`container_rules`] for a
/// container), loads it and attaches it to `cgroup_dir`. The program's fd
/// is closed on return; the cgroup keeps the program.
pub fn apply(cgroup_dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), DeviceFilterError> {
    let program = DeviceFilter::from_rules(rules)?.program()?;
    let prog = load(&program)?;
    attach(prog.as_fd(), cgroup_dir)
}

#[cfg(test)]
mod tests {
    use super::insn::*;
    use super::*;

    fn rule(
        allow: bool,
        typ: Option<LinuxDeviceType>,
        mm: (Option<i64>, Option<i64>),
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access(access);
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some(m) = mm.0 {
            b = b.major(m);
        }
        if let Some(m) = mm.1 {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    fn deny_all() -> LinuxDeviceCgroup {
        rule(false, None, (None, None), "rwm")
    }

    fn allow_all() -> LinuxDeviceCgroup {
        rule(true, None, (None, None), "rwm")
    }

    fn c(major: i64, minor: i64, access: &str) -> LinuxDeviceCgroup {
        rule(
            true,
            Some(LinuxDeviceType::C),
            (Some(major), Some(minor)),
            access,
        )
    }

    /// Runs a device program the way the kernel would, for the opcodes the
    /// filter uses; panics on anything else.
    fn run(p: &Program, kind: DeviceKind, major: u32, minor: u32, access: u8) -> u64 {
        let ctx = [
            (u32::from(access) << 16) | dev_type(kind) as u32,
            major,
            minor,
        ];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let (code, dst, src, off, imm) = decode(p.insns()[pc]);
            let (dst, src) = (dst as usize, src as usize);
            let simm = imm as i64 as u64;
            pc += 1;
            let jump = |taken: bool, pc: &mut usize| {
                if taken {
                    *pc = (*pc as isize + off as isize) as usize;
                }
            };
            match code {
                0x61 => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[off as usize / 4]);
                }
                0x54 => r[dst] = u64::from(r[dst] as u32 & imm as u32),
                0x74 => r[dst] = u64::from((r[dst] as u32) >> imm),
                0xbc => r[dst] = u64::from(r[src] as u32),
                0xb4 => r[dst] = u64::from(imm as u32),
                0x15 => jump(r[dst] == simm, &mut pc),
                0x55 => jump(r[dst] != simm, &mut pc),
                0x5d => jump(r[dst] != r[src], &mut pc),
                0x95 => return r[0],
                other => panic!("unexpected opcode {other:#x} at {}", pc - 1),
            }
        }
        panic!("program did not exit");
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn encodes_instructions_as_the_kernel_lays_them_out() {
        assert_eq!(exit(), 0x95);
        assert_eq!(mov32_imm(0, 1), 0x0000_0001_0000_00b4);
        // ldxw r2, [r1 + 0]: dst in the low nibble, src in the high one.
        assert_eq!(ldx_w(2, 1, 0), 0x1261);
        assert_eq!(ldx_w(5, 1, 8), 0x0008_1561);
        assert_eq!(alu32_imm(AND, 2, 0xffff), 0x0000_ffff_0000_0254);
        assert_eq!(alu32_imm(RSH, 3, 16), 0x0000_0010_0000_0374);
        assert_eq!(mov32_reg(0, 3), 0x30bc);
        assert_eq!(jmp_imm(JNE, 4, 136, 7), 0x0000_0088_0007_0455);
        assert_eq!(jmp_imm(JEQ, 0, 0, 3), 0x0003_0015);
        assert_eq!(jmp_reg(JNE, 0, 3, 2), 0x0002_305d);
        // Negative offsets and immediates keep their bits.
        assert_eq!(jmp_imm(JNE, 1, -1, -2), 0xffff_ffff_fffe_0155);
    }

    #[test]
    fn decode_inverts_insn() {
        for (code, dst, src, off, imm) in [
            (0x61, 2, 1, 0, 0),
            (0x55, 10, 0, -7, -1),
            (0x5d, 0, 9, 300, 1 << 20),
        ] {
            assert_eq!(
                decode(insn(code, dst, src, off, imm)),
                (code, dst, src, off, imm)
            );
        }
        assert_eq!(
            decode(with_off(jmp_imm(JNE, 2, 1, 0), 5)),
            (0x55, 2, 0, 5, 1)
        );
    }

    #[test]
    fn one_rule_program_layout_and_jump_offsets() {
        let f = DeviceFilter::from_rules(&[deny_all(), c(1, 5, "r")]).unwrap();
        assert_eq!(
            f,
            DeviceFilter {
                default_allow: false,
                exceptions: vec![Exception {
                    kind: DeviceKind::Char,
                    major: Some(1),
                    minor: Some(5),
                    access: ACC_READ
                }]
            }
        );
        let p = f.program().unwrap();
        let want = vec![
            ldx_w(2, 1, 0),
            alu32_imm(AND, 2, 0xffff),
            ldx_w(3, 1, 0),
            alu32_imm(RSH, 3, 16),
            ldx_w(4, 1, 4),
            ldx_w(5, 1, 8),
            // The block: every test skips to the default at 14.
            jmp_imm(JNE, 2, 2, 7),
            mov32_reg(0, 3),
            alu32_imm(AND, 0, ACC_READ as i32),
            jmp_reg(JNE, 0, 3, 4),
            jmp_imm(JNE, 4, 1, 3),
            jmp_imm(JNE, 5, 5, 2),
            mov32_imm(0, 1),
            exit(),
            mov32_imm(0, 0),
            exit(),
        ];
        assert_eq!(p.insns(), &want[..]);
        assert_eq!(run(&p, DeviceKind::Char, 1, 5, ACC_READ), 1);
        assert_eq!(run(&p, DeviceKind::Char, 1, 5, ACC_READ | ACC_WRITE), 0);
        assert_eq!(run(&p, DeviceKind::Block, 1, 5, ACC_READ), 0);
    }

    #[test]
    fn wildcards_and_rwm_leave_out_their_tests() {
        let f = DeviceFilter::from_rules(&[
            deny_all(),
            rule(true, Some(LinuxDeviceType::C), (Some(136), None), "rwm"),
        ])
        .unwrap();
        let p = f.program().unwrap();
        // Prologue 6, block (type, major, verdict) 4, default 2.
        assert_eq!(p.len(), 12);
        assert_eq!(decode(p.insns()[6]), (0x55, 2, 0, 3, 2));
        assert_eq!(decode(p.insns()[7]), (0x55, 4, 0, 2, 136));
        assert_eq!(run(&p, DeviceKind::Char, 136, 12345, ACC_ALL), 1);
        assert_eq!(run(&p, DeviceKind::Char, 135, 0, ACC_READ), 0);
    }

    #[test]
    fn privileged_allows_everything_with_no_exceptions() {
        let rules = container_rules(&[allow_all()]);
        let f = DeviceFilter::from_rules(&rules).unwrap();
        assert!(f.default_allow && f.exceptions.is_empty(), "{f:?}");
        let p = f.program().unwrap();
        assert_eq!(p.len(), 8);
        assert_eq!(run(&p, DeviceKind::Block, 8, 0, ACC_ALL), 1);
    }

    #[test]
    fn container_defaults_follow_v1() {
        let f = DeviceFilter::from_rules(&container_rules(&[deny_all(), c(89, 1, "rw")])).unwrap();
        assert!(!f.default_allow);
        let ok = |k, ma, mi, a| f.allows(k, ma, mi, a);
        use DeviceKind::{Block, Char};
        let rw = ACC_READ | ACC_WRITE;
        for (ma, mi) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
            (136, 4),
            (10, 200),
        ] {
            assert!(ok(Char, ma, mi, rw), "{ma}:{mi}");
        }
        assert!(ok(Char, 89, 1, rw));
        assert!(!ok(Char, 89, 1, ACC_ALL), "the i2c device got rw, not m");
        assert!(ok(Char, 89, 1, ACC_MKNOD), "but c *:* m allows any mknod");
        assert!(!ok(Char, 1, 11, ACC_READ), "kmsg");
        assert!(!ok(Block, 8, 0, ACC_READ));
        assert!(ok(Block, 8, 0, ACC_MKNOD));
        assert_eq!(f.exceptions.len(), 13);
    }

    #[test]
    fn v1_replay_merges_removes_and_resets() {
        use DeviceKind::Char;
        // An allow of the same device adds bits; a deny takes them away.
        let f = DeviceFilter::from_rules(&[
            deny_all(),
            c(1, 5, "r"),
            c(1, 5, "w"),
            rule(false, Some(LinuxDeviceType::C), (Some(1), Some(5)), "r"),
            c(1, 7, "r"),
            rule(false, Some(LinuxDeviceType::C), (Some(1), Some(7)), "rwm"),
        ])
        .unwrap();
        assert_eq!(f.exceptions.len(), 1);
        assert!(f.allows(Char, 1, 5, ACC_WRITE) && !f.allows(Char, 1, 5, ACC_READ));
        assert!(!f.allows(Char, 1, 7, ACC_READ));
        // A deny of one device does not punch a hole in a wildcard.
        let f = DeviceFilter::from_rules(&[
            deny_all(),
            rule(true, Some(LinuxDeviceType::C), (Some(1), None), "rwm"),
            rule(false, Some(LinuxDeviceType::C), (Some(1), Some(3)), "rwm"),
        ])
        .unwrap();
        assert!(f.allows(Char, 1, 3, ACC_READ));
        // `a` drops every exception.
        let f = DeviceFilter::from_rules(&[deny_all(), c(1, 3, "rwm"), deny_all()]).unwrap();
        assert!(f.exceptions.is_empty() && !f.allows(Char, 1, 3, ACC_READ));
        // No rules: allow all, as a v1 cgroup under the root.
        let f = DeviceFilter::from_rules(&[]).unwrap();
        assert!(f.allows(Char, 1, 1, ACC_ALL));
        // Default allow with deny exceptions: any shared bit denies.
        let f = DeviceFilter::from_rules(&[
            allow_all(),
            rule(false, Some(LinuxDeviceType::C), (Some(1), Some(1)), "w"),
        ])
        .unwrap();
        assert!(f.allows(Char, 1, 1, ACC_READ));
        assert!(!f.allows(Char, 1, 1, ACC_READ | ACC_WRITE));
    }

    #[test]
    fn program_decides_as_the_v1_model_does() {
        let rule_sets = vec![
            container_rules(&[deny_all()]),
            container_rules(&[
                deny_all(),
                c(89, 1, "rw"),
                rule(true, Some(LinuxDeviceType::B), (Some(7), Some(0)), "r"),
            ]),
            container_rules(&[allow_all()]),
            vec![deny_all(), c(1, 3, "rwm"), c(1, 5, "r")],
            vec![
                allow_all(),
                rule(false, Some(LinuxDeviceType::C), (Some(1), None), "w"),
                rule(false, Some(LinuxDeviceType::B), (None, None), "m"),
                rule(false, Some(LinuxDeviceType::C), (Some(5), Some(1)), "rwm"),
            ],
        ];
        let majors = [0, 1, 5, 7, 10, 89, 136, 200];
        let minors = [0, 1, 2, 3, 5, 7, 8, 9, 11, 200, 250];
        for rules in &rule_sets {
            let f = DeviceFilter::from_rules(rules).unwrap();
            let p = f.program().unwrap();
            for kind in [DeviceKind::Char, DeviceKind::Block] {
                for &ma in &majors {
                    for &mi in &minors {
                        for access in 1..=ACC_ALL {
                            assert_eq!(
                                run(&p, kind, ma, mi, access) == 1,
                                f.allows(kind, ma, mi, access),
                                "{kind:?} {ma}:{mi} access {access} with {f:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bad_rules_are_errors_naming_them() {
        for (r, want) in [
            (
                rule(true, Some(LinuxDeviceType::P), (None, None), "rwm"),
                "type",
            ),
            (c(1, 3, "rwx"), "access"),
            (c(-1, 3, "r"), "major"),
            (c(1, 1 << 40, "r"), "minor"),
        ] {
            let err = DeviceFilter::from_rules(&[r]).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("device cgroup rule"),
                "{err}"
            );
        }
    }

    #[test]
    fn too_many_rules_are_refused() {
        let mut rules = vec![deny_all()];
        rules.extend((0..600).map(|i| c(200, i, "r")));
        let err = DeviceFilter::from_rules(&rules)
            .unwrap()
            .program()
            .unwrap_err();
        assert!(matches!(err, DeviceFilterError::TooLong { .. }), "{err}");
    }
}
