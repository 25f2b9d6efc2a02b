//! Test helpers shared by the unit tests of `rules.rs` and `program.rs`:
//! device rule builders, and an interpreter that runs a device program the
//! way the kernel would, so the program's decisions can be compared with
//! the rule model's.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

use super::Program;
use super::insn::decode;
use super::program::dev_type;
use crate::runtime::DeviceKind;

pub(super) fn rule(
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

pub(super) fn deny_all() -> LinuxDeviceCgroup {
    rule(false, None, (None, None), "rwm")
}

pub(super) fn allow_all() -> LinuxDeviceCgroup {
    rule(true, None, (None, None), "rwm")
}

/// An allow rule for character device `major:minor`.
pub(super) fn c(major: i64, minor: i64, access: &str) -> LinuxDeviceCgroup {
    rule(
        true,
        Some(LinuxDeviceType::C),
        (Some(major), Some(minor)),
        access,
    )
}

/// Runs a device program the way the kernel would, for the opcodes the
/// filter uses; panics on anything else.
pub(super) fn run(p: &Program, kind: DeviceKind, major: u32, minor: u32, access: u8) -> u64 {
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
