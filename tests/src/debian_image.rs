//! Debian-based fixture images, the bases of real projects' Dockerfiles in
//! `tests/tests/build_projects.rs` and of the compose projects in
//! `cli/tests/compose_projects.rs`: [`Base::Python`] (Debian's python3 with
//! flask, the redis client and pip, as `python:3.11` would be),
//! [`Base::Nginx`] (Debian's nginx set up as the official `nginx` image: a
//! server on port 80 for `/usr/share/nginx/html`, logs to stdout and stderr)
//! and [`Base::Redis`] (Debian's redis-server set up as the official `redis`
//! image: its entrypoint, `/data` as the working directory). Each is one layer of
//! a root filesystem unpacked from Debian packages of this machine's
//! architecture, for this machine's platform, or (`image_for`) one per
//! architecture asked for, from that architecture's packages: what a board
//! of it runs (`tests/tests/arm.rs` builds on the emulated arm64 board).
//!
//! `scripts/test` (`ensure_fixture_project_debs`, scripts/lib/setup.sh, where
//! the package lists are) downloads each base's packages and their
//! `Depends`/`Pre-Depends` closure, as apt resolves it, into
//! `target/fixtures/debian-images/NAME/debs/` (another architecture's in
//! `NAME@ARCH/debs/`), and names the set in
//! `NAME/packages` when it is complete; `BRAMBLE_FIXTURE_DEBIAN_IMAGES` names
//! another directory of that shape. Nothing is downloaded here: a missing set
//! is an error naming the command that fetches it. No maintainer scripts
//! run: what they would make that an image needs is made here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::fixtures::{MultiImage, layer_of_dir, platform_image_with};

/// Debian's default `PATH` (and the official images').
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A Debian-based fixture image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `python3` (3.11), flask, redis-py and pip; `CMD ["python3"]`.
    Python,
    /// nginx serving `/usr/share/nginx/html` on port 80;
    /// `CMD ["nginx", "-g", "daemon off;"]`.
    Nginx,
    /// redis-server (7.0) on port 6379, its data in `/data`;
    /// `ENTRYPOINT ["docker-entrypoint.sh"]`, `CMD ["redis-server"]`.
    Redis,
}

/// The official `redis` image's entrypoint, less its switch to the `redis`
/// user: `redis-server` is prepended to options and a config file, and a
/// server started without a config file listens to other hosts
/// (`--protected-mode no`), as a container's clients are.
const REDIS_ENTRYPOINT: &str = r#"#!/bin/sh
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi
if [ "$1" = redis-server ] && [ "${2%.conf}" = "${2:-}" ]; then
	set -- "$@" --protected-mode no
fi
exec "$@"
"#;

impl Base {
    /// Its name in scripts/lib/setup.sh's `FIXTURE_DEBIAN_IMAGES`.
    pub fn name(self) -> &'static str {
        match self {
            Base::Python => "python",
            Base::Nginx => "nginx",
            Base::Redis => "redis",
        }
    }

    /// The image config's `config`, as the official image's.
    fn config(self) -> Value {
        match self {
            Base::Python => json!({"Env": [PATH, "LANG=C.UTF-8"], "Cmd": ["python3"]}),
            Base::Nginx => json!({
                "Env": [PATH],
                "Cmd": ["nginx", "-g", "daemon off;"],
                "ExposedPorts": {"80/tcp": {}},
                "StopSignal": "SIGQUIT",
            }),
            Base::Redis => json!({
                "Env": [PATH],
                "Entrypoint": ["docker-entrypoint.sh"],
                "Cmd": ["redis-server"],
                "ExposedPorts": {"6379/tcp": {}},
                "Volumes": {"/data": {}},
                "WorkingDir": "/data",
            }),
        }
    }

    /// What this base needs beyond the unpacked packages.
    fn finish(self, root: &Path) -> Result<(), String> {
        match self {
            Base::Python => Ok(()),
            Base::Nginx => {
                // nginx-common's postinst would enable a site of /var/www/html;
                // the official image serves /usr/share/nginx/html from conf.d.
                write(
                    &root.join("etc/nginx/conf.d/default.conf"),
                    "server {\n    listen 80;\n    server_name localhost;\n    \
                     location / {\n        root /usr/share/nginx/html;\n        \
                     index index.html index.htm;\n    }\n}\n",
                )?;
                for (log, to) in [("access.log", "/dev/stdout"), ("error.log", "/dev/stderr")] {
                    let link = root.join("var/log/nginx").join(log);
                    std::os::unix::fs::symlink(to, &link)
                        .map_err(|e| format!("linking {} to {to}: {e}", link.display()))?;
                }
                Ok(())
            }
            Base::Redis => {
                let data = root.join("data");
                std::fs::create_dir_all(&data)
                    .map_err(|e| format!("creating {}: {e}", data.display()))?;
                let entrypoint = root.join("usr/local/bin/docker-entrypoint.sh");
                std::fs::create_dir_all(root.join("usr/local/bin"))
                    .map_err(|e| format!("creating /usr/local/bin: {e}"))?;
                write(&entrypoint, REDIS_ENTRYPOINT)?;
                std::fs::set_permissions(
                    &entrypoint,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .map_err(|e| format!("chmod {}: {e}", entrypoint.display()))
            }
        }
    }
}

/// This machine's platform and the Debian architecture its packages are of.
pub fn platform() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("linux/arm64", "arm64"),
        "arm" => ("linux/arm/v7", "armhf"),
        _ => ("linux/amd64", "amd64"),
    }
}

