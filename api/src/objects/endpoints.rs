//! `v1 Endpoints`: the pod addresses behind a Service, derived by the hub's
//! endpoints controller (and accepted from users for selector-less services).

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors, index, join};
use crate::meta::ObjectMeta;

use super::common::{
    ObjectReference, PROTOCOLS, check_enum, check_label, check_port, check_subdomain,
};

/// `v1 Endpoints` (named after its Service).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Endpoints")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoints {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<EndpointSubset>,
}

/// A set of addresses sharing the same ports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.EndpointSubset")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointSubset {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<EndpointAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready_addresses: Vec<EndpointAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EndpointPort>,
}

/// `{ip, hostname, nodeName, targetRef}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.EndpointAddress")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointAddress {
    #[serde(default)]
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Usually the Pod behind the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<ObjectReference>,
}

/// `{name, port, protocol, appProtocol}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.EndpointPort")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub port: i32,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

impl Endpoints {
    /// The name (that of the Service).
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// Every ready address IP over all subsets.
    pub fn ready_ips(&self) -> impl Iterator<Item = &str> {
        self.subsets
            .iter()
            .flat_map(|s| s.addresses.iter().map(|a| a.ip.as_str()))
    }
}

fn validate_address(errs: &mut FieldErrors, a: &EndpointAddress, path: &str) {
    let ip_path = join(path, "ip");
    match a.ip.parse::<IpAddr>() {
        Err(_) if a.ip.is_empty() => errs.push(FieldError::required(ip_path)),
        Err(_) => errs.push(FieldError::invalid(
            ip_path,
            format!("{:?}: must be a valid IP address", a.ip),
        )),
        Ok(ip) if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() => {
            errs.push(FieldError::invalid(
                ip_path,
                format!("{:?}: may not be unspecified, loopback or multicast", a.ip),
            ))
        }
        Ok(IpAddr::V4(v4)) if v4.is_link_local() => errs.push(FieldError::invalid(
            ip_path,
            format!(
                "{:?}: may not be in the link-local range (169.254.0.0/16)",
                a.ip
            ),
        )),
        Ok(_) => {}
    }
    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        check_label(errs, &join(path, "hostname"), h);
    }
    if let Some(n) = a.node_name.as_deref().filter(|n| !n.is_empty()) {
        check_subdomain(errs, &join(path, "nodeName"), n);
    }
}

impl Object for Endpoints {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Port protocol TCP.
    fn apply_defaults(&mut self) {
        for s in &mut self.subsets {
            for p in &mut s.ports {
                p.protocol.get_or_insert_with(|| "TCP".into());
            }
        }
    }

    fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::new();
        for (i, s) in self.subsets.iter().enumerate() {
            let sp = index("subsets", i);
            for (list, addrs) in [
                ("addresses", &s.addresses),
                ("notReadyAddresses", &s.not_ready_addresses),
            ] {
                for (j, a) in addrs.iter().enumerate() {
                    validate_address(&mut errs, a, &index(&join(&sp, list), j));
                }
            }
            if s.addresses.is_empty() && s.not_ready_addresses.is_empty() {
                errs.push(FieldError::invalid(
                    sp.clone(),
                    "must specify `addresses` or `notReadyAddresses`",
                ));
            }
            let mut names = BTreeSet::new();
            for (j, p) in s.ports.iter().enumerate() {
                let pp = index(&join(&sp, "ports"), j);
                match p.name.as_deref().filter(|n| !n.is_empty()) {
                    None if s.ports.len() > 1 => errs.push(FieldError::required(join(&pp, "name"))),
                    None => {}
                    Some(n) => {
                        check_label(&mut errs, &join(&pp, "name"), n);
                        if !names.insert(n) {
                            errs.push(FieldError::duplicate(join(&pp, "name")));
                        }
                    }
                }
                check_port(&mut errs, &join(&pp, "port"), p.port);
                if let Some(proto) = &p.protocol {
                    check_enum(&mut errs, &join(&pp, "protocol"), proto, PROTOCOLS);
                }
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoints(subsets: serde_json::Value) -> Endpoints {
        let mut e: Endpoints = crate::decode::decode(json!({
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"}, "subsets": subsets
        }))
        .unwrap();
        e.apply_defaults();
        e
    }

    #[test]
    fn valid_endpoints_get_protocols() {
        let e = endpoints(json!([{
            "addresses": [{"ip": "10.42.1.7", "nodeName": "pi-1", "targetRef": {"kind": "Pod", "name": "web-abc", "namespace": "default", "uid": "u1"}}],
            "notReadyAddresses": [{"ip": "10.42.2.3"}],
            "ports": [{"name": "http", "port": 8080}]
        }]));
        assert!(e.validate().is_empty(), "{}", e.validate());
        assert_eq!(e.subsets[0].ports[0].protocol.as_deref(), Some("TCP"));
        assert_eq!(e.ready_ips().collect::<Vec<_>>(), ["10.42.1.7"]);
    }

    #[test]
    fn bad_addresses_and_ports() {
        let e = endpoints(json!([{
            "addresses": [{"ip": "127.0.0.1"}, {"ip": "nope"}, {"ip": "169.254.1.1"}],
            "ports": [{"port": 80}, {"name": "b", "port": 0, "protocol": "ICMP"}]
        }, {}]));
        let errs = e.validate();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "subsets[0].addresses[0].ip",
                "subsets[0].addresses[1].ip",
                "subsets[0].addresses[2].ip",
                "subsets[0].ports[0].name",
                "subsets[0].ports[1].port",
                "subsets[0].ports[1].protocol",
                "subsets[1]",
            ]
        );
    }
}
