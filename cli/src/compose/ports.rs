//! `ports` and `expose` → container ports, the headless peer Service's
//! ports, and the published ports of the `NAME-published` LoadBalancer
//! Service (published port → container port). Short syntax
//! `[HOST_IP:][PUBLISHED[-END]:]TARGET[-END][/PROTO]` and the long syntax.

use serde_json::{Value, json};

use super::model::{Port, Service};

/// One port of a service: what it listens on and where it is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub target: u16,
    pub published: Option<u16>,
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// Long syntax `mode: host`: the node's port, not the hub's.
    pub host_mode: bool,
}

fn num(s: &str, what: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{what} {s:?} is not a port number (1-65535)"))
}

fn range(s: &str) -> Result<Vec<u16>, String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a, "port")?, num(b, "port")?);
            if b < a {
                return Err(format!("port range {s:?} ends before it starts"));
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![num(s, "port")?]),
    }
}

fn protocol(p: &str) -> Result<String, String> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" => Ok("TCP".into()),
        "udp" => Ok("UDP".into()),
        other => Err(format!("protocol {other:?} not supported (tcp or udp)")),
    }
}

fn host_ip(ip: &str) -> Result<(), String> {
    match ip {
        "" | "0.0.0.0" | "::" | "[::]" => Ok(()),
        other => Err(format!(
            "host IP {other:?} not supported: the hub publishes on all its addresses"
        )),
    }
}

/// Parses one short-syntax entry.
pub fn short(s: &str) -> Result<Vec<Binding>, String> {
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, protocol(p)?),
        None => (s, "TCP".to_string()),
    };
    // An IPv6 host address is in brackets; split the rest on `:`.
    let spec = match spec.strip_prefix('[') {
        Some(r) => {
            let (ip, rest) = r
                .split_once("]:")
                .ok_or_else(|| format!("{s:?}: unclosed `[`"))?;
            host_ip(ip)?;
            rest
        }
        None => spec,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (published, target) = match parts.as_slice() {
        [t] => (None, *t),
        [p, t] => (Some(*p), *t),
        [ip, p, t] => {
            host_ip(ip)?;
            (Some(*p).filter(|p| !p.is_empty()), *t)
        }
        _ => return Err(format!("{s:?} is not [HOST:]PUBLISHED:TARGET[/PROTOCOL]")),
    };
    let targets = range(target)?;
    let published = published.map(range).transpose()?;
    if let Some(p) = &published
        && p.len() != targets.len()
        && p.len() != 1
    {
        return Err(format!(
            "{s:?}: the published range and the target range differ in length"
        ));
    }
    Ok(targets
        .iter()
        .enumerate()
        .map(|(i, t)| Binding {
            target: *t,
            published: published
                .as_ref()
                .map(|p| if p.len() == 1 { p[0] } else { p[i] }),
            protocol: proto.clone(),
            host_mode: false,
        })
        .collect())
}

/// Every port binding of a service (`ports`, then `expose`), each
/// (target, protocol) once.
pub fn bindings(svc: &Service, path: &str, errs: &mut Vec<String>) -> Vec<Binding> {
    let mut out: Vec<Binding> = Vec::new();
    for (i, p) in svc.ports.iter().enumerate() {
        let got = match p {
            Port::Short(s) => short(&s.to_string()),
            Port::Long {
                target,
                published,
                host_ip: ip,
                protocol: proto,
                mode,
                ..
            } => (|| {
                host_ip(ip.as_deref().unwrap_or(""))?;
                let published = match published {
                    Some(p) => Some(num(&p.to_string(), "published port")?),
                    None => None,
                };
                Ok(vec![Binding {
                    target: num(&target.to_string(), "target port")?,
                    published,
                    protocol: protocol(proto.as_deref().unwrap_or("tcp"))?,
                    host_mode: mode.as_deref() == Some("host"),
                }])
            })(),
        };
        match got {
            Ok(b) => out.extend(b),
            Err(e) => errs.push(format!("{path}.ports[{i}]: {e}")),
        }
    }
    for (i, e) in svc.expose.iter().enumerate() {
        let s = e.to_string();
        let (port, proto) = match s.split_once('/') {
            Some((p, pr)) => (p.to_string(), protocol(pr)),
            None => (s.clone(), Ok("TCP".into())),
        };
        match (range(&port), proto) {
            (Ok(ports), Ok(proto)) => out.extend(ports.into_iter().map(|target| Binding {
                target,
                published: None,
                protocol: proto.clone(),
                host_mode: false,
            })),
            (Err(e), _) | (_, Err(e)) => errs.push(format!("{path}.expose[{i}]: {e}")),
        }
    }
    out
}

fn port_name(b: &Binding, published: bool) -> String {
    let p = if published {
        b.published.unwrap_or(b.target)
    } else {
        b.target
    };
    format!("{}-{p}", b.protocol.to_ascii_lowercase())
}

/// The container's `ports` (each target and protocol once; `mode: host`
/// bindings with their hostPort).
pub fn container_ports(svc: &Service, path: &str, errs: &mut Vec<String>) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for b in bindings(svc, path, errs) {
        let key = (b.target, b.protocol.clone());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let mut p = json!({"name": port_name(&b, false), "containerPort": b.target, "protocol": b.protocol});
        if b.host_mode {
            p["hostPort"] = b.published.unwrap_or(b.target).into();
        }
        out.push(p);
    }
    out
}

/// The headless peer Service's ports: each container port once.
pub fn peer_ports(container_ports: &[Value]) -> Vec<Value> {
    container_ports
        .iter()
        .map(|p| {
            json!({"name": p["name"], "port": p["containerPort"], "targetPort": p["containerPort"], "protocol": p["protocol"]})
        })
        .collect()
}

/// The LoadBalancer Service's ports: published → target, for bindings that
/// the hub publishes (a published port, not `mode: host`).
pub fn published_ports(svc: &Service, path: &str, errs: &mut Vec<String>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for b in bindings(svc, path, errs) {
        let Some(p) = b.published.filter(|_| !b.host_mode) else {
            continue;
        };
        let dup = out
            .iter()
            .any(|o| o["port"] == p && o["protocol"] == b.protocol.as_str());
        if dup {
            errs.push(format!(
                "{path}.ports: {p}/{} is published twice",
                b.protocol.to_ascii_lowercase()
            ));
            continue;
        }
        out.push(json!({"name": port_name(&b, true), "port": p, "targetPort": b.target, "protocol": b.protocol}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(target: u16, published: Option<u16>, proto: &str) -> Binding {
        Binding {
            target,
            published,
            protocol: proto.into(),
            host_mode: false,
        }
    }

    #[test]
    fn short_syntax() {
        assert_eq!(short("80").unwrap(), [b(80, None, "TCP")]);
        assert_eq!(short("8080:80").unwrap(), [b(80, Some(8080), "TCP")]);
        assert_eq!(
            short("0.0.0.0:53:53/udp").unwrap(),
            [b(53, Some(53), "UDP")]
        );
        assert_eq!(
            short("9090-9091:8080-8081").unwrap(),
            [b(8080, Some(9090), "TCP"), b(8081, Some(9091), "TCP")]
        );
        assert!(short("127.0.0.1:80:80").unwrap_err().contains("host IP"));
        assert!(short("80/sctp").unwrap_err().contains("sctp"));
        assert!(short("99999").is_err());
    }
}
