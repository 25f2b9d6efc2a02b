//! Scheduling constraints of a pod: node affinity and tolerations, with the
//! matching rules the scheduler applies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, index, join};
use crate::names;

use super::common::{check_enum, check_opt_enum};
use super::node::{TAINT_EFFECTS, Taint};

/// Operators of node selector requirements.
pub const NODE_SELECTOR_OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"];
/// Operators of tolerations.
pub const TOLERATION_OPERATORS: &[&str] = &["Exists", "Equal"];

/// `affinity`; only `nodeAffinity` is supported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Affinity")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Affinity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_affinity: Option<NodeAffinity>,
}

/// `nodeAffinity`: hard and soft rules on node labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.NodeAffinity")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeAffinity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_during_scheduling_ignored_during_execution: Vec<PreferredSchedulingTerm>,
}

/// A node selector: the node must match at least one term.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.NodeSelector")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSelector {
    #[serde(default)]
    pub node_selector_terms: Vec<NodeSelectorTerm>,
}

/// A term: every requirement must hold. An empty term matches no node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.NodeSelectorTerm")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSelectorTerm {
    /// Requirements on node labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<NodeSelectorRequirement>,
    /// Requirements on node fields (only `metadata.name`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_fields: Vec<NodeSelectorRequirement>,
}

/// `{key, operator, values}` with operators In, NotIn, Exists, DoesNotExist, Gt, Lt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.NodeSelectorRequirement")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSelectorRequirement {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A weighted soft preference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.PreferredSchedulingTerm")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreferredSchedulingTerm {
    /// 1..=100.
    #[serde(default)]
    pub weight: i32,
    #[serde(default)]
    pub preference: NodeSelectorTerm,
}

/// `{key, operator, value, effect, tolerationSeconds}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Toleration")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `Equal` (when unset) or `Exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Empty matches every effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// Only with `NoExecute`: how long the pod stays after the taint appears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

impl NodeSelectorRequirement {
    /// Whether a value (a label value, or the node name for `matchFields`) satisfies this.
    fn holds(&self, value: Option<&str>) -> bool {
        let int = |s: &str| s.parse::<i64>().ok();
        match self.operator.as_str() {
            "In" => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            "NotIn" => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            "Gt" | "Lt" => {
                let (Some(v), Some(bound)) = (
                    value.and_then(int),
                    self.values.first().and_then(|b| int(b)),
                ) else {
                    return false;
                };
                if self.operator == "Gt" {
                    v > bound
                } else {
                    v < bound
                }
            }
            _ => false,
        }
    }

    /// Whether node labels satisfy this label requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.holds(labels.get(&self.key).map(String::as_str))
    }
}

impl NodeSelectorTerm {
    /// Whether a node with these labels and name satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
        if self.match_expressions.is_empty() && self.match_fields.is_empty() {
            return false;
        }
        self.match_expressions.iter().all(|r| r.matches(labels))
            && self.match_fields.iter().all(|r| {
                r.holds(if r.key == "metadata.name" {
                    Some(node_name)
                } else {
                    None
                })
            })
    }
}

impl NodeSelector {
    /// Whether any term matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
        self.node_selector_terms
            .iter()
            .any(|t| t.matches(labels, node_name))
    }

    fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let tp = join(path, "nodeSelectorTerms");
        if self.node_selector_terms.is_empty() {
            errs.push(FieldError::required(tp.clone()));
        }
        for (i, t) in self.node_selector_terms.iter().enumerate() {
            errs.extend(t.validate(&index(&tp, i)));
        }
        errs
    }
}

