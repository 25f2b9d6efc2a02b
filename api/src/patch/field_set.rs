//! Sets of fields as server-side apply tracks them: a tree whose keys are
//! Kubernetes' `fieldsV1` path elements (`f:spec`, `k:{"name":"app"}` for a
//! list item by its merge key, `v:"x"` for a scalar in a set, `.` for a list
//! item itself), serialized exactly as `metadata.managedFields[].fieldsV1`.
//! Pure: built from objects with [`super::merge_keys`], compared, subtracted.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::merge_keys;

/// A set of fields: each key is a path element; an empty child is a leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(pub BTreeMap<String, FieldSet>);

/// A path from the object's root to one field.
pub type FieldPath = Vec<String>;

/// `metadata` fields the store or the server owns, never a manager's.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
];

impl FieldSet {
    /// The fields `object` (of OpenAPI type `root_type`) sets, as an applied
    /// configuration or a stored object names them (without `status` and
    /// the server's own metadata).
    pub fn of(object: &Value, root_type: &str) -> FieldSet {
        let Value::Object(map) = object else {
            return FieldSet::default();
        };
        let mut top = Map::new();
        for (k, v) in map {
            match k.as_str() {
                "apiVersion" | "kind" | "status" => {}
                "metadata" => {
                    let mut meta = v.as_object().cloned().unwrap_or_default();
                    meta.retain(|k, _| !SERVER_META.contains(&k.as_str()));
                    if !meta.is_empty() {
                        top.insert(k.clone(), Value::Object(meta));
                    }
                }
                _ => {
                    top.insert(k.clone(), v.clone());
                }
            }
        }
        walk_map(&top, Some(root_type))
    }

    /// The set as `fieldsV1` JSON.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }

    /// Reads `fieldsV1` JSON (anything else reads as empty).
    pub fn from_json(v: &Value) -> FieldSet {
        match v {
            Value::Object(m) => FieldSet(
                m.iter()
                    .map(|(k, v)| (k.clone(), FieldSet::from_json(v)))
                    .collect(),
            ),
            _ => FieldSet::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every path to a leaf (a field owned as a whole), `.` markers included.
    pub fn leaves(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
        for (k, child) in &self.0 {
            prefix.push(k.clone());
            if child.is_empty() {
                out.push(prefix.clone());
            } else {
                child.collect(prefix, out);
            }
            prefix.pop();
        }
    }

    /// Whether the set holds `path` or anything under it.
    pub fn touches(&self, path: &[String]) -> bool {
        let mut node = self;
        for k in path {
            match node.0.get(k) {
                Some(n) => node = n,
                None => return false,
            }
        }
        true
    }

    /// Adds one path.
    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for k in path {
            node = node.0.entry(k.clone()).or_default();
        }
    }

    /// Removes one leaf path, and the parents it leaves empty.
    pub fn remove(&mut self, path: &[String]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if rest.is_empty() {
            self.0.remove(first);
            return;
        }
        if let Some(child) = self.0.get_mut(first) {
            child.remove(rest);
            if child.is_empty() {
                self.0.remove(first);
            }
        }
    }

    /// The union of two sets.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for p in other.leaves() {
            out.insert(&p);
        }
        out
    }
}

fn walk_map(map: &Map<String, Value>, ty: Option<&str>) -> FieldSet {
    let mut set = FieldSet::default();
    for (k, v) in map {
        if k.starts_with('$') {
            continue;
        }
        let meta = ty.and_then(|t| merge_keys::field(t, k));
        let child = match v {
            Value::Object(m) if !m.is_empty() => walk_map(m, meta.and_then(|m| m.child)),
            Value::Array(items) if meta.is_some_and(|m| m.merge) => {
                walk_list(items, meta.expect("checked above"))
            }
            _ => FieldSet::default(),
        };
        set.0.insert(format!("f:{k}"), child);
    }
    set
}

fn walk_list(items: &[Value], meta: merge_keys::PatchField) -> FieldSet {
    let mut set = FieldSet::default();
    for item in items {
        match (item, meta.merge_key) {
            (Value::Object(m), Some(key)) => {
                let Some(id) = m.get(key) else { continue };
                let mut node = walk_map(m, meta.child);
                node.0.insert(".".into(), FieldSet::default());
                set.0.insert(item_key(key, id), node);
            }
            (scalar, _) => {
                set.0.insert(format!("v:{scalar}"), FieldSet::default());
            }
        }
    }
    set
}

