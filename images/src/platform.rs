//! Platforms (`linux/arm64`, `linux/arm/v7`, `linux/amd64`) and choosing the
//! manifest for a node from an image index.
//!
//! Names are normalized the way containerd does, so what a node reports
//! (`uname -m`: `aarch64`, `armv7l`, `armv6l`, `x86_64`; Debian's `armhf`) and
//! what indexes say compare equal: `aarch64`→`arm64` (variant `v8` is the
//! default and is dropped), `armv7l`/`armhf`/`arm`→`arm/v7`, `armv6l`/`armel`→
//! `arm/v6`, `x86_64`→`amd64` (variant `v1` dropped).
//!
//! Matching is variant-aware like containerd's: an `arm64` node takes an
//! `arm64` entry with variant `v8` or none; an `arm/v7` node takes `arm/v7`
//! and, failing that, `arm/v6` then `arm/v5` — never `arm/v8` (an ARMv8
//! 32-bit build may use instructions an ARMv7 core lacks). An `amd64/v3` node
//! takes v3, v2 and v1 builds. Other architectures need an exact variant.
//! Attestation manifests (`unknown/unknown`, or annotated with
//! `vnd.docker.reference.type`) are never selected.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex};

use crate::oci;

/// A normalized platform.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// Go architecture name: `arm64`, `arm`, `amd64`, …
    pub architecture: String,
    /// `v7`, `v6`, …; `None` when it is the architecture's default (`arm64` v8,
    /// `amd64` v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Platform errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error(
        "invalid platform {input:?}: expected os/architecture[/variant] such as \
         linux/arm64, linux/arm/v7 or linux/amd64"
    )]
    Parse { input: String },
    #[error(
        "{} has no {wanted} manifest; {}",
        image.as_deref().map(|i| format!("image {i}")).unwrap_or_else(|| "the image".into()),
        if available.is_empty() {
            "it lists no platforms".to_string()
        } else {
            format!("it has {}", available.join(", "))
        }
    )]
    NoMatch {
        /// The image's name, for the message (see [`PlatformError::for_image`]).
        image: Option<String>,
        wanted: Platform,
        /// The platforms the image has, as `os/arch[/variant]`, sorted.
        available: Vec<String>,
    },
}

impl PlatformError {
    /// Names the image in a [`PlatformError::NoMatch`] message.
    pub fn for_image(mut self, name: impl fmt::Display) -> Self {
        if let PlatformError::NoMatch { image, .. } = &mut self {
            *image = Some(name.to_string());
        }
        self
    }
}