/// The OCI platform of Debian architecture `arch`.
fn platform_of(arch: &str) -> Result<&'static str, String> {
    match arch {
        "amd64" => Ok("linux/amd64"),
        "arm64" => Ok("linux/arm64"),
        "armhf" => Ok("linux/arm/v7"),
        other => Err(format!(
            "no fixture platform for Debian architecture {other}"
        )),
    }
}

/// The directory name of `base`'s set for `arch`: `NAME` for this
/// machine's architecture, `NAME@ARCH` for another (scripts/lib/setup.sh's
/// `NAME@ARCH:PACKAGES`).
fn set_name(base: Base, arch: &str) -> String {
    if arch == platform().1 {
        base.name().to_string()
    } else {
        format!("{}@{arch}", base.name())
    }
}

/// Where the package sets are kept.
pub fn sets_dir() -> PathBuf {
    std::env::var_os("BRAMBLE_FIXTURE_DEBIAN_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/fixtures/debian-images"))
}

/// The `.deb` files of `base`'s set for Debian architecture `arch`,
/// sorted, and the packages it was asked for; an error naming the set-up
/// command when the set is missing.
pub fn debs(base: Base, arch: &str) -> Result<(Vec<PathBuf>, String), String> {
    let dir = sets_dir().join(set_name(base, arch));
    let fetch = "run `source scripts/lib/setup.sh && ensure_fixture_project_debs` as root in the \
                 workspace (scripts/test does), or set BRAMBLE_FIXTURE_DEBIAN_IMAGES to a \
                 directory where that was run";
    let packages = std::fs::read_to_string(dir.join("packages")).map_err(|e| {
        format!(
            "the packages of the Debian fixture image `{}` are not downloaded ({}: {e}): {fetch}",
            set_name(base, arch),
            dir.join("packages").display()
        )
    })?;
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir.join("debs"))
        .map_err(|e| format!("reading {}/debs: {e}: {fetch}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    if let Some(other) = debs.iter().find(|p| {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        !n.ends_with(&format!("_{arch}.deb")) && !n.ends_with("_all.deb")
    }) {
        return Err(format!(
            "{} is not a package of the set's architecture ({arch}): {fetch}",
            other.display()
        ));
    }
    if debs.is_empty() {
        return Err(format!("{}/debs holds no .deb: {fetch}", dir.display()));
    }
    Ok((debs, packages.trim().to_string()))
}

/// Unpacks `base`'s packages for `arch` into the empty directory `root` (no
/// program of theirs runs: any architecture unpacks anywhere) and adds what
/// an image needs: merged `/usr` (`/bin`, `/sbin`, `/lib` and, on amd64,
/// `/lib64` link into `/usr`, as on Debian 12), `/etc/passwd` and
/// `/etc/group` from base-passwd, `/tmp` 1777, `/etc/os-release` (base-files).
pub fn rootfs(base: Base, arch: &str, root: &Path) -> Result<(), String> {
    let (debs, _) = debs(base, arch)?;
    let mut merged = vec!["bin", "sbin", "lib"];
    if arch == "amd64" {
        merged.push("lib64");
    }
    for dir in merged {
        let real = root.join("usr").join(dir);
        std::fs::create_dir_all(&real).map_err(|e| format!("creating {}: {e}", real.display()))?;
        std::os::unix::fs::symlink(format!("usr/{dir}"), root.join(dir))
            .map_err(|e| format!("linking /{dir}: {e}"))?;
    }
    for deb in &debs {
        unpack(deb, root)?;
    }
    let masters = root.join("usr/share/base-passwd");
    for file in ["passwd", "group"] {
        let master = masters.join(format!("{file}.master"));
        std::fs::copy(&master, root.join("etc").join(file))
            .map_err(|e| format!("{} (is base-passwd in the set?): {e}", master.display()))?;
    }
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("creating /tmp: {e}"))?;
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
        .map_err(|e| format!("chmod /tmp: {e}"))?;
    if !root.join("etc/os-release").exists() {
        return Err("no /etc/os-release: is base-files in the set?".into());
    }
    base.finish(root)
}

/// `dpkg-deb --fsys-tarfile DEB | tar -x --keep-directory-symlink -C ROOT`:
/// `dpkg-deb -x` would replace the merged-`/usr` links with directories.
fn unpack(deb: &Path, root: &Path) -> Result<(), String> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running dpkg-deb: {e}"))?;
    let tar = Command::new("tar")
        .args(["-x", "--keep-directory-symlink", "-C"])
        .arg(root)
        .stdin(dpkg.stdout.take().expect("piped"))
        .status()
        .map_err(|e| format!("running tar: {e}"))?;
    let dpkg = dpkg.wait().map_err(|e| format!("dpkg-deb: {e}"))?;
    if !dpkg.success() || !tar.success() {
        return Err(format!(
            "unpacking {} failed (dpkg-deb {dpkg}, tar {tar})",
            deb.display()
        ));
    }
    Ok(())
}

/// `base` as an image of this machine's platform, one layer.
pub fn image(base: Base) -> Result<MultiImage, String> {
    image_for(base, &[platform().1])
}

/// `base` as a multi-platform image of Debian architectures `arches`, one
/// layer each.
pub fn image_for(base: Base, arches: &[&str]) -> Result<MultiImage, String> {
    let mut images = Vec::new();
    for arch in arches {
        let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
        rootfs(base, arch, dir.path())?;
        let layer = layer_of_dir(dir.path())
            .map_err(|e| format!("packing {}: {e}", dir.path().display()))?;
        images.push(platform_image_with(
            platform_of(arch)?,
            layer,
            base.config(),
        ));
    }
    Ok(MultiImage::new(images))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
