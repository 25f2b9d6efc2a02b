//! Containers of a pod: image, command, ports, mounts, probes, security context.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, index, join};
use crate::names;

use super::common::{
    PROTOCOLS, check_absolute_path, check_enum, check_label, check_non_negative, check_opt_enum,
    check_port, is_false,
};
use super::env::{EnvFromSource, EnvVar, validate_env, validate_env_from};
use super::probe::{Probe, ProbeKind};
use super::resources::ResourceRequirements;
use super::seccomp::SeccompProfile;

/// `imagePullPolicy` values.
pub const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
/// `terminationMessagePolicy` values.
pub const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
/// Default `terminationMessagePath`.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// One container of a pod (or an init container).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Container")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    /// Name of the container, unique in the pod (a DNS label). Required.
    #[serde(default)]
    pub name: String,
    /// Image reference (`busybox:1.36`, `registry:5000/app@sha256:...`). Required.
    #[serde(default)]
    pub image: String,
    /// Entrypoint, replacing the image's ENTRYPOINT; not run in a shell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments to the entrypoint, replacing the image's CMD.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Working directory, replacing the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Ports the container listens on (informational, and named for probes
    /// and Services; `hostPort` publishes one on the node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// ConfigMaps and Secrets whose every key becomes an environment variable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,
    /// Environment variables; these win over `envFrom`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// CPU and memory requests (for scheduling) and limits (enforced by the cgroup).
    #[serde(default, skip_serializing_if = "ResourceRequirements::is_empty")]
    pub resources: ResourceRequirements,
    /// The pod's volumes to mount into the container's filesystem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Restarts the container when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Takes the pod out of its Services' endpoints while it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// Holds the other probes back until it succeeds once; failing, it
    /// restarts the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
    /// Default `/dev/termination-log`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_message_path: Option<String>,
    /// `File` (default) or `FallbackToLogsOnError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_message_policy: Option<String>,
    /// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
}

/// `{name, containerPort, hostPort, protocol, hostIP}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ContainerPort")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub container_port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

impl ContainerPort {
    /// The protocol, `TCP` when unset.
    pub fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or("TCP")
    }
}

/// `{name, mountPath, readOnly, subPath}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.VolumeMount")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}

/// Container `securityContext`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.SecurityContext")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_privilege_escalation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<SeccompProfile>,
}

/// `capabilities: {add, drop}` (e.g. `NET_ADMIN`, `ALL`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Capabilities")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

/// The pull policy Kubernetes picks for an image: `Always` when the tag is
/// `latest` or missing, `IfNotPresent` otherwise (including digests).
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

