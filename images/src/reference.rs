//! Image references: `name`, `name:tag`, `name@sha256:…`, `host:port/path/name:tag`.
//!
//! Bramble has no implicit `docker.io`: a reference without a registry host
//! (`web:1`, `team/web`, `library/x`) names a repository in the hub's own
//! registry. A registry is named explicitly by a first path component that looks
//! like a host: it contains a `.` or a `:` (port), is `localhost`, or is a
//! bracketed IPv6 address (`127.0.0.1:7480/web:1`, `hub.local:7480/team/web:1`).
//!
//! Validation follows the OCI distribution spec: repository path components
//! match `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`, tags match
//! `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, digests are `sha256:<64 hex>`.
//! A reference with neither tag nor digest gets the tag `latest`, so
//! `"web".parse()` displays as `web:latest`; parsing what [`Reference`]
//! displays gives the same reference back.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The tag a reference gets when it has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// Longest repository name (with registry host) the distribution spec allows
/// registries to rely on.
pub const MAX_NAME_LEN: usize = 255;

/// A parsed, validated image reference.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a valid image reference; each variant names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error(
        "empty image reference: expected a name such as `web:1` or `hub.local:7480/team/web:1`"
    )]
    Empty,
    #[error("invalid image reference {input:?}: whitespace and control characters are not allowed")]
    Whitespace { input: String },
    #[error(
        "invalid image reference {input:?}: registry host {host:?} {why} \
         (expected `host`, `host:port` or `[ipv6]:port`)"
    )]
    Registry {
        input: String,
        host: String,
        why: &'static str,
    },
    #[error("invalid image reference {input:?}: empty repository name")]
    EmptyRepository { input: String },
    #[error(
        "invalid image reference {input:?}: repository names must be lowercase \
         (component {component:?}); use {lower:?}"
    )]
    Uppercase {
        input: String,
        component: String,
        lower: String,
    },
    #[error(
        "invalid image reference {input:?}: path component {component:?} must be lowercase \
         letters and digits, separated by `.`, `_`, `__` or dashes, not at the start or end"
    )]
    Component { input: String, component: String },
    #[error(
        "invalid image reference {input:?}: tag {tag:?} must be 1-128 characters of letters, \
         digits, `_`, `.` and `-`, not starting with `.` or `-`"
    )]
    Tag { input: String, tag: String },
    #[error("invalid image reference {input:?}: {source}")]
    Digest {
        input: String,
        #[source]
        source: DigestError,
    },
    #[error(
        "invalid image reference {input:?}: the name is {len} characters, the limit is {MAX_NAME_LEN}"
    )]
    TooLong { input: String, len: usize },
}

