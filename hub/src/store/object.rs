//! Reading and writing the store-owned parts of an object held as JSON.

use serde_json::Value;

/// `metadata.name`.
pub fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

/// `metadata.namespace`, if set.
pub fn namespace(obj: &Value) -> Option<&str> {
    obj["metadata"]["namespace"].as_str()
}

/// `metadata.resourceVersion` parsed as a revision. `Ok(None)` when absent or empty;
/// `Err` with the raw text when it is not a number.
pub fn resource_version(obj: &Value) -> Result<Option<u64>, String> {
    match obj["metadata"]["resourceVersion"].as_str() {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| s.to_string()),
    }
}

/// Sets a `metadata` field, creating `metadata` when missing.
pub fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if !obj["metadata"].is_object() {
        obj["metadata"] = Value::Object(Default::default());
    }
    obj["metadata"][field] = value;
}

/// Removes a `metadata` field.
pub fn remove_meta(obj: &mut Value, field: &str) {
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove(field);
    }
}

/// `metadata.generation`, 0 if unset.
pub fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(0)
}

/// Whether two objects differ outside `metadata` and `status`: the part whose
/// changes bump `metadata.generation`.
pub fn spec_differs(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a != b;
    };
    let keys = a.keys().chain(b.keys());
    for k in keys {
        if k == "metadata" || k == "status" {
            continue;
        }
        if a.get(k) != b.get(k) {
            return true;
        }
    }
    false
}

/// Store key of an object: `ns/name` for namespaced kinds, `name` otherwise.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_diff_ignores_metadata_and_status() {
        let a = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"y": 1}});
        let b = json!({"metadata": {"labels": {"a": "2"}}, "spec": {"x": 1}, "status": {"y": 2}});
        assert!(!spec_differs(&a, &b));
        let c = json!({"metadata": {}, "spec": {"x": 2}});
        assert!(spec_differs(&a, &c));
        let d = json!({"metadata": {}, "spec": {"x": 1}, "data": {}});
        assert!(spec_differs(&a, &d));
    }

    #[test]
    fn resource_version_parsing() {
        assert_eq!(resource_version(&json!({})), Ok(None));
        assert_eq!(
            resource_version(&json!({"metadata": {"resourceVersion": "42"}})),
            Ok(Some(42))
        );
        assert!(resource_version(&json!({"metadata": {"resourceVersion": "x"}})).is_err());
    }
}
