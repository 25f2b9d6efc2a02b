//! `networking.k8s.io/v1 Ingress`: HTTP routing by host and path to Services,
//! served by the site's local ingress.

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors, index, join};
use crate::meta::ObjectMeta;
use crate::names;

use super::common::{check_enum, check_label, check_port, check_subdomain};
use super::service::ServiceStatus;

/// `pathType` values.
pub const PATH_TYPES: &[&str] = &["Exact", "Prefix", "ImplementationSpecific"];

/// `networking.k8s.io/v1 Ingress`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.Ingress")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ingress {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: IngressSpec,
    /// Same shape as a Service's: `loadBalancer.ingress[{ip, hostname}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceStatus>,
}

/// `spec` of an Ingress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.IngressSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<IngressBackend>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<IngressTls>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<IngressRule>,
}

/// `{hosts, secretName}`: a certificate for some hosts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.IngressTLS")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressTls {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// `{host, http: {paths}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.IngressRule")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressRule {
    /// A DNS name or `*.example.com`; empty matches every host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpIngressRuleValue>,
}

/// `http: {paths}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.HTTPIngressRuleValue")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpIngressRuleValue {
    #[serde(default)]
    pub paths: Vec<HttpIngressPath>,
}

/// `{path, pathType, backend}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.HTTPIngressPath")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpIngressPath {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Required: `Exact`, `Prefix` or `ImplementationSpecific` (treated as Prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_type: Option<String>,
    #[serde(default)]
    pub backend: IngressBackend,
}

/// `backend: {service: {name, port}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.IngressBackend")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressBackend {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<IngressServiceBackend>,
}

/// `service: {name, port: {number | name}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.IngressServiceBackend")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressServiceBackend {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub port: ServiceBackendPort,
}

/// `port: {number}` or `port: {name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.networking.v1.ServiceBackendPort")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceBackendPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<i32>,
}

impl Ingress {
    /// The ingress's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The ingress's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }
}

fn validate_backend(errs: &mut FieldErrors, b: &IngressBackend, path: &str) {
    let Some(s) = &b.service else {
        errs.push(FieldError::required(join(path, "service")));
        return;
    };
    let sp = join(path, "service");
    if s.name.is_empty() {
        errs.push(FieldError::required(join(&sp, "name")));
    } else {
        check_label(errs, &join(&sp, "name"), &s.name);
    }
    let pp = join(&sp, "port");
    match (&s.port.name, s.port.number) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            pp,
            "cannot set both port name & port number",
        )),
        (None, None) => errs.push(FieldError::invalid(pp, "port name or number is required")),
        (Some(n), None) => {
            if let Err(why) = names::iana_svc_name(n) {
                errs.push(FieldError::invalid(
                    join(&pp, "name"),
                    format!("{n:?}: {why}"),
                ));
            }
        }
        (None, Some(n)) => check_port(errs, &join(&pp, "number"), n),
    }
}

fn validate_host(errs: &mut FieldErrors, host: &str, path: &str) {
    if host.parse::<std::net::IpAddr>().is_ok() {
        errs.push(FieldError::invalid(
            path,
            format!("{host:?}: must be a DNS name, not an IP address"),
        ));
    } else if let Some(rest) = host.strip_prefix("*.") {
        check_subdomain(errs, path, rest);
    } else {
        check_subdomain(errs, path, host);
    }
}

