//! The names the hub's serving certificate covers, as k3s' do: the host
//! name (also as `<name>.local`, the mDNS name), `localhost`, every address
//! of the host's interfaces, and the operator's `--tls-san` extras (a
//! load balancer's name, a DNS alias, a NAT address). A client that
//! connects by any other name is refused by its TLS library; the message
//! then says to add `--tls-san`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use super::TlsError;

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServingName {
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for ServingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServingName::Dns(d) => f.write_str(d),
            ServingName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl ServingName {
    /// An IP address, or a DNS name of letters, digits, `-` and `.`
    /// (lowercased; a leading `*.` for a wildcard).
    pub fn parse(text: &str) -> Result<ServingName, TlsError> {
        let t = text.trim();
        if let Ok(ip) = t.trim_start_matches('[').trim_end_matches(']').parse() {
            return Ok(ServingName::Ip(ip));
        }
        let body = t.strip_prefix("*.").unwrap_or(t);
        let ok = !body.is_empty()
            && body.len() <= 253
            && body.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(TlsError::BadName(text.to_string()));
        }
        Ok(ServingName::Dns(t.to_ascii_lowercase()))
    }
}

/// A set of names, sorted (two sets compare equal whatever the order the
/// interfaces were listed in).
pub type ServingNames = BTreeSet<ServingName>;

/// The names for a host called `hostname` with `addresses`, plus `extra`.
pub fn plan(hostname: &str, addresses: &[IpAddr], extra: &[ServingName]) -> ServingNames {
    let mut names = ServingNames::new();
    names.insert(ServingName::Dns("localhost".into()));
    names.insert(ServingName::Ip(IpAddr::from([127, 0, 0, 1])));
    names.insert(ServingName::Ip(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])));
    if let Ok(ServingName::Dns(h)) = ServingName::parse(hostname) {
        names.insert(ServingName::Dns(format!("{h}.local")));
        names.insert(ServingName::Dns(h));
    }
    names.extend(addresses.iter().map(|ip| ServingName::Ip(*ip)));
    names.extend(extra.iter().cloned());
    names
}

/// This host's names now (host name and interface addresses).
pub fn current(extra: &[ServingName]) -> ServingNames {
    let hostname = crate::mdns::instance_name();
    let addresses: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifs| ifs.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "listing the host's addresses for the serving certificate failed; it covers localhost and --tls-san only");
            Vec::new()
        });
    plan(&hostname, &addresses, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_host_its_addresses_and_the_extras() {
        let extra = [ServingName::parse("Hub.Example.com").unwrap()];
        let names = plan("gw-1", &["10.0.0.5".parse().unwrap()], &extra);
        let text: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        for want in [
            "localhost",
            "gw-1",
            "gw-1.local",
            "hub.example.com",
            "10.0.0.5",
            "127.0.0.1",
            "::1",
        ] {
            assert!(text.contains(&want.to_string()), "{want} missing: {text:?}");
        }
        let again = plan("gw-1", &["10.0.0.5".parse().unwrap()], &extra);
        assert_eq!(names, again);
    }

    #[test]
    fn refuses_what_no_certificate_can_name() {
        for bad in ["", "a b", "-x.com", "x..com", "https://x", "x_y"] {
            let e = ServingName::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--tls-san"), "{bad}: {e}");
        }
        assert_eq!(
            ServingName::parse("[fd00::1]").unwrap(),
            ServingName::Ip("fd00::1".parse().unwrap())
        );
        assert!(matches!(
            ServingName::parse("*.hub.lan").unwrap(),
            ServingName::Dns(_)
        ));
    }

    #[test]
    fn a_host_name_that_is_no_dns_name_is_left_out() {
        let names = plan("my host", &[], &[]);
        assert!(names.iter().all(|n| !n.to_string().contains("my host")));
    }
}
