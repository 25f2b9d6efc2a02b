//! What the agent tells the hub about its node when it registers: platform
//! (os/arch/variant as image indexes name them), kernel, CPUs, memory, and
//! the cgroup setup — v1/hybrid or v2 and which controllers are enabled,
//! above all whether the memory controller is there (Raspberry Pi OS before
//! Bookworm boots without it unless `cgroup_enable=memory` is on the kernel
//! command line; pods with memory limits cannot run then).
//!
//! The parsers are pure and unit-tested; [`NodeInfo::read`] reads the host.

use std::collections::BTreeSet;

use bramble_images::Platform;

/// The node's facts. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub os: String,
    /// `amd64`, `arm64`, `arm`.
    pub architecture: String,
    /// `v7`, `v8`, ... where the architecture has variants.
    pub variant: Option<String>,
    pub kernel: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    /// cgroup v2 only (unified), else v1 or hybrid.
    pub cgroup_v2: bool,
    /// Enabled controllers (`memory`, `cpu`, `pids`, ...).
    pub cgroup_controllers: BTreeSet<String>,
}

impl NodeInfo {
    /// Reads this host.
    pub fn read() -> std::io::Result<NodeInfo> {
        let platform = Platform::current();
        let uname = rustix::system::uname();
        let kernel = uname.release().to_string_lossy().into_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo")?;
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let cgroup_v2 = is_cgroup2("/sys/fs/cgroup");
        let cgroup_controllers = if cgroup_v2 {
            v2_controllers(
                &std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default(),
            )
        } else {
            v1_controllers(&std::fs::read_to_string("/proc/cgroups")?)
        };
        Ok(NodeInfo {
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            variant: platform.variant.clone(),
            kernel,
            cpus,
            memory_bytes: mem_total(&meminfo).unwrap_or(0),
            cgroup_v2,
            cgroup_controllers,
        })
    }

    /// Whether memory limits can be enforced here.
    pub fn has_memory_cgroup(&self) -> bool {
        self.cgroup_controllers.contains("memory")
    }

    /// Problems a user should hear about at registration (e.g. the missing
    /// memory controller, with the fix).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.has_memory_cgroup() {
            w.push(
                "the memory cgroup controller is not enabled: pods with memory limits cannot \
                 run here (on Raspberry Pi OS add `cgroup_enable=memory cgroup_memory=1` to \
                 /boot/firmware/cmdline.txt and reboot)"
                    .to_string(),
            );
        }
        w
    }
}

#[allow(clippy::unnecessary_cast)] // statfs field types differ between libcs
fn is_cgroup2(path: &str) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as i64 == libc::CGROUP2_SUPER_MAGIC as i64)
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(n * 1024),
        _ => None,
    }
}

/// Enabled controllers from `/proc/cgroups` (v1: `name hierarchy num enabled`).
pub fn v1_controllers(proc_cgroups: &str) -> BTreeSet<String> {
    proc_cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[3] == "1").then(|| f[0].to_string())
        })
        .collect()
}

/// Controllers from a v2 `cgroup.controllers` file.
pub fn v2_controllers(text: &str) -> BTreeSet<String> {
    text.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_in_bytes() {
        let text = "MemTotal:        3884280 kB\nMemFree:          123 kB\n";
        assert_eq!(mem_total(text), Some(3_884_280 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn v1_controllers_skip_disabled_ones() {
        // A Raspberry Pi OS (Bullseye) kernel without cgroup_enable=memory.
        let text = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                    cpuset\t2\t1\t1\ncpu\t3\t60\t1\nmemory\t0\t70\t0\npids\t4\t65\t1\n";
        let c = v1_controllers(text);
        assert!(c.contains("cpu") && c.contains("pids") && !c.contains("memory"));
        let info = NodeInfo {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: None,
            kernel: "6.1.0".into(),
            cpus: 4,
            memory_bytes: 1 << 30,
            cgroup_v2: false,
            cgroup_controllers: c,
        };
        assert!(!info.has_memory_cgroup());
        assert!(info.warnings()[0].contains("cgroup_enable=memory"));
    }

    #[test]
    fn v2_controllers_from_the_root_file() {
        let c = v2_controllers("cpuset cpu io memory hugetlb pids rdma misc\n");
        assert!(c.contains("memory") && c.contains("pids"));
    }

    #[test]
    fn this_host_reads() {
        let info = NodeInfo::read().unwrap();
        assert_eq!(info.os, "linux");
        assert!(info.cpus >= 1 && info.memory_bytes > 0 && !info.kernel.is_empty());
        assert!(!info.cgroup_controllers.is_empty());
    }
}
