//! `bramble.dev/v1 Build`: an image built from a Dockerfile on the boards.
//! The CLI (`bramble build`) uploads the build context to the hub's
//! registry as one blob and creates a Build naming it; the hub plans the
//! build for each platform, runs it on a Ready node of that architecture
//! and pushes the result to its registry as `spec.image`. `status` tells
//! how far each platform got, step by step. Deleting a Build cancels it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors};
use crate::meta::ObjectMeta;

/// Phases of a Build and of each of its platforms.
pub const PHASES: &[&str] = &["Pending", "Running", "Succeeded", "Failed"];

/// Architectures a platform may name (`linux/ARCH[/VARIANT]`).
const ARCHES: &[&str] = &[
    "amd64", "arm64", "arm", "386", "riscv64", "ppc64le", "s390x",
];

/// `bramble.dev/v1 Build`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "dev.bramble.v1.Build")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Build {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BuildSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BuildStatus>,
}

/// What to build.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "dev.bramble.v1.BuildSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildSpec {
    /// Where the result goes: `NAME[:TAG]` in the hub's registry (tag
    /// `latest` when unset).
    #[serde(default)]
    pub image: String,
    /// The build context: a tar blob in the registry repository of `image`.
    #[serde(default)]
    pub context: BuildContext,
    /// Path of the Dockerfile inside the context (`Dockerfile` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// `--build-arg KEY=VALUE`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// `--target STAGE` (the last stage when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `linux/arm64`, `linux/arm/v7`, …: one image per platform, built on a
    /// node of that platform; several make an image index.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Run every step, reusing no cached layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
}

/// A build context blob.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "dev.bramble.v1.BuildContext")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildContext {
    /// `sha256:…` of the tar.
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub size: i64,
}

/// How far a Build got, written by the hub.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "dev.bramble.v1.BuildStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatus {
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    #[serde(default)]
    pub phase: String,
    /// Why it failed (or what it waits for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Digest of the pushed manifest (one platform) or image index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformBuildStatus>,
}

/// One platform of a Build.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "dev.bramble.v1.PlatformBuildStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct PlatformBuildStatus {
    pub platform: String,
    /// The node it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default)]
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Digest of this platform's manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<BuildStepStatus>,
}

/// One step of a platform's build, as `docker build` prints it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "dev.bramble.v1.BuildStepStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct BuildStepStatus {
    /// `[stage-name 2/3] RUN make`.
    pub name: String,
    /// `Pending`, `Running`, `Succeeded` (ran or cached) or `Failed`.
    #[serde(default)]
    pub phase: String,
    /// Taken from the layer cache, not run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// How long it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_millis: Option<u64>,
    /// A `RUN` that failed: its exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Build {
    /// The Build's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The Build's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// The Dockerfile's path in the context.
    pub fn dockerfile(&self) -> &str {
        self.spec.dockerfile.as_deref().unwrap_or("Dockerfile")
    }

    /// `(repository, tag)` of `spec.image`.
    pub fn repository_and_tag(&self) -> (&str, &str) {
        split_image(&self.spec.image)
    }

    /// The phase, `Pending` before the hub wrote one.
    pub fn phase(&self) -> &str {
        match self.status.as_ref().map(|s| s.phase.as_str()) {
            Some(p) if !p.is_empty() => p,
            _ => "Pending",
        }
    }

    /// Whether the build has ended.
    pub fn finished(&self) -> bool {
        matches!(self.phase(), "Succeeded" | "Failed")
    }
}

/// `NAME[:TAG]` → (`NAME`, `TAG` or `latest`).
pub fn split_image(image: &str) -> (&str, &str) {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].find(':') {
        Some(i) => (&image[..slash + i], &image[slash + i + 1..]),
        None => (image, "latest"),
    }
}

