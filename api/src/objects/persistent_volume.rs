//! `v1 PersistentVolume`: a piece of storage on one node (cluster-scoped),
//! made by an administrator or by the hub's `local-path` provisioner, and
//! bound to at most one claim. Bramble's volumes are directories on a board:
//! a `local` or `hostPath` source, pinned to its node by `nodeAffinity`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors, index, join};
use crate::meta::ObjectMeta;
use crate::quantity::Quantity;

use super::common::{ObjectReference, check_absolute_path, check_enum, check_opt_enum};
use super::scheduling::NodeSelector;
use super::volume::{HOST_PATH_TYPES, HostPathVolumeSource};

/// Access modes Kubernetes defines.
pub const ACCESS_MODES: &[&str] = &[
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];
/// `persistentVolumeReclaimPolicy` values Bramble implements (Kubernetes'
/// deprecated `Recycle` is not one).
pub const RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
/// `volumeMode` values Bramble implements (no raw block devices).
pub const VOLUME_MODES: &[&str] = &["Filesystem"];

/// `v1 PersistentVolume`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PersistentVolume")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersistentVolume {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PersistentVolumeSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PersistentVolumeStatus>,
}

/// `spec` of a PersistentVolume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PersistentVolumeSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersistentVolumeSpec {
    /// `storage`: the size, e.g. `1Gi`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
    /// `Delete` (the directory goes with the claim) or `Retain` (kept; the
    /// volume turns `Released` and an administrator decides). Default `Retain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_reclaim_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// `Filesystem` (the default and only mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
    /// The node(s) the volume can be used on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_affinity: Option<VolumeNodeAffinity>,
    /// The claim bound (or being bound) to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_ref: Option<ObjectReference>,
    /// A directory on the node (what `local-path` makes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalVolumeSource>,
    /// A path on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolumeSource>,
}

/// `nodeAffinity: {required: NodeSelector}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.VolumeNodeAffinity")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeNodeAffinity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<NodeSelector>,
}

/// `local: {path, fsType}`: a directory already on the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.LocalVolumeSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalVolumeSource {
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
}

/// `status` of a PersistentVolume: `phase` Pending, Available, Bound,
/// Released or Failed. Lenient.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PersistentVolumeStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_phase_transition_time: Option<String>,
}

impl PersistentVolume {
    /// The volume's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The phase, `Pending` when not reported yet.
    pub fn phase(&self) -> &str {
        self.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending")
    }

    /// `Delete` or `Retain` (the default).
    pub fn reclaim_policy(&self) -> &str {
        self.spec
            .persistent_volume_reclaim_policy
            .as_deref()
            .unwrap_or("Retain")
    }

    /// The storage class (`""` for none).
    pub fn class(&self) -> &str {
        self.spec.storage_class_name.as_deref().unwrap_or("")
    }

    /// The size in bytes (0 when unset or unreadable).
    pub fn capacity_bytes(&self) -> u64 {
        storage_bytes(&self.spec.capacity)
    }

    /// The one node the volume is pinned to, when its affinity names a
    /// single node by `kubernetes.io/hostname` or `metadata.name` (what
    /// `local-path` writes).
    pub fn pinned_node(&self) -> Option<&str> {
        let required = self.spec.node_affinity.as_ref()?.required.as_ref()?;
        let [term] = required.node_selector_terms.as_slice() else {
            return None;
        };
        term.match_expressions
            .iter()
            .filter(|r| r.key == HOSTNAME_LABEL)
            .chain(
                term.match_fields
                    .iter()
                    .filter(|r| r.key == "metadata.name"),
            )
            .find_map(|r| match (r.operator.as_str(), r.values.as_slice()) {
                ("In", [node]) => Some(node.as_str()),
                _ => None,
            })
    }

    /// Whether a pod on a node with these labels and name may use it.
    pub fn fits_node(&self, labels: &BTreeMap<String, String>, node: &str) -> bool {
        self.spec
            .node_affinity
            .as_ref()
            .and_then(|a| a.required.as_ref())
            .is_none_or(|s| s.matches(labels, node))
    }

    /// The claim it is bound to, as `(namespace, name, uid)`.
    pub fn claim(&self) -> Option<(&str, &str, Option<&str>)> {
        let c = self.spec.claim_ref.as_ref()?;
        Some((
            c.namespace.as_deref().unwrap_or("default"),
            c.name.as_deref()?,
            c.uid.as_deref(),
        ))
    }
}

/// The node label `local-path` pins its volumes with.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The `storage` entry of a capacity or request map, in bytes (0 when
/// absent or unreadable).
pub fn storage_bytes(map: &BTreeMap<String, Quantity>) -> u64 {
    map.get("storage")
        .and_then(|q| q.to_bytes().ok())
        .unwrap_or(0)
}

