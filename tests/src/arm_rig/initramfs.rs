//! The board's initramfs: busybox, the modules of [`super::fetch::MODULES`]
//! and [`INIT`], packed as a gzipped newc archive (no `cpio` tool needed).

use std::io::Write as _;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

/// The board's `/init` (busybox `sh`). Stage 1 copies the initramfs into a
/// tmpfs and `switch_root`s into it: containers need `pivot_root`, which
/// fails (EINVAL) while `/` is the initramfs. Stage 2 mounts the virtual
/// filesystems and cgroup2, loads the modules (`/etc/rig-modules`, in
/// order), brings up `eth0` as QEMU's user network expects, mounts the 9p
/// share `share` at `/mnt/share` and runs `/mnt/share/run.sh`; then it
/// powers off (QEMU exits). Progress goes to the console as
/// `BRAMBLE-RIG: ...` lines. `rig.hostname=NAME` on the kernel command
/// line sets the hostname.
pub const INIT: &str = r#"#!/bin/busybox sh
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
mark() { echo "BRAMBLE-RIG: $*"; }
if [ ! -e /.stage2 ]; then
  /bin/busybox --install -s /bin
  mark "stage1"
  mount -t tmpfs -o mode=0755 rootfs /newroot
  for f in /*; do
    case "$f" in /proc|/sys|/dev|/newroot) ;; *) cp -a "$f" /newroot/ ;; esac
  done
  mkdir -p /newroot/proc /newroot/sys /newroot/dev
  touch /newroot/.stage2
  exec switch_root /newroot /init
fi
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run /tmp /var/lib /mnt/share /usr/local/bin
mount -t devpts devpts /dev/pts
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for a in $(cat /proc/cmdline); do
  case "$a" in rig.hostname=*) hostname "${a#rig.hostname=}" ;; esac
done
mark "init $(uname -m) $(uname -r) cgroup2: $(cat /sys/fs/cgroup/cgroup.controllers)"
while read -r m; do
  insmod "/lib/modules/$m" || mark "insmod $m failed"
done < /etc/rig-modules
mark "modules loaded"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "nameserver 10.0.2.3" > /etc/resolv.conf
echo "127.0.0.1 localhost" > /etc/hosts
mark "network up"
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /mnt/share; then
  mark "share mounted"
else
  mark "share mount failed"
fi
if [ -x /mnt/share/run.sh ]; then
  mark "script start"
  /mnt/share/run.sh
  mark "script exit $?"
else
  mark "no script"
fi
sync
mark "poweroff"
poweroff -f
"#;

/// The gzipped archive: the tree `sysroot` (unpacked Debian packages),
/// `/init`, `/bin/busybox`, `/dev/console`, the modules under
/// `/lib/modules/` (paths of `modules`, relative to `modules_dir`) and
/// their order in `/etc/rig-modules`.
pub fn build(
    busybox: &[u8],
    modules_dir: &Path,
    modules: &[&str],
    sysroot: &Path,
) -> Result<Vec<u8>, String> {
    let mut a = Newc::default();
    a.tree(sysroot, sysroot)?;
    for d in [
        "bin",
        "dev",
        "etc",
        "lib",
        "lib/modules",
        "newroot",
        "proc",
        "sys",
    ] {
        a.dir(d);
    }
    a.file("init", INIT.as_bytes(), 0o755);
    a.file("bin/busybox", busybox, 0o755);
    a.node("dev/console", 0o020600, 5, 1);
    let mut list = modules.join("\n");
    list.push('\n');
    a.file("etc/rig-modules", list.as_bytes(), 0o644);
    for m in modules {
        let mut parent = String::from("lib/modules");
        let parts: Vec<&str> = m.split('/').collect();
        for p in &parts[..parts.len() - 1] {
            parent = format!("{parent}/{p}");
            a.dir(&parent);
        }
        let bytes =
            std::fs::read(modules_dir.join(m)).map_err(|e| format!("reading module {m}: {e}"))?;
        a.file(&format!("lib/modules/{m}"), &bytes, 0o644);
    }
    let raw = a.finish();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&raw).map_err(|e| e.to_string())?;
    gz.finish().map_err(|e| e.to_string())
}

/// A newc (`070701`) cpio writer: the format the kernel unpacks.
#[derive(Default)]
struct Newc {
    out: Vec<u8>,
    ino: u32,
    dirs: std::collections::BTreeSet<String>,
}

impl Newc {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            1_700_000_000,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// A directory, once.
    fn dir(&mut self, name: &str) {
        if self.dirs.insert(name.to_string()) {
            self.entry(name, 0o040755, &[], (0, 0));
        }
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, target.as_bytes(), (0, 0));
    }

    /// Directories, regular files and symlinks under `dir`, named relative
    /// to `root`; parents before children.
    fn tree(&mut self, root: &Path, dir: &Path) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt as _;
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p
                .strip_prefix(root)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&p).map_err(|e| e.to_string())?;
            if meta.is_dir() {
                self.dir(&name);
                self.tree(root, &p)?;
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&p).map_err(|e| e.to_string())?;
                self.symlink(&name, &target.to_string_lossy());
            } else if meta.is_file() {
                let bytes = std::fs::read(&p).map_err(|e| e.to_string())?;
                self.file(&name, &bytes, meta.permissions().mode() & 0o7777);
            }
        }
        Ok(())
    }

    fn file(&mut self, name: &str, data: &[u8], perm: u32) {
        self.entry(name, 0o100000 | perm, data, (0, 0));
    }

    fn node(&mut self, name: &str, mode: u32, major: u32, minor: u32) {
        self.entry(name, mode, &[], (major, minor));
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_entries_are_aligned_and_end_with_the_trailer() {
        let mut a = Newc::default();
        a.dir("bin");
        a.file("init", b"#!/bin/sh\n", 0o755);
        let raw = a.finish();
        assert_eq!(raw.len() % 4, 0);
        assert!(raw.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("init\0"));
        assert!(text.contains("TRAILER!!!\0"));
        // header (110) + "bin\0" (4), padded to 4 bytes
        let second = 116;
        assert_eq!(&raw[second..second + 6], b"070701");
    }
}
