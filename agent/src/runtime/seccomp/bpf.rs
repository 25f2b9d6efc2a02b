//! An OCI `linux.seccomp` section compiled to classic BPF for this machine
//! (seccompiler; syscall names resolved by the `syscalls` crate) and
//! installed on the calling thread: the in-process runtime's seccomp
//! (libcontainer is built without libseccomp; runc and crun read the
//! section themselves).
//!
//! A seccompiler filter has one action on a match and one otherwise, so a
//! profile becomes a stack: first a filter with the profile's default
//! action for every syscall no rule allows, then one filter per other
//! action (e.g. `clone3` → `ENOSYS`) that returns it for its syscalls and
//! allows the rest. The kernel runs every filter and keeps the strictest
//! result; between two `ERRNO`s, the filter installed last wins, which is
//! the rule's own errno. Names this architecture does not have are skipped,
//! as runc does (Docker's list names every architecture's syscalls); a name
//! libseccomp spells otherwise than the `syscalls` crate is looked up by the
//! crate's spelling ([`ALIASES`]: aarch64's `newfstatat`, without which
//! every dynamically linked program there failed to load its libraries).

use std::collections::BTreeMap;
use std::str::FromStr;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Why a profile cannot be compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp action {0} is not supported (use SCMP_ACT_ERRNO, ALLOW, KILL, TRAP or LOG)")]
    Action(LinuxSeccompAction),
    #[error("seccomp rule for {name}: {reason}")]
    Rule { name: String, reason: String },
    #[error("seccomp filters are not supported on this architecture")]
    Architecture,
    #[error("installing the seccomp filter: {0}")]
    Install(String),
}

const EPERM: u32 = 1;

/// Syscall names of Docker's profile (libseccomp's) that the `syscalls`
/// crate spells otherwise on some architectures: the asm-generic ones
/// (aarch64, riscv64) call 79 `fstatat`, libseccomp `newfstatat`.
const ALIASES: &[(&str, &str)] = &[("newfstatat", "fstatat")];

/// Syscall `name` in the table `S` (an architecture's `Sysno`), by its own
/// spelling or its alias; `None` if that architecture has no such syscall.
fn number<S: FromStr>(name: &str) -> Option<S> {
    S::from_str(name).ok().or_else(|| {
        ALIASES
            .iter()
            .find(|(libseccomp, _)| *libseccomp == name)
            .and_then(|(_, spelled)| S::from_str(spelled).ok())
    })
}

fn target() -> Result<TargetArch, SeccompError> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else if cfg!(target_arch = "riscv64") {
        Ok(TargetArch::riscv64)
    } else {
        Err(SeccompError::Architecture)
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<SeccompAction, SeccompError> {
    use LinuxSeccompAction as A;
    Ok(match a {
        A::ScmpActAllow => SeccompAction::Allow,
        A::ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(EPERM)),
        A::ScmpActKill | A::ScmpActKillThread => SeccompAction::KillThread,
        A::ScmpActKillProcess => SeccompAction::KillProcess,
        A::ScmpActTrap => SeccompAction::Trap,
        A::ScmpActLog => SeccompAction::Log,
        other => return Err(SeccompError::Action(other)),
    })
}

fn condition(name: &str, a: &LinuxSeccompArg) -> Result<SeccompCondition, SeccompError> {
    use LinuxSeccompOperator as O;
    let (op, value) = match a.op() {
        O::ScmpCmpNe => (SeccompCmpOp::Ne, a.value()),
        O::ScmpCmpLt => (SeccompCmpOp::Lt, a.value()),
        O::ScmpCmpLe => (SeccompCmpOp::Le, a.value()),
        O::ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
        O::ScmpCmpGe => (SeccompCmpOp::Ge, a.value()),
        O::ScmpCmpGt => (SeccompCmpOp::Gt, a.value()),
        // OCI: (arg & value) == valueTwo.
        O::ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(a.value()),
            a.value_two().unwrap_or(0),
        ),
    };
    let index = u8::try_from(a.index()).map_err(|_| SeccompError::Rule {
        name: name.into(),
        reason: format!("argument index {} (0 to 5)", a.index()),
    })?;
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).map_err(|e| {
        SeccompError::Rule {
            name: name.into(),
            reason: e.to_string(),
        }
    })
}

/// A syscall's rules under one action: `None` = unconditional.
type Rules = BTreeMap<i64, Option<Vec<SeccompRule>>>;

