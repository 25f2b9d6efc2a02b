//! Pod Security levels and versions as the namespace labels spell them:
//! `privileged` < `baseline` < `restricted`, `latest` or `v1.N`.
//!
//! Every version is evaluated as `latest` (Bramble has one set of checks);
//! the version is kept only to be shown in messages, as Kubernetes shows it.

use std::fmt;
use std::str::FromStr;

/// Why a label value is not a level (Kubernetes' wording).
pub const LEVEL_VALUES: &str = "must be one of privileged, baseline, restricted";
/// Why a label value is not a version (Kubernetes' wording).
pub const VERSION_VALUES: &str = "must be \"latest\" or \"v1.x\"";

/// A Pod Security Standard, ordered from the least to the most strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

/// A value that is not a level or not a version; displays the reason in
/// Kubernetes' words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{LEVEL_VALUES}")]
    Level,
    #[error("{VERSION_VALUES}")]
    Version,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl FromStr for Level {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Level, ParseError> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(ParseError::Level),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy version: `latest` or `v1.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    #[default]
    Latest,
    /// `v1.N` (evaluated as latest).
    V1(u32),
}

impl FromStr for Version {
    type Err = ParseError;
    /// `latest`, or `v1.` and a minor without a leading zero.
    fn from_str(s: &str) -> Result<Version, ParseError> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let minor = s.strip_prefix("v1.").ok_or(ParseError::Version)?;
        let digits = !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit());
        if !digits || (minor.len() > 1 && minor.starts_with('0')) {
            return Err(ParseError::Version);
        }
        minor
            .parse()
            .map(Version::V1)
            .map_err(|_| ParseError::Version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::V1(minor) => write!(f, "v1.{minor}"),
        }
    }
}

/// A level at a version, shown as `baseline:latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl LevelVersion {
    /// `level` at `latest`.
    pub fn latest(level: Level) -> LevelVersion {
        LevelVersion {
            level,
            version: Version::Latest,
        }
    }
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_versions_parse_as_kubernetes_does() {
        assert_eq!("baseline".parse(), Ok(Level::Baseline));
        assert_eq!("Baseline".parse::<Level>(), Err(ParseError::Level));
        assert!(Level::Privileged < Level::Baseline && Level::Baseline < Level::Restricted);
        assert_eq!("latest".parse(), Ok(Version::Latest));
        assert_eq!("v1.0".parse(), Ok(Version::V1(0)));
        assert_eq!("v1.29".parse(), Ok(Version::V1(29)));
        for bad in [
            "", "v1", "v1.", "v1.01", "v2.3", "1.29", "v1.x", "v1.-1", "Latest",
        ] {
            assert_eq!(bad.parse::<Version>(), Err(ParseError::Version), "{bad:?}");
        }
        let lv = LevelVersion {
            level: Level::Restricted,
            version: Version::V1(25),
        };
        assert_eq!(lv.to_string(), "restricted:v1.25");
        assert_eq!(
            LevelVersion::latest(Level::Baseline).to_string(),
            "baseline:latest"
        );
        assert_eq!(
            ParseError::Level.to_string(),
            "must be one of privileged, baseline, restricted"
        );
        assert_eq!(
            ParseError::Version.to_string(),
            "must be \"latest\" or \"v1.x\""
        );
    }
}
