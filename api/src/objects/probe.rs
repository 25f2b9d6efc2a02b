//! Container probes: `livenessProbe`, `readinessProbe`, `startupProbe` with an
//! `httpGet`, `tcpSocket` or `exec` handler.

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, index, join};
use crate::intstr::IntOrString;

use super::common::{check_min, check_non_negative, check_opt_enum, check_port_or_name};

/// A health check the agent runs against a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Probe")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    /// Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    /// Default 1 (and must be 1 for liveness and startup probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    /// Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
}

/// `httpGet`: a GET that must answer 200..=399.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.HTTPGetAction")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGetAction {
    /// Default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A number or the name of a container port.
    pub port: IntOrString,
    /// `HTTP` (default) or `HTTPS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// A request header of an `httpGet` probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.HTTPHeader")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// `tcpSocket`: a TCP connect that must succeed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.TCPSocketAction")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSocketAction {
    /// A number or the name of a container port.
    pub port: IntOrString,
}

/// `exec`: a command run in the container that must exit 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ExecAction")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecAction {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// Which probe is being validated (liveness and startup need successThreshold 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// `livenessProbe`: failure restarts the container.
    Liveness,
    /// `readinessProbe`: failure removes the pod from endpoints.
    Readiness,
    /// `startupProbe`: holds the other probes until it succeeds.
    Startup,
}

fn default_if_unset(v: &mut Option<i32>, default: i32) {
    // Kubernetes treats 0 as unset for these int32 fields.
    if v.is_none_or(|x| x == 0) {
        *v = Some(default);
    }
}

impl Probe {
    /// Kubernetes defaults: timeout 1s, period 10s, success 1, failure 3,
    /// `httpGet` scheme HTTP and path `/`.
    pub fn apply_defaults(&mut self) {
        default_if_unset(&mut self.timeout_seconds, 1);
        default_if_unset(&mut self.period_seconds, 10);
        default_if_unset(&mut self.success_threshold, 1);
        default_if_unset(&mut self.failure_threshold, 3);
        if let Some(h) = &mut self.http_get {
            if h.path.as_deref().is_none_or(str::is_empty) {
                h.path = Some("/".into());
            }
            if h.scheme.is_none() {
                h.scheme = Some("HTTP".into());
            }
        }
    }

    /// Validates the probe at `path`.
    pub fn validate(&self, path: &str, kind: ProbeKind) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let handlers = usize::from(self.http_get.is_some())
            + usize::from(self.tcp_socket.is_some())
            + usize::from(self.exec.is_some());
        if handlers != 1 {
            errs.push(FieldError::invalid(
                path,
                "must specify exactly one handler: `httpGet`, `tcpSocket` or `exec`",
            ));
        }
        if let Some(h) = &self.http_get {
            let hp = join(path, "httpGet");
            check_port_or_name(&mut errs, &join(&hp, "port"), &h.port);
            check_opt_enum(
                &mut errs,
                &join(&hp, "scheme"),
                h.scheme.as_deref(),
                &["HTTP", "HTTPS"],
            );
            if let Some(p) = h.path.as_deref()
                && !p.is_empty()
                && !p.starts_with('/')
            {
                errs.push(FieldError::invalid(
                    join(&hp, "path"),
                    format!("{p:?}: must start with '/'"),
                ));
            }
            for (i, header) in h.http_headers.iter().enumerate() {
                let np = join(&index(&join(&hp, "httpHeaders"), i), "name");
                if header.name.is_empty() {
                    errs.push(FieldError::required(np));
                } else if !header.name.bytes().all(is_http_token_char) {
                    errs.push(FieldError::invalid(
                        np,
                        format!("{:?}: a valid HTTP header must consist of alphanumeric characters or '-'", header.name),
                    ));
                }
            }
        }
        if let Some(t) = &self.tcp_socket {
            check_port_or_name(&mut errs, &join(&join(path, "tcpSocket"), "port"), &t.port);
        }
        if let Some(e) = &self.exec
            && e.command.is_empty()
        {
            errs.push(FieldError::required(join(&join(path, "exec"), "command")));
        }
        let fields = [
            ("initialDelaySeconds", self.initial_delay_seconds, 0),
            ("timeoutSeconds", self.timeout_seconds, 1),
            ("periodSeconds", self.period_seconds, 1),
            ("successThreshold", self.success_threshold, 1),
            ("failureThreshold", self.failure_threshold, 1),
        ];
        for (name, value, min) in fields {
            if let Some(v) = value {
                if min == 0 {
                    check_non_negative(&mut errs, &join(path, name), i64::from(v));
                } else {
                    check_min(&mut errs, &join(path, name), i64::from(v), min);
                }
            }
        }
        if kind != ProbeKind::Readiness && self.success_threshold.is_some_and(|s| s != 1) {
            errs.push(FieldError::invalid(
                join(path, "successThreshold"),
                format!("{}: must be 1", self.success_threshold.unwrap_or_default()),
            ));
        }
        errs
    }
}

fn is_http_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe(v: serde_json::Value) -> Probe {
        crate::decode::decode(v).unwrap()
    }

    #[test]
    fn defaults_fill_timing_and_http_fields() {
        let mut p =
            probe(json!({"httpGet": {"port": "http"}, "periodSeconds": 5, "timeoutSeconds": 0}));
        p.apply_defaults();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({
                "httpGet": {"path": "/", "port": "http", "scheme": "HTTP"},
                "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3
            })
        );
        assert!(p.validate("p", ProbeKind::Liveness).is_empty());
    }

    #[test]
    fn exactly_one_handler() {
        let p = probe(json!({"tcpSocket": {"port": 80}, "exec": {"command": ["true"]}}));
        assert_eq!(
            p.validate("livenessProbe", ProbeKind::Liveness).to_string(),
            "livenessProbe: Invalid value: must specify exactly one handler: `httpGet`, `tcpSocket` or `exec`"
        );
        let p = probe(json!({"initialDelaySeconds": 3}));
        assert_eq!(p.validate("p", ProbeKind::Readiness).0.len(), 1);
    }

    #[test]
    fn bad_fields_have_paths() {
        let p = probe(json!({
            "httpGet": {"port": 70000, "scheme": "FTP", "path": "health", "httpHeaders": [{"name": "X Bad", "value": "1"}]},
            "successThreshold": 2,
            "initialDelaySeconds": -1
        }));
        let errs = p.validate("p", ProbeKind::Startup);
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "p.httpGet.port",
                "p.httpGet.scheme",
                "p.httpGet.path",
                "p.httpGet.httpHeaders[0].name",
                "p.initialDelaySeconds",
                "p.successThreshold",
            ]
        );
        let p = probe(json!({"exec": {}}));
        assert_eq!(
            p.validate("p", ProbeKind::Readiness).to_string(),
            "p.exec.command: Required value"
        );
        let p = probe(json!({"tcpSocket": {"port": "8080"}}));
        assert_eq!(
            p.validate("p", ProbeKind::Readiness).0[0].path,
            "p.tcpSocket.port"
        );
    }

    #[test]
    fn grpc_is_not_supported() {
        let e = crate::decode::decode::<Probe>(json!({"grpc": {"port": 9000}})).unwrap_err();
        assert_eq!(e.to_string(), "grpc: not supported");
    }
}
