//! `networking.k8s.io/v1 NetworkPolicy`: which traffic may reach (ingress) and
//! leave (egress) the selected pods.

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::cidr::Cidr;
use crate::field::{FieldError, FieldErrors, index, join};
use crate::intstr::IntOrString;
use crate::meta::{LabelSelector, ObjectMeta};

use super::common::{PROTOCOLS, check_enum, check_port, check_port_or_name};

/// `policyTypes` values.
pub const POLICY_TYPES: &[&str] = &["Ingress", "Egress"];

/// `networking.k8s.io/v1 NetworkPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.NetworkPolicy")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicy {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NetworkPolicySpec,
}

/// `spec` of a NetworkPolicy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.NetworkPolicySpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicySpec {
    /// Pods the policy applies to; `{}` selects every pod of the namespace.
    #[serde(default)]
    pub pod_selector: LabelSelector,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<NetworkPolicyIngressRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<NetworkPolicyEgressRule>,
    /// Defaults to `[Ingress]`, plus `Egress` when egress rules are given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_types: Vec<String>,
}

/// `{from, ports}`: traffic allowed in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.NetworkPolicyIngressRule")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyIngressRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<NetworkPolicyPeer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NetworkPolicyPort>,
}

/// `{to, ports}`: traffic allowed out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.NetworkPolicyEgressRule")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyEgressRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<NetworkPolicyPeer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NetworkPolicyPort>,
}

/// A peer: pods (optionally in selected namespaces) or an IP block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.NetworkPolicyPeer")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyPeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
}

/// `ipBlock: {cidr, except}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.IPBlock")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpBlock {
    #[serde(default)]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// `{protocol, port, endPort}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.NetworkPolicyPort")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyPort {
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// A number or a named container port; unset means every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// Last port of a range starting at a numeric `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i32>,
}

impl NetworkPolicy {
    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The policy's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// Whether the policy restricts ingress.
    pub fn affects_ingress(&self) -> bool {
        self.spec.policy_types.iter().any(|t| t == "Ingress")
    }

    /// Whether the policy restricts egress.
    pub fn affects_egress(&self) -> bool {
        self.spec.policy_types.iter().any(|t| t == "Egress")
    }
}

fn validate_peers(errs: &mut FieldErrors, peers: &[NetworkPolicyPeer], path: &str) {
    for (i, p) in peers.iter().enumerate() {
        let pp = index(path, i);
        let selectors =
            usize::from(p.pod_selector.is_some()) + usize::from(p.namespace_selector.is_some());
        match (&p.ip_block, selectors) {
            (None, 0) => errs.push(FieldError::invalid(
                pp.clone(),
                "must specify a peer: `podSelector`, `namespaceSelector` or `ipBlock`",
            )),
            (Some(_), n) if n > 0 => errs.push(FieldError::invalid(
                pp.clone(),
                "may not specify both `ipBlock` and another peer",
            )),
            _ => {}
        }
        if let Some(s) = &p.pod_selector {
            errs.extend(s.validate(&join(&pp, "podSelector")));
        }
        if let Some(s) = &p.namespace_selector {
            errs.extend(s.validate(&join(&pp, "namespaceSelector")));
        }
        if let Some(b) = &p.ip_block {
            let bp = join(&pp, "ipBlock");
            let cidr = if b.cidr.is_empty() {
                errs.push(FieldError::required(join(&bp, "cidr")));
                None
            } else {
                match b.cidr.parse::<Cidr>() {
                    Ok(c) => Some(c),
                    Err(e) => {
                        errs.push(FieldError::invalid(join(&bp, "cidr"), e.to_string()));
                        None
                    }
                }
            };
            for (j, ex) in b.except.iter().enumerate() {
                let ep = index(&join(&bp, "except"), j);
                match ex.parse::<Cidr>() {
                    Err(e) => errs.push(FieldError::invalid(ep, e.to_string())),
                    Ok(e) => {
                        if let Some(c) = cidr
                            && !(c.contains_cidr(&e) && e.prefix > c.prefix)
                        {
                            errs.push(FieldError::invalid(
                                ep,
                                format!("{ex:?}: must be a strict subset of `cidr`"),
                            ));
                        }
                    }
                }
            }
        }
    }
}

fn validate_ports(errs: &mut FieldErrors, ports: &[NetworkPolicyPort], path: &str) {
    for (i, p) in ports.iter().enumerate() {
        let pp = index(path, i);
        if let Some(proto) = &p.protocol {
            check_enum(errs, &join(&pp, "protocol"), proto, PROTOCOLS);
        }
        if let Some(port) = &p.port {
            check_port_or_name(errs, &join(&pp, "port"), port);
        }
        if let Some(end) = p.end_port {
            let ep = join(&pp, "endPort");
            match p.port.as_ref().and_then(IntOrString::as_int) {
                None => errs.push(FieldError::invalid(
                    ep,
                    format!("{end}: may not be specified when `port` is not a number"),
                )),
                Some(start) => {
                    check_port(errs, &ep, end);
                    if end < start {
                        errs.push(FieldError::invalid(
                            ep,
                            format!("{end}: must be greater than or equal to `port`"),
                        ));
                    }
                }
            }
        }
    }
}

