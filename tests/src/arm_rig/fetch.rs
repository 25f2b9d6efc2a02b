//! The pinned kernel and busybox of a board, fetched once per machine into
//! [`cache_root`]`/<kernel release>_<version>/`:
//!
//! - `debs/` — the kernel `.deb` (`apt-get download`, ~60 MB);
//! - `vmlinuz`, `modules/` (only the modules a node needs, as in the
//!   package) and `modules.load` (their load order from `depmod -b`);
//! - `busybox` (from `busybox-static:<arch>`, see [`crate::busybox`]);
//! - `sysroot-<hash>/`: the unpacked [`guest_packages`] (`nft` and its
//!   libraries; on armv7 also `runc`), remade when the list changes;
//! - `initramfs-<hash>.cpio.gz`, rebuilt when `/init`, the module list or
//!   the package list changes.
//!
//! A lock file serialises concurrent test processes; everything is written
//! under a temporary name and renamed, so an interrupted run leaves nothing
//! half-made behind.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Arch, KERNEL_VERSION, initramfs};

/// Modules a node needs, by name; their dependencies come from
/// `modules.dep`. `crc32c_generic` is `libcrc32c`'s soft dependency (the
/// `crc32c` algorithm nf_tables needs), which `modules.dep` does not list.
pub const MODULES: &[&str] = &[
    "crc32c_generic",
    "virtio_pci",
    "virtio_net",
    "9pnet_virtio",
    "9p",
    "overlay",
    "veth",
    "bridge",
    "nf_tables",
    "nf_conntrack",
    "nf_nat",
    "nft_ct",
    "nft_nat",
    "nft_chain_nat",
    "nft_masq",
    "nft_numgen",
    "nft_fib_ipv4",
    "nft_reject_ipv4",
];

/// Debian packages of every guest's userland besides busybox, unpacked into
/// its `/`: `nft` (the agent programs its table with `nft -j`) and its
/// shared libraries. Not version-pinned: they are fetched once per cache
/// directory.
pub const GUEST_PACKAGES: &[&str] = &[
    "nftables",
    "libnftables1",
    "libnftnl11",
    "libxtables12",
    "libedit2",
    "libjansson4",
    "libgmp10",
    "libmnl0",
    "libbsd0",
    "libmd0",
    "libtinfo6",
    "libgcc-s1",
    "libc6",
];

/// The armv7 guest's extra packages: `runc` (`/usr/sbin/runc`, which the
/// 32-bit agent's `--runtime auto` finds in `PATH`: that build has no
/// libcontainer) and the one library it needs besides `libc6`. The arm64
/// agent runs containers in-process and needs none.
pub const ARMV7_RUNTIME_PACKAGES: &[&str] = &["runc", "libseccomp2"];

/// Every package unpacked into `arch`'s guest: [`GUEST_PACKAGES`], plus
/// [`ARMV7_RUNTIME_PACKAGES`] on armv7.
pub fn guest_packages(arch: Arch) -> Vec<&'static str> {
    let mut all = GUEST_PACKAGES.to_vec();
    if arch == Arch::Armv7 {
        all.extend_from_slice(ARMV7_RUNTIME_PACKAGES);
    }
    all
}

/// Parts of the unpacked packages the guest does without.
const SYSROOT_PRUNE: &[&str] = &[
    "usr/share",
    "usr/lib/aarch64-linux-gnu/gconv",
    "usr/lib/arm-linux-gnueabihf/gconv",
    "usr/libexec",
    "usr/bin",
];

/// The machine-wide cache: `$BRAMBLE_ARM_RIG_CACHE`, else
/// `/var/cache/bramble-arm-rig`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("BRAMBLE_ARM_RIG_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/bramble-arm-rig"))
}

/// What a board boots.
#[derive(Debug, Clone)]
pub struct Kit {
    pub arch: Arch,
    /// The kernel image (`-kernel`).
    pub kernel: PathBuf,
    /// The gzipped newc archive (`-initrd`).
    pub initramfs: PathBuf,
    /// This kit's cache directory.
    pub dir: PathBuf,
}

