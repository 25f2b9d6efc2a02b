//! Strategic merge patch (`application/strategic-merge-patch+json`), as
//! Kubernetes' `strategicpatch` applies it: maps merge key by key (`null`
//! deletes), lists named in [`super::merge_keys`] merge item by item (objects
//! by their merge key, scalars by value), every other list is replaced.
//!
//! Directives: `$patch: replace|delete|merge` in a map or as a list item,
//! `$retainKeys`, `$setElementOrder/FIELD` (what `kubectl apply` sends to keep
//! its order) and `$deleteFromPrimitiveList/FIELD`. Pure: values in, value out.

use serde_json::{Map, Value};

use super::merge_keys::{self, PatchField};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Why a strategic merge patch cannot be applied (HTTP 400 / 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicError {
    #[error("a strategic merge patch must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    #[error("{path}: the list item does not contain declared merge key: {key}")]
    MissingMergeKey { path: String, key: &'static str },
    #[error("{path}: unknown $patch directive {value}: use \"replace\", \"merge\" or \"delete\"")]
    UnknownDirective { path: String, value: String },
    #[error("{path}: {directive} must be a list, as `kubectl apply` sends it")]
    NotAList { path: String, directive: String },
    #[error(
        "{path}: the patch sets {key:?}, which its $retainKeys does not list: add it there or remove it"
    )]
    NotRetained { path: String, key: String },
    #[error("the patch deletes the whole object with $patch: delete: use DELETE instead")]
    DeletesObject,
}

/// Applies `patch` to `original`, an object of OpenAPI type `root_type`
/// (see [`merge_keys::root_type`]; an unknown type merges lists by replacing
/// them).
pub fn apply(original: &Value, patch: &Value, root_type: &str) -> Result<Value, StrategicError> {
    let Value::Object(p) = patch else {
        return Err(StrategicError::NotAnObject(kind_of(patch)));
    };
    let base = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    match merge_map(base, p, Some(root_type), "")? {
        Some(m) => Ok(Value::Object(m)),
        None => Err(StrategicError::DeletesObject),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn string_list(v: &Value, path: &str, directive: &str) -> Result<Vec<Value>, StrategicError> {
    v.as_array()
        .cloned()
        .ok_or_else(|| StrategicError::NotAList {
            path: path.to_string(),
            directive: directive.to_string(),
        })
}

/// Merges `patch` into `original`; `None` when the patch deletes the map.
fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    ty: Option<&str>,
    path: &str,
) -> Result<Option<Map<String, Value>>, StrategicError> {
    match patch.get(PATCH) {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "delete" => return Ok(None),
        Some(Value::String(d)) if d == "replace" => {
            let mut rest = patch.clone();
            rest.remove(PATCH);
            return merge_map(Map::new(), &rest, ty, path);
        }
        Some(other) => {
            return Err(StrategicError::UnknownDirective {
                path: path.to_string(),
                value: other.to_string(),
            });
        }
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keep = string_list(retain, path, RETAIN_KEYS)?;
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        if let Some(k) = patch
            .keys()
            .find(|k| !k.starts_with('$') && !keep.contains(&k.as_str()))
        {
            return Err(StrategicError::NotRetained {
                path: path.to_string(),
                key: k.clone(),
            });
        }
        original.retain(|k, _| keep.contains(&k.as_str()));
    }
    let mut orders: Vec<(&str, &Value)> = Vec::new();
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix(DELETE_PRIMITIVE) {
            let gone = string_list(value, &join(path, field), key)?;
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|i| !gone.contains(i));
            }
        } else if let Some(field) = key.strip_prefix(SET_ORDER) {
            orders.push((field, value));
        }
    }
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        let here = join(path, key);
        let meta = ty.and_then(|t| merge_keys::field(t, key));
        match value {
            Value::Null => {
                original.remove(key);
            }
            Value::Object(p) => {
                let base = match original.remove(key) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                if let Some(m) = merge_map(base, p, meta.and_then(|m| m.child), &here)? {
                    original.insert(key.clone(), Value::Object(m));
                }
            }
            Value::Array(p) => {
                let base = match original.remove(key) {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                let merged = merge_list(base, p, meta, &here)?;
                original.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                original.insert(key.clone(), scalar.clone());
            }
        }
    }
    for (field, order) in orders {
        let here = join(path, field);
        let order = string_list(order, &here, &format!("{SET_ORDER}{field}"))?;
        let key = ty
            .and_then(|t| merge_keys::field(t, field))
            .and_then(|m| m.merge_key);
        if let Some(Value::Array(items)) = original.get_mut(field) {
            reorder(items, &order, key);
        }
    }
    Ok(Some(original))
}

