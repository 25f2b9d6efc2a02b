//! `v1 Service`: a stable virtual IP (or a headless DNS name) for a set of pods.
//! `ClusterIP`, `NodePort` and `LoadBalancer` (a NodePort service that the
//! hub also serves on its own address, as k3s' ServiceLB does) are supported;
//! `ExternalName` is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors, index, join};
use crate::intstr::IntOrString;
use crate::meta::{NameRule, ObjectMeta, validate_labels};
use crate::names;

use super::common::{
    Condition, PROTOCOLS, check_enum, check_opt_enum, check_port, check_port_or_name, is_false,
};

/// Service types Bramble supports.
pub const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer"];
/// The NodePort range.
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<i32> = 30000..=32767;
/// Default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_CLIENT_IP_TIMEOUT_SECONDS: i32 = 10800;

/// `v1 Service`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Service")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ServiceSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceStatus>,
}

/// `spec` of a Service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ServiceSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    /// `ClusterIP` (default), `NodePort` or `LoadBalancer`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Allocated by the hub; `None` for a headless service.
    #[serde(rename = "clusterIP", default, skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// `None` (default) or `ClientIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_config: Option<SessionAffinityConfig>,
    /// NodePort and LoadBalancer only: `Cluster` (default) or `Local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<String>,
    /// `Cluster` (default) or `Local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_traffic_policy: Option<String>,
    /// `IPv4` and/or `IPv6`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_families: Vec<String>,
    /// `SingleStack`, `PreferDualStack` or `RequireDualStack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family_policy: Option<String>,
    /// Include not-ready pods in endpoints and DNS.
    #[serde(default, skip_serializing_if = "is_false")]
    pub publish_not_ready_addresses: bool,
    /// A LoadBalancer answers clients from these CIDRs only (none: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_source_ranges: Vec<String>,
}

/// The Service annotation choosing the boards that also serve a
/// LoadBalancer Service (the hub's `service_lb::nodes`).
pub const LB_NODES_ANNOTATION: &str = "bramble.dev/lb-nodes";

/// One port of a Service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ServicePort")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    /// Required when the service has more than one port.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    #[serde(default)]
    pub port: i32,
    /// A number or a container port name; defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    /// NodePort and LoadBalancer services only, 30000-32767; allocated by
    /// the hub when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i32>,
}

/// `sessionAffinityConfig: {clientIP: {timeoutSeconds}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.SessionAffinityConfig")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionAffinityConfig {
    #[serde(rename = "clientIP", default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<ClientIpConfig>,
}

/// `clientIP: {timeoutSeconds}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ClientIPConfig")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientIpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
}

/// `status` of a Service (and, in the same shape, of an Ingress).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ServiceStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// `loadBalancer: {ingress: [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.LoadBalancerStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<LoadBalancerIngress>,
}

/// `{ip, hostname}` where traffic for the service or ingress arrives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.LoadBalancerIngress")
)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerIngress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

impl ServicePort {
    /// The protocol, `TCP` when unset.
    pub fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or("TCP")
    }
}

impl Service {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The service's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// The type, `ClusterIP` when unset.
    pub fn type_(&self) -> &str {
        self.spec.type_.as_deref().unwrap_or("ClusterIP")
    }

    /// Whether its ports are also node ports (`NodePort` and `LoadBalancer`).
    pub fn has_node_ports(&self) -> bool {
        matches!(self.type_(), "NodePort" | "LoadBalancer")
    }

    /// Whether `clusterIP: None` (no virtual IP; DNS returns pod IPs).
    pub fn is_headless(&self) -> bool {
        self.spec.cluster_ip.as_deref() == Some("None")
    }
}

