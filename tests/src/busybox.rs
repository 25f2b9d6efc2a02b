//! Fixture images built from Debian's `busybox-static` for amd64, arm64 and
//! armhf (no emulation needed to pack them): `busybox` (a shell) and `httpd`
//! (busybox httpd serving `/www` on port 8080), each one multi-arch index of
//! [`PLATFORMS`].
//!
//! The `.deb` files come from `apt-get download`; `scripts/test` prepares them
//! (it adds the arm64 and armhf architectures to dpkg) into
//! `target/fixtures/debs/`, and this module downloads them itself when they
//! are missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixtures::{Entry, MultiImage, platform_image_of};

/// Applets linked into `/bin` of the fixture images.
pub const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "sleep", "httpd", "wget", "env", "id", "true", "false", "mkdir",
    "rm", "printf", "hostname", "ps", "grep", "head", "tail", "date", "nc", "test", "touch", "yes",
    "kill", "seq", "dd", "wc", "tar", "md5sum", "chmod", "cp",
];

/// The fixture images' platforms and the Debian architecture each one's
/// busybox comes from: armhf is the OCI `linux/arm/v7`.
pub const PLATFORMS: &[(&str, &str)] = &[
    ("linux/amd64", "amd64"),
    ("linux/arm64", "arm64"),
    ("linux/arm/v7", "armhf"),
];

/// Where the `.deb` files are kept between runs.
pub fn debs_dir() -> PathBuf {
    std::env::var_os("BRAMBLE_FIXTURE_DEBS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/fixtures/debs"))
}

fn find_deb(dir: &Path, arch: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("busybox-static_") && n.ends_with(&format!("_{arch}.deb"))
            })
        })
}

/// The `busybox-static` package for `arch` (`amd64`, `arm64`, `armhf`), downloading it
/// with `apt-get download` when it is not cached.
pub fn deb(arch: &str) -> Result<PathBuf, String> {
    let dir = debs_dir();
    if let Some(p) = find_deb(&dir, arch) {
        return Ok(p);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let out = Command::new("apt-get")
        .args(["download", &format!("busybox-static:{arch}")])
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("running apt-get download: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "apt-get download busybox-static:{arch} failed (for a foreign architecture run `dpkg --add-architecture {arch} && apt-get update` first, as scripts/test does): {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    find_deb(&dir, arch).ok_or_else(|| {
        format!(
            "apt-get download left no busybox-static {arch} package in {}",
            dir.display()
        )
    })
}

/// The static busybox binary inside the package for `arch`.
pub fn binary(arch: &str) -> Result<Vec<u8>, String> {
    let deb = deb(arch)?;
    let out = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .output()
        .map_err(|e| format!("running dpkg-deb: {e}"))?;
    if !out.status.success() {
        return Err(format!("dpkg-deb --fsys-tarfile {} failed", deb.display()));
    }
    let mut archive = tar::Archive::new(&out.stdout[..]);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        if path.trim_start_matches("./") == "bin/busybox" {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| e.to_string())?;
            return Ok(bytes);
        }
    }
    Err(format!("{} holds no bin/busybox", deb.display()))
}

fn image(extra: &[Entry], cmd: &[&str]) -> Result<MultiImage, String> {
    let mut images = Vec::new();
    for (platform, arch) in PLATFORMS {
        images.push(one_platform(platform, arch, extra, cmd)?);
    }
    Ok(MultiImage::new(images))
}

/// busybox with its applets' links and `extra`, for one platform.
fn one_platform(
    platform: &str,
    arch: &str,
    extra: &[Entry],
    cmd: &[&str],
) -> Result<crate::fixtures::PlatformImage, String> {
    let bin = binary(arch)?;
    let links: Vec<String> = APPLETS.iter().map(|a| format!("bin/{a}")).collect();
    let mut entries = vec![Entry::File("bin/busybox", &bin, 0o755)];
    entries.extend(links.iter().map(|l| Entry::Symlink(l, "busybox")));
    entries.extend(extra.iter().cloned());
    Ok(platform_image_of(platform, &entries, cmd))
}

/// `busybox`: a shell image for linux/amd64, linux/arm64 and linux/arm/v7.
pub fn busybox_image() -> Result<MultiImage, String> {
    image(&[], &["sh"])
}

/// `httpd`: busybox httpd serving `/www/index.html` on port 8080.
pub fn httpd_image() -> Result<MultiImage, String> {
    image(
        &[Entry::File(
            "www/index.html",
            b"<h1>Hello from Bramble</h1>\n",
            0o644,
        )],
        &["httpd", "-f", "-v", "-p", "8080", "-h", "/www"],
    )
}

/// `busybox` for this machine's platform only, with `extra` entries (a
/// large file makes a large image).
pub fn busybox_here_with(extra: &[Entry]) -> Result<MultiImage, String> {
    let (platform, arch) = PLATFORMS
        .iter()
        .find(|(_, arch)| {
            *arch
                == match std::env::consts::ARCH {
                    "aarch64" => "arm64",
                    "arm" => "armhf",
                    _ => "amd64",
                }
        })
        .ok_or("no busybox fixture for this machine's architecture")?;
    Ok(MultiImage::new(vec![one_platform(
        platform,
        arch,
        extra,
        &["sh"],
    )?]))
}

/// The ELF machine of a binary: 62 x86-64, 183 aarch64, 40 arm.
pub fn elf_machine(bin: &[u8]) -> Option<u16> {
    (bin.len() > 20 && &bin[..4] == b"\x7fELF").then(|| u16::from_le_bytes([bin[18], bin[19]]))
}
