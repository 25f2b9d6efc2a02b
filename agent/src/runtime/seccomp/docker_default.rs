//! Docker's default seccomp profile (moby `profiles/seccomp/default.json`,
//! the profile Kubernetes calls `RuntimeDefault`), as an OCI `linux.seccomp`
//! section for one container: everything not listed fails with `EPERM`;
//! the syscalls that need a capability are allowed only when the container
//! has it; without `CAP_SYS_ADMIN`, `clone` may not create namespaces and
//! `clone3` fails with `ENOSYS` (so libcs fall back to `clone`, whose flags
//! the filter can see). Rules for architectures Bramble does not run on
//! (s390, ppc, mips, riscv) are left out. Pure.

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, Capability as Cap, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall,
};

/// The errno of the default action (`EPERM`).
const EPERM: u32 = 1;
/// What `clone3` returns without `CAP_SYS_ADMIN` (`ENOSYS`).
const ENOSYS: u32 = 38;
/// The namespace flags of `clone` (`CLONE_NEWNS | CLONE_NEWCGROUP |
/// CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET`).
const CLONE_NAMESPACES: u64 = 0x7E02_0000;
/// `AF_VSOCK`: sockets to the hypervisor stay closed.
const AF_VSOCK: u64 = 40;

/// Allowed to every container.
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
    "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr",
    "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
    "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
    "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
    "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
    "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
    "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
    "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
    // Docker allows these from kernel 4.8 on (ptrace can no longer bypass
    // seccomp there); Bramble's kernels are all newer.
    "process_vm_readv", "process_vm_writev", "ptrace",
];

/// `personality` values allowed (`PER_LINUX`, `PER_LINUX32`, `UNAME26`,
/// `PER_LINUX32 | UNAME26`, and the query `0xffffffff`).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Allowed on ARM (32- and 64-bit) only.
#[rustfmt::skip]
const ARM_ONLY: &[&str] = &[
    "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
    "set_tls",
];

/// Allowed only with a capability.
#[rustfmt::skip]
const WITH_CAPABILITY: &[(Cap, &[&str])] = &[
    (Cap::DacReadSearch, &["open_by_handle_at"]),
    (
        Cap::SysAdmin,
        &[
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
            "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
            "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
            "setns", "syslog", "umount", "umount2", "unshare",
        ],
    ),
    (Cap::SysBoot, &["reboot"]),
    (Cap::SysChroot, &["chroot"]),
    (Cap::SysModule, &["delete_module", "init_module", "finit_module"]),
    (Cap::SysPacct, &["acct"]),
    (
        Cap::SysPtrace,
        &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
    ),
    (Cap::SysRawio, &["iopl", "ioperm"]),
    (Cap::SysTime, &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    (Cap::SysTtyConfig, &["vhangup"]),
    (
        Cap::SysNice,
        &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
    ),
    (Cap::Syslog, &["syslog"]),
    (Cap::Bpf, &["bpf"]),
    (Cap::Perfmon, &["perf_event_open"]),
];

/// The CPU architecture a profile is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    X86_64,
    Aarch64,
    Arm,
    Other,
}

impl Machine {
    /// The machine this agent was built for.
    pub const fn native() -> Machine {
        if cfg!(target_arch = "x86_64") {
            Machine::X86_64
        } else if cfg!(target_arch = "aarch64") {
            Machine::Aarch64
        } else if cfg!(target_arch = "arm") {
            Machine::Arm
        } else {
            Machine::Other
        }
    }

    /// The seccomp architectures a container on this machine may use (the
    /// native one and its compatibility ABIs), as Docker's `archMap`.
    fn architectures(self) -> Vec<Arch> {
        match self {
            Machine::X86_64 => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
            Machine::Aarch64 => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
            Machine::Arm => vec![Arch::ScmpArchArm],
            Machine::Other => vec![Arch::ScmpArchNative],
        }
    }
}

fn syscalls(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(action);
    s
}

fn arg(index: usize, value: u64, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op)
        .build()
        .expect("every field set")
}