impl Object for Service {
    const NAME_RULE: NameRule = NameRule::Label;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// type ClusterIP, sessionAffinity None (ClientIP timeout 10800),
    /// internalTrafficPolicy Cluster, externalTrafficPolicy Cluster for
    /// NodePort and LoadBalancer, port protocol TCP, targetPort = port.
    fn apply_defaults(&mut self) {
        let s = &mut self.spec;
        let t = s.type_.get_or_insert_with(|| "ClusterIP".into()).clone();
        let affinity = s.session_affinity.get_or_insert_with(|| "None".into());
        if affinity == "ClientIP" {
            let cfg = s
                .session_affinity_config
                .get_or_insert_with(Default::default);
            cfg.client_ip
                .get_or_insert_with(Default::default)
                .timeout_seconds
                .get_or_insert(DEFAULT_CLIENT_IP_TIMEOUT_SECONDS);
        }
        let node_ports = t == "NodePort" || t == "LoadBalancer";
        if t == "ClusterIP" || node_ports {
            s.internal_traffic_policy
                .get_or_insert_with(|| "Cluster".into());
        }
        if node_ports {
            s.external_traffic_policy
                .get_or_insert_with(|| "Cluster".into());
        }
        for p in &mut s.ports {
            p.protocol.get_or_insert_with(|| "TCP".into());
            if p.target_port.is_none() && p.port != 0 {
                p.target_port = Some(IntOrString::Int(p.port));
            }
        }
    }

    fn validate(&self) -> FieldErrors {
        let s = &self.spec;
        let mut errs = FieldErrors::new();
        let t = s.type_.as_deref().unwrap_or("ClusterIP");
        check_enum(&mut errs, "spec.type", t, SERVICE_TYPES);
        let headless = self.is_headless();
        match s.cluster_ip.as_deref() {
            None | Some("") | Some("None") => {}
            Some(ip) => {
                if ip.parse::<IpAddr>().is_err() {
                    errs.push(FieldError::invalid(
                        "spec.clusterIP",
                        format!("{ip:?}: must be empty, 'None', or a valid IP address"),
                    ));
                }
            }
        }
        let node_ports = t == "NodePort" || t == "LoadBalancer";
        if headless && node_ports {
            errs.push(FieldError::invalid(
                "spec.clusterIP",
                format!("\"None\": may not be set to 'None' for {t} services"),
            ));
        }
        for (i, ip) in s.cluster_ips.iter().enumerate() {
            if ip != "None" && ip.parse::<IpAddr>().is_err() {
                errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    format!("{ip:?}: must be a valid IP address"),
                ));
            }
        }
        if let (Some(first), Some(ip)) = (s.cluster_ips.first(), s.cluster_ip.as_deref())
            && !ip.is_empty()
            && first != ip
        {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                format!("{first:?}: must match `clusterIP` when present"),
            ));
        }
        errs.extend(validate_labels(&s.selector, "spec.selector"));
        if s.ports.is_empty() && !headless {
            errs.push(FieldError::required("spec.ports"));
        }
        errs.extend(validate_ports(&s.ports, node_ports));
        check_opt_enum(
            &mut errs,
            "spec.sessionAffinity",
            s.session_affinity.as_deref(),
            &["None", "ClientIP"],
        );
        if let Some(cfg) = &s.session_affinity_config {
            if s.session_affinity.as_deref() != Some("ClientIP") {
                errs.push(FieldError::invalid(
                    "spec.sessionAffinityConfig",
                    "must not be set when `sessionAffinity` is None",
                ));
            }
            if let Some(t) = cfg.client_ip.as_ref().and_then(|c| c.timeout_seconds)
                && !(1..=86400).contains(&t)
            {
                errs.push(FieldError::invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    format!("{t}: must be greater than 0 and less than 86400"),
                ));
            }
        }
        if let Some(p) = s.external_traffic_policy.as_deref() {
            if !node_ports {
                errs.push(FieldError::invalid(
                    "spec.externalTrafficPolicy",
                    format!("{p:?}: may only be set for NodePort and LoadBalancer services"),
                ));
            } else {
                check_enum(
                    &mut errs,
                    "spec.externalTrafficPolicy",
                    p,
                    &["Cluster", "Local"],
                );
            }
        }
        for (i, r) in s.load_balancer_source_ranges.iter().enumerate() {
            let path = index("spec.loadBalancerSourceRanges", i);
            if t != "LoadBalancer" {
                errs.push(FieldError::invalid(
                    path,
                    format!("{r:?}: may only be used when `type` is LoadBalancer"),
                ));
            } else if r.trim().parse::<crate::cidr::Cidr>().is_err() {
                errs.push(FieldError::invalid(
                    path,
                    format!("{r:?}: must be a CIDR, e.g. 192.168.1.0/24 or 10.0.0.5/32"),
                ));
            }
        }
        if !s.load_balancer_source_ranges.is_empty()
            && self.metadata.annotations.contains_key(LB_NODES_ANNOTATION)
        {
            errs.push(FieldError::invalid(
                "spec.loadBalancerSourceRanges",
                format!(
                    "not supported together with the annotation {LB_NODES_ANNOTATION} yet (boards serve a port to every client): remove one of them"
                ),
            ));
        }
        check_opt_enum(
            &mut errs,
            "spec.internalTrafficPolicy",
            s.internal_traffic_policy.as_deref(),
            &["Cluster", "Local"],
        );
        for (i, f) in s.ip_families.iter().enumerate() {
            check_enum(
                &mut errs,
                &index("spec.ipFamilies", i),
                f,
                &["IPv4", "IPv6"],
            );
            if s.ip_families[..i].contains(f) {
                errs.push(FieldError::duplicate(index("spec.ipFamilies", i)));
            }
        }
        check_opt_enum(
            &mut errs,
            "spec.ipFamilyPolicy",
            s.ip_family_policy.as_deref(),
            &["SingleStack", "PreferDualStack", "RequireDualStack"],
        );
        errs
    }
}

