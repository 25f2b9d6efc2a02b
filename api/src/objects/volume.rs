//! Pod volumes: `emptyDir`, `hostPath`, `configMap`, `secret` and
//! `persistentVolumeClaim` sources.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, index, join};
use crate::names;
use crate::quantity::Quantity;

use super::common::{check_absolute_path, check_label, check_opt_enum, check_ref_name};

/// `hostPath.type` values.
pub const HOST_PATH_TYPES: &[&str] = &[
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];

/// Default file mode of configMap and secret volumes (0644).
pub const DEFAULT_MODE: i32 = 0o644;

/// A named volume of a pod; exactly one source is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Volume")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
}

/// `persistentVolumeClaim: {claimName, readOnly}`: the volume bound to a
/// claim in the pod's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PersistentVolumeClaimVolumeSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersistentVolumeClaimVolumeSource {
    #[serde(default)]
    pub claim_name: String,
    /// Mount read-only in every container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// `emptyDir: {medium, sizeLimit}`; medium `""` (disk) or `Memory` (tmpfs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.EmptyDirVolumeSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmptyDirVolumeSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<Quantity>,
}

/// `hostPath: {path, type}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.HostPathVolumeSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathVolumeSource {
    #[serde(default)]
    pub path: String,
    /// One of [`HOST_PATH_TYPES`]; default `""` (no check).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// `configMap: {name, items, defaultMode, optional}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ConfigMapVolumeSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapVolumeSource {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// File mode, 0..=0o777; YAML's `0644` is read as octal, as Kubernetes does.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "file_mode"
    )]
    pub default_mode: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `secret: {secretName, items, defaultMode, optional}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.SecretVolumeSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretVolumeSource {
    #[serde(default)]
    pub secret_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// File mode, 0..=0o777; YAML's `0644` is read as octal, as Kubernetes does.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "file_mode"
    )]
    pub default_mode: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `{key, path, mode}`: project one key to a file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.KeyToPath")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyToPath {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub path: String,
    /// File mode, 0..=0o777; YAML's `0644` is read as octal, as Kubernetes does.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "file_mode"
    )]
    pub mode: Option<i32>,
}

/// Decodes a file mode: a number (`420`), or a string in octal (`"0644"`,
/// `"0o644"`). YAML 1.2 parsers read an unquoted `0644` as the string `"0644"`,
/// where Kubernetes' YAML 1.1 reader sees octal 420; this keeps such manifests
/// meaning what their authors meant.
fn file_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    use serde::de::Error;
    let bad = |v: &dyn std::fmt::Display| {
        D::Error::custom(format!(
            "{v}: expected a file mode such as 0644 (octal) or 420"
        ))
    };
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => n
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .map(Some)
            .ok_or_else(|| bad(&n)),
        serde_json::Value::String(s) => {
            let digits = s
                .strip_prefix("0o")
                .or_else(|| s.strip_prefix('0').filter(|d| !d.is_empty()))
                .ok_or_else(|| bad(&format!("{s:?}")))?;
            i32::from_str_radix(digits, 8)
                .map(Some)
                .map_err(|_| bad(&format!("{s:?}")))
        }
        other => Err(bad(&other)),
    }
}

impl Volume {
    /// Defaults `defaultMode` of configMap and secret volumes to 0644.
    pub fn apply_defaults(&mut self) {
        if let Some(c) = &mut self.config_map {
            c.default_mode.get_or_insert(DEFAULT_MODE);
        }
        if let Some(s) = &mut self.secret {
            s.default_mode.get_or_insert(DEFAULT_MODE);
        }
    }

    /// Validates one volume at `path` (e.g. `spec.volumes[0]`).
    pub fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if self.name.is_empty() {
            errs.push(FieldError::required(join(path, "name")));
        } else {
            check_label(&mut errs, &join(path, "name"), &self.name);
        }
        let sources = usize::from(self.empty_dir.is_some())
            + usize::from(self.host_path.is_some())
            + usize::from(self.config_map.is_some())
            + usize::from(self.secret.is_some())
            + usize::from(self.persistent_volume_claim.is_some());
        if sources != 1 {
            errs.push(FieldError::invalid(
                path,
                "must specify exactly one volume source: `emptyDir`, `hostPath`, `configMap`, `secret` or `persistentVolumeClaim`",
            ));
        }
        if let Some(c) = &self.persistent_volume_claim {
            let cp = join(path, "persistentVolumeClaim");
            check_ref_name(&mut errs, &join(&cp, "claimName"), &c.claim_name);
        }
        if let Some(e) = &self.empty_dir {
            check_opt_enum(
                &mut errs,
                &join(&join(path, "emptyDir"), "medium"),
                e.medium.as_deref(),
                &["", "Memory"],
            );
        }
        if let Some(h) = &self.host_path {
            let hp = join(path, "hostPath");
            check_absolute_path(&mut errs, &join(&hp, "path"), &h.path);
            if h.path.split('/').any(|p| p == "..") {
                errs.push(FieldError::invalid(
                    join(&hp, "path"),
                    format!("{:?}: must not contain '..'", h.path),
                ));
            }
            check_opt_enum(
                &mut errs,
                &join(&hp, "type"),
                h.type_.as_deref(),
                HOST_PATH_TYPES,
            );
        }
        if let Some(c) = &self.config_map {
            let cp = join(path, "configMap");
            check_ref_name(&mut errs, &join(&cp, "name"), &c.name);
            errs.extend(validate_items(&c.items, &join(&cp, "items")));
            check_mode(&mut errs, &join(&cp, "defaultMode"), c.default_mode);
        }
        if let Some(s) = &self.secret {
            let sp = join(path, "secret");
            check_ref_name(&mut errs, &join(&sp, "secretName"), &s.secret_name);
            errs.extend(validate_items(&s.items, &join(&sp, "items")));
            check_mode(&mut errs, &join(&sp, "defaultMode"), s.default_mode);
        }
        errs
    }
}

fn check_mode(errs: &mut FieldErrors, path: &str, mode: Option<i32>) {
    if let Some(m) = mode
        && !(0..=0o777).contains(&m)
    {
        errs.push(FieldError::invalid(
            path,
            format!("{m}: must be a number between 0 and 0777 (octal), both inclusive"),
        ));
    }
}

fn validate_items(items: &[KeyToPath], path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        if item.key.is_empty() {
            errs.push(FieldError::required(join(&p, "key")));
        } else if let Err(why) = names::config_key(&item.key) {
            errs.push(FieldError::invalid(
                join(&p, "key"),
                format!("{:?}: {why}", item.key),
            ));
        }
        if item.path.is_empty() {
            errs.push(FieldError::required(join(&p, "path")));
        } else if let Err(why) = names::relative_path(&item.path) {
            errs.push(FieldError::invalid(
                join(&p, "path"),
                format!("{:?}: {why}", item.path),
            ));
        } else if !seen.insert(item.path.as_str()) {
            errs.push(FieldError::duplicate(join(&p, "path")));
        }
        check_mode(&mut errs, &join(&p, "mode"), item.mode);
    }
    errs
}

/// Validates `volumes` (each volume, unique names) and returns the names.
pub fn validate_volumes<'a>(volumes: &'a [Volume], path: &str) -> (BTreeSet<&'a str>, FieldErrors) {
    let mut errs = FieldErrors::new();
    let mut names = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = index(path, i);
        errs.extend(v.validate(&p));
        if !v.name.is_empty() && !names.insert(v.name.as_str()) {
            errs.push(FieldError::duplicate(join(&p, "name")));
        }
    }
    (names, errs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn volumes(v: serde_json::Value) -> Vec<Volume> {
        crate::decode::decode(v).unwrap()
    }

    #[test]
    fn every_source_decodes_defaults_and_validates() {
        let mut vs = volumes(json!([
            {"name": "scratch", "emptyDir": {}},
            {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "i2c", "hostPath": {"path": "/dev/i2c-1", "type": "CharDevice"}},
            {"name": "cfg", "configMap": {"name": "app", "items": [{"key": "app.yaml", "path": "conf/app.yaml"}]}},
            {"name": "tls", "secret": {"secretName": "web-tls", "defaultMode": 0o400, "optional": true}},
        ]));
        for v in &mut vs {
            v.apply_defaults();
        }
        let (names, errs) = validate_volumes(&vs, "spec.volumes");
        assert!(errs.is_empty(), "{errs}");
        assert_eq!(names.len(), 5);
        assert_eq!(vs[3].config_map.as_ref().unwrap().default_mode, Some(0o644));
        assert_eq!(vs[4].secret.as_ref().unwrap().default_mode, Some(0o400));
        assert_eq!(
            vs[1]
                .empty_dir
                .as_ref()
                .unwrap()
                .size_limit
                .as_ref()
                .unwrap()
                .to_bytes()
                .unwrap(),
            64 << 20
        );
    }

    #[test]
    fn source_count_names_and_fields_are_checked() {
        let vs = volumes(json!([
            {"name": "a"},
            {"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}},
            {"name": "b", "hostPath": {"path": "relative", "type": "Pipe"}},
            {"name": "c", "configMap": {"items": [{"key": "k", "path": "../up"}], "defaultMode": 1000}},
        ]));
        let (_, errs) = validate_volumes(&vs, "v");
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "v[0]",
                "v[1]",
                "v[1].name",
                "v[2].hostPath.path",
                "v[2].hostPath.type",
                "v[3].configMap.name",
                "v[3].configMap.items[0].path",
                "v[3].configMap.defaultMode",
            ]
        );
        assert_eq!(errs.0[2].to_string(), "v[1].name: Duplicate value");
    }

    #[test]
    fn octal_modes_from_yaml() {
        let docs = crate::parse_documents(
            "volumes:\n\
             - {name: a, secret: {secretName: s, defaultMode: 0400, items: [{key: k, path: p, mode: 0o600}]}}\n\
             - {name: b, configMap: {name: c, defaultMode: 420}}\n",
            "v.yaml",
        )
        .unwrap();
        let vs: Vec<Volume> = crate::decode::decode(docs[0]["volumes"].clone()).unwrap();
        let s = vs[0].secret.as_ref().unwrap();
        assert_eq!(s.default_mode, Some(0o400));
        assert_eq!(s.items[0].mode, Some(0o600));
        assert_eq!(vs[1].config_map.as_ref().unwrap().default_mode, Some(0o644));
        let e = crate::decode::decode::<Vec<Volume>>(
            json!([{"name": "a", "secret": {"secretName": "s", "defaultMode": "0999"}}]),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "[0].secret.defaultMode: Invalid value: \"0999\": expected a file mode"
            ),
            "{e}"
        );
    }

    #[test]
    fn other_sources_are_not_supported() {
        let e = crate::decode::decode::<Vec<Volume>>(
            json!([{"name": "d", "nfs": {"server": "x", "path": "/"}}]),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "[0].nfs: not supported");
    }

    #[test]
    fn a_claim_needs_its_name() {
        let vs = volumes(json!([
            {"name": "data", "persistentVolumeClaim": {"claimName": "db", "readOnly": true}},
            {"name": "bad", "persistentVolumeClaim": {}},
        ]));
        let (_, errs) = validate_volumes(&vs, "v");
        assert_eq!(
            errs.to_string(),
            "v[1].persistentVolumeClaim.claimName: Required value"
        );
    }
}
