//! A container's cgroup as files: where they are on this host (v1, hybrid
//! or v2), the OOM kill counter, usage figures, and removal of leftovers.
//!
//! Hybrid hosts (v1 controllers under `/sys/fs/cgroup/<ctrl>`, cgroup2 at
//! `/sys/fs/cgroup/unified`) are treated as v1, as libcgroups does. The
//! parsers are pure and unit-tested; [`CgroupFiles::detect`] reads the host.
//!
//! The detection is done here (statfs + `/proc/self/mountinfo`, as
//! libcgroups does it) rather than through libcgroups, which is only built
//! on 64-bit targets together with libcontainer: the OCI binary backend of
//! 32-bit agents needs the same files.

use std::io;
use std::path::{Path, PathBuf};

use super::ContainerStats;

/// The files of one cgroup (`cgroup_path`, e.g. `/bramble/<id>`) on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupFiles {
    /// cgroup v2 (unified) rather than v1/hybrid.
    pub v2: bool,
    /// Directory holding the memory files (v1 memory controller or v2 dir).
    pub memory_dir: Option<PathBuf>,
    /// Directory holding the CPU accounting files (v1 cpuacct or v2 dir).
    pub cpu_dir: Option<PathBuf>,
    /// Every directory this cgroup may occupy (one per v1 hierarchy, plus the
    /// unified one), for checks and leftover cleanup.
    pub dirs: Vec<PathBuf>,
}

/// Where this host's cgroup hierarchies are mounted; read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    /// cgroup v2 only (unified); otherwise v1 or hybrid.
    pub v2: bool,
    /// The v2 root, or the v1 memory hierarchy's mount point.
    pub memory: Option<PathBuf>,
    /// The v2 root, or the v1 cpuacct hierarchy's mount point.
    pub cpu: Option<PathBuf>,
    /// Every hierarchy a cgroup may occupy (v1 mounts, the unified one).
    pub hierarchies: Vec<PathBuf>,
}

impl CgroupLayout {
    /// Reads the host's cgroup setup and mount points.
    pub fn detect() -> io::Result<CgroupLayout> {
        let root = Path::new(CGROUP_ROOT);
        if is_cgroup2(root)? {
            return Ok(CgroupLayout {
                v2: true,
                memory: Some(root.to_path_buf()),
                cpu: Some(root.to_path_buf()),
                hierarchies: vec![root.to_path_buf()],
            });
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| io::Error::new(e.kind(), format!("reading /proc/self/mountinfo: {e}")))?;
        let unified = root.join("unified");
        let hybrid = unified.exists() && is_cgroup2(&unified)?;
        Ok(CgroupLayout::v1(&mountinfo, hybrid.then_some(unified)))
    }

    /// The v1 (or hybrid, with the `unified` cgroup2 mount) layout from the
    /// text of a `mountinfo` file.
    pub fn v1(mountinfo: &str, unified: Option<PathBuf>) -> CgroupLayout {
        let mounts = v1_mounts(mountinfo);
        let mount = |controller: &str| {
            mounts
                .iter()
                .find(|m| mounts_controller(m, controller))
                .cloned()
        };
        let mut hierarchies: Vec<PathBuf> = mounts.iter().cloned().chain(unified).collect();
        hierarchies.sort();
        hierarchies.dedup();
        CgroupLayout {
            v2: false,
            memory: mount("memory"),
            cpu: mount("cpuacct"),
            hierarchies,
        }
    }

