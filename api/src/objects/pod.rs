//! `v1 Pod` and `PodSpec`: containers, volumes, scheduling, DNS, security, and
//! Bramble's device-access annotation.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors, index, join};
use crate::meta::{ObjectMeta, validate_labels};

use super::common::{
    LocalObjectReference, check_label, check_non_negative, check_opt_enum, check_subdomain,
    is_false,
};
use super::container::Container;
use super::pod_status::PodStatus;
use super::scheduling::{Affinity, Toleration, validate_tolerations};
use super::volume::{Volume, validate_volumes};

/// Pod annotation listing host devices the pod's containers may use:
/// `bramble.dev/devices: /dev/i2c-1,/dev/ttyUSB0`.
pub const DEVICES_ANNOTATION: &str = "bramble.dev/devices";

/// Namespace annotation listing the host devices its pods may name in
/// [`DEVICES_ANNOTATION`] under the `baseline` and `restricted` Pod
/// Security levels: `bramble.dev/allowed-devices: /dev/i2c-1,/dev/ttyUSB0`.
pub const ALLOWED_DEVICES_ANNOTATION: &str = "bramble.dev/allowed-devices";
/// `restartPolicy` values.
pub const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
/// `dnsPolicy` values.
pub const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
/// Default `terminationGracePeriodSeconds`.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;

/// `v1 Pod`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Pod")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pod {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
    /// Written by the hub; what clients send is not trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodStatus>,
}

/// The desired state of a pod (also the `spec` of pod templates).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PodSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSpec {
    /// Containers run one after the other, each to completion, before the
    /// app containers start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// The pod's containers, started together, sharing its network. At least one.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Volumes the containers can mount, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// `Always` (default), `OnFailure` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when the pod stops (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// `ClusterFirst` (default), `ClusterFirstWithHostNet`, `Default` or `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<PodDnsConfig>,
    /// Labels a node must have for the pod to be scheduled on it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Set by the scheduler when the pod is bound (or by the user to skip it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Runs the pod in the node's network namespace instead of its own.
    #[serde(default, skip_serializing_if = "is_false")]
    pub host_network: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// Node affinity rules for scheduling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Taints of nodes the pod tolerates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

/// Pod-level `securityContext`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PodSecurityContext")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSecurityContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<super::seccomp::SeccompProfile>,
}

/// `dnsConfig`: extra resolver settings (required with `dnsPolicy: None`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PodDNSConfig")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodDnsConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<PodDnsConfigOption>,
}