impl Platform {
    /// A platform from any spelling of its parts, normalized (see the module
    /// docs). Use it for what a node reports: `Platform::new("linux",
    /// "aarch64", None)` is `linux/arm64`.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = os.trim().to_ascii_lowercase();
        let arch = architecture.trim().to_ascii_lowercase();
        let variant = variant
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty());
        let v = variant.as_deref();
        let (arch, variant): (&str, Option<String>) = match arch.as_str() {
            "aarch64" | "arm64" | "armv8" | "arm64v8" => (
                "arm64",
                match v {
                    None | Some("8" | "v8" | "v8.0") => None,
                    Some(x) => Some(vprefix(x)),
                },
            ),
            "armhf" | "armv7l" | "armv7" | "armv7hl" | "arm32v7" => ("arm", Some("v7".into())),
            "armel" | "armv6l" | "armv6" | "arm32v6" => ("arm", Some("v6".into())),
            "armv5tel" | "armv5l" | "armv5" | "arm32v5" => ("arm", Some("v5".into())),
            "armv8l" => ("arm", Some("v8".into())),
            "arm" => (
                "arm",
                Some(match v {
                    None | Some("7" | "v7") => "v7".into(),
                    Some(x) => vprefix(x),
                }),
            ),
            "x86_64" | "x86-64" | "amd64" => (
                "amd64",
                match v {
                    None | Some("v1" | "1") => None,
                    Some(x) => Some(vprefix(x)),
                },
            ),
            "i386" | "i486" | "i586" | "i686" | "386" | "x86" => ("386", variant),
            other => (other, variant),
        };
        Platform {
            os,
            architecture: arch.to_string(),
            variant,
        }
    }

    /// The platform of an index entry, normalized.
    pub fn from_oci(p: &oci_spec::image::Platform) -> Platform {
        Platform::new(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        )
    }

    /// The platform an image config declares, normalized.
    pub fn from_config(c: &ImageConfiguration) -> Platform {
        Platform::new(
            &c.os().to_string(),
            &c.architecture().to_string(),
            c.variant().as_deref(),
        )
    }

    /// The platform this process was built for (`linux/arm64` on a 64-bit Pi,
    /// `linux/arm/v7` for the `armv7-unknown-linux-gnueabihf` build). For
    /// 32-bit ARM the Rust target triple decides the variant (see
    /// [`Platform::of_build`]).
    pub fn current() -> Platform {
        Platform::of_build(
            std::env::consts::OS,
            std::env::consts::ARCH,
            env!("BRAMBLE_IMAGES_TARGET"),
        )
    }

    /// The platform of a build for `os` and `arch` (`std::env::consts`) with
    /// the Rust target triple `target`. A 32-bit ARM build's variant is the
    /// ARM architecture version in the triple (`armv7-…`, `thumbv7neon-…` →
    /// `v7`, `armv5te-…` → `v5`); plain `arm-…` targets are ARMv6 (Pi Zero
    /// and 1). Stable rustc hides ARM target features (`v7`) from `cfg!`, so
    /// the triple is the only compile-time source.
    pub fn of_build(os: &str, arch: &str, target: &str) -> Platform {
        if arch != "arm" {
            return Platform::new(os, arch, None);
        }
        let cpu = target.split('-').next().unwrap_or_default();
        let version = cpu
            .strip_prefix("armv")
            .or_else(|| cpu.strip_prefix("thumbv"))
            .and_then(|v| v.chars().next())
            .filter(char::is_ascii_digit)
            .unwrap_or('6');
        Platform::new(os, "arm", Some(&version.to_string()))
    }

    /// How well an entry for `have` suits a node of this platform: `Some(0)`
    /// for an exact match, higher for older-but-compatible variants, `None`
    /// when it cannot run here.
    pub fn rank(&self, have: &Platform) -> Option<u32> {
        if self.os != have.os || self.architecture != have.architecture {
            return None;
        }
        let level = |p: &Platform, default: u32| -> Option<u32> {
            match &p.variant {
                None => Some(default),
                Some(v) => v.strip_prefix('v')?.parse().ok(),
            }
        };
        match self.architecture.as_str() {
            "arm" => {
                let want = level(self, 7)?;
                let got = level(have, 7)?;
                (got <= want && got >= 5).then(|| want - got)
            }
            "amd64" => {
                let want = level(self, 1)?;
                let got = level(have, 1)?;
                (got <= want).then(|| want - got)
            }
            "arm64" => match (&self.variant, &have.variant) {
                (a, b) if a == b => Some(0),
                // A v9 (or v8.x) node runs plain v8 builds.
                (Some(_), None) => Some(1),
                _ => None,
            },
            _ => (self.variant == have.variant).then_some(0),
        }
    }

    /// Whether an entry for `have` can run on a node of this platform.
    pub fn accepts(&self, have: &Platform) -> bool {
        self.rank(have).is_some()
    }
}

fn vprefix(v: &str) -> String {
    if v.starts_with('v') {
        v.to_string()
    } else {
        format!("v{v}")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    /// Parses `os/arch[/variant]` (`linux/arm/v7`) and normalizes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform::new(os, arch, Some(v))),
            _ => Err(PlatformError::Parse {
                input: s.to_string(),
            }),
        }
    }
}

/// Whether an index entry is an attestation (SBOM, provenance) rather than a
/// runnable image.
pub fn is_attestation(d: &Descriptor) -> bool {
    let annotated = d
        .annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key("vnd.docker.reference.type"));
    let unknown = d.platform().as_ref().is_some_and(|p| {
        p.os().to_string() == "unknown" && p.architecture().to_string() == "unknown"
    });
    annotated || unknown
}