/// The kit for `arch`, fetched and built on first use (a few seconds plus
/// the download), from the cache afterwards.
pub fn kit(arch: Arch) -> Result<Kit, String> {
    let dir = cache_root().join(format!("{}_{KERNEL_VERSION}", arch.kernel_release()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let _lock = Lock::take(&dir.join(".lock"))?;
    // What a killed run left half-made (under the lock, no one is making it).
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(".tmp-") {
            let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
        }
    }
    let kernel = dir.join("vmlinuz");
    let load = dir.join("modules.load");
    let wanted = dir.join("modules.wanted");
    if !kernel.exists()
        || !load.exists()
        || std::fs::read_to_string(&wanted).ok().as_deref() != Some(&MODULES.join(" "))
    {
        unpack_kernel(arch, &dir)?;
        write_atomic(&wanted, MODULES.join(" ").as_bytes())?;
    }
    let busybox = dir.join("busybox");
    if !busybox.exists() {
        let bytes = crate::busybox::binary(arch.debian())?;
        write_atomic(&busybox, &bytes)?;
    }
    let packages = guest_packages(arch).join(" ");
    let sysroot = dir.join(format!(
        "sysroot-{}",
        &crate::fixtures::digest(packages.as_bytes())[7..19]
    ));
    if !sysroot.exists() {
        unpack_sysroot(arch, &dir, &sysroot)?;
        // Sysroots of other package lists go.
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("sysroot-") && e.path() != sysroot {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let load_list = read(&load)?;
    let hash =
        crate::fixtures::digest(format!("{}\n{load_list}\n{packages}", initramfs::INIT).as_bytes());
    let image = dir.join(format!("initramfs-{}.cpio.gz", &hash[7..23]));
    if !image.exists() {
        let modules: Vec<&str> = load_list.lines().filter(|l| !l.is_empty()).collect();
        let bytes = initramfs::build(
            &std::fs::read(&busybox).map_err(|e| e.to_string())?,
            &dir.join("modules"),
            &modules,
            &sysroot,
        )?;
        write_atomic(&image, &bytes)?;
        // Older archives (another /init or module list) go.
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("initramfs-") && e.path() != image {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(Kit {
        arch,
        kernel,
        initramfs: image,
        dir,
    })
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".tmp-{}-{}",
        name.unwrap_or_default(),
        std::process::id()
    ));
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| {
        format!("running {cmd:?}: {e} (install the Debian packages named in docs/arm.md)")
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The pinned kernel package, downloaded into `dir/debs` when missing.
fn kernel_deb(arch: Arch, dir: &Path) -> Result<PathBuf, String> {
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
    let name = format!(
        "{}_{KERNEL_VERSION}_{}.deb",
        arch.kernel_package(),
        arch.debian()
    );
    let deb = debs.join(&name);
    if deb.exists() {
        return Ok(deb);
    }
    let spec = format!(
        "{}:{}={KERNEL_VERSION}",
        arch.kernel_package(),
        arch.debian()
    );
    run(Command::new("apt-get")
        .args(["download", &spec])
        .current_dir(&debs))
    .map_err(|e| {
        format!(
            "{e}\nThe pinned kernel {spec} could not be downloaded. Run `dpkg --add-architecture {} && apt-get update` \
             first; if the mirror dropped this version, bump KERNEL_ABI/KERNEL_VERSION in tests/src/arm_rig.rs \
             (see docs/arm.md)",
            arch.debian()
        )
    })?;
    deb.exists().then_some(deb).ok_or_else(|| {
        format!(
            "apt-get download {spec} left no {name} in {}",
            debs.display()
        )
    })
}

/// Downloads [`guest_packages`] for `arch` into `dir/debs` (once) and
/// unpacks them into `sysroot`, without [`SYSROOT_PRUNE`].
fn unpack_sysroot(arch: Arch, dir: &Path, sysroot: &Path) -> Result<(), String> {
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
    let have = |pkg: &str| {
        std::fs::read_dir(&debs).ok().and_then(|d| {
            d.flatten().map(|e| e.path()).find(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&format!("{pkg}_"))
                        && n.ends_with(&format!("_{}.deb", arch.debian()))
                })
            })
        })
    };
    let packages = guest_packages(arch);
    let missing: Vec<String> = packages
        .iter()
        .filter(|p| have(p).is_none())
        .map(|p| format!("{p}:{}", arch.debian()))
        .collect();
    if !missing.is_empty() {
        run(Command::new("apt-get")
            .arg("download")
            .args(&missing)
            .current_dir(&debs))
        .map_err(|e| {
            format!(
                "{e}\n(run `dpkg --add-architecture {} && apt-get update` first)",
                arch.debian()
            )
        })?;
    }
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-sysroot-")
        .tempdir_in(dir)
        .map_err(|e| e.to_string())?;
    for pkg in &packages {
        let deb = have(pkg).ok_or_else(|| format!("apt-get download left no {pkg} package"))?;
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(tmp.path()))?;
    }
    for p in SYSROOT_PRUNE {
        let _ = std::fs::remove_dir_all(tmp.path().join(p));
    }
    let tmp = tmp.keep();
    std::fs::rename(&tmp, sysroot).map_err(|e| format!("renaming the sysroot: {e}"))
}