/// A resolver option: `{name: ndots, value: "2"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PodDNSConfigOption")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodDnsConfigOption {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl PodSpec {
    /// Kubernetes pod spec defaults: restart policy, DNS policy, grace period,
    /// host ports under host networking, and every container's defaults.
    pub fn apply_defaults(&mut self) {
        self.restart_policy.get_or_insert_with(|| "Always".into());
        self.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
        self.termination_grace_period_seconds
            .get_or_insert(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
        for c in self
            .init_containers
            .iter_mut()
            .chain(self.containers.iter_mut())
        {
            c.apply_defaults();
            if self.host_network {
                for p in &mut c.ports {
                    if p.host_port.is_none_or(|h| h == 0) {
                        p.host_port = Some(p.container_port);
                    }
                }
            }
        }
        for v in &mut self.volumes {
            v.apply_defaults();
        }
    }

    /// The restart policy, `Always` when unset.
    pub fn restart_policy(&self) -> &str {
        self.restart_policy.as_deref().unwrap_or("Always")
    }

    /// Regular and init containers, init containers first.
    pub fn all_containers(&self) -> impl Iterator<Item = &Container> {
        self.init_containers.iter().chain(self.containers.iter())
    }

    /// The pod's QoS class as Kubernetes' `GetPodQOS` decides it (after
    /// defaulting, so a limit without a request requests it): `BestEffort`
    /// when no container requests or limits CPU or memory, `Guaranteed`
    /// when every container has CPU and memory limits equal to its
    /// requests, `Burstable` otherwise.
    pub fn qos_class(&self) -> &'static str {
        let mut any = false;
        let mut guaranteed = true;
        for c in self.all_containers() {
            let r = &c.resources;
            for name in ["cpu", "memory"] {
                let request = r.requests.get(name).filter(|q| !q.is_zero());
                let limit = r.limits.get(name).filter(|q| !q.is_zero());
                any |= request.is_some() || limit.is_some();
                match (request, limit) {
                    (Some(q), Some(l)) if q == l => {}
                    (None, Some(_)) => {}
                    _ => guaranteed = false,
                }
            }
        }
        match (any, guaranteed) {
            (false, _) => "BestEffort",
            (true, true) => "Guaranteed",
            (true, false) => "Burstable",
        }
    }

    /// Validates the spec at `path` (`spec` or `spec.template.spec`).
    pub fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let (volumes, verrs) = validate_volumes(&self.volumes, &join(path, "volumes"));
        errs.extend(verrs);

        if self.containers.is_empty() {
            errs.push(FieldError::required(join(path, "containers")));
        }
        let mut names = BTreeSet::new();
        let mut host_ports = BTreeSet::new();
        let lists = [
            ("initContainers", &self.init_containers, true),
            ("containers", &self.containers, false),
        ];
        for (list, containers, init) in lists {
            for (i, c) in containers.iter().enumerate() {
                let cp = index(&join(path, list), i);
                errs.extend(c.validate(&cp, &volumes, init));
                if !c.name.is_empty() && !names.insert(c.name.as_str()) {
                    errs.push(FieldError::duplicate(join(&cp, "name")));
                }
                for (j, p) in c.ports.iter().enumerate() {
                    let pp = index(&join(&cp, "ports"), j);
                    let Some(hp) = p.host_port.filter(|h| *h != 0) else {
                        continue;
                    };
                    if self.host_network && hp != p.container_port {
                        errs.push(FieldError::invalid(
                            join(&pp, "hostPort"),
                            format!("{hp}: must match `containerPort` when `hostNetwork` is true"),
                        ));
                    }
                    let key = (
                        hp,
                        p.protocol().to_string(),
                        p.host_ip.clone().unwrap_or_default(),
                    );
                    if !init && !host_ports.insert(key) {
                        errs.push(FieldError::duplicate(join(&pp, "hostPort")));
                    }
                }
            }
        }

        check_opt_enum(
            &mut errs,
            &join(path, "restartPolicy"),
            self.restart_policy.as_deref(),
            RESTART_POLICIES,
        );
        check_opt_enum(
            &mut errs,
            &join(path, "dnsPolicy"),
            self.dns_policy.as_deref(),
            DNS_POLICIES,
        );
        if let Some(g) = self.termination_grace_period_seconds {
            check_non_negative(&mut errs, &join(path, "terminationGracePeriodSeconds"), g);
        }
        if self.dns_policy.as_deref() == Some("None")
            && self
                .dns_config
                .as_ref()
                .is_none_or(|d| d.nameservers.is_empty())
        {
            errs.push(FieldError::required(join(
                &join(path, "dnsConfig"),
                "nameservers",
            )));
        }
        if let Some(d) = &self.dns_config {
            errs.extend(d.validate(&join(path, "dnsConfig")));
        }
        errs.extend(validate_labels(
            &self.node_selector,
            &join(path, "nodeSelector"),
        ));
        if let Some(n) = self.node_name.as_deref().filter(|n| !n.is_empty()) {
            check_subdomain(&mut errs, &join(path, "nodeName"), n);
        }
        if let Some(sa) = self
            .service_account_name
            .as_deref()
            .filter(|n| !n.is_empty())
        {
            check_subdomain(&mut errs, &join(path, "serviceAccountName"), sa);
        }
        if let Some(h) = self.hostname.as_deref().filter(|n| !n.is_empty()) {
            check_label(&mut errs, &join(path, "hostname"), h);
        }
        if let Some(s) = self.subdomain.as_deref().filter(|n| !n.is_empty()) {
            check_label(&mut errs, &join(path, "subdomain"), s);
        }
        for (i, s) in self.image_pull_secrets.iter().enumerate() {
            let p = join(&index(&join(path, "imagePullSecrets"), i), "name");
            if s.name.is_empty() {
                errs.push(FieldError::required(p));
            } else {
                check_subdomain(&mut errs, &p, &s.name);
            }
        }
        if let Some(sc) = &self.security_context {
            let sp = join(path, "securityContext");
            for (name, v) in [
                ("runAsUser", sc.run_as_user),
                ("runAsGroup", sc.run_as_group),
                ("fsGroup", sc.fs_group),
            ] {
                if let Some(v) = v {
                    check_non_negative(&mut errs, &join(&sp, name), v);
                }
            }
            if let Some(p) = &sc.seccomp_profile {
                errs.extend(p.validate(&join(&sp, "seccompProfile")));
            }
            if sc.run_as_non_root == Some(true) && sc.run_as_user == Some(0) {
                errs.push(FieldError::invalid(
                    join(&sp, "runAsUser"),
                    "0: cannot be 0 when `runAsNonRoot` is true",
                ));
            }
        }
        if let Some(a) = &self.affinity {
            errs.extend(a.validate(&join(path, "affinity")));
        }
        errs.extend(validate_tolerations(
            &self.tolerations,
            &join(path, "tolerations"),
        ));
        errs
    }
}

