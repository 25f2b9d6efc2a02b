//! `storage.k8s.io/v1 StorageClass` (cluster-scoped): how claims of a class
//! get their volumes. Bramble has one provisioner, [`LOCAL_PATH_PROVISIONER`]:
//! a directory on the node where the claim's first pod runs. The hub makes
//! the class `local-path` ([`LOCAL_PATH_CLASS`]) on start, marked default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors};
use crate::meta::ObjectMeta;

use super::common::{check_enum, check_opt_enum};
use super::persistent_volume::RECLAIM_POLICIES;

/// The hub's provisioner: a directory on the consumer's node.
pub const LOCAL_PATH_PROVISIONER: &str = "bramble.dev/local-path";
/// The built-in class (k3s' name for the same thing).
pub const LOCAL_PATH_CLASS: &str = "local-path";
/// Marks the class claims without `storageClassName` get.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// `volumeBindingMode` values.
pub const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];
/// Provisioners Bramble runs (a class naming another is refused).
pub const PROVISIONERS: &[&str] = &[LOCAL_PATH_PROVISIONER, "kubernetes.io/no-provisioner"];

/// `storage.k8s.io/v1 StorageClass`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.storage.v1.StorageClass")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageClass {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `bramble.dev/local-path`, or `kubernetes.io/no-provisioner` for
    /// volumes an administrator makes.
    #[serde(default)]
    pub provisioner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// `Delete` (default) or `Retain`, copied to the volumes it makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim_policy: Option<String>,
    /// `Immediate` (default) or `WaitForFirstConsumer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_binding_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_volume_expansion: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_options: Vec<String>,
}

impl StorageClass {
    /// The class's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Whether claims without a class get this one.
    pub fn is_default(&self) -> bool {
        self.metadata
            .annotations
            .get(DEFAULT_CLASS_ANNOTATION)
            .is_some_and(|v| v == "true")
    }

    /// `Delete` or `Retain`.
    pub fn reclaim_policy(&self) -> &str {
        self.reclaim_policy.as_deref().unwrap_or("Delete")
    }

    /// Whether volumes are made only once a pod using the claim is scheduled.
    pub fn waits_for_first_consumer(&self) -> bool {
        self.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
    }

    /// The built-in `local-path` class, as the hub creates it.
    pub fn local_path() -> StorageClass {
        StorageClass {
            api_version: "storage.k8s.io/v1".into(),
            kind: "StorageClass".into(),
            metadata: ObjectMeta {
                name: LOCAL_PATH_CLASS.into(),
                annotations: BTreeMap::from([(
                    DEFAULT_CLASS_ANNOTATION.to_string(),
                    "true".to_string(),
                )]),
                ..ObjectMeta::default()
            },
            provisioner: LOCAL_PATH_PROVISIONER.into(),
            reclaim_policy: Some("Delete".into()),
            volume_binding_mode: Some("WaitForFirstConsumer".into()),
            ..StorageClass::default()
        }
    }
}

impl Object for StorageClass {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn apply_defaults(&mut self) {
        self.reclaim_policy.get_or_insert_with(|| "Delete".into());
        self.volume_binding_mode
            .get_or_insert_with(|| "Immediate".into());
    }

    fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if self.provisioner.is_empty() {
            errs.push(FieldError::required("provisioner"));
        } else {
            check_enum(&mut errs, "provisioner", &self.provisioner, PROVISIONERS);
        }
        check_opt_enum(
            &mut errs,
            "reclaimPolicy",
            self.reclaim_policy.as_deref(),
            RECLAIM_POLICIES,
        );
        check_opt_enum(
            &mut errs,
            "volumeBindingMode",
            self.volume_binding_mode.as_deref(),
            BINDING_MODES,
        );
        if self.provisioner == LOCAL_PATH_PROVISIONER && !self.waits_for_first_consumer() {
            errs.push(FieldError::invalid(
                "volumeBindingMode",
                "local-path volumes live on one node: set WaitForFirstConsumer so the volume is made where its first pod runs",
            ));
        }
        if self.allow_volume_expansion == Some(true) {
            errs.push(FieldError::invalid(
                "allowVolumeExpansion",
                "true: Bramble's volumes cannot be expanded",
            ));
        }
        for k in self.parameters.keys() {
            errs.push(FieldError::invalid(
                format!("parameters[{k}]"),
                "the local-path provisioner takes no parameters",
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_built_in_class_is_valid_and_the_default() {
        let c = StorageClass::local_path();
        assert!(c.validate().is_empty(), "{}", c.validate());
        assert!(c.is_default());
        assert!(c.waits_for_first_consumer());
        assert_eq!(c.reclaim_policy(), "Delete");
    }

    #[test]
    fn unknown_provisioners_and_immediate_local_paths_are_refused() {
        let mut c: StorageClass = crate::decode::decode(json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "fast"}, "provisioner": "ebs.csi.aws.com",
            "reclaimPolicy": "Recycle", "parameters": {"type": "gp3"},
        }))
        .unwrap();
        c.apply_defaults();
        let errs = c.validate().to_string();
        for want in [
            "provisioner: Unsupported value: supported values: \"bramble.dev/local-path\"",
            "reclaimPolicy: Unsupported value",
            "parameters[type]: Invalid value",
        ] {
            assert!(errs.contains(want), "missing {want:?} in {errs}");
        }
        c.provisioner = LOCAL_PATH_PROVISIONER.into();
        let errs = c.validate().to_string();
        assert!(
            errs.contains("volumeBindingMode: Invalid value: local-path volumes live on one node"),
            "{errs}"
        );
    }
}
