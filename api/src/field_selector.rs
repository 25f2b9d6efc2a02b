//! Field selectors (`?fieldSelector=spec.nodeName=pi-1,status.phase!=Running`)
//! as the Kubernetes API server takes them: `=`, `==` and `!=` terms joined by
//! commas, on the fields each kind supports (every kind: `metadata.name` and
//! `metadata.namespace`; pods: `spec.nodeName`, `status.phase`...; events:
//! `involvedObject.*`, `reason`, `type`...); a kind served by conversion has
//! labels of its own, each selecting on a field of the stored kind
//! (`events.k8s.io/v1`'s `regarding.name` is `involvedObject.name`). An
//! unsupported field is refused with the list of supported ones, never
//! ignored.

use serde_json::Value;

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub field: String,
    pub value: String,
    /// `!=` rather than `=`.
    pub negated: bool,
}

/// A parsed field selector; the empty one matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub terms: Vec<Term>,
}

/// Why a field selector is refused (a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    #[error("invalid field selector term {0:?}: write field=value, field==value or field!=value")]
    Syntax(String),
    /// Kubernetes' wording, then the fields that work.
    #[error("field label not supported: {field} ({kind} knows only {known})")]
    Unknown {
        field: String,
        kind: String,
        known: String,
    },
}

/// Fields every kind supports.
const COMMON: &[&str] = &["metadata.name", "metadata.namespace"];

/// Fields a kind supports beyond [`COMMON`] (Kubernetes' field label conversions).
fn kind_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "Secret" => &["type"],
        "Node" => &["spec.unschedulable"],
        "Namespace" => &["status.phase"],
        "ReplicaSet" => &["status.replicas"],
        _ => &[],
    }
}

/// Every field a selector on `kind` can read, as JSON pointers
/// (`/spec/nodeName`): a change that leaves all of them and the labels alone
/// cannot move an object into or out of any watch's selection.
pub fn selectable_pointers(kind: &str) -> impl Iterator<Item = String> {
    COMMON
        .iter()
        .chain(kind_fields(kind))
        .map(|f| format!("/{}", f.replace('.', "/")))
}

impl FieldSelector {
    /// Parses `raw` for objects of `kind`.
    pub fn parse(raw: &str, kind: &str) -> Result<FieldSelector, FieldSelectorError> {
        let known: Vec<&str> = COMMON.iter().chain(kind_fields(kind)).copied().collect();
        parse_terms(raw, kind, &known, |f| {
            known.contains(&f).then(|| f.to_string())
        })
    }

    /// Parses `raw` for a kind served by conversion (`kind` as errors name
    /// it, `Event.events.k8s.io`) whose `labels` are each its field and the
    /// stored kind's field it selects on (`regarding.name` is
    /// `involvedObject.name`); the terms name the stored fields.
    pub fn parse_converted(
        raw: &str,
        kind: &str,
        labels: &[(&str, &str)],
    ) -> Result<FieldSelector, FieldSelectorError> {
        let known: Vec<&str> = labels.iter().map(|(served, _)| *served).collect();
        parse_terms(raw, kind, &known, |f| {
            labels
                .iter()
                .find(|(served, _)| *served == f)
                .map(|(_, stored)| stored.to_string())
        })
    }

    /// The one name an `metadata.name=x` term pins, if any (lets a store
    /// look one object up instead of filtering a list).
    pub fn name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == "metadata.name" && !t.negated)
            .map(|t| t.value.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `object` satisfies every term. A missing field reads as the
    /// empty string; booleans and numbers as written (`true`, `3`).
    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|t| {
            let pointer = format!("/{}", t.field.replace('.', "/"));
            let actual = match object.pointer(&pointer) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (actual == t.value) != t.negated
        })
    }
}