impl Container {
    /// Kubernetes container defaults: pull policy, termination message path and
    /// policy, port protocol, probe timings.
    pub fn apply_defaults(&mut self) {
        if self.image_pull_policy.is_none() && !self.image.is_empty() {
            self.image_pull_policy = Some(default_pull_policy(&self.image).into());
        }
        self.termination_message_path
            .get_or_insert_with(|| DEFAULT_TERMINATION_MESSAGE_PATH.into());
        self.termination_message_policy
            .get_or_insert_with(|| "File".into());
        for p in &mut self.ports {
            p.protocol.get_or_insert_with(|| "TCP".into());
        }
        for probe in [
            &mut self.liveness_probe,
            &mut self.readiness_probe,
            &mut self.startup_probe,
        ]
        .into_iter()
        .flatten()
        {
            probe.apply_defaults();
        }
        for e in &mut self.env {
            if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
                f.apply_defaults();
            }
        }
    }

    /// Finds a port by name.
    pub fn port_named(&self, name: &str) -> Option<&ContainerPort> {
        self.ports.iter().find(|p| p.name.as_deref() == Some(name))
    }

    /// Validates the container at `path`. `volumes` are the pod's volume names;
    /// `init` forbids probes.
    pub fn validate(&self, path: &str, volumes: &BTreeSet<&str>, init: bool) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let np = join(path, "name");
        if self.name.is_empty() {
            errs.push(FieldError::required(np));
        } else {
            check_label(&mut errs, &np, &self.name);
        }
        let ip = join(path, "image");
        if self.image.is_empty() {
            errs.push(FieldError::required(ip));
        } else if self.image.trim() != self.image {
            errs.push(FieldError::invalid(
                ip,
                format!(
                    "{:?}: must not have leading or trailing whitespace",
                    self.image
                ),
            ));
        }
        errs.extend(validate_ports(&self.ports, &join(path, "ports")));
        errs.extend(validate_env(&self.env, &join(path, "env")));
        errs.extend(validate_env_from(&self.env_from, &join(path, "envFrom")));
        errs.extend(self.resources.validate(&join(path, "resources")));
        errs.extend(validate_mounts(
            &self.volume_mounts,
            &join(path, "volumeMounts"),
            volumes,
        ));
        let probes = [
            ("livenessProbe", &self.liveness_probe, ProbeKind::Liveness),
            (
                "readinessProbe",
                &self.readiness_probe,
                ProbeKind::Readiness,
            ),
            ("startupProbe", &self.startup_probe, ProbeKind::Startup),
        ];
        for (name, probe, kind) in probes {
            let Some(probe) = probe else { continue };
            if init {
                errs.push(FieldError::invalid(
                    join(path, name),
                    "may not be set for init containers",
                ));
            } else {
                errs.extend(probe.validate(&join(path, name), kind));
            }
        }
        check_opt_enum(
            &mut errs,
            &join(path, "imagePullPolicy"),
            self.image_pull_policy.as_deref(),
            PULL_POLICIES,
        );
        check_opt_enum(
            &mut errs,
            &join(path, "terminationMessagePolicy"),
            self.termination_message_policy.as_deref(),
            TERMINATION_MESSAGE_POLICIES,
        );
        if let Some(p) = &self.termination_message_path {
            check_absolute_path(&mut errs, &join(path, "terminationMessagePath"), p);
        }
        if let Some(wd) = self.working_dir.as_deref().filter(|w| !w.is_empty()) {
            check_absolute_path(&mut errs, &join(path, "workingDir"), wd);
        }
        if let Some(sc) = &self.security_context {
            errs.extend(sc.validate(&join(path, "securityContext")));
        }
        errs
    }
}

impl SecurityContext {
    /// Validates ids and contradictory privilege settings at `path`.
    pub fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if let Some(u) = self.run_as_user {
            check_non_negative(&mut errs, &join(path, "runAsUser"), u);
        }
        if let Some(g) = self.run_as_group {
            check_non_negative(&mut errs, &join(path, "runAsGroup"), g);
        }
        if self.privileged == Some(true) && self.allow_privilege_escalation == Some(false) {
            errs.push(FieldError::invalid(
                path,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        if self.run_as_non_root == Some(true) && self.run_as_user == Some(0) {
            errs.push(FieldError::invalid(
                join(path, "runAsUser"),
                "0: cannot be 0 when `runAsNonRoot` is true",
            ));
        }
        if let Some(sp) = &self.seccomp_profile {
            errs.extend(sp.validate(&join(path, "seccompProfile")));
        }
        if let Some(caps) = &self.capabilities {
            for (list, items) in [("add", &caps.add), ("drop", &caps.drop)] {
                for (i, c) in items.iter().enumerate() {
                    if c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        errs.push(FieldError::invalid(
                            index(&join(&join(path, "capabilities"), list), i),
                            format!("{c:?}: must be a capability name such as NET_ADMIN or ALL"),
                        ));
                    }
                }
            }
        }
        errs
    }
}

fn validate_ports(ports: &[ContainerPort], path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut names_seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index(path, i);
        if let Some(name) = &p.name {
            let np = join(&pp, "name");
            if let Err(why) = names::iana_svc_name(name) {
                errs.push(FieldError::invalid(np, format!("{name:?}: {why}")));
            } else if !names_seen.insert(name.as_str()) {
                errs.push(FieldError::duplicate(np));
            }
        }
        if p.container_port == 0 {
            errs.push(FieldError::required(join(&pp, "containerPort")));
        } else {
            check_port(&mut errs, &join(&pp, "containerPort"), p.container_port);
        }
        if let Some(hp) = p.host_port.filter(|hp| *hp != 0) {
            check_port(&mut errs, &join(&pp, "hostPort"), hp);
        }
        if let Some(proto) = &p.protocol {
            check_enum(&mut errs, &join(&pp, "protocol"), proto, PROTOCOLS);
        }
        if let Some(ip) = p.host_ip.as_deref().filter(|ip| !ip.is_empty())
            && ip.parse::<IpAddr>().is_err()
        {
            errs.push(FieldError::invalid(
                join(&pp, "hostIP"),
                format!("{ip:?}: must be a valid IP address"),
            ));
        }
    }
    errs
}

