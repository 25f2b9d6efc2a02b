//! The syscall half of the device filter: `bpf(2)` `BPF_PROG_LOAD` of an
//! assembled [`Program`] and `BPF_PROG_ATTACH` of the loaded program to a
//! cgroup directory. The only `unsafe` code of `devices_bpf` is here (the two
//! raw `bpf(2)` calls and taking ownership of the fd a load returns).
//!
//! [`load`] retries once with `RLIMIT_MEMLOCK` raised on `EPERM` (kernels
//! before 5.11 charge programs to it) and, when the verifier rejects the
//! program, loads it once more with a log buffer so the error carries the
//! verifier's log. [`attach`] uses `BPF_F_ALLOW_MULTI`.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::{DeviceFilterError, Program};

// bpf(2) commands, program and attach types, flags (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// Verifier log buffer for a failed load.
const LOG_SIZE: usize = 64 * 1024;
/// License string of the program (no GPL-only helper is called).
const LICENSE: &CStr = c"Apache-2.0";
/// Program name (shown by `bpftool prog`), at most 15 bytes.
const PROG_NAME: &[u8] = b"bramble_devices";

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