impl PodDnsConfig {
    fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if self.nameservers.len() > 3 {
            errs.push(FieldError::invalid(
                join(path, "nameservers"),
                "must not have more than 3 nameservers",
            ));
        }
        for (i, ns) in self.nameservers.iter().enumerate() {
            if ns.parse::<IpAddr>().is_err() {
                errs.push(FieldError::invalid(
                    index(&join(path, "nameservers"), i),
                    format!("{ns:?}: must be a valid IP address"),
                ));
            }
        }
        if self.searches.len() > 32 {
            errs.push(FieldError::invalid(
                join(path, "searches"),
                "must not have more than 32 search paths",
            ));
        }
        for (i, s) in self.searches.iter().enumerate() {
            check_subdomain(
                &mut errs,
                &index(&join(path, "searches"), i),
                s.trim_end_matches('.'),
            );
        }
        for (i, o) in self.options.iter().enumerate() {
            if o.name.is_empty() {
                errs.push(FieldError::required(join(
                    &index(&join(path, "options"), i),
                    "name",
                )));
            }
        }
        errs
    }
}

/// The device paths of a `bramble.dev/devices` annotation (empty when absent).
pub fn devices_from_annotations(annotations: &BTreeMap<String, String>) -> Vec<&str> {
    device_list(annotations, DEVICES_ANNOTATION)
}

/// The comma-separated device paths of annotation `key` (empty when absent).
pub fn device_list<'a>(annotations: &'a BTreeMap<String, String>, key: &str) -> Vec<&'a str> {
    annotations
        .get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Validates the `bramble.dev/devices` annotation of `annotations` at
/// `annotations_path` (e.g. `metadata.annotations`).
pub fn validate_devices(
    annotations: &BTreeMap<String, String>,
    annotations_path: &str,
) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let Some(raw) = annotations.get(DEVICES_ANNOTATION) else {
        return errs;
    };
    let path = format!("{annotations_path}[{DEVICES_ANNOTATION}]");
    for d in raw.split(',').map(str::trim) {
        let ok = d.len() > "/dev/".len()
            && d.starts_with("/dev/")
            && !d.ends_with('/')
            && !d.split('/').any(|p| p == ".." || p == ".")
            && !d.contains("//")
            && !d
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
        if !ok {
            errs.push(FieldError::invalid(
                path.clone(),
                format!("{d:?}: must be a comma-separated list of absolute device paths under /dev/ (e.g. /dev/i2c-1,/dev/ttyUSB0)"),
            ));
        }
    }
    errs
}

impl Pod {
    /// The pod's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The pod's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// The node the pod is bound to, if any.
    pub fn node_name(&self) -> Option<&str> {
        self.spec.node_name.as_deref().filter(|n| !n.is_empty())
    }

    /// Host devices requested with the `bramble.dev/devices` annotation.
    pub fn devices(&self) -> Vec<&str> {
        devices_from_annotations(&self.metadata.annotations)
    }

    /// The pod phase, `Pending` when no status has been written.
    pub fn phase(&self) -> &str {
        self.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending")
    }
}

impl Object for Pod {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Pod spec defaults, plus Kubernetes' pod-only rule that a resource with a
    /// limit and no request requests its limit.
    fn apply_defaults(&mut self) {
        self.spec.apply_defaults();
        for c in self
            .spec
            .init_containers
            .iter_mut()
            .chain(self.spec.containers.iter_mut())
        {
            c.resources.default_requests_to_limits();
        }
    }

