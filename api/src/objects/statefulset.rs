//! `apps/v1 StatefulSet`: replicas with a stable identity, pod `NAME-i`
//! for ordinal `i`, each with its own claims stamped from
//! `volumeClaimTemplates` (`<template>-NAME-i`), created in order and
//! updated from the highest ordinal down.

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors};
use crate::meta::{LabelSelector, NameRule, ObjectMeta};

use super::common::{Condition, check_label, check_non_negative, check_opt_enum};
use super::deployment::DEFAULT_REVISION_HISTORY_LIMIT;
use super::persistent_volume_claim::PersistentVolumeClaim;
use super::template::PodTemplateSpec;
use super::volume::{PersistentVolumeClaimVolumeSource, Volume};

/// `podManagementPolicy` values.
pub const POD_MANAGEMENT_POLICIES: &[&str] = &["OrderedReady", "Parallel"];
/// `updateStrategy.type` values.
pub const STATEFULSET_STRATEGIES: &[&str] = &["RollingUpdate", "OnDelete"];
/// `persistentVolumeClaimRetentionPolicy` values Bramble implements: claims
/// are kept (Kubernetes also has `Delete`).
pub const RETENTION_POLICIES: &[&str] = &["Retain"];

/// `apps/v1 StatefulSet`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.StatefulSet")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatefulSet {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: StatefulSetSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatefulSetStatus>,
}

/// `spec` of a StatefulSet: pods `NAME-0`..`NAME-(replicas-1)` from
/// `template`, each with claims from `volumeClaimTemplates`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.StatefulSetSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatefulSetSpec {
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Required; must select the template's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default)]
    pub template: PodTemplateSpec,
    /// Claims every pod gets, named `<template name>-NAME-<ordinal>`, mounted
    /// as the volume named like the template. Kept when pods go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_claim_templates: Vec<PersistentVolumeClaim>,
    /// The headless Service giving pods their names:
    /// `NAME-i.<serviceName>.<namespace>.svc.<cluster domain>`.
    #[serde(default)]
    pub service_name: String,
    /// `OrderedReady` (default): one pod at a time, each once the lower
    /// ordinals are Running and Ready, removed from the highest; `Parallel`:
    /// all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_management_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<StatefulSetUpdateStrategy>,
    /// Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// What happens to claims when pods are scaled away or the StatefulSet
    /// is deleted: `Retain` (kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_retention_policy:
        Option<StatefulSetPersistentVolumeClaimRetentionPolicy>,
    /// The first ordinal (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinals: Option<StatefulSetOrdinals>,
}

/// `updateStrategy: {type, rollingUpdate}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.StatefulSetUpdateStrategy")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatefulSetUpdateStrategy {
    /// `RollingUpdate` (default): pods from the highest ordinal down to
    /// `partition` are replaced one at a time; `OnDelete`: only pods the
    /// user deletes get the new template.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdateStatefulSetStrategy>,
}

/// `rollingUpdate: {partition}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.RollingUpdateStatefulSetStrategy")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollingUpdateStatefulSetStrategy {
    /// Pods with an ordinal below it keep their template (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
}

/// `persistentVolumeClaimRetentionPolicy: {whenDeleted, whenScaled}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatefulSetPersistentVolumeClaimRetentionPolicy {
    /// `Retain` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_deleted: Option<String>,
    /// `Retain` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_scaled: Option<String>,
}

/// `ordinals: {start}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.StatefulSetOrdinals")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatefulSetOrdinals {
    #[serde(default)]
    pub start: i32,
}

/// `status` of a StatefulSet, written by the hub's controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.apps.v1.StatefulSetStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default)]
    pub current_replicas: i32,
    #[serde(default)]
    pub updated_replicas: i32,
    #[serde(default)]
    pub available_replicas: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_revision: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub update_revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl StatefulSet {
    /// The StatefulSet's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The StatefulSet's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// `spec.replicas`, 1 when unset.
    pub fn replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(1)
    }

    /// The first ordinal (`spec.ordinals.start`, 0 when unset).
    pub fn start_ordinal(&self) -> i32 {
        self.spec.ordinals.as_ref().map_or(0, |o| o.start)
    }

    /// `podManagementPolicy` is `Parallel`.
    pub fn parallel(&self) -> bool {
        self.spec.pod_management_policy.as_deref() == Some("Parallel")
    }

    /// `updateStrategy.type` is `OnDelete`.
    pub fn on_delete(&self) -> bool {
        self.spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            == Some("OnDelete")
    }

    /// The rolling update's partition (0 when unset).
    pub fn partition(&self) -> i32 {
        self.spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0)
    }

    /// The name of the claim from `template` for the pod of `ordinal`:
    /// `<template>-NAME-<ordinal>`.
    pub fn claim_name(&self, template: &str, ordinal: i32) -> String {
        format!("{template}-{}-{ordinal}", self.name())
    }

    /// The template's volumes with one `persistentVolumeClaim` volume per
    /// claim template for `ordinal`, replacing a template volume of the
    /// same name (as Kubernetes does).
    pub fn volumes_for(&self, ordinal: i32) -> Vec<Volume> {
        let mut volumes = self.spec.template.spec.volumes.clone();
        for t in &self.spec.volume_claim_templates {
            let v = Volume {
                name: t.metadata.name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: self.claim_name(&t.metadata.name, ordinal),
                    read_only: None,
                }),
                ..Volume::default()
            };
            match volumes.iter_mut().find(|x| x.name == v.name) {
                Some(x) => *x = v,
                None => volumes.push(v),
            }
        }
        volumes
    }
}

