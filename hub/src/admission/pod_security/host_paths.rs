//! `--allowed-host-paths`: host directories whose `hostPath` volumes
//! Baseline admits. Matching is component-wise (`/srv/data` allows
//! `/srv/data` and `/srv/data/x`, never `/srv/database`), and a path with a
//! `..` component is never allowed, whatever it would resolve to.
//!
//! The hub cannot see the nodes' filesystems: a symbolic link inside an
//! allowed directory is followed by the node's mount. Allow only
//! directories that the pods' users cannot plant links in.

use std::fmt;
use std::str::FromStr;

/// An `--allowed-host-paths` entry that is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPathError {
    #[error("{0:?}: must be an absolute path (e.g. /srv/data)")]
    NotAbsolute(String),
    #[error("{0:?}: must not contain a '..' component")]
    DotDot(String),
}

/// The components of an absolute path without `..`; empty and `.`
/// components are dropped. `None` for a relative path or one with `..`.
fn components(path: &str) -> Option<Vec<&str>> {
    if !path.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    (!parts.contains(&"..")).then_some(parts)
}

/// One allowed host directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHostPath {
    text: String,
    components: Vec<String>,
}

impl AllowedHostPath {
    /// Whether a `hostPath` volume of `path` is this directory or below it.
    pub fn allows(&self, path: &str) -> bool {
        components(path).is_some_and(|c| {
            c.len() >= self.components.len() && self.components.iter().zip(&c).all(|(a, b)| a == b)
        })
    }
}

impl FromStr for AllowedHostPath {
    type Err = HostPathError;
    fn from_str(text: &str) -> Result<AllowedHostPath, HostPathError> {
        if !text.starts_with('/') {
            return Err(HostPathError::NotAbsolute(text.into()));
        }
        let components = components(text).ok_or_else(|| HostPathError::DotDot(text.into()))?;
        Ok(AllowedHostPath {
            text: text.into(),
            components: components.into_iter().map(String::from).collect(),
        })
    }
}

impl fmt::Display for AllowedHostPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_is_by_component_and_refuses_dot_dot() {
        let a: AllowedHostPath = "/srv/data/".parse().unwrap();
        for ok in ["/srv/data", "/srv/data/", "/srv//data/x", "/srv/./data/x/y"] {
            assert!(a.allows(ok), "{ok}");
        }
        for no in [
            "/srv/database",
            "/srv",
            "/",
            "srv/data",
            "/srv/data/../../etc",
            "/srv/data/x/..",
        ] {
            assert!(!a.allows(no), "{no}");
        }
        let root: AllowedHostPath = "/".parse().unwrap();
        assert!(root.allows("/etc") && !root.allows("/etc/../x"));
        assert_eq!(
            "data".parse::<AllowedHostPath>(),
            Err(HostPathError::NotAbsolute("data".into()))
        );
        assert_eq!(
            "/srv/../etc".parse::<AllowedHostPath>(),
            Err(HostPathError::DotDot("/srv/../etc".into()))
        );
        assert_eq!(a.to_string(), "/srv/data/");
    }
}