fn validate_mounts(mounts: &[VolumeMount], path: &str, volumes: &BTreeSet<&str>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut paths = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let mp = index(path, i);
        let np = join(&mp, "name");
        if m.name.is_empty() {
            errs.push(FieldError::required(np));
        } else if !volumes.contains(m.name.as_str()) {
            errs.push(FieldError::invalid(
                np,
                format!(
                    "{:?}: not found: no volume of that name in the pod's `volumes`",
                    m.name
                ),
            ));
        }
        let pp = join(&mp, "mountPath");
        check_absolute_path(&mut errs, &pp, &m.mount_path);
        if !m.mount_path.is_empty() && !paths.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                pp,
                format!("{:?}: must be unique", m.mount_path),
            ));
        }
        if let Some(sp) = m.sub_path.as_deref().filter(|s| !s.is_empty())
            && let Err(why) = names::relative_path(sp)
        {
            errs.push(FieldError::invalid(
                join(&mp, "subPath"),
                format!("{sp:?}: {why}"),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(v: serde_json::Value) -> Container {
        crate::decode::decode(v).unwrap()
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(default_pull_policy("registry.local:5000/app"), "Always");
        assert_eq!(
            default_pull_policy("registry.local:5000/app:v2"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("app@sha256:abcd"), "IfNotPresent");
    }

    #[test]
    fn defaults_are_applied() {
        let mut c = container(json!({
            "name": "web", "image": "nginx:1.27",
            "ports": [{"containerPort": 80}],
            "readinessProbe": {"tcpSocket": {"port": 80}}
        }));
        c.apply_defaults();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({
                "name": "web", "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "readinessProbe": {"tcpSocket": {"port": 80}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            })
        );
        assert!(c.validate("c", &BTreeSet::new(), false).is_empty());
        assert_eq!(c.ports[0].protocol(), "TCP");
    }

    #[test]
    fn validation_reports_every_problem() {
        let c = container(json!({
            "name": "Web",
            "ports": [
                {"name": "http", "containerPort": 80},
                {"name": "http", "containerPort": 70000, "protocol": "ICMP", "hostIP": "nope"},
                {"name": "8080", "hostPort": 99999}
            ],
            "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "cfg", "mountPath": "/data", "subPath": "../x"}
            ],
            "imagePullPolicy": "Sometimes",
            "securityContext": {"privileged": true, "allowPrivilegeEscalation": false, "runAsUser": -1}
        }));
        let volumes: BTreeSet<&str> = ["cfg"].into();
        let errs = c.validate("c", &volumes, false);
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "c.name",
                "c.image",
                "c.ports[1].name",
                "c.ports[1].containerPort",
                "c.ports[1].protocol",
                "c.ports[1].hostIP",
                "c.ports[2].name",
                "c.ports[2].containerPort",
                "c.ports[2].hostPort",
                "c.volumeMounts[0].name",
                "c.volumeMounts[1].mountPath",
                "c.volumeMounts[1].subPath",
                "c.imagePullPolicy",
                "c.securityContext.runAsUser",
                "c.securityContext",
            ]
        );
        assert_eq!(errs.0[1].to_string(), "c.image: Required value");
        assert_eq!(errs.0[2].to_string(), "c.ports[1].name: Duplicate value");
    }

    #[test]
    fn init_containers_may_not_have_probes() {
        let c = container(
            json!({"name": "init", "image": "busybox", "livenessProbe": {"exec": {"command": ["true"]}}}),
        );
        assert_eq!(
            c.validate("spec.initContainers[0]", &BTreeSet::new(), true)
                .to_string(),
            "spec.initContainers[0].livenessProbe: Invalid value: may not be set for init containers"
        );
    }

    #[test]
    fn lifecycle_is_not_supported() {
        let e =
            crate::decode::decode::<Container>(json!({"name": "a", "lifecycle": {}})).unwrap_err();
        assert_eq!(e.to_string(), "lifecycle: not supported");
    }
}