impl Object for StatefulSet {
    /// Its name is the pods' hostnames' stem: a DNS label.
    const NAME_RULE: NameRule = NameRule::Label;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Kubernetes' defaults: replicas 1, `OrderedReady`, `RollingUpdate`
    /// with partition 0, revisionHistoryLimit 10, claims retained, and the
    /// pod template's and claim templates' defaults.
    fn apply_defaults(&mut self) {
        let s = &mut self.spec;
        s.replicas.get_or_insert(1);
        s.pod_management_policy
            .get_or_insert_with(|| "OrderedReady".into());
        let us = s.update_strategy.get_or_insert_with(Default::default);
        let t = us.type_.get_or_insert_with(|| "RollingUpdate".into());
        if t == "RollingUpdate" {
            us.rolling_update
                .get_or_insert_with(Default::default)
                .partition
                .get_or_insert(0);
        }
        s.revision_history_limit
            .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
        let p = s
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(Default::default);
        p.when_deleted.get_or_insert_with(|| "Retain".into());
        p.when_scaled.get_or_insert_with(|| "Retain".into());
        s.template.apply_defaults();
        for c in &mut s.volume_claim_templates {
            c.apply_defaults();
        }
    }

    fn validate(&self) -> FieldErrors {
        let s = &self.spec;
        let mut errs = FieldErrors::new();
        if let Some(r) = s.replicas {
            check_non_negative(&mut errs, "spec.replicas", i64::from(r));
        }
        // The last pod's name is its hostname and a label value: 63 at most.
        let last = self
            .start_ordinal()
            .saturating_add(self.replicas().max(1) - 1);
        let pod = format!("{}-{last}", self.name());
        if !self.name().is_empty() && pod.len() > 63 {
            errs.push(FieldError::invalid(
                "metadata.name",
                format!("{pod:?}: the pods' names (with their ordinal) must be no more than 63 characters"),
            ));
        }
        if !s.service_name.is_empty() {
            check_label(&mut errs, "spec.serviceName", &s.service_name);
        }
        // The pods' template: the claim templates' volumes count (mounts
        // may name them).
        let mut template = s.template.clone();
        template.spec.volumes = self.volumes_for(self.start_ordinal());
        errs.extend(template.validate_controlled(
            "spec.template",
            s.selector.as_ref(),
            "spec.selector",
        ));
        check_opt_enum(
            &mut errs,
            "spec.podManagementPolicy",
            s.pod_management_policy.as_deref(),
            POD_MANAGEMENT_POLICIES,
        );
        if let Some(us) = &s.update_strategy {
            check_opt_enum(
                &mut errs,
                "spec.updateStrategy.type",
                us.type_.as_deref(),
                STATEFULSET_STRATEGIES,
            );
            match (us.type_.as_deref(), &us.rolling_update) {
                (Some("OnDelete"), Some(_)) => errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    "only allowed for updateStrategy 'RollingUpdate'",
                )),
                (_, Some(ru)) => {
                    if let Some(p) = ru.partition {
                        check_non_negative(
                            &mut errs,
                            "spec.updateStrategy.rollingUpdate.partition",
                            i64::from(p),
                        );
                    }
                }
                _ => {}
            }
        }
        for (name, v) in [
            ("spec.minReadySeconds", s.min_ready_seconds),
            ("spec.revisionHistoryLimit", s.revision_history_limit),
            ("spec.ordinals.start", s.ordinals.as_ref().map(|o| o.start)),
        ] {
            if let Some(v) = v {
                check_non_negative(&mut errs, name, i64::from(v));
            }
        }
        if let Some(p) = &s.persistent_volume_claim_retention_policy {
            for (path, v) in [
                (
                    "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
                    &p.when_deleted,
                ),
                (
                    "spec.persistentVolumeClaimRetentionPolicy.whenScaled",
                    &p.when_scaled,
                ),
            ] {
                check_opt_enum(&mut errs, path, v.as_deref(), RETENTION_POLICIES);
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in s.volume_claim_templates.iter().enumerate() {
            let path = format!("spec.volumeClaimTemplates[{i}]");
            let name = &c.metadata.name;
            if name.is_empty() {
                errs.push(FieldError::required(format!("{path}.metadata.name")));
            } else if !names.insert(name.as_str()) {
                errs.push(FieldError::invalid(
                    format!("{path}.metadata.name"),
                    format!("{name:?}: Duplicate value"),
                ));
            } else {
                // The claims' names (`<template>-NAME-<ordinal>`) must be valid.
                let claim = self.claim_name(name, self.start_ordinal());
                super::common::check_subdomain(&mut errs, &format!("{path}.metadata.name"), &claim);
            }
            for mut e in c.validate().0 {
                e.path = format!("{path}.{}", e.path);
                errs.push(e);
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts(spec: serde_json::Value) -> StatefulSet {
        let mut s: StatefulSet = crate::decode::decode(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"}, "spec": spec
        }))
        .unwrap();
        s.apply_defaults();
        s
    }

    fn template() -> serde_json::Value {
        json!({"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "busybox",
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}})
    }

    fn claim() -> serde_json::Value {
        json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}})
    }

    #[test]
    fn defaults_and_a_mount_of_a_claim_template_is_valid() {
        let s = sts(
            json!({"selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
            "template": template(), "volumeClaimTemplates": [claim()]}),
        );
        assert!(s.validate().is_empty(), "{}", s.validate());
        assert_eq!(s.replicas(), 1);
        assert_eq!(
            s.spec.pod_management_policy.as_deref(),
            Some("OrderedReady")
        );
        assert_eq!(
            serde_json::to_value(&s.spec.update_strategy).unwrap(),
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            serde_json::to_value(&s.spec.persistent_volume_claim_retention_policy).unwrap(),
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(s.spec.revision_history_limit, Some(10));
        assert_eq!(
            s.spec.volume_claim_templates[0].spec.volume_mode.as_deref(),
            Some("Filesystem")
        );
        assert!(!s.parallel() && !s.on_delete());
        assert_eq!(s.claim_name("data", 2), "data-db-2");
        let v = s.volumes_for(2);
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].persistent_volume_claim.as_ref().unwrap().claim_name,
            "data-db-2"
        );
    }

    #[test]
    fn a_claim_template_replaces_the_template_volume_of_its_name() {
        let mut t = template();
        t["spec"]["volumes"] =
            json!([{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]);
        let s = sts(
            json!({"selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
            "template": t, "volumeClaimTemplates": [claim()]}),
        );
        let v = s.volumes_for(0);
        assert_eq!(v.len(), 2);
        assert!(v[0].empty_dir.is_none());
        assert_eq!(
            v[0].persistent_volume_claim.as_ref().unwrap().claim_name,
            "data-db-0"
        );
        assert!(v[1].empty_dir.is_some());
    }

    #[test]
    fn every_invalid_field_is_reported_with_kubernetes_words() {
        let s = sts(
            json!({"replicas": -1, "serviceName": "Not_A_Label", "selector": {"matchLabels": {"app": "other"}},
            "template": template(), "podManagementPolicy": "Sometimes",
            "updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}},
            "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"},
            "ordinals": {"start": -2},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": []}},
                                     claim()]}),
        );
        let errs = s.validate().to_string();
        for want in [
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"db\"}: `selector` does not match template `labels`",
            "spec.podManagementPolicy: Unsupported value: supported values: \"OrderedReady\", \"Parallel\"",
            "spec.updateStrategy.rollingUpdate: Invalid value: only allowed for updateStrategy 'RollingUpdate'",
            "spec.persistentVolumeClaimRetentionPolicy.whenScaled: Unsupported value: supported values: \"Retain\"",
            "spec.ordinals.start: Invalid value: -2",
            "spec.serviceName: Invalid value: \"Not_A_Label\"",
            "spec.volumeClaimTemplates[0].spec.accessModes: Invalid value",
            "spec.volumeClaimTemplates[1].metadata.name: Invalid value: \"data\": Duplicate value",
        ] {
            assert!(errs.contains(want), "missing {want:?} in {errs}");
        }
        let mut long = sts(
            json!({"replicas": 11, "selector": {"matchLabels": {"app": "db"}},
            "template": template(), "volumeClaimTemplates": [claim()]}),
        );
        long.metadata.name = "a".repeat(61);
        assert!(
            long.validate()
                .to_string()
                .contains("must be no more than 63 characters"),
            "{}",
            long.validate()
        );
        long.spec.replicas = Some(10);
        assert!(long.validate().is_empty(), "{}", long.validate());
        let s = sts(json!({"selector": {"matchLabels": {"app": "db"}}, "template": template()}));
        assert!(
            s.validate()
                .to_string()
                .contains("spec.template.spec.containers[0].volumeMounts[0].name"),
            "a mount of no volume: {}",
            s.validate()
        );
    }
}
