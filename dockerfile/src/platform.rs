//! Build platforms (`linux/arm64`, `linux/arm/v7`) normalized as containerd
//! and BuildKit do, and the predefined platform build arguments they give
//! (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`, and the
//! `BUILD*` ones).

use std::fmt;

use serde::Serialize;

use crate::{Error, ErrorKind};

/// A normalized platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    /// Empty when it is the architecture's default (arm64 v8, amd64 v1).
    pub variant: String,
}

impl Platform {
    /// Parses `os/arch[/variant]` (or just `arch`, meaning linux), normalizing
    /// `aarch64`→`arm64`, `armhf`/`armv7l`→`arm/v7`, `x86_64`→`amd64`, and
    /// adding arm's default variant v7.
    pub fn parse(s: &str) -> Result<Platform, Error> {
        let bad = || {
            Error::new(ErrorKind::Request, 0, format!("invalid platform {s:?}"))
                .hint("write OS/ARCH[/VARIANT], e.g. linux/arm64 or linux/arm/v7")
        };
        let parts: Vec<&str> = s.trim().split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [arch] if !arch.is_empty() => ("linux", *arch, ""),
            [os, arch] if !os.is_empty() && !arch.is_empty() => (*os, *arch, ""),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                (*os, *arch, *v)
            }
            _ => return Err(bad()),
        };
        let os = os.to_ascii_lowercase();
        let arch = arch.to_ascii_lowercase();
        let variant = variant.to_ascii_lowercase();
        let (architecture, variant) = match arch.as_str() {
            "aarch64" | "arm64" => match variant.as_str() {
                "" | "8" | "v8" => ("arm64", String::new()),
                _ => ("arm64", variant),
            },
            "armhf" | "armv7l" | "armv7" => ("arm", "v7".to_string()),
            "armel" | "armv6l" | "armv6" => ("arm", "v6".to_string()),
            "arm" => match variant.as_str() {
                "" | "7" | "v7" => ("arm", "v7".to_string()),
                "6" | "v6" => ("arm", "v6".to_string()),
                "5" | "v5" => ("arm", "v5".to_string()),
                "8" | "v8" => ("arm", "v8".to_string()),
                _ => return Err(bad()),
            },
            "x86_64" | "x86-64" | "amd64" => match variant.as_str() {
                "" | "v1" => ("amd64", String::new()),
                _ => ("amd64", variant),
            },
            "i386" | "386" | "i686" => ("386", variant),
            other if other.chars().all(|c| c.is_ascii_alphanumeric()) => (other, variant),
            _ => return Err(bad()),
        };
        Ok(Platform {
            os,
            architecture: architecture.to_string(),
            variant,
        })
    }

    /// The predefined arguments for this platform, with `prefix` `TARGET` or `BUILD`.
    pub fn build_args(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            (format!("{prefix}PLATFORM"), self.to_string()),
            (format!("{prefix}OS"), self.os.clone()),
            (format!("{prefix}ARCH"), self.architecture.clone()),
            (format!("{prefix}VARIANT"), self.variant.clone()),
        ]
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_containerd() {
        let p = |s| Platform::parse(s).unwrap().to_string();
        assert_eq!(p("linux/arm64"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("linux/arm"), "linux/arm/v7");
        assert_eq!(p("linux/armhf"), "linux/arm/v7");
        assert_eq!(p("linux/arm/v6"), "linux/arm/v6");
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("arm64"), "linux/arm64");
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn predefined_args() {
        let args = Platform::parse("linux/arm/v7")
            .unwrap()
            .build_args("TARGET");
        assert_eq!(
            args,
            [
                ("TARGETPLATFORM".to_string(), "linux/arm/v7".to_string()),
                ("TARGETOS".to_string(), "linux".to_string()),
                ("TARGETARCH".to_string(), "arm".to_string()),
                ("TARGETVARIANT".to_string(), "v7".to_string()),
            ]
        );
    }
}