/// Extracts the kernel package, runs `depmod -b` on it, and keeps the
/// kernel image and the needed modules in `dir`.
fn unpack_kernel(arch: Arch, dir: &Path) -> Result<(), String> {
    let deb = kernel_deb(arch, dir)?;
    let tree = tempfile::Builder::new()
        .prefix(".tmp-unpack-")
        .tempdir_in(dir)
        .map_err(|e| e.to_string())?;
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(tree.path()))?;
    let release = arch.kernel_release();
    run(Command::new("depmod")
        .arg("-b")
        .arg(tree.path())
        .arg(&release))?;
    let mods = tree.path().join("lib/modules").join(&release);
    let order = load_order(&read(&mods.join("modules.dep"))?, MODULES)?;
    let keep = dir.join("modules");
    let _ = std::fs::remove_dir_all(&keep);
    for m in &order {
        let to = keep.join(m);
        std::fs::create_dir_all(to.parent().expect("module dir")).map_err(|e| e.to_string())?;
        std::fs::copy(mods.join(m), &to).map_err(|e| format!("copying module {m}: {e}"))?;
    }
    let mut list = order.join("\n");
    list.push('\n');
    write_atomic(&dir.join("modules.load"), list.as_bytes())?;
    let vmlinuz = tree.path().join(format!("boot/vmlinuz-{release}"));
    let bytes =
        std::fs::read(&vmlinuz).map_err(|e| format!("reading {}: {e}", vmlinuz.display()))?;
    write_atomic(&dir.join("vmlinuz"), &bytes)
}

/// A module's name from its path: `kernel/fs/9p/9p.ko` -> `9p`, with `-`
/// read as `_` as the kernel does.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let base = file.split(".ko").next().unwrap_or(file);
    base.replace('-', "_")
}

/// The paths (relative to `/lib/modules/<release>`) of `wanted` and their
/// dependencies from `modules.dep`, each after everything it depends on.
pub fn load_order(modules_dep: &str, wanted: &[&str]) -> Result<Vec<String>, String> {
    let mut deps: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for line in modules_dep.lines() {
        let Some((path, rest)) = line.split_once(':') else {
            continue;
        };
        let needs = rest.split_whitespace().map(str::to_string).collect();
        deps.insert(module_name(path), (path.to_string(), needs));
    }
    fn visit(
        name: &str,
        deps: &BTreeMap<String, (String, Vec<String>)>,
        out: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), String> {
        let (path, needs) = deps
            .get(name)
            .ok_or_else(|| format!("module {name} is not in modules.dep"))?;
        if out.contains(path) {
            return Ok(());
        }
        if depth > 64 {
            return Err(format!("module dependency loop at {name}"));
        }
        // modprobe loads a module's list from its end.
        for n in needs.iter().rev() {
            visit(&module_name(n), deps, out, depth + 1)?;
        }
        out.push(path.clone());
        Ok(())
    }
    let mut out = Vec::new();
    for w in wanted {
        visit(&w.replace('-', "_"), &deps, &mut out, 0)?;
    }
    Ok(out)
}

/// An exclusive `flock` on a file, released on drop.
struct Lock(std::fs::File);

impl Lock {
    fn take(path: &Path) -> Result<Lock, String> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        let rc = flock(&f, libc::LOCK_EX);
        if rc != 0 {
            return Err(format!(
                "locking {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Lock(f))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        flock(&self.0, libc::LOCK_UN);
    }
}

#[allow(unsafe_code)]
fn flock(f: &std::fs::File, op: libc::c_int) -> libc::c_int {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock(2) on a descriptor this File owns; no memory is shared.
    unsafe { libc::flock(f.as_raw_fd(), op) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_load_first_and_once() {
        let dep = "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n\
                   kernel/net/9p/9pnet.ko:\n\
                   kernel/fs/netfs/netfs.ko:\n\
                   kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko\n\
                   kernel/crypto/crc32c_generic.ko:\n";
        let order = load_order(dep, &["9pnet_virtio", "9p", "crc32c-generic"]).unwrap();
        assert_eq!(
            order,
            [
                "kernel/net/9p/9pnet.ko",
                "kernel/net/9p/9pnet_virtio.ko",
                "kernel/fs/netfs/netfs.ko",
                "kernel/fs/9p/9p.ko",
                "kernel/crypto/crc32c_generic.ko"
            ]
        );
        assert!(load_order(dep, &["nope"]).is_err());
    }
}
