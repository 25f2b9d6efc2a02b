//! The compiler from the rule model to a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program ([`DeviceFilter::program`]), deciding as
//! [`DeviceFilter::allows`] does. Pure: the result is a [`Program`] (a list
//! of encoded instructions, see [`insn`](super::insn)) that `syscall.rs`
//! loads.
//!
//! Layout: load the type (low 16 bits of `access_type`), access (high 16
//! bits), major and minor of `struct bpf_cgroup_dev_ctx` into r2..r5, then
//! one block per exception, in order (`if type != T goto next; [if access is
//! not covered goto next;] [if major != M goto next;] [if minor != N goto
//! next;] return verdict`), then `return default`. An exception holding all
//! of `rwm` has no access test, a wildcard major or minor no test for it.
//! The access test differs with the default: with the default deny the
//! block matches when every requested bit is in the exception; with the
//! default allow, when any is.

use super::DeviceFilterError;
use super::insn;
use super::rules::{ACC_ALL, DeviceFilter};
use crate::runtime::DeviceKind;

/// The most instructions a program may have (`BPF_MAXINSNS`; root may
/// load more on newer kernels, but no rule list here comes near it).
pub const MAX_INSNS: usize = 4096;

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`: the type in the low 16
/// bits of `bpf_cgroup_dev_ctx.access_type`.
pub(super) fn dev_type(kind: DeviceKind) -> i32 {
    match kind {
        DeviceKind::Block => 1,
        DeviceKind::Char => 2,
    }
}

impl DeviceFilter {
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

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxDeviceType;

    use super::super::insn::*;
    use super::super::rules::{ACC_MKNOD, ACC_READ, ACC_WRITE, Exception, container_rules};
    use super::super::testing::{allow_all, c, deny_all, rule, run};
    use super::*;

    /// The six instructions every program starts with: r2 = type, r3 =
    /// access, r4 = major, r5 = minor.
    fn prologue() -> Vec<u64> {
        vec![
            ldx_w(2, 1, 0),
            alu32_imm(AND, 2, 0xffff),
            ldx_w(3, 1, 0),
            alu32_imm(RSH, 3, 16),
            ldx_w(4, 1, 4),
            ldx_w(5, 1, 8),
        ]
    }

    fn program(rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Program {
        DeviceFilter::from_rules(rules).unwrap().program().unwrap()
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
    fn deny_all_is_the_prologue_and_return_zero() {
        let p = program(&[deny_all()]);
        let mut want = prologue();
        want.extend([mov32_imm(0, 0), exit()]);
        assert_eq!(p.insns(), &want[..]);
        for kind in [DeviceKind::Char, DeviceKind::Block] {
            assert_eq!(run(&p, kind, 1, 3, ACC_READ), 0);
            assert_eq!(run(&p, kind, 0, 0, ACC_MKNOD), 0);
        }
    }

    #[test]
    fn blocks_follow_exception_order_each_skipping_to_the_next() {
        let p = program(&[
            deny_all(),
            rule(true, Some(LinuxDeviceType::B), (Some(7), Some(0)), "rwm"),
            c(1, 3, "rw"),
        ]);
        let mut want = prologue();
        want.extend([
            // b 7:0 rwm at 6..11: type 1 (block), no access test.
            jmp_imm(JNE, 2, 1, 4),
            jmp_imm(JNE, 4, 7, 3),
            jmp_imm(JNE, 5, 0, 2),
            mov32_imm(0, 1),
            exit(),
            // c 1:3 rw at 11..19: every requested bit must be r or w.
            jmp_imm(JNE, 2, 2, 7),
            mov32_reg(0, 3),
            alu32_imm(AND, 0, i32::from(ACC_READ | ACC_WRITE)),
            jmp_reg(JNE, 0, 3, 4),
            jmp_imm(JNE, 4, 1, 3),
            jmp_imm(JNE, 5, 3, 2),
            mov32_imm(0, 1),
            exit(),
            // Default deny.
            mov32_imm(0, 0),
            exit(),
        ]);
        assert_eq!(p.insns(), &want[..]);
        assert_eq!(run(&p, DeviceKind::Block, 7, 0, ACC_MKNOD), 1);
        assert_eq!(run(&p, DeviceKind::Char, 1, 3, ACC_READ | ACC_WRITE), 1);
        assert_eq!(run(&p, DeviceKind::Char, 1, 3, ACC_MKNOD), 0);
        assert_eq!(run(&p, DeviceKind::Char, 7, 0, ACC_READ), 0);
        assert_eq!(run(&p, DeviceKind::Block, 1, 3, ACC_READ), 0);
    }

    #[test]
    fn default_allow_blocks_deny_on_any_shared_bit() {
        let p = program(&[
            allow_all(),
            rule(false, Some(LinuxDeviceType::C), (Some(1), None), "w"),
        ]);
        let mut want = prologue();
        want.extend([
            jmp_imm(JNE, 2, 2, 6),
            mov32_reg(0, 3),
            alu32_imm(AND, 0, i32::from(ACC_WRITE)),
            // No requested bit in the exception: not this block.
            jmp_imm(JEQ, 0, 0, 3),
            jmp_imm(JNE, 4, 1, 2),
            mov32_imm(0, 0),
            exit(),
            // Default allow.
            mov32_imm(0, 1),
            exit(),
        ]);
        assert_eq!(p.insns(), &want[..]);
        assert_eq!(run(&p, DeviceKind::Char, 1, 9, ACC_READ | ACC_WRITE), 0);
        assert_eq!(run(&p, DeviceKind::Char, 1, 9, ACC_READ | ACC_MKNOD), 1);
        assert_eq!(run(&p, DeviceKind::Char, 2, 9, ACC_WRITE), 1);
        assert_eq!(run(&p, DeviceKind::Block, 1, 9, ACC_WRITE), 1);
    }

    #[test]
    fn minor_only_wildcard_tests_only_the_minor() {
        let p = program(&[
            deny_all(),
            rule(true, Some(LinuxDeviceType::C), (None, Some(5)), "rwm"),
        ]);
        assert_eq!(
            &p.insns()[6..],
            &[
                jmp_imm(JNE, 2, 2, 3),
                jmp_imm(JNE, 5, 5, 2),
                mov32_imm(0, 1),
                exit(),
                mov32_imm(0, 0),
                exit(),
            ]
        );
        assert_eq!(run(&p, DeviceKind::Char, 200, 5, ACC_ALL), 1);
        assert_eq!(run(&p, DeviceKind::Char, 200, 6, ACC_READ), 0);
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