    /// Whether the memory controller is enabled: v1 — mounted; v2 — listed
    /// in the root's `cgroup.controllers`. Raspberry Pi OS before Bookworm
    /// boots without it unless `cgroup_enable=memory` is on the command line.
    pub fn has_memory_controller(&self) -> bool {
        match (&self.memory, self.v2) {
            (None, _) => false,
            (Some(_), false) => true,
            (Some(root), true) => std::fs::read_to_string(root.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory")),
        }
    }

    /// Refuses, with the fix, a container this host cannot confine as asked
    /// (a memory limit without a memory controller).
    pub fn check_supports(&self, config: &super::ContainerConfig) -> super::Result<()> {
        if config.memory_limit_bytes.is_some() && !self.has_memory_controller() {
            return Err(super::RuntimeError::InvalidConfig {
                id: config.id.clone(),
                reason: "a memory limit is set, but this node has no memory cgroup controller \
                         (on Raspberry Pi OS add `cgroup_enable=memory cgroup_memory=1` to \
                         /boot/firmware/cmdline.txt and reboot, or remove the limit)"
                    .into(),
            });
        }
        Ok(())
    }

    /// The files of cgroup `cgroup_path` (absolute, relative to each
    /// hierarchy's root, e.g. `/bramble/<id>`).
    pub fn files(&self, cgroup_path: &Path) -> CgroupFiles {
        let rel = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
        CgroupFiles {
            v2: self.v2,
            memory_dir: self.memory.as_ref().map(|m| m.join(rel)),
            cpu_dir: self.cpu.as_ref().map(|m| m.join(rel)),
            dirs: self.hierarchies.iter().map(|h| h.join(rel)).collect(),
        }
    }
}

impl CgroupLayout {
    /// Names of the child cgroups of `parent` (e.g. `/bramble`) in any
    /// hierarchy: the containers' cgroups, for finding leftovers.
    pub fn children(&self, parent: &str) -> Vec<String> {
        let rel = parent.trim_start_matches('/');
        let mut names = Vec::new();
        for h in &self.hierarchies {
            let Ok(entries) = std::fs::read_dir(h.join(rel)) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        names.sort();
        names
    }
}

impl CgroupFiles {
    /// Locates the cgroup `cgroup_path` on this host (reads the layout; keep
    /// a [`CgroupLayout`] to do that once).
    pub fn detect(cgroup_path: &Path) -> io::Result<CgroupFiles> {
        Ok(CgroupLayout::detect()?.files(cgroup_path))
    }

    /// How many processes the OOM killer killed in this cgroup (v1
    /// `memory.oom_control` `oom_kill`, v2 `memory.events` `oom_kill`), or
    /// `None` when the kernel does not report it. Read it before the
    /// cgroup is removed.
    pub fn oom_kills(&self) -> io::Result<Option<u64>> {
        let Some(dir) = &self.memory_dir else {
            return Ok(None);
        };
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = std::fs::read_to_string(dir.join(file))?;
        Ok(keyed_value(&text, "oom_kill"))
    }