/// The runnable platforms an index lists, normalized, sorted, deduplicated.
pub fn index_platforms(index: &ImageIndex) -> Vec<Platform> {
    let mut out: Vec<Platform> = index
        .manifests()
        .iter()
        .filter(|d| !is_attestation(d))
        .filter_map(|d| d.platform().as_ref().map(Platform::from_oci))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Chooses the manifest for a node of platform `want` from `index`: the
/// best-ranked runnable entry (see [`Platform::rank`]), the first one listed
/// among equals. Entries that are attestations, have no platform, or are not
/// image manifests are skipped. The error lists the platforms the image has;
/// name the image with [`PlatformError::for_image`].
pub fn select(index: &ImageIndex, want: &Platform) -> Result<Descriptor, PlatformError> {
    let mut best: Option<(u32, &Descriptor)> = None;
    for d in index.manifests() {
        if is_attestation(d) || !oci::is_manifest(d.media_type().as_ref()) {
            continue;
        }
        let Some(p) = d.platform() else { continue };
        if let Some(rank) = want.rank(&Platform::from_oci(p))
            && best.is_none_or(|(r, _)| rank < r)
        {
            best = Some((rank, d));
        }
    }
    best.map(|(_, d)| d.clone())
        .ok_or_else(|| PlatformError::NoMatch {
            image: None,
            wanted: want.clone(),
            available: index_platforms(index)
                .iter()
                .map(|p| p.to_string())
                .collect(),
        })
}

/// For an image that is a single manifest: checks that its config's platform
/// can run on `want`, with the same error as [`select`].
pub fn check_config(config: &ImageConfiguration, want: &Platform) -> Result<(), PlatformError> {
    let have = Platform::from_config(config);
    if want.accepts(&have) {
        Ok(())
    } else {
        Err(PlatformError::NoMatch {
            image: None,
            wanted: want.clone(),
            available: vec![have.to_string()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;
    use serde_json::json;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    fn entry(platform: serde_json::Value, tag: &str) -> serde_json::Value {
        json!({
            "mediaType": oci::media_types::OCI_MANIFEST,
            "digest": Digest::of(tag.as_bytes()).to_string(),
            "size": 100,
            "platform": platform,
        })
    }

    fn index(entries: Vec<serde_json::Value>) -> ImageIndex {
        serde_json::from_value(json!({"schemaVersion": 2, "manifests": entries})).unwrap()
    }

    fn chosen(i: &ImageIndex, want: &str) -> Result<String, PlatformError> {
        let d = select(i, &p(want))?;
        let tag = [
            "amd64", "amd64v3", "arm64", "arm64v8", "v7", "v6", "v5", "v8", "att", "bare",
        ]
        .into_iter()
        .find(|t| Digest::of(t.as_bytes()).to_string() == d.digest().to_string())
        .unwrap();
        Ok(tag.to_string())
    }

    #[test]
    fn parses_and_normalizes() {
        assert_eq!(p("linux/arm64").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), p("linux/arm64"));
        assert_eq!(p("linux/arm/v7").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/arm"), p("linux/arm/v7"));
        assert_eq!(p("linux/amd64").variant, None);
        assert_eq!(p("linux/amd64/v1"), p("linux/amd64"));
        assert_eq!(p("linux/amd64/v3").to_string(), "linux/amd64/v3");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//v7".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
        let e = "arm64".parse::<Platform>().unwrap_err().to_string();
        assert!(e.contains("linux/arm64"), "{e}");
    }

    #[test]
    fn normalizes_what_nodes_report() {
        assert_eq!(Platform::new("Linux", "aarch64", None), p("linux/arm64"));
        assert_eq!(
            Platform::new("linux", "aarch64", Some("v8")),
            p("linux/arm64")
        );
        assert_eq!(Platform::new("linux", "armv7l", None), p("linux/arm/v7"));
        assert_eq!(Platform::new("linux", "armhf", None), p("linux/arm/v7"));
        assert_eq!(Platform::new("linux", "armv6l", None), p("linux/arm/v6"));
        assert_eq!(Platform::new("linux", "x86_64", None), p("linux/amd64"));
        assert_eq!(Platform::new("linux", "arm", Some("6")), p("linux/arm/v6"));
        assert_eq!(
            Platform::new("linux", "riscv64", None).to_string(),
            "linux/riscv64"
        );
        assert_eq!(Platform::current().os, std::env::consts::OS);
    }

    #[test]
    fn a_build_is_the_platform_of_its_target_triple() {
        let of = |arch, target| Platform::of_build("linux", arch, target).to_string();
        assert_eq!(of("arm", "armv7-unknown-linux-gnueabihf"), "linux/arm/v7");
        assert_eq!(of("arm", "armv7-unknown-linux-musleabihf"), "linux/arm/v7");
        assert_eq!(
            of("arm", "thumbv7neon-unknown-linux-gnueabihf"),
            "linux/arm/v7"
        );
        assert_eq!(of("arm", "arm-unknown-linux-gnueabihf"), "linux/arm/v6");
        assert_eq!(of("arm", "armv5te-unknown-linux-gnueabi"), "linux/arm/v5");
        assert_eq!(of("aarch64", "aarch64-unknown-linux-musl"), "linux/arm64");
        assert_eq!(of("x86_64", "x86_64-unknown-linux-gnu"), "linux/amd64");
        // This build: its triple reached the crate.
        assert_eq!(
            Platform::current(),
            Platform::of_build(
                std::env::consts::OS,
                std::env::consts::ARCH,
                env!("BRAMBLE_IMAGES_TARGET")
            )
        );
        assert!(!env!("BRAMBLE_IMAGES_TARGET").is_empty());
    }

    fn multi_arch() -> ImageIndex {
        index(vec![
            entry(json!({"os": "linux", "architecture": "amd64"}), "amd64"),
            entry(
                json!({"os": "linux", "architecture": "arm64", "variant": "v8"}),
                "arm64v8",
            ),
            entry(
                json!({"os": "linux", "architecture": "arm", "variant": "v7"}),
                "v7",
            ),
            entry(
                json!({"os": "linux", "architecture": "arm", "variant": "v6"}),
                "v6",
            ),
            entry(json!({"os": "unknown", "architecture": "unknown"}), "att"),
        ])
    }

    #[test]
    fn selects_per_node_platform() {
        let i = multi_arch();
        assert_eq!(chosen(&i, "linux/amd64").unwrap(), "amd64");
        assert_eq!(chosen(&i, "linux/arm64").unwrap(), "arm64v8");
        assert_eq!(chosen(&i, "linux/arm/v7").unwrap(), "v7");
        assert_eq!(chosen(&i, "linux/arm/v6").unwrap(), "v6");
        // An arm64 entry without variant is fine for an arm64 node too.
        let i = index(vec![entry(
            json!({"os": "linux", "architecture": "arm64"}),
            "arm64",
        )]);
        assert_eq!(chosen(&i, "linux/arm64").unwrap(), "arm64");
    }

    #[test]
    fn armv7_falls_back_to_v6_and_v5_but_never_v8() {
        let v6v5 = index(vec![
            entry(
                json!({"os": "linux", "architecture": "arm", "variant": "v5"}),
                "v5",
            ),
            entry(
                json!({"os": "linux", "architecture": "arm", "variant": "v6"}),
                "v6",
            ),
        ]);
        assert_eq!(chosen(&v6v5, "linux/arm/v7").unwrap(), "v6");
        let v5 = index(vec![entry(
            json!({"os": "linux", "architecture": "arm", "variant": "v5"}),
            "v5",
        )]);
        assert_eq!(chosen(&v5, "linux/arm/v7").unwrap(), "v5");
        let v8 = index(vec![
            entry(
                json!({"os": "linux", "architecture": "arm", "variant": "v8"}),
                "v8",
            ),
            entry(json!({"os": "linux", "architecture": "arm64"}), "arm64"),
        ]);
        let e = chosen(&v8, "linux/arm/v7").unwrap_err();
        assert!(
            e.to_string().contains("has no linux/arm/v7 manifest"),
            "{e}"
        );
        // And a v6 node does not take a v7 build.
        let v7 = index(vec![entry(
            json!({"os": "linux", "architecture": "arm", "variant": "v7"}),
            "v7",
        )]);
        assert!(chosen(&v7, "linux/arm/v6").is_err());
    }

    #[test]
    fn missing_platform_error_lists_what_the_image_has() {
        let i = index(vec![
            entry(json!({"os": "linux", "architecture": "arm64"}), "arm64"),
            entry(json!({"os": "linux", "architecture": "amd64"}), "amd64"),
            entry(json!({"os": "unknown", "architecture": "unknown"}), "att"),
        ]);
        let e = select(&i, &p("linux/arm/v7"))
            .unwrap_err()
            .for_image("web:1");
        assert_eq!(
            e.to_string(),
            "image web:1 has no linux/arm/v7 manifest; it has linux/amd64, linux/arm64"
        );
        let empty = index(vec![]);
        let e = select(&empty, &p("linux/arm64")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the image has no linux/arm64 manifest; it lists no platforms"
        );
    }

    #[test]
    fn skips_attestations_by_annotation() {
        let mut att = entry(json!({"os": "linux", "architecture": "arm64"}), "att");
        att["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
        let i = index(vec![
            att,
            entry(json!({"os": "linux", "architecture": "arm64"}), "arm64"),
        ]);
        assert_eq!(chosen(&i, "linux/arm64").unwrap(), "arm64");
        let only_att = index(vec![entry(
            json!({"os": "unknown", "architecture": "unknown"}),
            "att",
        )]);
        assert!(select(&only_att, &p("linux/arm64")).is_err());
    }

    #[test]
    fn amd64_levels() {
        let i = index(vec![
            entry(json!({"os": "linux", "architecture": "amd64"}), "amd64"),
            entry(
                json!({"os": "linux", "architecture": "amd64", "variant": "v3"}),
                "amd64v3",
            ),
        ]);
        assert_eq!(chosen(&i, "linux/amd64").unwrap(), "amd64");
        assert_eq!(chosen(&i, "linux/amd64/v3").unwrap(), "amd64v3");
        assert_eq!(chosen(&i, "linux/amd64/v2").unwrap(), "amd64");
    }

    #[test]
    fn single_manifest_config_check() {
        let c: ImageConfiguration = serde_json::from_value(json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .unwrap();
        assert!(check_config(&c, &p("linux/amd64")).is_ok());
        let e = check_config(&c, &p("linux/arm64"))
            .unwrap_err()
            .for_image("web:1");
        assert_eq!(
            e.to_string(),
            "image web:1 has no linux/arm64 manifest; it has linux/amd64"
        );
    }
}
