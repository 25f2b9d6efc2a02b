//! Small types and checks shared by several kinds: status conditions, object
//! references, and validators for ports, enums and counts.

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors};
use crate::intstr::IntOrString;
use crate::names;

/// Protocols of container, service, endpoint and policy ports.
pub const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

/// A status condition (`Ready`, `Available`, ...). One lenient struct serves
/// pods, nodes, deployments, daemonsets and autoscalers: each sets the
/// timestamps it has.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Condition")
)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Available`, `Progressing`, `MemoryPressure`, ...
    #[serde(rename = "type", default)]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Condition {
    /// Whether `status` is `True`.
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// Finds the condition of `type_` in a list.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// `{name}`: an object in the same namespace (`imagePullSecrets`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.LocalObjectReference")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectReference {
    #[serde(default)]
    pub name: String,
}

/// A reference to another object (Endpoints `targetRef`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ObjectReference")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_path: Option<String>,
}

/// For `skip_serializing_if` on plain booleans that Kubernetes omits when false.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// `value` must be one of `allowed`.
pub(crate) fn check_enum(errs: &mut FieldErrors, path: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        errs.push(FieldError::unsupported_value(path, allowed));
    }
}

/// Like [`check_enum`] for optional fields (unset is fine).
pub(crate) fn check_opt_enum(
    errs: &mut FieldErrors,
    path: &str,
    value: Option<&str>,
    allowed: &[&str],
) {
    if let Some(v) = value {
        check_enum(errs, path, v, allowed);
    }
}

/// A port number: 1..=65535.
pub(crate) fn check_port(errs: &mut FieldErrors, path: &str, port: i32) {
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(
            path,
            format!("{port}: must be between 1 and 65535, inclusive"),
        ));
    }
}

/// A count or duration that must be >= 0.
pub(crate) fn check_non_negative(errs: &mut FieldErrors, path: &str, v: i64) {
    if v < 0 {
        errs.push(FieldError::invalid(
            path,
            format!("{v}: must be greater than or equal to 0"),
        ));
    }
}

/// A value that must be >= `min`.
pub(crate) fn check_min(errs: &mut FieldErrors, path: &str, v: i64, min: i64) {
    if v < min {
        errs.push(FieldError::invalid(
            path,
            format!("{v}: must be greater than or equal to {min}"),
        ));
    }
}

/// A port given as a number (1..=65535) or an IANA service name (`http`).
pub(crate) fn check_port_or_name(errs: &mut FieldErrors, path: &str, port: &IntOrString) {
    match port {
        IntOrString::Int(p) => check_port(errs, path, *p),
        IntOrString::String(s) => {
            if let Err(why) = names::iana_svc_name(s) {
                errs.push(FieldError::invalid(path, format!("{s:?}: {why}")));
            }
        }
    }
}

/// A non-negative integer or a percentage (`25%`); percentages above 100% are
/// refused when `max_100` is set.
pub(crate) fn check_int_or_percent(
    errs: &mut FieldErrors,
    path: &str,
    v: &IntOrString,
    max_100: bool,
) {
    match v {
        IntOrString::Int(i) => check_non_negative(errs, path, i64::from(*i)),
        IntOrString::String(s) => match v.percent() {
            Some(p) if s.bytes().filter(|b| b.is_ascii_digit()).count() + 1 == s.len() => {
                if max_100 && p > 100 {
                    errs.push(FieldError::invalid(
                        path,
                        format!("{s:?}: must not be greater than 100%"),
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                path,
                format!("{s:?}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%' or '93%')"),
            )),
        },
    }
}

/// Whether an int-or-percent is zero (`0` or `0%`).
pub(crate) fn is_zero_int_or_percent(v: &IntOrString) -> bool {
    v.as_int() == Some(0) || v.percent() == Some(0)
}

/// An absolute path.
pub(crate) fn check_absolute_path(errs: &mut FieldErrors, path: &str, value: &str) {
    if value.is_empty() {
        errs.push(FieldError::required(path));
    } else if !value.starts_with('/') {
        errs.push(FieldError::invalid(
            path,
            format!("{value:?}: must be an absolute path"),
        ));
    }
}

/// A value that must be a DNS-1123 label when set.
pub(crate) fn check_label(errs: &mut FieldErrors, path: &str, value: &str) {
    if let Err(why) = names::dns1123_label(value) {
        errs.push(FieldError::invalid(path, format!("{value:?}: {why}")));
    }
}

/// A value that must be a DNS-1123 subdomain when set.
pub(crate) fn check_subdomain(errs: &mut FieldErrors, path: &str, value: &str) {
    if let Err(why) = names::dns1123_subdomain(value) {
        errs.push(FieldError::invalid(path, format!("{value:?}: {why}")));
    }
}

/// A required object name (DNS-1123 subdomain) of a referenced object.
pub(crate) fn check_ref_name(errs: &mut FieldErrors, path: &str, value: &str) {
    if value.is_empty() {
        errs.push(FieldError::required(path));
    } else {
        check_subdomain(errs, path, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_and_percent_checks() {
        let mut e = FieldErrors::new();
        check_port(&mut e, "p", 0);
        check_port(&mut e, "p", 80);
        check_port_or_name(&mut e, "n", &IntOrString::from("HTTP"));
        check_port_or_name(&mut e, "n", &IntOrString::from("http"));
        check_int_or_percent(&mut e, "a", &IntOrString::from("25%"), true);
        check_int_or_percent(&mut e, "b", &IntOrString::from("150%"), true);
        check_int_or_percent(&mut e, "c", &IntOrString::from("x%"), false);
        check_int_or_percent(&mut e, "d", &IntOrString::from("+5%"), false);
        check_int_or_percent(&mut e, "e", &IntOrString::Int(-1), false);
        let paths: Vec<&str> = e.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["p", "n", "b", "c", "d", "e"]);
        assert_eq!(
            e.0[0].to_string(),
            "p: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        assert!(is_zero_int_or_percent(&IntOrString::from("0%")));
        assert!(!is_zero_int_or_percent(&IntOrString::Int(1)));
    }

    #[test]
    fn enums_use_unsupported_value() {
        let mut e = FieldErrors::new();
        check_enum(
            &mut e,
            "spec.type",
            "LoadBalancer",
            &["ClusterIP", "NodePort"],
        );
        check_opt_enum(&mut e, "x", None, &["A"]);
        assert_eq!(
            e.to_string(),
            "spec.type: Unsupported value: supported values: \"ClusterIP\", \"NodePort\""
        );
    }

    #[test]
    fn conditions_round_trip_and_find() {
        let v = serde_json::json!([{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:00Z", "extra": 1}]);
        let c: Vec<Condition> = serde_json::from_value(v).unwrap();
        assert!(find_condition(&c, "Ready").unwrap().is_true());
        assert!(find_condition(&c, "Other").is_none());
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!([{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:00Z"}])
        );
    }
}