/// Why `image` cannot name a build result, if it cannot.
fn check_image(image: &str) -> Option<String> {
    let (repo, tag) = split_image(image);
    if image.contains('@') {
        return Some("a build result is named by a tag, not a digest".into());
    }
    let first = repo.split('/').next().unwrap_or("");
    if repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
        return Some(format!(
            "builds push to the hub's registry: give NAME:TAG without a registry host (not {first:?})"
        ));
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.split(['.', '_', '-']).all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
    };
    if repo.is_empty() || !repo.split('/').all(component_ok) {
        return Some(format!(
            "{repo:?} is not a repository name: lowercase letters, digits and single `.`, `_`, `-` between them, `/` between parts"
        ));
    }
    let tag_ok = tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    (!tag_ok).then(|| {
        format!("tag {tag:?}: letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`")
    })
}

/// Why `platform` is not `linux/ARCH[/VARIANT]`, if it is not.
pub fn check_platform(platform: &str) -> Option<String> {
    let parts: Vec<&str> = platform.split('/').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts[0] == "linux"
        && ARCHES.contains(&parts[1])
        && parts.get(2).is_none_or(|v| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    (!ok).then(|| {
        format!(
            "{platform:?} is not a platform: write linux/ARCH[/VARIANT], ARCH one of {}",
            ARCHES.join(", ")
        )
    })
}

impl Object for Build {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn apply_defaults(&mut self) {
        let s = &mut self.spec;
        if !s.image.is_empty() && !s.image[s.image.rfind('/').map_or(0, |i| i + 1)..].contains(':')
        {
            s.image.push_str(":latest");
        }
        s.dockerfile.get_or_insert_with(|| "Dockerfile".into());
    }

    fn validate(&self) -> FieldErrors {
        let s = &self.spec;
        let mut errs = FieldErrors::new();
        if s.image.is_empty() {
            errs.push(FieldError::required("spec.image"));
        } else if let Some(why) = check_image(&s.image) {
            errs.push(FieldError::invalid("spec.image", why));
        }
        let d = &s.context.digest;
        let hex = d.strip_prefix("sha256:").unwrap_or("");
        if d.is_empty() {
            errs.push(FieldError::required_with(
                "spec.context.digest",
                "the sha256 digest of the context tar uploaded to the hub's registry (bramble build does this)",
            ));
        } else if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            errs.push(FieldError::invalid(
                "spec.context.digest",
                format!("{d:?} is not sha256:<64 lowercase hex digits>"),
            ));
        }
        if s.context.size < 0 {
            errs.push(FieldError::invalid(
                "spec.context.size",
                "must be greater than or equal to 0",
            ));
        }
        if let Some(f) = &s.dockerfile
            && (f.is_empty() || f.starts_with('/') || f.split('/').any(|p| p == ".."))
        {
            errs.push(FieldError::invalid(
                "spec.dockerfile",
                format!("{f:?}: give a path inside the context, relative, without `..`"),
            ));
        }
        if s.platforms.is_empty() {
            errs.push(FieldError::required_with(
                "spec.platforms",
                "at least one, e.g. linux/arm64",
            ));
        }
        for (i, p) in s.platforms.iter().enumerate() {
            if let Some(why) = check_platform(p) {
                errs.push(FieldError::invalid(
                    crate::field::index("spec.platforms", i),
                    why,
                ));
            }
            if s.platforms[..i].contains(p) {
                errs.push(FieldError::duplicate(crate::field::index(
                    "spec.platforms",
                    i,
                )));
            }
        }
        for k in s.build_args.keys() {
            if k.is_empty() || k.contains('=') {
                errs.push(FieldError::invalid(
                    "spec.buildArgs",
                    format!("{k:?} is not a build argument name"),
                ));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_and_check_like_references() {
        assert_eq!(split_image("web"), ("web", "latest"));
        assert_eq!(split_image("team/web:1.2"), ("team/web", "1.2"));
        assert_eq!(check_image("team/web:1.2"), None);
        assert!(check_image("Web:1").is_some());
        assert!(
            check_image("ghcr.io/x/web:1")
                .unwrap()
                .contains("registry host")
        );
        assert!(check_image("web:-x").is_some());
        assert!(check_image("web@sha256:00").is_some());
    }

    #[test]
    fn platforms_are_linux_arch_variant() {
        assert_eq!(check_platform("linux/arm/v7"), None);
        assert_eq!(check_platform("linux/amd64"), None);
        assert!(check_platform("linux").is_some());
        assert!(check_platform("windows/amd64").is_some());
        assert!(check_platform("linux/arm64/").is_some());
    }
}
