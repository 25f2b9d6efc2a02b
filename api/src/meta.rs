//! Object metadata shared by every kind (`metadata:` in manifests).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, join};
use crate::names;

/// `metadata` of an object. Fields the hub owns (`uid`, `resourceVersion`,
/// `generation`, `creationTimestamp`) are accepted from clients and then
/// overwritten by the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
    /// Which manager (`?fieldManager=`) owns which fields: written by the
    /// hub on every write ([`crate::patch::server_side`]), never taken from
    /// a client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<serde_json::Value>,
}

/// Points at the controller that owns an object (a Deployment's pods, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OwnerReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_owner_deletion: Option<bool>,
}

/// Which rule an object's name must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 subdomain (most kinds).
    Subdomain,
    /// DNS-1123 label (Namespace, Service).
    Label,
}

impl ObjectMeta {
    /// Validates name, labels and annotations. `path` is normally `metadata`.
    pub fn validate(&self, path: &str, rule: NameRule) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let name_path = join(path, "name");
        if self.name.is_empty() {
            errs.push(FieldError::required(name_path));
        } else {
            let r = match rule {
                NameRule::Subdomain => names::dns1123_subdomain(&self.name),
                NameRule::Label => names::dns1123_label(&self.name),
            };
            if let Err(why) = r {
                errs.push(FieldError::invalid(
                    name_path,
                    format!("{:?}: {why}", self.name),
                ));
            }
        }
        if let Some(ns) = &self.namespace
            && let Err(why) = names::dns1123_label(ns)
        {
            errs.push(FieldError::invalid(
                join(path, "namespace"),
                format!("{ns:?}: {why}"),
            ));
        }
        errs.extend(validate_labels(&self.labels, &join(path, "labels")));
        errs.extend(validate_annotations(
            &self.annotations,
            &join(path, "annotations"),
        ));
        errs
    }

    /// The namespace, or `default` when none is set (as kubectl assumes).
    pub fn namespace_or_default(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    /// `namespace/name` (see [`ObjectKey`](crate::ObjectKey)).
    pub fn key(&self) -> crate::ObjectKey {
        crate::ObjectKey::from(self)
    }
}

/// Validates an annotation map (key syntax, 256 KiB in total) at `path`.
pub fn validate_annotations(annotations: &BTreeMap<String, String>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        if let Err(why) = names::label_key(k) {
            errs.push(FieldError::invalid(format!("{path}[{k}]"), why));
        }
        total += k.len() + v.len();
    }
    if total > 256 * 1024 {
        errs.push(FieldError::invalid(
            path,
            "total size must be no more than 256 KiB",
        ));
    }
    errs
}

/// Validates a label map (keys and values) at `path`.
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for (k, v) in labels {
        if let Err(why) = names::label_key(k) {
            errs.push(FieldError::invalid(
                format!("{path}[{k}]"),
                format!("key {k:?}: {why}"),
            ));
        }
        if let Err(why) = names::label_value(v) {
            errs.push(FieldError::invalid(
                format!("{path}[{k}]"),
                format!("{v:?}: {why}"),
            ));
        }
    }
    errs
}

/// A structured label selector (`selector:` of Deployments, DaemonSets, NetworkPolicies).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// `{key, operator: In|NotIn|Exists|DoesNotExist, values}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Converts to the string-form selector used for matching.
    pub fn to_selector(&self) -> crate::Selector {
        use crate::selector::Requirement as R;
        let mut reqs: Vec<R> = self
            .match_labels
            .iter()
            .map(|(k, v)| R::Equals(k.clone(), v.clone()))
            .collect();
        for e in &self.match_expressions {
            reqs.push(match e.operator.as_str() {
                "In" => R::In(e.key.clone(), e.values.clone()),
                "NotIn" => R::NotIn(e.key.clone(), e.values.clone()),
                "Exists" => R::Exists(e.key.clone()),
                _ => R::DoesNotExist(e.key.clone()),
            });
        }
        crate::Selector(reqs)
    }

    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Validates keys, values and operators at `path`.
    pub fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = validate_labels(&self.match_labels, &join(path, "matchLabels"));
        for (i, e) in self.match_expressions.iter().enumerate() {
            let p = format!("{path}.matchExpressions[{i}]");
            if let Err(why) = names::label_key(&e.key) {
                errs.push(FieldError::invalid(join(&p, "key"), why));
            }
            match e.operator.as_str() {
                "In" | "NotIn" if e.values.is_empty() => {
                    errs.push(FieldError::required(join(&p, "values")))
                }
                "Exists" | "DoesNotExist" if !e.values.is_empty() => {
                    errs.push(FieldError::invalid(
                        join(&p, "values"),
                        "must be empty for Exists and DoesNotExist",
                    ))
                }
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                _ => errs.push(FieldError::unsupported_value(
                    join(&p, "operator"),
                    &["In", "NotIn", "Exists", "DoesNotExist"],
                )),
            }
        }
        errs
    }
}
