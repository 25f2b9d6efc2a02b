//! `bramble build`: check the Dockerfile and the context locally
//! ([`check`]), pack the context into a deterministic tar ([`context_tar`]),
//! upload it to the hub's registry unless it is there ([`upload`]), create a
//! `bramble.dev/v1 Build` naming it and follow it until it ends
//! ([`follow`], printed by [`render`]; one platform's board log, `RUN`
//! output included, by [`output`]; Ctrl-C cancels it, [`interrupt`]);
//! [`run`] strings them together.
//! `--check` stops after the local half.

pub mod check;
pub mod context_tar;
pub mod follow;
pub mod interrupt;
pub mod output;
pub mod render;
pub mod run;
pub mod upload;

pub use check::check;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::args::BuildArgs;

/// One build, as `bramble build`'s flags or a compose service's `build:`
/// describe it: what [`check::prepare`] and [`run::build`] take.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile [default: CONTEXT/Dockerfile].
    pub file: Option<PathBuf>,
    /// Build arguments, resolved.
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `os/arch[/variant]`, at least one.
    pub platforms: Vec<String>,
    /// `NAME[:TAG]` in the hub's registry (needed to build, not to check).
    pub tag: Option<String>,
    pub no_cache: bool,
}

impl Request {
    /// The request of `bramble build`'s flags (a bare `--build-arg KEY`
    /// takes its value from `env`).
    pub fn from_args(
        args: &BuildArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Request> {
        Ok(Request {
            context: args.context.clone(),
            file: args.file.clone(),
            build_args: check::build_args(&args.build_args, env)?,
            target: args.target.clone(),
            platforms: platforms(args),
            tag: args.tag.clone(),
            no_cache: args.no_cache,
        })
    }
}

/// The platforms `--platform` names, or this machine's.
pub fn platforms(args: &BuildArgs) -> Vec<String> {
    match &args.platform {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect(),
        None => default_platforms(),
    }
}

/// What a build without a platform builds for: this machine's platform.
pub fn default_platforms() -> Vec<String> {
    vec![platform_of(std::env::consts::ARCH)]
}

/// `linux/<OCI architecture>` of a Rust target architecture.
pub fn platform_of(arch: &str) -> String {
    let oci = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" | "armv7" => "arm/v7",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{oci}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_architectures_map_to_oci_platforms() {
        assert_eq!(platform_of("x86_64"), "linux/amd64");
        assert_eq!(platform_of("aarch64"), "linux/arm64");
        assert_eq!(platform_of("arm"), "linux/arm/v7");
        assert_eq!(platform_of("riscv64"), "linux/riscv64");
    }
}