impl NodeSelectorTerm {
    /// Checks the term's requirements at `path`.
    pub(crate) fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        for (i, r) in self.match_expressions.iter().enumerate() {
            let rp = index(&join(path, "matchExpressions"), i);
            if let Err(why) = names::label_key(&r.key) {
                errs.push(FieldError::invalid(
                    join(&rp, "key"),
                    format!("{:?}: {why}", r.key),
                ));
            }
            check_enum(
                &mut errs,
                &join(&rp, "operator"),
                &r.operator,
                NODE_SELECTOR_OPERATORS,
            );
            let vp = join(&rp, "values");
            match r.operator.as_str() {
                "In" | "NotIn" if r.values.is_empty() => errs.push(FieldError::required(vp)),
                "Exists" | "DoesNotExist" if !r.values.is_empty() => errs.push(FieldError::invalid(
                    vp,
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )),
                "Gt" | "Lt" if r.values.len() != 1 || r.values[0].parse::<i64>().is_err() => errs
                    .push(FieldError::invalid(
                        vp,
                        "must be specified single value when `operator` is 'Lt' or 'Gt' and it must be an integer",
                    )),
                _ => {
                    for (j, v) in r.values.iter().enumerate() {
                        if let Err(why) = names::label_value(v) {
                            errs.push(FieldError::invalid(index(&vp, j), format!("{v:?}: {why}")));
                        }
                    }
                }
            }
        }
        for (i, r) in self.match_fields.iter().enumerate() {
            let rp = index(&join(path, "matchFields"), i);
            if r.key != "metadata.name" {
                errs.push(FieldError::unsupported_value(
                    join(&rp, "key"),
                    &["metadata.name"],
                ));
            }
            check_enum(
                &mut errs,
                &join(&rp, "operator"),
                &r.operator,
                &["In", "NotIn"],
            );
            if r.values.len() != 1 {
                errs.push(FieldError::invalid(
                    join(&rp, "values"),
                    "must have one element",
                ));
            }
        }
        errs
    }
}

impl Affinity {
    /// The required node selector, if any.
    pub fn required_node_selector(&self) -> Option<&NodeSelector> {
        self.node_affinity
            .as_ref()?
            .required_during_scheduling_ignored_during_execution
            .as_ref()
    }

    /// Validates at `path` (`spec.affinity`).
    pub fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let Some(na) = &self.node_affinity else {
            return errs;
        };
        let np = join(path, "nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            errs.extend(req.validate(&join(&np, "requiredDuringSchedulingIgnoredDuringExecution")));
        }
        let pp = join(&np, "preferredDuringSchedulingIgnoredDuringExecution");
        for (i, p) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .enumerate()
        {
            let ip = index(&pp, i);
            if !(1..=100).contains(&p.weight) {
                errs.push(FieldError::invalid(
                    join(&ip, "weight"),
                    format!("{}: must be in the range 1-100", p.weight),
                ));
            }
            errs.extend(p.preference.validate(&join(&ip, "preference")));
        }
        errs
    }
}

impl Toleration {
    /// The operator, `Equal` when unset.
    pub fn operator(&self) -> &str {
        self.operator.as_deref().unwrap_or("Equal")
    }

    /// Whether this toleration tolerates `taint` (Kubernetes `ToleratesTaint`).
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if let Some(effect) = self.effect.as_deref().filter(|e| !e.is_empty())
            && effect != taint.effect
        {
            return false;
        }
        let key = self.key.as_deref().unwrap_or("");
        if !key.is_empty() && key != taint.key {
            return false;
        }
        match self.operator() {
            "Exists" => true,
            "Equal" => {
                !key.is_empty()
                    && self.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
            }
            _ => false,
        }
    }
}

