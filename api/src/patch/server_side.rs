//! Server-side apply and field ownership, as `metadata.managedFields`
//! records it: every write names a manager (`?fieldManager=`); an apply
//! (`application/apply-patch+yaml`) declares the whole set of fields its
//! manager wants, merges them in, removes the fields it set before and no
//! longer sets (unless another manager owns them), and is refused with the
//! conflicting fields when another manager owns a field it would change —
//! unless forced, which takes the fields over. Other writes (`Update`) take
//! over the fields they change. Pure: objects in, object out.

use serde_json::{Value, json};

use super::field_set::{self, FieldPath, FieldSet};
use super::strategic::{self, StrategicError};

/// How a manager last wrote its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct Managed {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

/// A field another manager owns with another value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    /// When that manager last wrote (RFC 3339), if known.
    pub time: String,
    pub path: FieldPath,
}

impl Conflict {
    /// As the API server names the manager: `conflict with "kubectl"` for
    /// an applier, `conflict with "kubectl-edit" using apps/v1 at
    /// 2026-12-06T10:00:00Z` for an updater.
    pub fn message(&self) -> String {
        match self.operation {
            Operation::Apply => format!("conflict with {:?}", self.manager),
            Operation::Update if self.time.is_empty() => format!(
                "conflict with {:?} using {}",
                self.manager, self.api_version
            ),
            Operation::Update => format!(
                "conflict with {:?} using {} at {}",
                self.manager, self.api_version, self.time
            ),
        }
    }

    /// `.spec.replicas`.
    pub fn field(&self) -> String {
        field_set::display(&self.path)
    }
}

/// Why an apply is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// Kubernetes' wording: `Apply failed with 1 conflict: conflict with
    /// "kubectl": .spec.replicas`.
    #[error("Apply failed with {} conflict{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, list(.0))]
    Conflicts(Vec<Conflict>),
    #[error(transparent)]
    Merge(#[from] StrategicError),
}