    /// v1 only: how often the memory limit was hit (`memory.failcnt`); a
    /// fallback OOM hint on kernels without an `oom_kill` counter.
    pub fn memory_failcnt(&self) -> Option<u64> {
        if self.v2 {
            return None;
        }
        let dir = self.memory_dir.as_ref()?;
        std::fs::read_to_string(dir.join("memory.failcnt"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Memory and CPU usage now.
    pub fn stats(&self) -> io::Result<ContainerStats> {
        let mut stats = ContainerStats::default();
        if let Some(dir) = &self.memory_dir {
            let file = if self.v2 {
                "memory.current"
            } else {
                "memory.usage_in_bytes"
            };
            stats.memory_bytes = read_u64(&dir.join(file))?;
        }
        if let Some(dir) = &self.cpu_dir {
            stats.cpu_usage_ns = if self.v2 {
                let text = std::fs::read_to_string(dir.join("cpu.stat"))?;
                keyed_value(&text, "usage_usec").unwrap_or(0) * 1000
            } else {
                read_u64(&dir.join("cpuacct.usage"))?
            };
        }
        Ok(stats)
    }

    /// Kills every process in this cgroup (SIGKILL; v2 `cgroup.kill` when
    /// the kernel has it, else each pid of `cgroup.procs`) and waits up to
    /// `timeout` for it to be empty. For leftovers of a crashed agent.
    pub fn kill_all(&self, timeout: std::time::Duration) -> io::Result<()> {
        let dirs = self.existing_dirs();
        if dirs.is_empty() {
            return Ok(());
        }
        if self.v2 && std::fs::write(dirs[0].join("cgroup.kill"), "1").is_ok() {
            // Done by the kernel; the wait below sees it finish.
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let mut pids = Vec::new();
            for d in &dirs {
                if let Ok(text) = std::fs::read_to_string(d.join("cgroup.procs")) {
                    pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
                }
            }
            if pids.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "processes {pids:?} remain in cgroup {} after SIGKILL",
                        dirs[0].display()
                    ),
                ));
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The directories of this cgroup that exist now.
    pub fn existing_dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().filter(|d| d.exists()).cloned().collect()
    }

    /// Removes whatever directories of this cgroup are left (empty cgroups
    /// only: `rmdir` fails while processes remain). Returns those that could
    /// not be removed.
    pub fn remove_leftovers(&self) -> Vec<(PathBuf, io::Error)> {
        let mut failed = Vec::new();
        for d in self.existing_dirs() {
            if let Err(e) = std::fs::remove_dir(&d)
                && e.kind() != io::ErrorKind::NotFound
            {
                failed.push((d, e));
            }
        }
        failed
    }
}

/// Where the cgroup hierarchies are mounted (the only root libcgroups and
/// the OCI runtimes support).
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether `path` is a cgroup2 mount.
fn is_cgroup2(path: &Path) -> io::Result<bool> {
    let stat = rustix::fs::statfs(path)
        .map_err(|e| io::Error::other(format!("statfs {}: {e}", path.display())))?;
    // `f_type`'s integer type differs between 32- and 64-bit targets.
    #[allow(clippy::unnecessary_cast)]
    Ok(stat.f_type as i64 == libc::CGROUP2_SUPER_MAGIC as i64)
}

/// The mount points of the v1 (`cgroup`) hierarchies in a `mountinfo`
/// text (`ID PARENT DEV ROOT MOUNT_POINT OPTIONS... - FSTYPE SOURCE ...`).
pub fn v1_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (fields, after) = line.split_once(" - ")?;
            let fstype = after.split_whitespace().next()?;
            let mount_point = fields.split_whitespace().nth(4)?;
            (fstype == "cgroup").then(|| PathBuf::from(mount_point))
        })
        .collect()
}

/// Whether the v1 hierarchy mounted at `mount_point` holds `controller`,
/// judged from its directory name as libcgroups does (`memory`,
/// `cpu,cpuacct`, `net_cls,net_prio`; any order).
fn mounts_controller(mount_point: &Path, controller: &str) -> bool {
    mount_point
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.split(',').any(|c| c == controller))
}

fn read_u64(path: &Path) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.trim().parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {text:?}: {e}", path.display()),
        )
    })
}

/// The value of `key` in a cgroup "flat keyed" file (`key value` lines).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next() == Some(key)).then(|| parts.next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_hybrid_layouts_from_mountinfo() {
        let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 31 0:34 / /sys/fs/cgroup/net_prio,net_cls rw - cgroup cgroup rw,net_cls,net_prio