    fn validate(&self) -> FieldErrors {
        let mut errs = validate_devices(&self.metadata.annotations, "metadata.annotations");
        errs.extend(self.spec.validate("spec"));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        crate::decode::decode(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}),
        )
        .unwrap()
    }

    #[test]
    fn devices_annotation_is_parsed_and_validated() {
        let mut p = pod(json!({"containers": [{"name": "a", "image": "busybox"}]}));
        p.metadata.annotations.insert(
            DEVICES_ANNOTATION.into(),
            "/dev/i2c-1, /dev/ttyUSB0,/dev/gpiochip0".into(),
        );
        assert_eq!(
            p.devices(),
            ["/dev/i2c-1", "/dev/ttyUSB0", "/dev/gpiochip0"]
        );
        assert!(p.validate().is_empty());
        p.metadata.annotations.insert(
            DEVICES_ANNOTATION.into(),
            "/dev/i2c-1,/etc/shadow,/dev/../sda,".into(),
        );
        let errs = p.validate();
        assert_eq!(errs.0.len(), 3, "{errs}");
        assert!(
            errs.0
                .iter()
                .all(|e| e.path == "metadata.annotations[bramble.dev/devices]")
        );
        assert!(errs.0[0].to_string().contains("\"/etc/shadow\""));
    }

    #[test]
    fn host_network_defaults_host_ports_and_checks_them() {
        let mut p = pod(json!({"hostNetwork": true, "containers": [
            {"name": "a", "image": "x:1", "ports": [{"containerPort": 8080}, {"containerPort": 9090, "hostPort": 9091}]}
        ]}));
        p.apply_defaults();
        assert_eq!(p.spec.containers[0].ports[0].host_port, Some(8080));
        assert_eq!(
            p.validate().to_string(),
            "spec.containers[0].ports[1].hostPort: Invalid value: 9091: must match `containerPort` when `hostNetwork` is true"
        );
    }

    #[test]
    fn duplicate_host_ports_and_container_names() {
        let p = pod(json!({"containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
            {"name": "a", "image": "y", "ports": [{"containerPort": 81, "hostPort": 8080}]}
        ], "initContainers": [{"name": "a", "image": "z"}]}));
        let errs = p.validate();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.containers[0].name",
                "spec.containers[1].name",
                "spec.containers[1].ports[0].hostPort"
            ]
        );
    }

    #[test]
    fn dns_policy_none_needs_nameservers() {
        let p = pod(json!({"dnsPolicy": "None", "containers": [{"name": "a", "image": "x"}]}));
        assert_eq!(
            p.validate().to_string(),
            "spec.dnsConfig.nameservers: Required value"
        );
        let p = pod(
            json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["lan"], "options": [{"name": "ndots", "value": "2"}]},
            "containers": [{"name": "a", "image": "x"}]}),
        );
        assert!(p.validate().is_empty());
    }

    #[test]
    fn qos_classes_as_kubernetes_gives_them() {
        let qos = |containers: serde_json::Value| {
            let mut p = pod(json!({ "containers": containers }));
            p.apply_defaults();
            p.spec.qos_class()
        };
        assert_eq!(qos(json!([{"name": "a", "image": "x"}])), "BestEffort");
        let both = json!({"cpu": "100m", "memory": "64Mi"});
        assert_eq!(
            qos(json!([{"name": "a", "image": "x", "resources": {"limits": both}}])),
            "Guaranteed",
            "limits alone: requests default to them"
        );
        assert_eq!(
            qos(
                json!([{"name": "a", "image": "x", "resources": {"limits": both, "requests": {"cpu": "0.1", "memory": "64Mi"}}}])
            ),
            "Guaranteed",
            "0.1 and 100m are one quantity"
        );
        assert_eq!(
            qos(json!([{"name": "a", "image": "x", "resources": {"requests": {"cpu": "10m"}}}])),
            "Burstable"
        );
        assert_eq!(
            qos(
                json!([{"name": "a", "image": "x", "resources": {"limits": both}},
                       {"name": "b", "image": "x"}])
            ),
            "Burstable",
            "every container must be guaranteed"
        );
    }

    #[test]
    fn limits_become_requests_on_pods() {
        let mut p = pod(
            json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"memory": "64Mi"}}}]}),
        );
        p.apply_defaults();
        assert_eq!(
            p.spec.containers[0].resources.memory_request_bytes(),
            64 << 20
        );
        assert_eq!(p.namespace(), "default");
        assert_eq!(p.phase(), "Pending");
        assert_eq!(p.node_name(), None);
    }
}