/// Checks a list of access modes: at least one, each known.
pub(crate) fn check_access_modes(errs: &mut FieldErrors, path: &str, modes: &[String]) {
    if modes.is_empty() {
        errs.push(FieldError::invalid(
            path,
            "must specify at least 1 access mode",
        ));
    }
    for (i, m) in modes.iter().enumerate() {
        check_enum(errs, &index(path, i), m, ACCESS_MODES);
    }
    if modes.iter().any(|m| m == "ReadWriteOncePod") && modes.len() > 1 {
        errs.push(FieldError::invalid(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

/// Checks a `storage` quantity map entry: present and above zero.
pub(crate) fn check_storage(errs: &mut FieldErrors, path: &str, map: &BTreeMap<String, Quantity>) {
    match map.get("storage") {
        None => errs.push(FieldError::required(format!("{path}[storage]"))),
        Some(q) if q.to_bytes().is_ok_and(|b| b > 0) => {}
        Some(q) => errs.push(FieldError::invalid(
            format!("{path}[storage]"),
            format!("{:?}: must be greater than zero", q.as_str()),
        )),
    }
    for k in map.keys().filter(|k| *k != "storage") {
        errs.push(FieldError::unsupported_value(
            format!("{path}[{k}]"),
            &["storage"],
        ));
    }
}

impl Object for PersistentVolume {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let s = &self.spec;
        check_storage(&mut errs, "spec.capacity", &s.capacity);
        check_access_modes(&mut errs, "spec.accessModes", &s.access_modes);
        check_opt_enum(
            &mut errs,
            "spec.persistentVolumeReclaimPolicy",
            s.persistent_volume_reclaim_policy.as_deref(),
            RECLAIM_POLICIES,
        );
        check_opt_enum(
            &mut errs,
            "spec.volumeMode",
            s.volume_mode.as_deref(),
            VOLUME_MODES,
        );
        match (&s.local, &s.host_path) {
            (None, None) => errs.push(FieldError::invalid(
                "spec",
                "must specify a volume type: `local` or `hostPath`",
            )),
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                "spec.hostPath",
                "may not specify more than 1 volume type",
            )),
            _ => {}
        }
        if let Some(l) = &s.local {
            check_plain_path(&mut errs, "spec.local.path", &l.path);
            if s.node_affinity.is_none() {
                errs.push(FieldError::invalid(
                    "spec.nodeAffinity",
                    "Local volume requires node affinity: pin it to its node with kubernetes.io/hostname",
                ));
            }
        }
        if let Some(h) = &s.host_path {
            check_plain_path(&mut errs, "spec.hostPath.path", &h.path);
            check_opt_enum(
                &mut errs,
                "spec.hostPath.type",
                h.type_.as_deref(),
                HOST_PATH_TYPES,
            );
        }
        if let Some(a) = &s.node_affinity {
            match &a.required {
                None => errs.push(FieldError::required("spec.nodeAffinity.required")),
                Some(sel) => {
                    if sel.node_selector_terms.is_empty() {
                        errs.push(FieldError::required(
                            "spec.nodeAffinity.required.nodeSelectorTerms",
                        ));
                    }
                    for (i, t) in sel.node_selector_terms.iter().enumerate() {
                        errs.extend(
                            t.validate(&index("spec.nodeAffinity.required.nodeSelectorTerms", i)),
                        );
                    }
                }
            }
        }
        if let Some(c) = &s.claim_ref
            && c.name.as_deref().is_none_or(str::is_empty)
        {
            errs.push(FieldError::required(join("spec.claimRef", "name")));
        }
        errs
    }
}

/// An absolute path without `..`.
fn check_plain_path(errs: &mut FieldErrors, path: &str, value: &str) {
    check_absolute_path(errs, path, value);
    if value.split('/').any(|p| p == "..") {
        errs.push(FieldError::invalid(
            path,
            format!("{value:?}: must not contain '..'"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(v: serde_json::Value) -> PersistentVolume {
        crate::decode::decode(v).unwrap()
    }

    #[test]
    fn a_local_volume_is_pinned_to_its_node() {
        let v = pv(json!({
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "local": {"path": "/srv/data"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": ["pi-1"]}]}]}}}
        }));
        assert!(v.validate().is_empty(), "{}", v.validate());
        assert_eq!(v.pinned_node(), Some("pi-1"));
        assert_eq!(v.capacity_bytes(), 1 << 30);
        assert_eq!(v.reclaim_policy(), "Retain");
        assert_eq!(v.phase(), "Pending");
        let labels = BTreeMap::from([(HOSTNAME_LABEL.to_string(), "pi-1".to_string())]);
        assert!(v.fits_node(&labels, "pi-1"));
        assert!(!v.fits_node(&BTreeMap::new(), "pi-2"));
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let v = pv(json!({
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
            "spec": {"capacity": {"storage": "0", "cpu": "1"}, "accessModes": ["ReadWriteSometimes"],
                     "persistentVolumeReclaimPolicy": "Recycle",
                     "local": {"path": "../x"}}
        }));
        let errs = v.validate().to_string();
        for want in [
            "spec.capacity[storage]: Invalid value: \"0\": must be greater than zero",
            "spec.capacity[cpu]: Unsupported value",
            "spec.accessModes[0]: Unsupported value",
            "spec.persistentVolumeReclaimPolicy: Unsupported value",
            "spec.local.path: Invalid value: \"../x\": must be an absolute path",
            "spec.nodeAffinity: Invalid value: Local volume requires node affinity",
        ] {
            assert!(errs.contains(want), "missing {want:?} in {errs}");
        }
        let none = pv(json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv1"}, "spec": {}}));
        let errs = none.validate().to_string();
        assert!(
            errs.contains("spec.capacity[storage]: Required value"),
            "{errs}"
        );
        assert!(
            errs.contains("spec.accessModes: Invalid value: must specify at least 1 access mode"),
            "{errs}"
        );
        assert!(
            errs.contains("spec: Invalid value: must specify a volume type"),
            "{errs}"
        );
    }
}