";
        let root = Path::new(CGROUP_ROOT);
        let v1 = CgroupLayout::v1(mountinfo, None);
        assert!(!v1.v2);
        assert_eq!(v1.memory.as_deref(), Some(root.join("memory").as_path()));
        assert_eq!(v1.cpu.as_deref(), Some(root.join("cpu,cpuacct").as_path()));
        assert_eq!(v1.hierarchies.len(), 3, "{:?}", v1.hierarchies);
        let hybrid = CgroupLayout::v1(mountinfo, Some(root.join("unified")));
        assert_eq!(hybrid.hierarchies.len(), 4);
        assert!(hybrid.hierarchies.contains(&root.join("unified")));
        let none = CgroupLayout::v1("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n", None);
        assert_eq!((none.memory, none.cpu), (None, None));
    }

    #[test]
    fn the_host_layout_matches_its_mounts() {
        let layout = CgroupLayout::detect().unwrap();
        for h in &layout.hierarchies {
            assert!(h.is_dir(), "{}", h.display());
        }
    }

    #[test]
    fn keyed_values_of_v1_and_v2_files() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(keyed_value(v1, "oom_kill"), Some(2));
        assert_eq!(keyed_value(v1, "oom_kill_disable"), Some(0));
        let old_kernel = "oom_kill_disable 0\nunder_oom 0\n";
        assert_eq!(keyed_value(old_kernel, "oom_kill"), None);
        let v2 = "low 0\nhigh 0\nmax 13\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(v2, "oom_kill"), Some(1));
        assert_eq!(keyed_value(v2, "max"), Some(13));
        let cpu = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(keyed_value(cpu, "usage_usec"), Some(1500));
    }

    fn fake(v2: bool) -> (tempfile::TempDir, CgroupFiles) {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("c");
        std::fs::create_dir(&d).unwrap();
        let files = CgroupFiles {
            v2,
            memory_dir: Some(d.clone()),
            cpu_dir: Some(d.clone()),
            dirs: vec![d, t.path().join("absent")],
        };
        (t, files)
    }

    #[test]
    fn v1_files() {
        let (_t, f) = fake(false);
        let d = f.memory_dir.clone().unwrap();
        std::fs::write(
            d.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(d.join("memory.usage_in_bytes"), "4096\n").unwrap();
        std::fs::write(d.join("cpuacct.usage"), "123456\n").unwrap();
        std::fs::write(d.join("memory.failcnt"), "7\n").unwrap();
        assert_eq!(f.oom_kills().unwrap(), Some(1));
        assert_eq!(f.memory_failcnt(), Some(7));
        assert_eq!(
            f.stats().unwrap(),
            ContainerStats {
                memory_bytes: 4096,
                cpu_usage_ns: 123456
            }
        );
        assert_eq!(f.existing_dirs(), vec![d.clone()]);
    }

    #[test]
    fn v2_files() {
        let (_t, f) = fake(true);
        let d = f.memory_dir.clone().unwrap();
        std::fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        )
        .unwrap();
        std::fs::write(d.join("memory.current"), "8192\n").unwrap();
        std::fs::write(d.join("cpu.stat"), "usage_usec 42\nuser_usec 40\n").unwrap();
        assert_eq!(f.oom_kills().unwrap(), Some(0));
        assert_eq!(f.memory_failcnt(), None);
        assert_eq!(
            f.stats().unwrap(),
            ContainerStats {
                memory_bytes: 8192,
                cpu_usage_ns: 42_000
            }
        );
    }

    #[test]
    fn layout_joins_the_cgroup_path_under_each_hierarchy() {
        let layout = CgroupLayout {
            v2: false,
            memory: Some("/sys/fs/cgroup/memory".into()),
            cpu: Some("/sys/fs/cgroup/cpuacct".into()),
            hierarchies: vec![
                "/sys/fs/cgroup/memory".into(),
                "/sys/fs/cgroup/unified".into(),
            ],
        };
        let f = layout.files(Path::new("/bramble/c1"));
        assert_eq!(
            f.memory_dir,
            Some("/sys/fs/cgroup/memory/bramble/c1".into())
        );
        assert_eq!(f.cpu_dir, Some("/sys/fs/cgroup/cpuacct/bramble/c1".into()));
        assert_eq!(
            f.dirs,
            vec![
                PathBuf::from("/sys/fs/cgroup/memory/bramble/c1"),
                PathBuf::from("/sys/fs/cgroup/unified/bramble/c1")
            ]
        );
    }

    #[test]
    fn a_memory_limit_without_a_memory_controller_is_refused_with_the_fix() {
        let mut layout = CgroupLayout {
            v2: false,
            memory: None,
            cpu: Some("/sys/fs/cgroup/cpuacct".into()),
            hierarchies: vec!["/sys/fs/cgroup/cpuacct".into()],
        };
        let mut c = super::super::ContainerConfig::new("c", "/r", vec!["true".into()], "/o", "/e");
        layout.check_supports(&c).unwrap();
        c.memory_limit_bytes = Some(1 << 20);
        let err = layout.check_supports(&c).unwrap_err().to_string();
        assert!(err.contains("cgroup_enable=memory"), "{err}");
        layout.memory = Some("/sys/fs/cgroup/memory".into());
        layout.check_supports(&c).unwrap();
    }

    #[test]
    fn leftovers_are_removed_when_empty() {
        let (_t, f) = fake(true);
        assert!(f.remove_leftovers().is_empty());
        assert!(f.existing_dirs().is_empty());
    }
}