fn validate_ports(ports: &[ServicePort], node_port_service: bool) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut names_seen = BTreeSet::new();
    let mut ports_seen = BTreeSet::new();
    let mut node_ports_seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let np = join(&pp, "name");
        if p.name.is_empty() {
            if ports.len() > 1 {
                errs.push(FieldError::required(np));
            }
        } else if let Err(why) = names::dns1123_label(&p.name) {
            errs.push(FieldError::invalid(np, format!("{:?}: {why}", p.name)));
        } else if !names_seen.insert(p.name.as_str()) {
            errs.push(FieldError::duplicate(np));
        }
        if let Some(proto) = &p.protocol {
            check_enum(&mut errs, &join(&pp, "protocol"), proto, PROTOCOLS);
        }
        if let Some(ap) = p.app_protocol.as_deref()
            && let Err(why) = names::label_key(ap)
        {
            errs.push(FieldError::invalid(
                join(&pp, "appProtocol"),
                format!("{ap:?}: {why}"),
            ));
        }
        check_port(&mut errs, &join(&pp, "port"), p.port);
        if !ports_seen.insert((p.port, p.protocol())) {
            errs.push(FieldError::duplicate(pp.clone()));
        }
        if let Some(tp) = &p.target_port {
            check_port_or_name(&mut errs, &join(&pp, "targetPort"), tp);
        }
        if let Some(np) = p.node_port.filter(|n| *n != 0) {
            let npp = join(&pp, "nodePort");
            if !node_port_service {
                errs.push(FieldError::invalid(
                    npp,
                    format!("{np}: may not be used when `type` is 'ClusterIP'"),
                ));
            } else if !NODE_PORT_RANGE.contains(&np) {
                errs.push(FieldError::invalid(
                    npp,
                    format!("{np}: provided port is not in the valid range. The range of valid ports is 30000-32767"),
                ));
            } else if !node_ports_seen.insert((np, p.protocol())) {
                errs.push(FieldError::duplicate(npp));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(spec: serde_json::Value) -> Service {
        let mut s: Service = crate::decode::decode(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": spec
        }))
        .unwrap();
        s.apply_defaults();
        s
    }

    #[test]
    fn defaults() {
        let s = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        assert_eq!(
            serde_json::to_value(&s.spec).unwrap(),
            json!({"type": "ClusterIP", "selector": {"app": "web"},
                   "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
                   "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"})
        );
        assert!(s.validate().is_empty());
        let s = service(
            json!({"type": "NodePort", "sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": "http", "nodePort": 30080}]}),
        );
        assert_eq!(s.spec.external_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(
            s.spec
                .session_affinity_config
                .as_ref()
                .unwrap()
                .client_ip
                .as_ref()
                .unwrap()
                .timeout_seconds,
            Some(10800)
        );
        assert!(s.validate().is_empty(), "{}", s.validate());
    }

    #[test]
    fn load_balancers_are_node_port_services_and_external_name_is_refused() {
        let mut s =
            service(json!({"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 30080}]}));
        s.apply_defaults();
        assert!(s.validate().is_empty(), "{}", s.validate());
        assert!(s.has_node_ports());
        assert_eq!(s.spec.external_traffic_policy.as_deref(), Some("Cluster"));
        let s =
            service(json!({"type": "LoadBalancer", "clusterIP": "None", "ports": [{"port": 80}]}));
        assert_eq!(
            s.validate().to_string(),
            "spec.clusterIP: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"
        );
        let s = service(json!({"type": "ExternalName", "ports": [{"port": 80}]}));
        assert_eq!(
            s.validate().to_string(),
            "spec.type: Unsupported value: supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\""
        );
        let s = service(json!({"ports": [{"port": 80}]}));
        assert!(!s.has_node_ports());
    }

    #[test]
    fn source_ranges_are_cidrs_of_load_balancers_served_by_the_hub() {
        let s = service(json!({"type": "LoadBalancer", "ports": [{"port": 80}],
            "loadBalancerSourceRanges": ["192.168.1.0/24", "10.0.0.5/32"]}));
        assert!(s.validate().is_empty(), "{}", s.validate());
        let s = service(json!({"type": "LoadBalancer", "ports": [{"port": 80}],
            "loadBalancerSourceRanges": ["192.168.1.0/24", "lan"]}));
        assert_eq!(s.validate().0[0].path, "spec.loadBalancerSourceRanges[1]");
        let s =
            service(json!({"ports": [{"port": 80}], "loadBalancerSourceRanges": ["10.0.0.0/8"]}));
        assert!(
            s.validate()
                .to_string()
                .contains("may only be used when `type` is LoadBalancer"),
            "{}",
            s.validate()
        );
        let mut s = service(json!({"type": "LoadBalancer", "ports": [{"port": 80}],
            "loadBalancerSourceRanges": ["10.0.0.0/8"]}));
        s.metadata
            .annotations
            .insert(LB_NODES_ANNOTATION.into(), "role=gateway".into());
        assert_eq!(s.validate().0[0].path, "spec.loadBalancerSourceRanges");
    }

    #[test]
    fn headless_needs_no_ports_but_nodeport_cannot_be_headless() {
        let s = service(json!({"clusterIP": "None", "selector": {"app": "db"}}));
        assert!(s.is_headless());
        assert!(s.validate().is_empty());
        let s = service(json!({"clusterIP": "None", "type": "NodePort", "ports": [{"port": 80}]}));
        assert_eq!(s.validate().0[0].path, "spec.clusterIP");
        let s = service(json!({}));
        assert_eq!(s.validate().to_string(), "spec.ports: Required value");
    }

    #[test]
    fn port_errors() {
        let s = service(json!({"clusterIP": "10.43.0.300", "ports": [
            {"name": "http", "port": 80, "targetPort": "HTTP"},
            {"name": "http", "port": 80},
            {"port": 0, "protocol": "ICMP", "nodePort": 30001},
        ]}));
        let errs = s.validate();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.clusterIP",
                "spec.ports[0].targetPort",
                "spec.ports[1].name",
                "spec.ports[1]",
                "spec.ports[2].name",
                "spec.ports[2].protocol",
                "spec.ports[2].port",
                "spec.ports[2].nodePort",
            ]
        );
        let s = service(
            json!({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 80}, {"name": "b", "port": 81, "nodePort": 30000}, {"name": "c", "port": 82, "nodePort": 30000}]}),
        );
        let paths: Vec<String> = s.validate().0.iter().map(|e| e.path.clone()).collect();
        assert_eq!(paths, ["spec.ports[0].nodePort", "spec.ports[2].nodePort"]);
    }
}