/// The programs to install, in order.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<BpfProgram>, SeccompError> {
    let arch = target()?;
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    // Rules grouped by action, in the order actions first appear.
    let mut groups: Vec<(SeccompAction, Rules)> = Vec::new();
    for s in profile.syscalls().iter().flatten() {
        let act = action(s.action(), s.errno_ret())?;
        let idx = match groups.iter().position(|(a, _)| *a == act) {
            Some(i) => i,
            None => {
                groups.push((act, Rules::new()));
                groups.len() - 1
            }
        };
        for name in s.names() {
            // Not a syscall of this architecture: skipped, as runc does.
            let Some(nr) = number::<syscalls::Sysno>(name) else {
                continue;
            };
            let nr = i64::from(nr.id());
            let rule = match s.args().as_deref() {
                None | Some([]) => None,
                Some(args) => {
                    let conds = args
                        .iter()
                        .map(|a| condition(name, a))
                        .collect::<Result<Vec<_>, _>>()?;
                    Some(SeccompRule::new(conds).map_err(|e| SeccompError::Rule {
                        name: name.clone(),
                        reason: e.to_string(),
                    })?)
                }
            };
            let entry = groups[idx].1.entry(nr).or_insert_with(|| Some(Vec::new()));
            match (entry.as_mut(), rule) {
                // Unconditional wins over any condition.
                (_, None) => *entry = None,
                (Some(chain), Some(r)) => chain.push(r),
                (None, Some(_)) => {}
            }
        }
    }
    let build = |rules: Rules, mismatch: SeccompAction, on_match: SeccompAction| {
        let rules = rules
            .into_iter()
            .map(|(nr, chain)| (nr, chain.unwrap_or_default()))
            .collect();
        SeccompFilter::new(rules, mismatch, on_match, arch)
            .and_then(BpfProgram::try_from)
            .map_err(|e| SeccompError::Rule {
                name: "(filter)".into(),
                reason: e.to_string(),
            })
    };
    let mut programs = Vec::new();
    // First: the default action for everything the allowing rules do not match.
    let allowed = groups
        .iter()
        .position(|(a, _)| *a == SeccompAction::Allow)
        .map(|i| groups.remove(i).1)
        .unwrap_or_default();
    if default != SeccompAction::Allow {
        programs.push(build(allowed, default.clone(), SeccompAction::Allow)?);
    }
    // Then each other action for its own syscalls.
    for (act, rules) in groups {
        if act != default {
            programs.push(build(rules, SeccompAction::Allow, act)?);
        }
    }
    Ok(programs)
}

/// Installs `programs` on the calling thread, in order (sets
/// `no_new_privs` first, which an unprivileged install needs).
pub fn install(programs: &[BpfProgram]) -> Result<(), SeccompError> {
    for p in programs {
        seccompiler::apply_filter(p).map_err(|e| SeccompError::Install(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::seccomp::docker_default::{Machine, profile};

    #[test]
    fn every_aarch64_syscall_is_allowed_by_dockers_profile_or_one_it_leaves_out() {
        use oci_spec::runtime::Capability as Cap;
        use syscalls::aarch64::Sysno as Arm64;
        assert_eq!(number::<Arm64>("newfstatat").map(|s| s.id()), Some(79));
        assert_eq!(
            number::<syscalls::x86_64::Sysno>("newfstatat").map(|s| s.id()),
            Some(262),
            "x86_64 has its own newfstatat"
        );
        assert!(number::<Arm64>("open").is_none(), "aarch64 has only openat");
        // With the capabilities that open syscalls, the profile allows all
        // but these, as Docker's does on arm64 (a spelling the table does
        // not know would show up here, as `fstatat` did).
        let caps = [
            Cap::DacReadSearch,
            Cap::SysAdmin,
            Cap::SysBoot,
            Cap::SysChroot,
            Cap::SysModule,
            Cap::SysPacct,
            Cap::SysPtrace,
            Cap::SysRawio,
            Cap::SysTime,
            Cap::SysTtyConfig,
            Cap::SysNice,
            Cap::Syslog,
            Cap::Bpf,
            Cap::Perfmon,
        ]
        .into_iter()
        .collect();
        let p = profile(&caps, Machine::Aarch64);
        let named: std::collections::HashSet<i32> = p
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow)
            .flat_map(|s| s.names().iter())
            .filter_map(|n| number::<Arm64>(n))
            .map(|s| s.id())
            .collect();
        let left_out: Vec<&str> = Arm64::iter()
            .filter(|s| !named.contains(&s.id()))
            .map(|s| s.name())
            .collect();
        assert_eq!(
            left_out,
            [
                "pivot_root",
                "nfsservctl",
                "kexec_load",
                "add_key",
                "request_key",
                "keyctl",
                "swapon",
                "swapoff",
                "migrate_pages",
                "move_pages",
                "userfaultfd",
                "kexec_file_load",
                "cachestat",
                "fchmodat2",
                "map_shadow_stack",
                "futex_wake",
                "futex_wait",
                "futex_requeue",
                "statmount",
                "listmount",
                "lsm_get_self_attr",
                "lsm_set_self_attr",
                "lsm_list_modules",
                "mseal",
                "setxattrat",
                "getxattrat",
                "listxattrat",
                "removexattrat",
                "open_tree_attr",
                "file_getattr",
            ]
        );
    }

    #[test]
    fn dockers_profile_compiles_to_two_filters_within_the_kernels_limit() {
        let caps = crate::runtime::spec::DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .collect();
        let programs = compile(&profile(&caps, Machine::native())).unwrap();
        // The allow list, then clone3's ENOSYS.
        assert_eq!(programs.len(), 2);
        // BPF_MAXINSNS.
        assert!(
            programs.iter().all(|p| p.len() <= 4096),
            "{:?}",
            programs.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn unsupported_actions_are_named() {
        let mut p = LinuxSeccomp::default();
        p.set_default_action(LinuxSeccompAction::ScmpActNotify);
        let e = compile(&p).unwrap_err().to_string();
        assert!(e.contains("SCMP_ACT_NOTIFY"), "{e}");
    }
}