/// Merges a list: item by item when `meta` says `merge`, else the patch's list.
fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    meta: Option<PatchField>,
    path: &str,
) -> Result<Vec<Value>, StrategicError> {
    let Some(meta) = meta.filter(|m| m.merge) else {
        return Ok(patch.to_vec());
    };
    let replace = patch
        .iter()
        .any(|i| i.get(PATCH).and_then(Value::as_str) == Some("replace"));
    let mut result = if replace { Vec::new() } else { original };
    for (n, item) in patch.iter().enumerate() {
        let here = format!("{path}[{n}]");
        let Value::Object(p) = item else {
            if !result.contains(item) {
                result.push(item.clone());
            }
            continue;
        };
        let Some(key) = meta.merge_key else {
            if !result.contains(item) {
                result.push(item.clone());
            }
            continue;
        };
        if p.get(PATCH).and_then(Value::as_str) == Some("replace") && p.len() == 1 {
            continue;
        }
        let id = p
            .get(key)
            .ok_or_else(|| StrategicError::MissingMergeKey {
                path: here.clone(),
                key,
            })?
            .clone();
        let at = result.iter().position(|o| o.get(key) == Some(&id));
        if p.get(PATCH).and_then(Value::as_str) == Some("delete") {
            result.retain(|o| o.get(key) != Some(&id));
            continue;
        }
        let base = match at.map(|i| &result[i]) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let merged = merge_map(base, p, meta.child, &here)?;
        match (at, merged) {
            (Some(i), Some(m)) => result[i] = Value::Object(m),
            (Some(i), None) => {
                result.remove(i);
            }
            (None, Some(m)) => result.push(Value::Object(m)),
            (None, None) => {}
        }
    }
    Ok(result)
}