impl Object for NetworkPolicy {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// policyTypes `[Ingress]` (+ `Egress` when egress rules exist); port protocol TCP.
    fn apply_defaults(&mut self) {
        let s = &mut self.spec;
        if s.policy_types.is_empty() {
            s.policy_types.push("Ingress".into());
            if !s.egress.is_empty() {
                s.policy_types.push("Egress".into());
            }
        }
        let ingress_ports = s.ingress.iter_mut().flat_map(|r| r.ports.iter_mut());
        let egress_ports = s.egress.iter_mut().flat_map(|r| r.ports.iter_mut());
        for p in ingress_ports.chain(egress_ports) {
            p.protocol.get_or_insert_with(|| "TCP".into());
        }
    }

    fn validate(&self) -> FieldErrors {
        let s = &self.spec;
        let mut errs = s.pod_selector.validate("spec.podSelector");
        for (i, r) in s.ingress.iter().enumerate() {
            let rp = index("spec.ingress", i);
            validate_peers(&mut errs, &r.from, &join(&rp, "from"));
            validate_ports(&mut errs, &r.ports, &join(&rp, "ports"));
        }
        for (i, r) in s.egress.iter().enumerate() {
            let rp = index("spec.egress", i);
            validate_peers(&mut errs, &r.to, &join(&rp, "to"));
            validate_ports(&mut errs, &r.ports, &join(&rp, "ports"));
        }
        if s.policy_types.len() > 2 {
            errs.push(FieldError::invalid(
                "spec.policyTypes",
                "may not have more than 2 entries",
            ));
        }
        for (i, t) in s.policy_types.iter().enumerate() {
            let tp = index("spec.policyTypes", i);
            check_enum(&mut errs, &tp, t, POLICY_TYPES);
            if s.policy_types[..i].contains(t) {
                errs.push(FieldError::duplicate(tp));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(spec: serde_json::Value) -> NetworkPolicy {
        let mut p: NetworkPolicy = crate::decode::decode(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": spec
        }))
        .unwrap();
        p.apply_defaults();
        p
    }

    #[test]
    fn policy_types_default_per_kubernetes() {
        let p = policy(json!({"podSelector": {}}));
        assert_eq!(p.spec.policy_types, ["Ingress"]);
        assert!(p.affects_ingress() && !p.affects_egress());
        let p = policy(
            json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}),
        );
        assert_eq!(p.spec.policy_types, ["Ingress", "Egress"]);
        let p = policy(json!({"podSelector": {}, "policyTypes": ["Egress"]}));
        assert_eq!(p.spec.policy_types, ["Egress"]);
        assert!(p.validate().is_empty());
    }

    #[test]
    fn valid_rules_get_tcp() {
        let p = policy(json!({
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [
                {"podSelector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"matchLabels": {"team": "a"}}},
                {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.5.0/24"]}}
            ], "ports": [{"port": 5432}, {"port": 8000, "endPort": 8100, "protocol": "UDP"}, {"port": "metrics"}]}]
        }));
        assert!(p.validate().is_empty(), "{}", p.validate());
        assert_eq!(p.spec.ingress[0].ports[0].protocol.as_deref(), Some("TCP"));
    }

    #[test]
    fn bad_peers_cidrs_and_ports() {
        let p = policy(json!({
            "podSelector": {"matchExpressions": [{"key": "a", "operator": "Like"}]},
            "ingress": [{"from": [
                {},
                {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}},
                {"ipBlock": {"cidr": "10.0.0.0/33", "except": ["x"]}},
                {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16", "10.0.0.0/8"]}}
            ], "ports": [{"port": "http", "endPort": 90}, {"port": 100, "endPort": 90}, {"protocol": "ICMP"}]}],
            "policyTypes": ["Ingress", "Ingress", "Both"]
        }));
        let errs = p.validate();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.podSelector.matchExpressions[0].operator",
                "spec.ingress[0].from[0]",
                "spec.ingress[0].from[1]",
                "spec.ingress[0].from[2].ipBlock.cidr",
                "spec.ingress[0].from[2].ipBlock.except[0]",
                "spec.ingress[0].from[3].ipBlock.except[0]",
                "spec.ingress[0].from[3].ipBlock.except[1]",
                "spec.ingress[0].ports[0].endPort",
                "spec.ingress[0].ports[1].endPort",
                "spec.ingress[0].ports[2].protocol",
                "spec.policyTypes",
                "spec.policyTypes[1]",
                "spec.policyTypes[2]",
            ]
        );
    }
}
