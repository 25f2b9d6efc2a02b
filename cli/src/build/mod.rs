//! `bramble build`: check the Dockerfile and the context locally
//! ([`check`]), pack the context into a deterministic tar ([`context_tar`]),
//! upload it to the hub's registry unless it is there ([`upload`]), create a
//! `bramble.dev/v1 Build` naming it and follow it until it ends
//! ([`follow`], printed by [`render`]); [`run`] strings them together.
//! `--check` stops after the local half.

pub mod check;
pub mod context_tar;
pub mod follow;
pub mod render;
pub mod run;
pub mod upload;

pub use check::check;

use crate::args::BuildArgs;

/// The platforms `--platform` names, or this machine's.
pub fn platforms(args: &BuildArgs) -> Vec<String> {
    match &args.platform {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect(),
        None => vec![platform_of(std::env::consts::ARCH)],
    }
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
