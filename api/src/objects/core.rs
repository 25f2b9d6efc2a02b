//! Core `v1` kinds: ConfigMap, Namespace, ...

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors};
use crate::meta::{NameRule, ObjectMeta};
use crate::names;

/// `v1 ConfigMap`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ConfigMap")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMap {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl ConfigMap {
    /// The config map's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The config map's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }
}

impl Object for ConfigMap {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let mut total = 0;
        for (k, v) in &self.data {
            if let Err(why) = names::config_key(k) {
                errs.push(FieldError::invalid(format!("data[{k}]"), why));
            }
            total += k.len() + v.len();
        }
        if total > 1024 * 1024 {
            errs.push(FieldError::invalid(
                "data",
                "must be no more than 1 MiB in total",
            ));
        }
        errs
    }
}

/// `v1 Namespace`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Namespace")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Namespace {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

impl Namespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

impl Object for Namespace {
    const NAME_RULE: NameRule = NameRule::Label;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if let Some(spec) = &self.spec {
            for k in spec.keys() {
                if k != "finalizers" {
                    errs.push(FieldError::not_supported(format!("spec.{k}")));
                }
            }
        }
        errs
    }
}
