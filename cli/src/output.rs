//! `-o yaml|json|name`: objects printed as documents or names.

use anyhow::Context;
use bramble_api::ResourceInfo;
use serde_json::{Value, json};

/// Several objects wrapped in a `v1 List`, as kubectl prints them.
pub fn list(items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": items,
    })
}

/// Fills in `apiVersion` and `kind` when a list's items lack them.
pub fn with_type_meta(resource: &ResourceInfo, mut obj: Value) -> Value {
    if let Some(map) = obj.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(resource.api_version()));
        map.entry("kind")
            .or_insert_with(|| Value::String(resource.kind.to_string()));
    }
    obj
}

/// `obj` without `metadata.managedFields`, which kubectl too leaves out of
/// `-o yaml|json` (who owns which field matters to server-side apply, not
/// to a reader).
pub fn without_managed_fields(mut obj: Value) -> Value {
    if let Some(meta) = obj["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    obj
}

/// YAML text of `v`.
pub fn yaml(v: &Value) -> anyhow::Result<String> {
    serde_yaml_ng::to_string(v).context("rendering YAML")
}

/// Indented JSON text of `v`, ending in a newline.
pub fn json_text(v: &Value) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(v).context("rendering JSON")?;
    s.push('\n');
    Ok(s)
}

/// `deployment.apps/web`.
pub fn name_line(resource: &ResourceInfo, obj: &Value) -> String {
    format!("{}/{}", resource.display_name(), crate::json::name(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_fields_are_left_out() {
        let o = json!({"metadata": {"name": "a", "managedFields": [{"manager": "kubectl"}]}});
        assert_eq!(
            without_managed_fields(o),
            json!({"metadata": {"name": "a"}})
        );
    }

    #[test]
    fn lists_and_names() {
        let d = bramble_api::resource::resolve("deploy").unwrap();
        let obj = with_type_meta(d, json!({"metadata": {"name": "web"}}));
        assert_eq!(obj["apiVersion"], "apps/v1");
        assert_eq!(obj["kind"], "Deployment");
        assert_eq!(name_line(d, &obj), "deployment.apps/web");
        let l = list(vec![obj]);
        let y = yaml(&l).unwrap();
        assert!(
            y.starts_with("apiVersion: v1\nitems:\n- apiVersion: apps/v1\n"),
            "{y}"
        );
        assert!(y.contains("kind: List\n"), "{y}");
        assert!(json_text(&l).unwrap().ends_with("}\n"));
    }
}