fn list(conflicts: &[Conflict]) -> String {
    conflicts
        .iter()
        .map(|c| format!("{}: {}", c.message(), c.field()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The managers recorded in `object`'s `metadata.managedFields`.
pub fn managers(object: &Value) -> Vec<Managed> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    Some(Managed {
                        manager: e["manager"].as_str()?.to_string(),
                        operation: match e["operation"].as_str()? {
                            "Apply" => Operation::Apply,
                            _ => Operation::Update,
                        },
                        api_version: e["apiVersion"].as_str().unwrap_or("").to_string(),
                        time: e["time"].as_str().unwrap_or("").to_string(),
                        fields: FieldSet::from_json(&e["fieldsV1"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `entries` as `object`'s `metadata.managedFields` (empty sets dropped).
pub fn set_managers(object: &mut Value, entries: &[Managed]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            json!({
                "manager": e.manager,
                "operation": e.operation.as_str(),
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.fields.to_json(),
            })
        })
        .collect();
    if let Some(meta) = object["metadata"].as_object_mut() {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// What one write is: who, at which API version, when.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub root_type: &'a str,
    /// RFC 3339.
    pub now: &'a str,
}

/// Applies `config` (the whole intent of `w.manager`) to `current` (`None`:
/// the object does not exist yet).
pub fn apply(
    current: Option<&Value>,
    config: &Value,
    w: Writer<'_>,
    force: bool,
) -> Result<Value, ApplyError> {
    let empty = Value::Object(Default::default());
    let current = current.unwrap_or(&empty);
    let mut entries = managers(current);
    let wanted = FieldSet::of(config, w.root_type);
    let before = entries
        .iter()
        .find(|e| e.manager == w.manager && e.operation == Operation::Apply)
        .map(|e| e.fields.clone())
        .unwrap_or_default();

    let mut conflicts = Vec::new();
    for path in wanted.leaves() {
        if path.last().map(String::as_str) == Some(".") {
            continue;
        }
        if field_set::get(current, &path) == field_set::get(config, &path) {
            continue;
        }
        // A manager is its name and its operation: `kubectl` updating is
        // another manager than `kubectl` applying.
        let others = entries
            .iter()
            .filter(|e| e.manager != w.manager || e.operation != Operation::Apply);
        for e in others {
            if e.fields.touches(&path) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    operation: e.operation,
                    api_version: e.api_version.clone(),
                    time: e.time.clone(),
                    path: path.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApplyError::Conflicts(conflicts));
    }

    let mut config = config.clone();
    if let Some(meta) = config["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    let mut merged = strategic::apply(current, &config, w.root_type)?;
    // What this manager set before and no longer sets goes, unless another
    // manager owns it too (deepest first, so an item goes after its fields).
    let mut dropped: Vec<FieldPath> = before
        .leaves()
        .into_iter()
        .filter(|p| !wanted.touches(p))
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in dropped {
        let owner_path: &[String] = match path.last().map(String::as_str) {
            Some(".") => &path[..path.len() - 1],
            _ => &path,
        };
        let shared = entries
            .iter()
            .filter(|e| e.manager != w.manager || e.operation != Operation::Apply)
            .any(|e| e.fields.touches(owner_path));
        if !shared {
            field_set::remove(&mut merged, &path);
        }
    }

    for c in &conflicts {
        for e in entries
            .iter_mut()
            .filter(|e| e.manager != w.manager || e.operation != Operation::Apply)
        {
            e.fields.remove(&c.path);
        }
    }
    let unchanged = conflicts.is_empty() && wanted == before && {
        let mut old = current.clone();
        set_managers(&mut old, &[]);
        set_managers(&mut merged, &[]);
        old == merged
    };
    if unchanged {
        // A no-op apply writes nothing, not even a new time.
        return Ok(current.clone());
    }
    entries.retain(|e| !(e.manager == w.manager && e.operation == Operation::Apply));
    entries.push(Managed {
        manager: w.manager.to_string(),
        operation: Operation::Apply,
        api_version: w.api_version.to_string(),
        time: w.now.to_string(),
        fields: wanted,
    });
    set_managers(&mut merged, &entries);
    Ok(merged)
}

/// Records a non-apply write (create, replace, patch) of `next` over `old`:
/// `w.manager` takes over every field whose value it changed; fields it
/// removed are nobody's any more.
pub fn record_update(old: Option<&Value>, next: &mut Value, w: Writer<'_>) {
    let empty = Value::Object(Default::default());
    let old = old.unwrap_or(&empty);
    let mut entries = managers(old);
    let now_set = FieldSet::of(next, w.root_type);
    let changed: Vec<FieldPath> = now_set
        .leaves()
        .into_iter()
        .filter(|p| match p.last().map(String::as_str) {
            // An item is new or not; its fields say what changed in it.
            Some(".") => field_set::get(old, p).is_none(),
            _ => field_set::get(old, p) != field_set::get(next, p),
        })
        .collect();
    let removed: Vec<FieldPath> = FieldSet::of(old, w.root_type)
        .leaves()
        .into_iter()
        .filter(|p| field_set::get(next, p).is_none())
        .collect();
    if changed.is_empty() && removed.is_empty() {
        set_managers(next, &entries);
        return;
    }
    for e in &mut entries {
        for p in changed.iter().chain(&removed) {
            e.fields.remove(p);
        }
    }
    let mine = match entries
        .iter()
        .position(|e| e.manager == w.manager && e.operation == Operation::Update)
    {
        Some(i) => i,
        None => {
            entries.push(Managed {
                manager: w.manager.to_string(),
                operation: Operation::Update,
                api_version: w.api_version.to_string(),
                time: String::new(),
                fields: FieldSet::default(),
            });
            entries.len() - 1
        }
    };
    for p in &changed {
        entries[mine].fields.insert(p);
    }
    entries[mine].time = w.now.to_string();
    entries[mine].api_version = w.api_version.to_string();
    set_managers(next, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "apps/v1",
            root_type: DEPLOYMENT,
            now: "2026-12-06T20:00:00Z",
        }
    }

    fn config(replicas: i64, env: &[(&str, &str)], sidecar: bool) -> Value {
        let env: Vec<Value> = env
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect();
        let mut containers = vec![json!({"name": "app", "image": "a:1", "env": env})];
        if sidecar {
            containers.push(json!({"name": "side", "image": "s:1"}));
        }
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn an_apply_creates_and_records_its_manager() {
        let out = apply(
            None,
            &config(2, &[("A", "1")], false),
            writer("flux"),
            false,
        )
        .unwrap();
        let m = managers(&out);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].manager, "flux");
        assert_eq!(m[0].operation, Operation::Apply);
        assert!(m[0].fields.touches(&["f:spec".into(), "f:replicas".into()]));
        assert_eq!(out["spec"]["replicas"], 2);
    }

    #[test]
    fn a_field_changed_by_another_manager_conflicts_until_forced() {
        let first = apply(None, &config(2, &[], false), writer("flux"), false).unwrap();
        let mut scaled = first.clone();
        scaled["spec"]["replicas"] = 5.into();
        record_update(Some(&first), &mut scaled, writer("kubectl-scale"));
        let err = apply(Some(&scaled), &config(3, &[], false), writer("flux"), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1 at 2026-12-06T20:00:00Z: .spec.replicas"
        );
        // Another applier is named alone, as the API server names it.
        let other = apply(Some(&first), &config(4, &[], false), writer("argo"), false).unwrap_err();
        assert_eq!(
            other.to_string(),
            "Apply failed with 1 conflict: conflict with \"flux\": .spec.replicas"
        );
        // The same value is no conflict: both own it.
        assert!(apply(Some(&scaled), &config(5, &[], false), writer("flux"), false).is_ok());
        let forced = apply(Some(&scaled), &config(3, &[], false), writer("flux"), true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        assert!(
            managers(&forced).iter().all(|m| m.manager == "flux"),
            "the forced apply took the only field kubectl-scale had"
        );
    }

    #[test]
    fn fields_an_apply_stops_setting_are_removed_unless_someone_else_owns_them() {
        let first = apply(
            None,
            &config(2, &[("A", "1"), ("B", "2")], true),
            writer("flux"),
            false,
        )
        .unwrap();
        let mut labelled = first.clone();
        labelled["metadata"]["labels"] = json!({"team": "edge"});
        record_update(Some(&first), &mut labelled, writer("kubectl-label"));
        let next = apply(
            Some(&labelled),
            &config(2, &[("A", "1")], false),
            writer("flux"),
            false,
        )
        .unwrap();
        let containers = &next["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().unwrap().len(), 1, "{containers}");
        assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(
            next["metadata"]["labels"]["team"], "edge",
            "kubectl-label's field stays"
        );
    }

    #[test]
    fn a_repeated_apply_changes_nothing() {
        let first = apply(None, &config(2, &[("A", "1")], true), writer("flux"), false).unwrap();
        let mut later = writer("flux");
        later.now = "2026-12-06T21:00:00Z";
        let again = apply(Some(&first), &config(2, &[("A", "1")], true), later, false).unwrap();
        assert_eq!(again, first);
    }

    #[test]
    fn the_same_name_updating_is_another_manager() {
        let first = apply(None, &config(2, &[], false), writer("kubectl"), false).unwrap();
        let mut scaled = first.clone();
        scaled["spec"]["replicas"] = 5.into();
        record_update(Some(&first), &mut scaled, writer("kubectl"));
        let err = apply(
            Some(&scaled),
            &config(2, &[], false),
            writer("kubectl"),
            false,
        )
        .unwrap_err();
        assert!(
            matches!(err, ApplyError::Conflicts(ref c) if c.len() == 1),
            "{err}"
        );
    }

    #[test]
    fn an_update_takes_over_what_it_changes() {
        let first = apply(None, &config(2, &[], false), writer("flux"), false).unwrap();
        let mut edited = first.clone();
        edited["spec"]["template"]["spec"]["containers"][0]["image"] = "a:2".into();
        record_update(Some(&first), &mut edited, writer("kubectl-edit"));
        let m = managers(&edited);
        let edit = m.iter().find(|e| e.manager == "kubectl-edit").unwrap();
        assert_eq!(edit.operation, Operation::Update);
        assert_eq!(edit.fields.leaves().len(), 1);
        let flux = m.iter().find(|e| e.manager == "flux").unwrap();
        assert!(
            !flux
                .fields
                .leaves()
                .iter()
                .any(|p| p.last().unwrap() == "f:image")
        );
    }
}