fn with_args(names: &[&str], args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    let mut s = syscalls(names, LinuxSeccompAction::ScmpActAllow);
    s.set_args(Some(args));
    s
}

/// Docker's default profile for a container with capabilities `caps` on `machine`.
pub fn profile(caps: &HashSet<Cap>, machine: Machine) -> LinuxSeccomp {
    use LinuxSeccompAction::{ScmpActAllow as Allow, ScmpActErrno as Errno};
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpMaskedEq, ScmpCmpNe};
    let mut rules = vec![syscalls(ALLOWED, Allow)];
    rules.push(with_args(&["socket"], vec![arg(0, AF_VSOCK, ScmpCmpNe)]));
    for &p in PERSONALITIES {
        rules.push(with_args(&["personality"], vec![arg(0, p, ScmpCmpEq)]));
    }
    match machine {
        Machine::Aarch64 | Machine::Arm => rules.push(syscalls(ARM_ONLY, Allow)),
        Machine::X86_64 => rules.push(syscalls(&["arch_prctl", "modify_ldt"], Allow)),
        Machine::Other => {}
    }
    for (cap, names) in WITH_CAPABILITY {
        if caps.contains(cap) {
            rules.push(syscalls(names, Allow));
        }
    }
    if !caps.contains(&Cap::SysAdmin) {
        // `clone` without namespace flags (argument 0 on every architecture
        // Bramble runs on; s390 differs).
        rules.push(with_args(
            &["clone"],
            vec![
                LinuxSeccompArgBuilder::default()
                    .index(0usize)
                    .value(CLONE_NAMESPACES)
                    .value_two(0u64)
                    .op(ScmpCmpMaskedEq)
                    .build()
                    .expect("every field set"),
            ],
        ));
        let mut clone3 = syscalls(&["clone3"], Errno);
        clone3.set_errno_ret(Some(ENOSYS));
        rules.push(clone3);
    }
    let mut p = LinuxSeccomp::default();
    p.set_default_action(Errno);
    p.set_default_errno_ret(Some(EPERM));
    p.set_architectures(Some(machine.architectures()));
    p.set_syscalls(Some(rules));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        p.syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names().iter().any(|n| n == name))
            .collect()
    }

    fn default_caps() -> HashSet<Cap> {
        crate::runtime::spec::DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn a_default_container_may_not_mount_unshare_or_use_keyctl() {
        let p = profile(&default_caps(), Machine::X86_64);
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(EPERM));
        for name in [
            "mount", "unshare", "setns", "keyctl", "add_key", "bpf", "reboot",
        ] {
            assert!(rules_for(&p, name).is_empty(), "{name} is allowed");
        }
        // clone only without namespace flags; clone3 says ENOSYS.
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        let a = clone[0].args().as_ref().unwrap()[0];
        assert_eq!((a.value(), a.value_two()), (CLONE_NAMESPACES, Some(0)));
        let clone3 = rules_for(&p, "clone3");
        assert_eq!(clone3[0].errno_ret(), Some(ENOSYS));
        // The default set's chroot is allowed; arch_prctl on x86_64 only.
        assert_eq!(rules_for(&p, "chroot").len(), 1);
        assert_eq!(rules_for(&p, "arch_prctl").len(), 1);
        let arm = profile(&default_caps(), Machine::Aarch64);
        assert!(rules_for(&arm, "arch_prctl").is_empty());
        assert_eq!(rules_for(&arm, "cacheflush").len(), 1);
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        let mut caps = default_caps();
        caps.insert(Cap::SysAdmin);
        caps.insert(Cap::SysTime);
        let p = profile(&caps, Machine::Aarch64);
        for name in ["mount", "unshare", "clone", "clone3", "clock_settime"] {
            let r = rules_for(&p, name);
            assert_eq!(r.len(), 1, "{name}");
            assert_eq!(r[0].action(), LinuxSeccompAction::ScmpActAllow);
            assert!(r[0].args().is_none(), "{name} is conditional");
        }
        caps.remove(&Cap::SysChroot);
        assert!(rules_for(&profile(&caps, Machine::Aarch64), "chroot").is_empty());
    }
}
