//! Container environment: `env` (literal values and `valueFrom` references) and
//! `envFrom` (whole ConfigMaps and Secrets).

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, index, join};
use crate::names;

use super::common::check_ref_name;

/// `fieldRef.fieldPath` values Bramble can resolve (the Kubernetes downward API
/// for env vars, minus the ones that need a service-account token).
pub const SUPPORTED_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// One `env` entry: `{name, value}` or `{name, valueFrom}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.EnvVar")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// Where an env var's value comes from; exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.EnvVarSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVarSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<ObjectFieldSelector>,
}

/// `{name, key, optional}`: one key of a ConfigMap or Secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ConfigMapKeySelector")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeySelector {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `{fieldPath, apiVersion}`: a field of the pod itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ObjectFieldSelector")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectFieldSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub field_path: String,
}

/// One `envFrom` entry: every key of a ConfigMap or Secret, optionally prefixed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.EnvFromSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvFromSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<EnvSourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<EnvSourceRef>,
}

/// `{name, optional}` of `envFrom.configMapRef` / `envFrom.secretRef`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ConfigMapEnvSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvSourceRef {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

impl ObjectFieldSelector {
    /// Defaults `apiVersion` to `v1`.
    pub fn apply_defaults(&mut self) {
        if self.api_version.is_none() {
            self.api_version = Some("v1".into());
        }
    }
}

/// Whether `path` is a supported `fieldRef.fieldPath`, including
/// `metadata.labels['key']` and `metadata.annotations['key']`.
pub fn is_supported_field_path(path: &str) -> bool {
    if SUPPORTED_FIELD_PATHS.contains(&path) {
        return true;
    }
    ["metadata.labels['", "metadata.annotations['"]
        .iter()
        .any(|prefix| {
            path.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix("']"))
                .is_some_and(|key| names::label_key(key).is_ok())
        })
}

fn validate_key_selector(errs: &mut FieldErrors, sel: &KeySelector, path: &str) {
    check_ref_name(errs, &join(path, "name"), &sel.name);
    if sel.key.is_empty() {
        errs.push(FieldError::required(join(path, "key")));
    } else if let Err(why) = names::config_key(&sel.key) {
        errs.push(FieldError::invalid(
            join(path, "key"),
            format!("{:?}: {why}", sel.key),
        ));
    }
}

/// Validates `env` at `path` (e.g. `spec.containers[0].env`).
pub fn validate_env(env: &[EnvVar], path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for (i, e) in env.iter().enumerate() {
        let p = index(path, i);
        if e.name.is_empty() {
            errs.push(FieldError::required(join(&p, "name")));
        } else if let Err(why) = names::env_var_name(&e.name) {
            errs.push(FieldError::invalid(
                join(&p, "name"),
                format!("{:?}: {why}", e.name),
            ));
        }
        let Some(from) = &e.value_from else { continue };
        let vf = join(&p, "valueFrom");
        if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
            errs.push(FieldError::invalid(
                vf.clone(),
                "may not be specified when `value` is not empty",
            ));
        }
        let set = usize::from(from.config_map_key_ref.is_some())
            + usize::from(from.secret_key_ref.is_some())
            + usize::from(from.field_ref.is_some());
        if set != 1 {
            errs.push(FieldError::invalid(
                vf.clone(),
                "must specify exactly one of: `configMapKeyRef`, `secretKeyRef` or `fieldRef`",
            ));
        }
        if let Some(r) = &from.config_map_key_ref {
            validate_key_selector(&mut errs, r, &join(&vf, "configMapKeyRef"));
        }
        if let Some(r) = &from.secret_key_ref {
            validate_key_selector(&mut errs, r, &join(&vf, "secretKeyRef"));
        }
        if let Some(f) = &from.field_ref {
            let fp = join(&join(&vf, "fieldRef"), "fieldPath");
            if f.api_version.as_deref().is_some_and(|v| v != "v1") {
                errs.push(FieldError::unsupported_value(
                    join(&join(&vf, "fieldRef"), "apiVersion"),
                    &["v1"],
                ));
            }
            if f.field_path.is_empty() {
                errs.push(FieldError::required(fp));
            } else if !is_supported_field_path(&f.field_path) {
                let mut allowed: Vec<&str> = SUPPORTED_FIELD_PATHS.to_vec();
                allowed.extend(["metadata.labels['<KEY>']", "metadata.annotations['<KEY>']"]);
                errs.push(FieldError::unsupported_value(fp, &allowed));
            }
        }
    }
    errs
}

/// Validates `envFrom` at `path`.
pub fn validate_env_from(env_from: &[EnvFromSource], path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for (i, e) in env_from.iter().enumerate() {
        let p = index(path, i);
        if let Some(prefix) = e.prefix.as_deref().filter(|p| !p.is_empty())
            && let Err(why) = names::env_var_name(prefix)
        {
            errs.push(FieldError::invalid(
                join(&p, "prefix"),
                format!("{prefix:?}: {why}"),
            ));
        }
        match (&e.config_map_ref, &e.secret_ref) {
            (Some(r), None) => {
                check_ref_name(&mut errs, &join(&join(&p, "configMapRef"), "name"), &r.name)
            }
            (None, Some(r)) => {
                check_ref_name(&mut errs, &join(&join(&p, "secretRef"), "name"), &r.name)
            }
            _ => errs.push(FieldError::invalid(
                p,
                "must specify exactly one of: `configMapRef` or `secretRef`",
            )),
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(v: serde_json::Value) -> Vec<EnvVar> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn accepts_values_and_references() {
        let e = env(json!([
            {"name": "MODE", "value": "edge"},
            {"name": "DB_PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "log.level", "optional": true}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        ]));
        assert!(
            validate_env(&e, "env").is_empty(),
            "{}",
            validate_env(&e, "env")
        );
    }

    #[test]
    fn reports_each_bad_entry_with_its_path() {
        let e = env(json!([
            {"name": "1BAD", "value": "x"},
            {"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "B", "valueFrom": {}},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "spec.containers"}}},
            {"name": "D", "valueFrom": {"secretKeyRef": {"name": "s"}}},
        ]));
        let errs = validate_env(&e, "env");
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "env[0].name",
                "env[1].valueFrom",
                "env[2].valueFrom",
                "env[3].valueFrom.fieldRef.fieldPath",
                "env[4].valueFrom.secretKeyRef.key",
            ]
        );
    }

    #[test]
    fn env_from_needs_exactly_one_source() {
        let e: Vec<EnvFromSource> = serde_json::from_value(json!([
            {"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
            {"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}},
            {"secretRef": {"name": "Bad_Name"}},
        ]))
        .unwrap();
        let errs = validate_env_from(&e, "envFrom");
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["envFrom[1]", "envFrom[2].secretRef.name"]);
    }

    #[test]
    fn field_ref_defaults_api_version() {
        let mut f = ObjectFieldSelector {
            api_version: None,
            field_path: "metadata.name".into(),
        };
        f.apply_defaults();
        assert_eq!(f.api_version.as_deref(), Some("v1"));
    }
}
