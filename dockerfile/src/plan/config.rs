//! The image configuration a build produces (the OCI/Docker `config`
//! fields), with the rules Docker applies to it: EXPOSE ports normalized
//! (`80` → `80/tcp`, ranges expanded), ENV replacing in place, HEALTHCHECK
//! durations in nanoseconds, and the JSON shape of an image config.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Docker's default PATH for Linux (what a `FROM scratch` image gets).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A HEALTHCHECK as stored in the image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    /// Nanoseconds; 0 = the runtime's default.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub retries: u32,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// The runtime configuration of an image (OCI `config`, Docker field names
/// in JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// `80/tcp`, `53/udp`.
    #[serde(
        default,
        skip_serializing_if = "BTreeSet::is_empty",
        with = "empty_object_map"
    )]
    pub exposed_ports: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "BTreeSet::is_empty",
        with = "empty_object_map"
    )]
    pub volumes: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// Docker's `Shell` (set by SHELL, used by later shell forms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Set by the deprecated MAINTAINER (Docker stores it as the image's
    /// `author`, outside `config`; kept here so the plan carries it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
}

mod empty_object_map {
    use std::collections::{BTreeMap, BTreeSet};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(set: &BTreeSet<String>, s: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<&String, BTreeMap<(), ()>> =
            set.iter().map(|k| (k, BTreeMap::new())).collect();
        serde::Serialize::serialize(&map, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
        let map = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        Ok(map.into_keys().collect())
    }
}

impl ImageConfig {
    /// What `FROM scratch` starts from (BuildKit's empty image).
    pub fn scratch() -> ImageConfig {
        ImageConfig {
            env: vec![format!("PATH={DEFAULT_PATH}")],
            working_dir: "/".into(),
            ..ImageConfig::default()
        }
    }

    /// The value of `key` in Env.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env.iter().find_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k == key).then_some(v)
        })
    }

    /// Sets `key=value` in Env, replacing an existing entry in place.
    pub fn set_env(&mut self, key: &str, value: &str) {
        set_env(&mut self.env, key, value);
    }
}

/// Sets `key=value` in an env list, replacing an existing entry in place.
pub(crate) fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// `80` → `["80/tcp"]`, `8000-8002/udp` → three ports, as BuildKit parses
/// EXPOSE. An `IP:HOSTPORT:` prefix is accepted and ignored (the bool says
/// one was there, for a warning). Err: a message.
pub(crate) fn parse_expose(spec: &str) -> Result<(Vec<String>, bool), String> {
    let (host_part, container) = match spec.rsplit_once(':') {
        Some((host, c)) => (!host.is_empty(), c),
        None => (false, spec),
    };
    let (ports, proto) = match container.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (container, "tcp".to_string()),
    };
    if ports.is_empty() {
        return Err(format!("invalid port: {spec:?}: no port specified"));
    }
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "invalid protocol {proto:?} in EXPOSE {spec}: use tcp, udp or sctp"
        ));
    }
    let port = |s: &str| -> Result<u16, String> {
        s.parse::<u16>()
            .map_err(|_| format!("invalid port {s:?} in EXPOSE {spec}: use 0-65535"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) if a != b => (port(a)?, port(b)?),
        Some((a, _)) => (port(a)?, port(a)?),
        None => {
            let p = port(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(format!(
            "invalid port range {ports} in EXPOSE: the end is before the start"
        ));
    }
    Ok((
        (lo..=hi).map(|p| format!("{p}/{proto}")).collect(),
        host_part,
    ))
}

/// Go's `time.ParseDuration` (`1m30s`, `500ms`, `1.5h`) in nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid duration {s:?}: write e.g. 30s, 1m30s or 500ms");
    if s == "0" {
        return Ok(0);
    }
    let mut rest = s;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_normalizes_protocols_and_ranges() {
        let ports = |s| parse_expose(s).unwrap().0;
        assert_eq!(ports("80"), ["80/tcp"]);
        assert_eq!(ports("53/UDP"), ["53/udp"]);
        assert_eq!(ports("8000-8002/tcp"), ["8000/tcp", "8001/tcp", "8002/tcp"]);
        assert_eq!(ports("0"), ["0/tcp"]);
        assert_eq!(ports("80-80"), ["80/tcp"]);
        // BuildKit's own cases: host parts are ignored (with a warning).
        assert_eq!(
            parse_expose("0.0.0.0:1234-1235:3333-3334/tcp").unwrap(),
            (vec!["3333/tcp".to_string(), "3334/tcp".into()], true)
        );
        assert_eq!(ports("[2001:4860:0:2001::68]::333"), ["333/tcp"]);
        assert_eq!(ports("::1:80:80"), ["80/tcp"]);
        assert!(parse_expose("0.0.0.0:1234-1235:/tcp").is_err());
        assert!(parse_expose("").is_err());
        assert!(parse_expose("80/xyz").is_err());
        assert!(parse_expose("65536").is_err());
        assert!(parse_expose("http").is_err());
        assert!(parse_expose("9-8").is_err());
        assert!(parse_expose("8000-").is_err());
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn env_replaces_in_place_and_json_has_docker_shape() {
        let mut c = ImageConfig::scratch();
        c.set_env("A", "1");
        c.set_env("PATH", "/x");
        assert_eq!(c.env, ["PATH=/x", "A=1"]);
        c.exposed_ports.insert("80/tcp".into());
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(json["WorkingDir"], "/");
        let back: ImageConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }
}