/// Puts the items named by `order` (`$setElementOrder`) in that order; items
/// the patch did not name (the server's own) keep their places among them.
fn reorder(items: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let id = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let rank = |v: &Value| order.iter().position(|o| id(o) == id(v));
    let original: Vec<Value> = items.clone();
    let server_index = |v: &Value| original.iter().position(|o| o == v);
    let mut named: Vec<Value> = items
        .iter()
        .filter(|v| rank(v).is_some())
        .cloned()
        .collect();
    named.sort_by_key(|v| rank(v));
    let others: Vec<Value> = items
        .iter()
        .filter(|v| rank(v).is_none())
        .cloned()
        .collect();
    let (mut a, mut b) = (named.into_iter().peekable(), others.into_iter().peekable());
    let mut out = Vec::with_capacity(items.len());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                let take_server = match (server_index(x), server_index(y)) {
                    (Some(ix), Some(iy)) => iy < ix,
                    _ => false,
                };
                out.push(if take_server { b.next() } else { a.next() }.unwrap_or_default());
            }
            (Some(_), None) => out.extend(a.by_ref()),
            (None, Some(_)) => out.extend(b.by_ref()),
            (None, None) => break,
        }
    }
    *items = out;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"},
                         "finalizers": ["a"]},
            "spec": {"replicas": 2,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                "template": {"spec": {
                    "containers": [
                        {"name": "app", "image": "app:1",
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "ports": [{"containerPort": 80}]},
                        {"name": "sidecar", "image": "side:1"}],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "nodeSelector": {"arch": "arm64"}}}}
        })
    }

    #[test]
    fn containers_and_env_merge_by_their_keys() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}
        ]}}}});
        let out = apply(&deployment(), &patch, DEPLOYMENT).unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 2, "{cs}");
        assert_eq!(cs[0]["image"], "app:2");
        assert_eq!(cs[1]["name"], "sidecar");
        assert_eq!(
            cs[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}])
        );
        assert_eq!(cs[0]["ports"], json!([{"containerPort": 80}]));
    }

    #[test]
    fn patch_delete_removes_a_keyed_item_and_null_removes_a_key() {
        let patch = json!({
            "metadata": {"labels": {"tier": null}},
            "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}
        });
        let out = apply(&deployment(), &patch, DEPLOYMENT).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["name"], "app");
    }

    #[test]
    fn lists_without_a_strategy_are_replaced() {
        let base = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a", "args": ["x", "y"]}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "args": ["z"]}]}}}});
        let out = apply(&base, &patch, DEPLOYMENT).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["z"])
        );
    }

    #[test]
    fn retain_keys_clears_the_other_members_of_a_union() {
        let patch = json!({"spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {"spec": {"volumes": [
                {"name": "data", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/srv"}}]}}}});
        let out = apply(&deployment(), &patch, DEPLOYMENT).unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(
            out["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "data", "hostPath": {"path": "/srv"}}])
        );
    }

    #[test]
    fn retain_keys_must_list_what_the_patch_sets() {
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}});
        let err = apply(&deployment(), &patch, DEPLOYMENT).unwrap_err();
        assert!(
            matches!(err, StrategicError::NotRetained { ref key, .. } if key == "rollingUpdate")
        );
    }

    #[test]
    fn patch_replace_replaces_a_map_and_a_list() {
        let patch = json!({"spec": {"template": {"spec": {
            "nodeSelector": {"$patch": "replace", "zone": "a"},
            "containers": [{"$patch": "replace"}, {"name": "only", "image": "o:1"}]}}}});
        let out = apply(&deployment(), &patch, DEPLOYMENT).unwrap();
        let spec = &out["spec"]["template"]["spec"];
        assert_eq!(spec["nodeSelector"], json!({"zone": "a"}));
        assert_eq!(
            spec["containers"],
            json!([{"name": "only", "image": "o:1"}])
        );
    }

    #[test]
    fn set_element_order_orders_the_named_items() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
            "containers": [{"name": "sidecar", "image": "side:2"}]}}}});
        let out = apply(&deployment(), &patch, DEPLOYMENT).unwrap();
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sidecar", "app"]);
        assert!(
            out["spec"]["template"]["spec"]
                .get("$setElementOrder/containers")
                .is_none()
        );
    }

    #[test]
    fn scalar_sets_merge_by_value_and_delete_from_primitive_list() {
        let patch = json!({"metadata": {"finalizers": ["b", "a"]}});
        let out = apply(&deployment(), &patch, DEPLOYMENT).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        let out = apply(&out, &patch, DEPLOYMENT).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn bad_patches_say_where() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        assert_eq!(
            apply(&deployment(), &patch, DEPLOYMENT)
                .unwrap_err()
                .to_string(),
            "spec.template.spec.containers[0]: the list item does not contain declared merge key: name"
        );
        let patch = json!({"spec": {"$patch": "explode"}});
        assert!(matches!(
            apply(&deployment(), &patch, DEPLOYMENT),
            Err(StrategicError::UnknownDirective { .. })
        ));
        assert_eq!(
            apply(&deployment(), &json!([1]), DEPLOYMENT),
            Err(StrategicError::NotAnObject("a list"))
        );
    }

    #[test]
    fn directives_never_reach_the_result_of_new_items() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "new", "image": "n:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "$patch": "delete"}]}]}}}});
        let out = apply(&deployment(), &patch, DEPLOYMENT).unwrap();
        let new = &out["spec"]["template"]["spec"]["containers"][2];
        assert_eq!(
            new,
            &json!({"name": "new", "image": "n:1", "env": [{"name": "X", "value": "1"}]})
        );
    }
}
