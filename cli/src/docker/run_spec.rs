//! The flags of `bramble run` read as docker reads them (pure): published
//! ports (`-p [HOSTPORT:]PORT[/udp]`), environment (`-e K=V`, `-e K` from
//! this shell, `--env-file` in docker's format), volumes (`-v NAME:PATH`
//! a named volume, `-v /HOST:PATH` a path on the board, `-v PATH` an
//! anonymous one; `:ro` read-only) and `--platform OS/ARCH[/VARIANT]`.
//! Each error names the flag, the value and what to write instead.

use std::fmt;

/// A published port: the hub's `host` port to the container's `container`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Publish {
    pub host: u16,
    pub container: u16,
    pub protocol: Proto,
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// `TCP` or `UDP`, as Kubernetes spells it.
    pub fn k8s(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// Where a volume comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A named volume: a PersistentVolumeClaim of that name.
    Named(String),
    /// A path on the board that runs the pod (`hostPath`).
    Host(String),
    /// A fresh directory for the pod's life (`emptyDir`).
    Anonymous,
}

/// One `-v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub source: Source,
    /// Where the container sees it.
    pub path: String,
    pub read_only: bool,
}

/// A flag value `bramble run` cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {value:?}: {why}")]
pub struct SpecError {
    pub flag: &'static str,
    pub value: String,
    pub why: String,
}

fn err(flag: &'static str, value: &str, why: impl Into<String>) -> SpecError {
    SpecError {
        flag,
        value: value.to_string(),
        why: why.into(),
    }
}

fn port(flag: &'static str, value: &str, s: &str) -> Result<u16, SpecError> {
    if s.contains('-') {
        return Err(err(
            flag,
            value,
            "port ranges are not supported: publish each port with its own -p",
        ));
    }
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(err(flag, value, format!("{s:?} is not a port (1-65535)"))),
    }
}

/// `-p [HOSTPORT:]PORT[/tcp|/udp]`; without HOSTPORT the hub serves the
/// container's port number.
pub fn parse_publish(value: &str) -> Result<Publish, SpecError> {
    const FLAG: &str = "-p";
    let (ports, protocol) = match value.rsplit_once('/') {
        Some((p, "tcp")) => (p, Proto::Tcp),
        Some((p, "udp")) => (p, Proto::Udp),
        Some((_, other)) => {
            return Err(err(
                FLAG,
                value,
                format!("protocol {other:?}: use /tcp or /udp"),
            ));
        }
        None => (value, Proto::Tcp),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (host, container) = match parts.as_slice() {
        [c] => (None, *c),
        [h, c] => (Some(*h).filter(|h| !h.is_empty()), *c),
        [_ip, _, _] => {
            return Err(err(
                FLAG,
                value,
                "an address to publish on cannot be chosen per port: the hub serves every published \
                 port on its load balancer address (bramble-hub --lb-address); write HOSTPORT:PORT",
            ));
        }
        _ => {
            return Err(err(
                FLAG,
                value,
                "write [HOSTPORT:]PORT[/udp], e.g. 8080:80",
            ));
        }
    };
    let container = port(FLAG, value, container)?;
    let host = match host {
        Some(h) => port(FLAG, value, h)?,
        None => container,
    };
    Ok(Publish {
        host,
        container,
        protocol,
    })
}

/// `-e K=V`, or `-e K` for this shell's `K` (skipped when unset, as docker
/// does); `lookup` reads the shell's environment.
pub fn parse_env(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>, SpecError> {
    let (name, val) = match value.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (value, None),
    };
    if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
        return Err(err(
            "-e",
            value,
            "write NAME=VALUE (or NAME to pass this shell's value)",
        ));
    }
    Ok(val.or_else(|| lookup(name)).map(|v| (name.to_string(), v)))
}

/// The variables of an `--env-file` in docker's format: `NAME=VALUE` lines
/// taken literally (no quotes removed), `NAME` alone for this shell's
/// value, `#` comments and blank lines skipped. `file` names it in errors.
pub fn parse_env_file(
    file: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, SpecError> {
    let mut vars = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_env(line, lookup) {
            Ok(Some(v)) => vars.push(v),
            Ok(None) => {}
            Err(e) => {
                return Err(err(
                    "--env-file",
                    &format!("{file}:{}", i + 1),
                    format!("line {line:?}: {}", e.why),
                ));
            }
        }
    }
    Ok(vars)
}

/// `-v NAME:PATH[:ro]`, `-v /HOST:PATH[:ro|:rw]` or `-v PATH`.
pub fn parse_volume(value: &str) -> Result<Volume, SpecError> {
    const FLAG: &str = "-v";
    let parts: Vec<&str> = value.split(':').collect();
    let (source, path, mode) = match parts.as_slice() {
        [path] => (None, *path, None),
        [src, path] => (Some(*src), *path, None),
        [src, path, mode] => (Some(*src), *path, Some(*mode)),
        _ => {
            return Err(err(
                FLAG,
                value,
                "write NAME:PATH, /HOST/PATH:PATH or PATH, with :ro for read-only",
            ));
        }
    };
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => {
            return Err(err(FLAG, value, format!("mode {other:?}: use ro or rw")));
        }
    };
    if !path.starts_with('/') {
        return Err(err(
            FLAG,
            value,
            format!("{path:?}: the path in the container must be absolute"),
        ));
    }
    let source = match source {
        None => Source::Anonymous,
        Some(s) if s.starts_with('/') => Source::Host(s.to_string()),
        Some(s) if s.starts_with('.') || s.starts_with('~') => {
            return Err(err(
                FLAG,
                value,
                format!(
                    "{s:?}: a bind mount names a path on the board that runs the pod, not on this \
                     machine; give an absolute path, or a volume name"
                ),
            ));
        }
        Some(s) => match bramble_api::names::dns1123_subdomain(s) {
            Ok(()) => Source::Named(s.to_string()),
            Err(why) => {
                return Err(err(
                    FLAG,
                    value,
                    format!("volume name {s:?}: {why} (it names a PersistentVolumeClaim)"),
                ));
            }
        },
    };
    Ok(Volume {
        source,
        path: path.to_string(),
        read_only,
    })
}