impl Object for Ingress {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn validate(&self) -> FieldErrors {
        let s = &self.spec;
        let mut errs = FieldErrors::new();
        if let Some(c) = s.ingress_class_name.as_deref() {
            check_subdomain(&mut errs, "spec.ingressClassName", c);
        }
        if s.default_backend.is_none() && s.rules.is_empty() {
            errs.push(FieldError::invalid(
                "spec",
                "either `defaultBackend` or `rules` must be specified",
            ));
        }
        if let Some(b) = &s.default_backend {
            validate_backend(&mut errs, b, "spec.defaultBackend");
        }
        for (i, t) in s.tls.iter().enumerate() {
            let tp = index("spec.tls", i);
            for (j, h) in t.hosts.iter().enumerate() {
                validate_host(&mut errs, h, &index(&join(&tp, "hosts"), j));
            }
            if let Some(n) = t.secret_name.as_deref().filter(|n| !n.is_empty()) {
                check_subdomain(&mut errs, &join(&tp, "secretName"), n);
            }
        }
        for (i, r) in s.rules.iter().enumerate() {
            let rp = index("spec.rules", i);
            if let Some(h) = r.host.as_deref().filter(|h| !h.is_empty()) {
                validate_host(&mut errs, h, &join(&rp, "host"));
            }
            let Some(http) = &r.http else { continue };
            let pp = join(&join(&rp, "http"), "paths");
            if http.paths.is_empty() {
                errs.push(FieldError::required(pp.clone()));
            }
            for (j, p) in http.paths.iter().enumerate() {
                let ip = index(&pp, j);
                match p.path_type.as_deref() {
                    None | Some("") => errs.push(FieldError::required(join(&ip, "pathType"))),
                    Some(t) => check_enum(&mut errs, &join(&ip, "pathType"), t, PATH_TYPES),
                }
                let path = p.path.as_deref().unwrap_or("");
                let needs_path = matches!(p.path_type.as_deref(), Some("Exact" | "Prefix"));
                if (needs_path || !path.is_empty()) && !path.starts_with('/') {
                    errs.push(FieldError::invalid(
                        join(&ip, "path"),
                        format!("{path:?}: must be an absolute path"),
                    ));
                } else if path.split('/').any(|seg| seg == ".." || seg == ".")
                    || path.contains("//")
                {
                    errs.push(FieldError::invalid(
                        join(&ip, "path"),
                        format!("{path:?}: must not contain '.', '..' or '//' segments"),
                    ));
                }
                validate_backend(&mut errs, &p.backend, &join(&ip, "backend"));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ingress(spec: serde_json::Value) -> Ingress {
        crate::decode::decode(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"}, "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn valid_rules_and_tls() {
        let i = ingress(json!({
            "ingressClassName": "bramble",
            "tls": [{"hosts": ["app.local", "*.site.lan"], "secretName": "app-tls"}],
            "rules": [{"host": "app.local", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                {"path": "/api", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"name": "http"}}}}
            ]}}]
        }));
        assert!(i.validate().is_empty(), "{}", i.validate());
    }

    #[test]
    fn path_errors() {
        let i = ingress(json!({
            "rules": [{"host": "10.0.0.1", "http": {"paths": [
                {"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                {"path": "/x", "backend": {"service": {"name": "web", "port": {}}}},
                {"path": "/y", "pathType": "Regex", "backend": {}}
            ]}}]
        }));
        let errs = i.validate();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.rules[0].host",
                "spec.rules[0].http.paths[0].path",
                "spec.rules[0].http.paths[1].pathType",
                "spec.rules[0].http.paths[1].backend.service.port",
                "spec.rules[0].http.paths[2].pathType",
                "spec.rules[0].http.paths[2].backend.service",
            ]
        );
        assert_eq!(
            errs.0[1].to_string(),
            "spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path"
        );
        assert_eq!(
            errs.0[2].to_string(),
            "spec.rules[0].http.paths[1].pathType: Required value"
        );
    }

    #[test]
    fn needs_rules_or_default_backend() {
        assert_eq!(ingress(json!({})).validate().0[0].path, "spec");
        let i = ingress(
            json!({"defaultBackend": {"service": {"name": "web", "port": {"number": 80, "name": "http"}}}}),
        );
        assert_eq!(i.validate().0[0].path, "spec.defaultBackend.service.port");
        let e = crate::decode::decode::<Ingress>(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "spec": {"defaultBackend": {"resource": {}}}}),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "spec.defaultBackend.resource: not supported");
    }
}
