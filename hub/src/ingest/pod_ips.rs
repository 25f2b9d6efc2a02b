//! Which pod addresses a board may report (pure). A pod's `podIP` feeds
//! Endpoints, and through them the hub's ingress, its load balancer, DNS
//! and every node's service table: a board that could name any address
//! would make the hub connect wherever it says (its own loopback ports,
//! other hosts of the LAN). So a reported address is kept only if it is the
//! board's to give: inside the node's pod CIDR, or, for a `hostNetwork`
//! pod (and on a node without a pod network), the node's own `InternalIP`;
//! and never a loopback, unspecified, link-local, multicast or broadcast
//! address. Others are dropped from the status (`podIP`, `podIPs`) and
//! named in the returned message.

use std::net::IpAddr;

use bramble_api::cidr::Cidr;
use serde_json::Value;

/// What a node may report for its pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddresses {
    pub pod_cidr: Option<Cidr>,
    pub internal_ip: Option<IpAddr>,
}

fn never(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Whether the node may report `ip` for a pod (`host_network`: one that
/// shares the node's network).
pub fn allowed(ip: &str, host_network: bool, node: &NodeAddresses) -> bool {
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    if never(ip) {
        return false;
    }
    let own = node.internal_ip == Some(ip);
    match node.pod_cidr {
        Some(cidr) if !host_network => cidr.contains(ip),
        _ => own,
    }
}

/// Drops from the reported pod `status` every address the node may not
/// report; returns what was dropped, if anything.
pub fn sanitize(status: &mut Value, host_network: bool, node: &NodeAddresses) -> Option<String> {
    let mut dropped = Vec::new();
    if let Some(ip) = status
        .get("podIP")
        .and_then(Value::as_str)
        .map(str::to_string)
        && !allowed(&ip, host_network, node)
    {
        dropped.push(ip);
        if let Some(m) = status.as_object_mut() {
            m.remove("podIP");
        }
    }
    if let Some(list) = status.get_mut("podIPs").and_then(Value::as_array_mut) {
        list.retain(|entry| {
            let ip = entry["ip"].as_str().unwrap_or("");
            let ok = allowed(ip, host_network, node);
            if !ok && !dropped.iter().any(|d| d == ip) {
                dropped.push(ip.to_string());
            }
            ok
        });
        if list.is_empty()
            && let Some(m) = status.as_object_mut()
        {
            m.remove("podIPs");
        }
    }
    (!dropped.is_empty()).then(|| {
        format!(
            "pod address(es) {} dropped: not in the node's pod CIDR {} (nor its own address {} for a hostNetwork pod)",
            dropped.join(", "),
            node.pod_cidr.map(|c| c.to_string()).unwrap_or_else(|| "(none)".into()),
            node.internal_ip
                .map(|i| i.to_string())
                .unwrap_or_else(|| "(none)".into())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node() -> NodeAddresses {
        NodeAddresses {
            pod_cidr: Some("10.42.1.0/24".parse().unwrap()),
            internal_ip: Some("192.168.1.21".parse().unwrap()),
        }
    }

    #[test]
    fn only_addresses_of_the_nodes_own_range_are_kept() {
        let n = node();
        assert!(allowed("10.42.1.7", false, &n));
        assert!(!allowed("10.42.2.7", false, &n), "another node's range");
        assert!(
            !allowed("192.168.1.21", false, &n),
            "a pod network pod on the node's IP"
        );
        assert!(
            allowed("192.168.1.21", true, &n),
            "hostNetwork: the node's own address"
        );
        assert!(
            !allowed("192.168.1.5", true, &n),
            "hostNetwork: another host"
        );
        for bad in [
            "127.0.0.1",
            "0.0.0.0",
            "169.254.169.254",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "x",
        ] {
            assert!(!allowed(bad, true, &n), "{bad}");
            assert!(!allowed(bad, false, &n), "{bad}");
        }
        let no_network = NodeAddresses {
            pod_cidr: None,
            ..node()
        };
        assert!(allowed("192.168.1.21", false, &no_network));
        assert!(!allowed("10.42.1.7", false, &no_network));
    }

    #[test]
    fn a_status_loses_what_it_may_not_say_and_keeps_the_rest() {
        let mut s = json!({"phase": "Running", "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}, {"ip": "10.42.1.9"}]});
        let msg = sanitize(&mut s, false, &node()).unwrap();
        assert_eq!(
            s,
            json!({"phase": "Running", "podIPs": [{"ip": "10.42.1.9"}]})
        );
        assert!(
            msg.starts_with("pod address(es) 127.0.0.1 dropped"),
            "{msg}"
        );
        let mut ok =
            json!({"phase": "Running", "podIP": "10.42.1.9", "podIPs": [{"ip": "10.42.1.9"}]});
        let before = ok.clone();
        assert_eq!(sanitize(&mut ok, false, &node()), None);
        assert_eq!(ok, before);
    }
}