/// `--platform OS/ARCH[/VARIANT]` → the node labels (`kubernetes.io/os`,
/// `kubernetes.io/arch`) the pods must land on. Boards do not report a
/// variant: `linux/arm/v7` and `linux/arm/v6` both mean 32-bit ARM.
pub fn parse_platform(value: &str) -> Result<(String, String), SpecError> {
    let parts: Vec<&str> = value.split('/').collect();
    match parts.as_slice() {
        [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => {
            Ok((os.to_string(), arch.to_string()))
        }
        _ => Err(err(
            "--platform",
            value,
            "write OS/ARCH[/VARIANT], e.g. linux/arm64 or linux/arm/v7",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_as_docker_writes_them() {
        let p = |s| parse_publish(s).unwrap();
        assert_eq!(
            p("8080:80"),
            Publish {
                host: 8080,
                container: 80,
                protocol: Proto::Tcp
            }
        );
        assert_eq!(
            p("53:5353/udp"),
            Publish {
                host: 53,
                container: 5353,
                protocol: Proto::Udp
            }
        );
        assert_eq!(p("80").host, 80);
        assert_eq!(p(":81").host, 81);
        assert_eq!(p("9000/tcp").container, 9000);
        let e = |s| parse_publish(s).unwrap_err().to_string();
        assert!(
            e("8000-8010:80").contains("port ranges"),
            "{}",
            e("8000-8010:80")
        );
        assert!(e("127.0.0.1:8080:80").contains("--lb-address"));
        assert!(e("80/sctp").contains("use /tcp or /udp"));
        assert!(e("http").contains("\"http\" is not a port"));
        assert!(e("0:80").contains("\"0\" is not a port"));
        assert!(e("70000:80").contains("is not a port"));
        assert_eq!(
            e("a:b:c:d"),
            "-p \"a:b:c:d\": write [HOSTPORT:]PORT[/udp], e.g. 8080:80"
        );
    }

    #[test]
    fn environment_from_flags_and_files() {
        let shell = |k: &str| (k == "HOME").then(|| "/root".to_string());
        assert_eq!(
            parse_env("A=b=c", &shell).unwrap(),
            Some(("A".into(), "b=c".into()))
        );
        assert_eq!(
            parse_env("HOME", &shell).unwrap(),
            Some(("HOME".into(), "/root".into()))
        );
        assert_eq!(parse_env("UNSET", &shell).unwrap(), None);
        assert!(parse_env("=x", &shell).is_err());
        let file = "# comment\n\nA=\"quoted\"\n  B=2\nHOME\nUNSET\n";
        assert_eq!(
            parse_env_file("app.env", file, &shell).unwrap(),
            vec![
                ("A".to_string(), "\"quoted\"".to_string()),
                ("B".into(), "2".into()),
                ("HOME".into(), "/root".into())
            ]
        );
        let e = parse_env_file("app.env", "A=1\nBAD NAME=2\n", &shell).unwrap_err();
        assert_eq!(e.value, "app.env:2");
        assert!(e.why.contains("BAD NAME=2"), "{e}");
    }

    #[test]
    fn volumes_named_bound_and_anonymous() {
        let v = |s| parse_volume(s).unwrap();
        assert_eq!(
            v("data:/var/lib/data"),
            Volume {
                source: Source::Named("data".into()),
                path: "/var/lib/data".into(),
                read_only: false
            }
        );
        assert_eq!(
            v("/srv/www:/www:ro").source,
            Source::Host("/srv/www".into())
        );
        assert!(v("/srv/www:/www:ro").read_only);
        assert_eq!(v("/cache").source, Source::Anonymous);
        let e = |s| parse_volume(s).unwrap_err().to_string();
        assert!(
            e("./site:/www").contains("path on the board"),
            "{}",
            e("./site:/www")
        );
        assert!(
            e("Data_1:/d").contains("volume name \"Data_1\""),
            "{}",
            e("Data_1:/d")
        );
        assert!(e("data:rel").contains("must be absolute"));
        assert!(e("data:/d:rx").contains("use ro or rw"));
    }

    #[test]
    fn platforms_become_node_labels() {
        assert_eq!(
            parse_platform("linux/arm/v7").unwrap(),
            ("linux".to_string(), "arm".to_string())
        );
        assert_eq!(parse_platform("linux/arm64").unwrap().1, "arm64");
        assert!(parse_platform("arm64").is_err());
    }
}
