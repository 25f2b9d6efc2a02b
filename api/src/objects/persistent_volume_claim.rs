//! `v1 PersistentVolumeClaim`: a namespaced request for storage, bound by
//! the hub to one PersistentVolume (an existing one that fits, or one the
//! claim's StorageClass provisions). `status.phase` is `Pending` until
//! bound, `Bound`, or `Lost` when its volume is gone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors};
use crate::meta::{LabelSelector, ObjectMeta};
use crate::quantity::Quantity;

use super::common::{Condition, check_opt_enum, check_subdomain};
use super::persistent_volume::{VOLUME_MODES, check_access_modes, check_storage, storage_bytes};

/// The annotation naming the node a `WaitForFirstConsumer` claim's first
/// pod was scheduled to: the provisioner makes its volume there.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The annotation naming the provisioner asked to make a claim's volume.
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";

/// `v1 PersistentVolumeClaim`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PersistentVolumeClaim")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersistentVolumeClaim {
    /// Absent in a StatefulSet's `volumeClaimTemplates`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PersistentVolumeClaimSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PersistentVolumeClaimStatus>,
}

/// `spec` of a claim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PersistentVolumeClaimSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersistentVolumeClaimSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
    /// `requests.storage`: the size asked for.
    #[serde(default)]
    pub resources: VolumeResourceRequirements,
    /// The class; unset: the default class (`local-path`); `""`: only
    /// volumes without a class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// The volume it is bound to (set by the hub, or by the user to ask
    /// for one volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
    /// Only volumes with these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// `resources: {requests, limits}` of a claim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.VolumeResourceRequirements")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeResourceRequirements {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Quantity>,
}

/// `status` of a claim. Lenient.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PersistentVolumeClaimStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl PersistentVolumeClaim {
    /// The claim's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The claim's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// The phase, `Pending` when not reported yet.
    pub fn phase(&self) -> &str {
        self.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending")
    }

    /// The bound volume's name, if any.
    pub fn volume_name(&self) -> Option<&str> {
        self.spec.volume_name.as_deref().filter(|v| !v.is_empty())
    }

    /// The requested size in bytes.
    pub fn requested_bytes(&self) -> u64 {
        storage_bytes(&self.spec.resources.requests)
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata.annotations.get(key).map(String::as_str)
    }
}

impl Object for PersistentVolumeClaim {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn apply_defaults(&mut self) {
        self.spec
            .volume_mode
            .get_or_insert_with(|| "Filesystem".into());
    }

    fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let s = &self.spec;
        check_access_modes(&mut errs, "spec.accessModes", &s.access_modes);
        check_storage(&mut errs, "spec.resources.requests", &s.resources.requests);
        for k in s.resources.limits.keys().filter(|k| *k != "storage") {
            errs.push(FieldError::unsupported_value(
                format!("spec.resources.limits[{k}]"),
                &["storage"],
            ));
        }
        if let (Some(limit), request) = (
            s.resources.limits.get("storage"),
            storage_bytes(&s.resources.requests),
        ) && limit.to_bytes().is_ok_and(|l| l < request)
        {
            errs.push(FieldError::invalid(
                "spec.resources.requests[storage]",
                format!(
                    "must be less than or equal to storage limit {}",
                    limit.as_str()
                ),
            ));
        }
        if let Some(c) = s.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
            check_subdomain(&mut errs, "spec.storageClassName", c);
        }
        if let Some(v) = s.volume_name.as_deref().filter(|v| !v.is_empty()) {
            check_subdomain(&mut errs, "spec.volumeName", v);
        }
        check_opt_enum(
            &mut errs,
            "spec.volumeMode",
            s.volume_mode.as_deref(),
            VOLUME_MODES,
        );
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pvc(spec: serde_json::Value) -> PersistentVolumeClaim {
        let mut c: PersistentVolumeClaim = crate::decode::decode(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "db"}, "spec": spec,
        }))
        .unwrap();
        c.apply_defaults();
        c
    }

    #[test]
    fn a_claim_asks_for_a_size_and_access_modes() {
        let c = pvc(json!({"accessModes": ["ReadWriteOnce"],
                           "resources": {"requests": {"storage": "2Gi"}}}));
        assert!(c.validate().is_empty(), "{}", c.validate());
        assert_eq!(c.requested_bytes(), 2 << 30);
        assert_eq!(c.phase(), "Pending");
        assert_eq!(c.spec.volume_mode.as_deref(), Some("Filesystem"));
        assert_eq!(c.volume_name(), None);
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let c = pvc(
            json!({"accessModes": [], "resources": {"limits": {"storage": "1Gi", "memory": "1"}},
                           "storageClassName": "Fast_One", "volumeMode": "Block"}),
        );
        let errs = c.validate().to_string();
        for want in [
            "spec.accessModes: Invalid value: must specify at least 1 access mode",
            "spec.resources.requests[storage]: Required value",
            "spec.resources.limits[memory]: Unsupported value",
            "spec.storageClassName: Invalid value: \"Fast_One\"",
            "spec.volumeMode: Unsupported value: supported values: \"Filesystem\"",
        ] {
            assert!(errs.contains(want), "missing {want:?} in {errs}");
        }
        let c = pvc(json!({"accessModes": ["ReadWriteOncePod", "ReadOnlyMany"],
                           "resources": {"requests": {"storage": "2Gi"}, "limits": {"storage": "1Gi"}}}));
        let errs = c.validate().to_string();
        assert!(
            errs.contains("may not use ReadWriteOncePod with other access modes"),
            "{errs}"
        );
        assert!(
            errs.contains("must be less than or equal to storage limit 1Gi"),
            "{errs}"
        );
    }
}