/// `k:{"name":"app"}`: a keyed list item's path element.
fn item_key(key: &str, id: &Value) -> String {
    let mut m = Map::new();
    m.insert(key.to_string(), id.clone());
    format!("k:{}", Value::Object(m))
}

/// The value at `path` in `object`, if there is one (`.` is the item itself).
pub fn get<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut v = object;
    for k in path {
        v = step(v, k)?;
    }
    Some(v)
}

fn step<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    if k == "." {
        return Some(v);
    }
    if let Some(f) = k.strip_prefix("f:") {
        return v.get(f);
    }
    let items = v.as_array()?;
    if let Some(key) = k.strip_prefix("k:") {
        let wanted: Map<String, Value> = serde_json::from_str(key).ok()?;
        return items
            .iter()
            .find(|i| wanted.iter().all(|(f, want)| i.get(f) == Some(want)));
    }
    if let Some(val) = k.strip_prefix("v:") {
        let wanted: Value = serde_json::from_str(val).ok()?;
        return items.iter().find(|i| **i == wanted);
    }
    None
}

/// Removes the field at `path` from `object` (for a `.` path, the list item).
pub fn remove(object: &mut Value, path: &[String]) {
    let path: Vec<&String> = path.iter().filter(|k| *k != ".").collect();
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut v = &mut *object;
    for k in parents {
        let Some(next) = step_mut(v, k) else { return };
        v = next;
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = v.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(items) = v.as_array_mut() {
        let probe = Value::Array(items.clone());
        if let Some(found) = step(&probe, last).cloned() {
            items.retain(|i| *i != found);
        }
    }
}

fn step_mut<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut Value> {
    if let Some(f) = k.strip_prefix("f:") {
        return v.get_mut(f);
    }
    let probe = step(v, k)?.clone();
    v.as_array_mut()?.iter_mut().find(|i| **i == probe)
}

/// The path as Kubernetes prints it in conflicts: `.spec.replicas`,
/// `.spec.template.spec.containers[name="app"].image`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for k in path {
        if let Some(f) = k.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(key) = k.strip_prefix("k:") {
            let m: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = m.iter().map(|(f, v)| format!("{f}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = k.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

    fn web() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "uid": "u", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "app", "image": "a:1", "args": ["x"]}]}}},
            "status": {"replicas": 2}})
    }

    #[test]
    fn a_deployments_fields_are_kubernetes_fields_v1() {
        let set = FieldSet::of(&web(), DEPLOYMENT);
        assert_eq!(
            set.to_json(),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {}}}}}}
            })
        );
        assert_eq!(FieldSet::from_json(&set.to_json()), set);
    }

    #[test]
    fn paths_read_and_remove_values() {
        let set = FieldSet::of(&web(), DEPLOYMENT);
        let image = set
            .leaves()
            .into_iter()
            .find(|p| p.last().map(String::as_str) == Some("f:image"))
            .unwrap();
        assert_eq!(get(&web(), &image), Some(&json!("a:1")));
        assert_eq!(
            display(&image),
            ".spec.template.spec.containers[name=\"app\"].image"
        );
        let mut w = web();
        remove(&mut w, &image);
        assert!(
            w["spec"]["template"]["spec"]["containers"][0]
                .get("image")
                .is_none()
        );
        let item: Vec<String> = image[..image.len() - 1]
            .iter()
            .cloned()
            .chain([".".to_string()])
            .collect();
        remove(&mut w, &item);
        assert_eq!(w["spec"]["template"]["spec"]["containers"], json!([]));
    }

    #[test]
    fn sets_insert_remove_and_touch() {
        let mut s = FieldSet::default();
        let p: FieldPath = vec!["f:spec".into(), "f:replicas".into()];
        s.insert(&p);
        assert!(s.touches(&["f:spec".to_string()]));
        s.remove(&p);
        assert!(s.is_empty());
    }
}