/// Validates `tolerations` at `path`.
pub fn validate_tolerations(tolerations: &[Toleration], path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for (i, t) in tolerations.iter().enumerate() {
        let tp = index(path, i);
        let key = t.key.as_deref().unwrap_or("");
        if !key.is_empty()
            && let Err(why) = names::label_key(key)
        {
            errs.push(FieldError::invalid(
                join(&tp, "key"),
                format!("{key:?}: {why}"),
            ));
        }
        check_opt_enum(
            &mut errs,
            &join(&tp, "operator"),
            t.operator.as_deref(),
            TOLERATION_OPERATORS,
        );
        if key.is_empty() && t.operator() != "Exists" {
            errs.push(FieldError::invalid(
                join(&tp, "operator"),
                format!("{:?}: operator must be Exists when `key` is empty, which means \"match all values and all keys\"", t.operator()),
            ));
        }
        let value = t.value.as_deref().unwrap_or("");
        if t.operator() == "Exists" && !value.is_empty() {
            errs.push(FieldError::invalid(
                join(&tp, "value"),
                format!("{value:?}: value must be empty when `operator` is 'Exists'"),
            ));
        } else if let Err(why) = names::label_value(value) {
            errs.push(FieldError::invalid(
                join(&tp, "value"),
                format!("{value:?}: {why}"),
            ));
        }
        if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
            check_enum(&mut errs, &join(&tp, "effect"), effect, TAINT_EFFECTS);
        }
        if t.toleration_seconds.is_some() && t.effect.as_deref() != Some("NoExecute") {
            errs.push(FieldError::invalid(
                join(&tp, "effect"),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn node_selector_terms_match() {
        let a: Affinity = crate::decode::decode(json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64", "arm"]},
                    {"key": "bramble.dev/cores", "operator": "Gt", "values": ["2"]},
                    {"key": "legacy", "operator": "DoesNotExist"}
                ]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["pi-9"]}]}
            ]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}
            ]
        }}))
        .unwrap();
        assert!(
            a.validate("spec.affinity").is_empty(),
            "{}",
            a.validate("spec.affinity")
        );
        let sel = a.required_node_selector().unwrap();
        assert!(sel.matches(
            &labels(&[("kubernetes.io/arch", "arm64"), ("bramble.dev/cores", "4")]),
            "pi-1"
        ));
        assert!(!sel.matches(
            &labels(&[("kubernetes.io/arch", "arm64"), ("bramble.dev/cores", "2")]),
            "pi-1"
        ));
        assert!(!sel.matches(
            &labels(&[("kubernetes.io/arch", "amd64"), ("bramble.dev/cores", "8")]),
            "pi-1"
        ));
        assert!(!sel.matches(
            &labels(&[
                ("kubernetes.io/arch", "arm64"),
                ("bramble.dev/cores", "4"),
                ("legacy", "")
            ]),
            "pi-1"
        ));
        assert!(sel.matches(&labels(&[]), "pi-9"));
        assert!(!NodeSelectorTerm::default().matches(&labels(&[]), "x"));
    }

    #[test]
    fn affinity_errors_have_paths() {
        let a: Affinity = crate::decode::decode(json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [
                    {"key": "a", "operator": "Near", "values": ["x"]},
                    {"key": "b", "operator": "In"},
                    {"key": "c", "operator": "Gt", "values": ["x"]}
                ],
                 "matchFields": [{"key": "metadata.labels", "operator": "In", "values": ["x"]}]}
            ]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}]
        }}))
        .unwrap();
        let errs = a.validate("a");
        let r =
            "a.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]";
        let paths: Vec<String> = errs.0.iter().map(|e| e.path.clone()).collect();
        assert_eq!(
            paths,
            [
                format!("{r}.matchExpressions[0].operator"),
                format!("{r}.matchExpressions[1].values"),
                format!("{r}.matchExpressions[2].values"),
                format!("{r}.matchFields[0].key"),
                "a.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight"
                    .to_string(),
            ]
        );
        let e = crate::decode::decode::<Affinity>(json!({"podAntiAffinity": {}})).unwrap_err();
        assert_eq!(e.to_string(), "podAntiAffinity: not supported");
    }

    #[test]
    fn tolerations_validate_and_tolerate() {
        let ts: Vec<Toleration> = crate::decode::decode(json!([
            {"key": "dedicated", "operator": "Equal", "value": "sensors", "effect": "NoSchedule"},
            {"operator": "Exists"},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "x", "operator": "Matches"},
            {"value": "v"},
            {"key": "y", "effect": "Sometimes", "tolerationSeconds": 5}
        ]))
        .unwrap();
        let errs = validate_tolerations(&ts, "t");
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "t[3].operator",
                "t[4].operator",
                "t[5].effect",
                "t[5].effect"
            ]
        );

        let taint = Taint {
            key: "dedicated".into(),
            value: Some("sensors".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        };
        assert!(ts[0].tolerates(&taint));
        assert!(ts[1].tolerates(&taint));
        assert!(!ts[2].tolerates(&taint));
        let other = Taint {
            value: Some("cameras".into()),
            ..taint.clone()
        };
        assert!(!ts[0].tolerates(&other));
    }
}