/// Parses the terms of `raw`; `field` names the stored field a label
/// selects on (`None`: not a label of `kind`, whose labels are `known`).
fn parse_terms(
    raw: &str,
    kind: &str,
    known: &[&str],
    field: impl Fn(&str) -> Option<String>,
) -> Result<FieldSelector, FieldSelectorError> {
    let mut terms = Vec::new();
    for term in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (label, value, negated) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, true)
        } else if let Some((f, v)) = term.split_once("==") {
            (f, v, false)
        } else if let Some((f, v)) = term.split_once('=') {
            (f, v, false)
        } else {
            return Err(FieldSelectorError::Syntax(term.to_string()));
        };
        let label = label.trim();
        if label.is_empty() {
            return Err(FieldSelectorError::Syntax(term.to_string()));
        }
        let Some(field) = field(label) else {
            let known: Vec<String> = known.iter().map(|f| format!("{f:?}")).collect();
            return Err(FieldSelectorError::Unknown {
                field: label.to_string(),
                kind: kind.to_string(),
                known: known.join(", "),
            });
        };
        terms.push(Term {
            field,
            value: value.trim().to_string(),
            negated,
        });
    }
    Ok(FieldSelector { terms })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pods_select_by_node_and_phase() {
        let s = FieldSelector::parse("spec.nodeName=pi-1,status.phase!=Running", "Pod").unwrap();
        let pending = json!({"spec": {"nodeName": "pi-1"}, "status": {"phase": "Pending"}});
        let running = json!({"spec": {"nodeName": "pi-1"}, "status": {"phase": "Running"}});
        let elsewhere = json!({"spec": {"nodeName": "pi-2"}, "status": {"phase": "Pending"}});
        assert!(s.matches(&pending));
        assert!(!s.matches(&running));
        assert!(!s.matches(&elsewhere));
        let unscheduled = FieldSelector::parse("spec.nodeName=", "Pod").unwrap();
        assert!(unscheduled.matches(&json!({"spec": {}})));
        assert!(!unscheduled.matches(&pending));
    }

    #[test]
    fn names_and_booleans() {
        let s = FieldSelector::parse("metadata.name==web", "Deployment").unwrap();
        assert_eq!(s.name(), Some("web"));
        assert!(s.matches(&json!({"metadata": {"name": "web"}})));
        let n = FieldSelector::parse("spec.unschedulable=true", "Node").unwrap();
        assert!(n.matches(&json!({"spec": {"unschedulable": true}})));
        assert!(!n.matches(&json!({"spec": {}})));
        assert!(FieldSelector::parse("", "Pod").unwrap().is_empty());
    }

    #[test]
    fn unknown_fields_are_refused_with_the_known_ones() {
        let e = FieldSelector::parse("spec.replicas=3", "Deployment").unwrap_err();
        assert_eq!(
            e.to_string(),
            "field label not supported: spec.replicas (Deployment knows only \"metadata.name\", \"metadata.namespace\")"
        );
        assert!(matches!(
            FieldSelector::parse("status.phase", "Pod"),
            Err(FieldSelectorError::Syntax(_))
        ));
        let e = FieldSelector::parse("involvedObject.name=web", "Event").unwrap();
        assert!(e.matches(&json!({"involvedObject": {"name": "web"}})));
    }

    #[test]
    fn a_converted_kinds_labels_select_on_the_stored_fields() {
        let labels = [
            ("regarding.name", "involvedObject.name"),
            ("reportingController", "reportingComponent"),
            ("type", "type"),
        ];
        let s = FieldSelector::parse_converted(
            "regarding.name=web,reportingController!=kubelet,type=Warning",
            "Event.events.k8s.io",
            &labels,
        )
        .unwrap();
        let stored = json!({"involvedObject": {"name": "web"}, "type": "Warning",
            "reportingComponent": "default-scheduler"});
        assert!(s.matches(&stored));
        assert_eq!(s.terms[0].field, "involvedObject.name");
        let e = FieldSelector::parse_converted(
            "involvedObject.name=web",
            "Event.events.k8s.io",
            &labels,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "field label not supported: involvedObject.name (Event.events.k8s.io knows only \"regarding.name\", \"reportingController\", \"type\")"
        );
    }
}
