//! Small accessors for reading fields out of JSON objects by JSON pointer.
//!
//! Objects from the hub are handled as `serde_json::Value` so the CLI can show
//! kinds and fields it has no types for; these helpers keep that readable.

use serde_json::Value;

/// The string at `pointer` (e.g. `/status/phase`), if present and a string.
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The integer at `pointer`, if present and a number.
pub fn int_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// The boolean at `pointer`, if present and a boolean.
pub fn bool_at(v: &Value, pointer: &str) -> Option<bool> {
    v.pointer(pointer).and_then(Value::as_bool)
}

/// The array at `pointer`, or an empty slice.
pub fn list_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `pointer` as `(key, value-as-text)` pairs, in key order.
pub fn pairs_at(v: &Value, pointer: &str) -> Vec<(String, String)> {
    match v.pointer(pointer).and_then(Value::as_object) {
        Some(map) => map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
        None => Vec::new(),
    }
}

/// Number of keys of the object at `pointer` (0 when absent).
pub fn len_at(v: &Value, pointer: &str) -> usize {
    match v.pointer(pointer) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

/// A scalar as text: strings bare, numbers and booleans as written, others as JSON.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `metadata.name`, or an empty string.
pub fn name(v: &Value) -> &str {
    str_at(v, "/metadata/name").unwrap_or("")
}

/// `metadata.namespace`, if set.
pub fn namespace(v: &Value) -> Option<&str> {
    str_at(v, "/metadata/namespace")
}

/// `metadata.resourceVersion`, if set.
pub fn resource_version(v: &Value) -> Option<&str> {
    str_at(v, "/metadata/resourceVersion")
}

/// `k=v` pairs joined with commas, or `<none>`.
pub fn join_pairs(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_nested_fields_with_defaults() {
        let v = json!({"metadata": {"name": "web", "labels": {"b": "2", "a": "1"}},
                       "spec": {"replicas": 3, "paused": true, "ports": [1, 2]}});
        assert_eq!(name(&v), "web");
        assert_eq!(namespace(&v), None);
        assert_eq!(int_at(&v, "/spec/replicas"), Some(3));
        assert_eq!(bool_at(&v, "/spec/paused"), Some(true));
        assert_eq!(list_at(&v, "/spec/ports").len(), 2);
        assert!(list_at(&v, "/spec/missing").is_empty());
        assert_eq!(len_at(&v, "/metadata/labels"), 2);
        assert_eq!(join_pairs(&pairs_at(&v, "/metadata/labels")), "a=1,b=2");
        assert_eq!(join_pairs(&pairs_at(&v, "/nope")), "<none>");
    }
}