impl Reference {
    /// Parses and validates a reference (same as [`str::parse`]).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        s.parse()
    }

    /// A hub-local reference to `repository:tag`, validated. A repository
    /// whose first component looks like a registry host is refused.
    pub fn hub(repository: &str, tag: &str) -> Result<Reference, ReferenceError> {
        let r: Reference = format!("{repository}:{tag}").parse()?;
        match r.registry() {
            None => Ok(r),
            Some(host) => Err(ReferenceError::Registry {
                input: r.to_string(),
                host: host.to_string(),
                why: "names a registry, but a hub repository path was expected",
            }),
        }
    }

    /// The registry host (`host[:port]`), or `None` for the hub's own registry.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// Whether the reference names the hub's own registry (no host given).
    pub fn is_hub_local(&self) -> bool {
        self.registry.is_none()
    }

    /// The repository path inside the registry: `web`, `team/web`, `library/x`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag; `latest` when the reference had neither tag nor digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, when the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `host/repository` or just `repository`: the name without tag or digest.
    pub fn name(&self) -> String {
        match &self.registry {
            Some(host) => format!("{host}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// What to ask a registry for under `/v2/<name>/manifests/<reference>`:
    /// the digest if pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same repository pinned to `digest` (keeping the tag for display).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository with `tag` and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Tag {
                input: self.to_string(),
                tag: tag.to_string(),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ReferenceError::Whitespace {
                input: input.to_string(),
            });
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let d = d
                    .parse::<Digest>()
                    .map_err(|source| ReferenceError::Digest {
                        input: input.to_string(),
                        source,
                    })?;
                (rest, Some(d))
            }
            None => (input, None),
        };
        // A tag follows the last ':' only if that ':' is after the last '/'
        // (otherwise the ':' belongs to a registry port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if rest[i..].find('/').is_none() => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(ReferenceError::Tag {
                input: input.to_string(),
                tag: t.to_string(),
            });
        }
        if name.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong {
                input: input.to_string(),
                len: name.len(),
            });
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if looks_like_host(first) => {
                check_host(first).map_err(|why| ReferenceError::Registry {
                    input: input.to_string(),
                    host: first.to_string(),
                    why,
                })?;
                (Some(first.to_string()), path)
            }
            _ => (None, name),
        };
        if repository.is_empty() {
            return Err(ReferenceError::EmptyRepository {
                input: input.to_string(),
            });
        }
        for component in repository.split('/') {
            if valid_component(component) {
                continue;
            }
            let lower = component.to_ascii_lowercase();
            if component.bytes().any(|b| b.is_ascii_uppercase()) && valid_component(&lower) {
                return Err(ReferenceError::Uppercase {
                    input: input.to_string(),
                    component: component.to_string(),
                    lower: input.replacen(component, &lower, 1),
                });
            }
            return Err(ReferenceError::Component {
                input: input.to_string(),
                component: component.to_string(),
            });
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository: repository.to_string(),
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(host) = &self.registry {
            write!(f, "{host}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether the first path component names a registry host rather than a
/// repository path component (Docker's rule, minus the `docker.io` default).
fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[')
}

/// Validates `host`, `host:port`, `[v6]` or `[v6]:port`.
fn check_host(h: &str) -> Result<(), &'static str> {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("has an unclosed `[` (IPv6 addresses are written `[::1]:7480`)")?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("has an invalid IPv6 address in brackets");
        }
        match after {
            "" => return Ok(()),
            p => (
                None,
                Some(
                    p.strip_prefix(':')
                        .ok_or("has text after `]` that is not `:port`")?,
                ),
            ),
        }
    } else {
        match h.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(h), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() {
            return Err("has an empty host name");
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(
                "is not a valid host name (letters, digits and `-` in dot-separated labels)",
            );
        }
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err("has an invalid port (1-65535)"),
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__`, or any number of `-`.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    const D: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn short_names_are_hub_repositories_with_default_tag() {
        let x = r("web");
        assert_eq!(
            (x.registry(), x.repository(), x.tag()),
            (None, "web", Some("latest"))
        );
        assert!(x.is_hub_local());
        assert_eq!(x.to_string(), "web:latest");
        let x = r("web:1");
        assert_eq!((x.repository(), x.tag()), ("web", Some("1")));
        let x = r("library/x");
        assert_eq!((x.registry(), x.repository()), (None, "library/x"));
        assert_eq!(x.name(), "library/x");
    }

    #[test]
    fn explicit_registries() {
        let x = r("127.0.0.1:7480/web:1");
        assert_eq!(
            (x.registry(), x.repository(), x.tag()),
            (Some("127.0.0.1:7480"), "web", Some("1"))
        );
        let x = r("hub.local:7480/team/web:1");
        assert_eq!(
            (x.registry(), x.repository(), x.tag()),
            (Some("hub.local:7480"), "team/web", Some("1"))
        );
        assert_eq!(x.name(), "hub.local:7480/team/web");
        let x = r("localhost/web");
        assert_eq!(x.registry(), Some("localhost"));
        let x = r("[::1]:5000/web:2");
        assert_eq!((x.registry(), x.tag()), (Some("[::1]:5000"), Some("2")));
        // A port without a tag: the ':' belongs to the host.
        let x = r("hub.local:7480/web");
        assert_eq!(
            (x.registry(), x.repository(), x.tag()),
            (Some("hub.local:7480"), "web", Some("latest"))
        );
    }

    #[test]
    fn digests() {
        let x = r(&format!("web@{D}"));
        assert_eq!(x.tag(), None);
        assert_eq!(x.digest().unwrap().to_string(), D);
        assert_eq!(x.manifest_reference(), D);
        let x = r(&format!("hub.local:7480/web:1@{D}"));
        assert_eq!(x.tag(), Some("1"));
        assert_eq!(x.manifest_reference(), D);
        assert_eq!(r("web:2").manifest_reference(), "2");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "web:latest",
            "web:1",
            "team/web:v1.2.3-rc_1",
            "library/x:latest",
            "127.0.0.1:7480/web:1",
            "hub.local:7480/team/web:1",
            "[::1]:5000/a/b/c:x",
            &format!("web@{D}"),
            &format!("hub.local/web:1@{D}"),
            "x/a.b__c---d/e_f:_tag",
        ] {
            let x = r(s);
            assert_eq!(x.to_string(), s);
            assert_eq!(r(&x.to_string()), x);
        }
        assert_eq!(r(&r("web").to_string()), r("web"));
    }

    #[test]
    fn refuses_invalid_references_with_clear_errors() {
        let e = |s: &str| s.parse::<Reference>().unwrap_err();
        assert_eq!(e(""), ReferenceError::Empty);
        assert!(matches!(e("web app"), ReferenceError::Whitespace { .. }));
        let up = e("Web:1");
        assert!(matches!(up, ReferenceError::Uppercase { .. }), "{up}");
        assert!(up.to_string().contains("\"web:1\""), "{up}");
        assert!(matches!(e("web:"), ReferenceError::Tag { .. }));
        assert!(matches!(e("web:-x"), ReferenceError::Tag { .. }));
        assert!(matches!(
            e(&format!("web:{}", "a".repeat(129))),
            ReferenceError::Tag { .. }
        ));
        assert!(r(&format!("web:{}", "a".repeat(128))).tag().is_some());
        assert!(matches!(e("web@sha256:abc"), ReferenceError::Digest { .. }));
        assert!(matches!(e("web@md5:abc"), ReferenceError::Digest { .. }));
        for bad in [
            "-web", "web-", "we..b", "we___b", "web_", "a//b", "a/", "we+b",
        ] {
            assert!(
                matches!(e(bad), ReferenceError::Component { .. }),
                "{bad}: {}",
                e(bad)
            );
        }
        assert!(matches!(
            e("hub.local:0/web"),
            ReferenceError::Registry { .. }
        ));
        assert!(matches!(
            e("hub.local:99999/web"),
            ReferenceError::Registry { .. }
        ));
        assert!(matches!(
            e("hub_x.local/web"),
            ReferenceError::Registry { .. }
        ));
        assert!(matches!(e("[::1/web"), ReferenceError::Registry { .. }));
        assert!(matches!(
            e("hub.local:7480/"),
            ReferenceError::EmptyRepository { .. }
        ));
        assert!(matches!(
            e(&"a".repeat(256)),
            ReferenceError::TooLong { .. }
        ));
        let msg = e("web:-x").to_string();
        assert!(msg.contains("web:-x") && msg.contains("tag"), "{msg}");
    }

    #[test]
    fn with_tag_and_digest() {
        let x = r("hub.local/web:1");
        let d: Digest = D.parse().unwrap();
        assert_eq!(
            x.with_digest(d.clone()).to_string(),
            format!("hub.local/web:1@{D}")
        );
        assert_eq!(x.with_tag("2").unwrap().to_string(), "hub.local/web:2");
        assert!(x.with_tag("..").is_err());
        assert_eq!(Reference::hub("team/web", "3").unwrap(), r("team/web:3"));
        assert!(matches!(
            Reference::hub("hub.local/web", "3"),
            Err(ReferenceError::Registry { .. })
        ));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let x = r("hub.local:7480/web:1");
        let j = serde_json::to_string(&x).unwrap();
        assert_eq!(j, "\"hub.local:7480/web:1\"");
        assert_eq!(serde_json::from_str::<Reference>(&j).unwrap(), x);
        assert!(serde_json::from_str::<Reference>("\"UP\"").is_err());
    }
}
