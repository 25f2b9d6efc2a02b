//! Fields of a request body that Bramble's types do not have, found by
//! walking the body along the generated schemas, and what `fieldValidation`
//! makes of them.
//!
//! Two kinds, told apart by Kubernetes' own field list ([`super::k8s_fields`]):
//! a field Kubernetes has and Bramble does not implement is refused whatever
//! the mode (dropping it would run a pod without, say, the SELinux options its
//! author asked for); a field Kubernetes would not know either (a typo, a
//! newer client) is what `fieldValidation=Strict|Warn|Ignore` decides on, as
//! in Kubernetes: an error, a warning, or nothing.

use serde_json::Value;

use crate::field::{FieldError, FieldErrors, index, join};
use crate::resource::ResourceInfo;

use super::{component_name, components, k8s_fields};

/// The `fieldValidation` query parameter of create, update and patch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields are an error (400), all of them named.
    Strict,
    /// Unknown fields are dropped, each one a warning; Kubernetes' default.
    #[default]
    Warn,
    /// Unknown fields are dropped silently.
    Ignore,
}

/// A `fieldValidation` value that is none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "fieldValidation: Unsupported value: {0:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
)]
pub struct UnsupportedFieldValidation(pub String);

impl FieldValidation {
    /// Parses the query parameter; absent means [`FieldValidation::Warn`].
    pub fn parse(param: Option<&str>) -> Result<Self, UnsupportedFieldValidation> {
        match param {
            None | Some("") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(UnsupportedFieldValidation(other.to_string())),
        }
    }
}

/// What [`find_unknown_fields`] found, each by its full path
/// (`spec.template.spec.containers[0].foo`), in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnknownFields {
    /// Fields Kubernetes has and Bramble does not implement.
    pub unimplemented: Vec<String>,
    /// Fields Kubernetes does not have either.
    pub unknown: Vec<String>,
    /// Keys the body had twice (the last value is kept): not found by the
    /// walker but by the parser ([`super::duplicates::parse`]); under the
    /// same rule as unknown fields.
    pub duplicate: Vec<String>,
}

impl UnknownFields {
    /// The refusal of the unimplemented fields, one error each.
    pub fn unimplemented_errors(&self) -> FieldErrors {
        FieldErrors(
            self.unimplemented
                .iter()
                .map(FieldError::not_implemented)
                .collect(),
        )
    }

    /// Kubernetes' strict decoding error, every unknown and duplicate field
    /// named: `strict decoding error: unknown field "spec.foo", duplicate field "spec.replicas"`.
    pub fn strict_error(&self) -> Option<String> {
        let all = self.warnings();
        (!all.is_empty()).then(|| format!("strict decoding error: {}", all.join(", ")))
    }

    /// One warning per unknown or duplicate field, as Kubernetes words them:
    /// `unknown field "spec.foo"`, `duplicate field "spec.replicas"`.
    pub fn warnings(&self) -> Vec<String> {
        let unknown = self
            .unknown
            .iter()
            .map(|p| format!("unknown field \"{p}\""));
        let duplicate = self
            .duplicate
            .iter()
            .map(|p| format!("duplicate field \"{p}\""));
        unknown.chain(duplicate).collect()
    }
}

/// Removes from `body` (an object of kind `resource`) every field its
/// Bramble type does not have, and says which they were. `status` is not
/// looked into: clients' status is discarded on every write.
pub fn find_unknown_fields(resource: &ResourceInfo, body: &mut Value) -> UnknownFields {
    let mut found = UnknownFields::default();
    let name = component_name(resource);
    let Some(schema) = components().get(&name) else {
        return found;
    };
    let status = match body {
        Value::Object(map) => map.remove("status"),
        _ => None,
    };
    walk(schema, Some(&name), body, "", &mut found);
    if let (Some(s), Value::Object(map)) = (status, body) {
        map.insert("status".into(), s);
    }
    found
}

/// Follows `$ref`s and single-entry `allOf`s to the schema that describes a
/// value, and the Kubernetes type name it has if it is a component.
fn resolve<'a>(mut schema: &'a Value, mut ty: Option<&'a str>) -> (&'a Value, Option<&'a str>) {
    for _ in 0..16 {
        if let Some(Value::String(r)) = schema.get("$ref") {
            let name = r.rsplit('/').next().unwrap_or("");
            match components().get_key_value(name) {
                Some((n, s)) => {
                    schema = s;
                    ty = Some(n.as_str());
                    continue;
                }
                None => break,
            }
        }
        match schema.get("allOf") {
            Some(Value::Array(all)) if all.len() == 1 && schema.get("properties").is_none() => {
                schema = &all[0];
            }
            _ => break,
        }
    }
    (schema, ty)
}

fn walk(schema: &Value, ty: Option<&str>, value: &mut Value, path: &str, out: &mut UnknownFields) {
    let (schema, ty) = resolve(schema, ty);
    match value {
        Value::Object(map) => {
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let Some(Value::Object(props)) = schema.get("properties") else {
                if let Some(a) = additional {
                    for (k, v) in map.iter_mut() {
                        walk(a, None, v, &format!("{path}[{k}]"), out);
                    }
                }
                return;
            };
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let p = join(path, &k);
                if let Some(s) = props.get(&k).or(additional) {
                    if let Some(v) = map.get_mut(&k) {
                        walk(s, None, v, &p, out);
                    }
                    continue;
                }
                map.remove(&k);
                // A type Kubernetes' list does not name is treated as if
                // Kubernetes had every field: refused, never dropped.
                let in_kubernetes =
                    ty.is_none_or(|t| !k8s_fields::knows_type(t) || k8s_fields::has_field(t, &k));
                if in_kubernetes {
                    out.unimplemented.push(p);
                } else {
                    out.unknown.push(p);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    walk(item, None, v, &index(path, i), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::by_kind;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [
                        {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
                        {"name": "b", "image": "y", "ports": [{"containerPort": 80}]}
                    ]}
                }
            },
            "status": {"replicas": 2, "whatever": 1}
        })
    }

    fn find(body: &mut Value) -> UnknownFields {
        let r = by_kind(
            body["apiVersion"].as_str().unwrap(),
            body["kind"].as_str().unwrap(),
        );
        find_unknown_fields(r.unwrap(), body)
    }

    #[test]
    fn a_body_of_known_fields_is_left_as_it_is() {
        let mut body = deployment();
        assert_eq!(find(&mut body), UnknownFields::default());
        assert_eq!(body, deployment());
    }

    #[test]
    fn every_unknown_field_is_found_with_its_path_and_removed() {
        let mut body = deployment();
        body["spec"]["foo"] = json!(1);
        body["spec"]["bar"] = json!({"x": 1});
        body["spec"]["template"]["spec"]["containers"][1]["imagePullPolcy"] = json!("Always");
        body["spec"]["template"]["spec"]["containers"][0]["env"][0]["vaule"] = json!("2");
        body["metadata"]["lables"] = json!({});
        let found = find(&mut body);
        assert_eq!(
            found.unknown,
            [
                "metadata.lables",
                "spec.bar",
                "spec.foo",
                "spec.template.spec.containers[0].env[0].vaule",
                "spec.template.spec.containers[1].imagePullPolcy",
            ]
        );
        assert!(found.unimplemented.is_empty());
        assert_eq!(body, deployment(), "the unknown fields are removed");
        assert_eq!(
            found.strict_error().unwrap(),
            "strict decoding error: unknown field \"metadata.lables\", unknown field \"spec.bar\", \
             unknown field \"spec.foo\", unknown field \"spec.template.spec.containers[0].env[0].vaule\", \
             unknown field \"spec.template.spec.containers[1].imagePullPolcy\""
        );
    }

    #[test]
    fn kubernetes_fields_bramble_lacks_are_unimplemented_not_unknown() {
        let mut body = deployment();
        let c = &mut body["spec"]["template"]["spec"]["containers"][0];
        c["securityContext"] = json!({"runAsUser": 1000, "seLinuxOptions": {"level": "s0"}});
        c["lifecycle"] = json!({"preStop": {}});
        body["spec"]["template"]["spec"]["priorityClassName"] = json!("high");
        let found = find(&mut body);
        assert_eq!(
            found.unimplemented,
            [
                "spec.template.spec.containers[0].lifecycle",
                "spec.template.spec.containers[0].securityContext.seLinuxOptions",
                "spec.template.spec.priorityClassName",
            ]
        );
        assert!(found.unknown.is_empty());
        let errs = found.unimplemented_errors().to_string();
        assert!(
            errs.contains("spec.template.spec.containers[0].securityContext.seLinuxOptions: Unsupported value: Bramble does not implement this field"),
            "{errs}"
        );
    }

    #[test]
    fn maps_and_status_are_not_fields() {
        let mut body = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "annotations": {"any.key/x": "1"}},
            "data": {"whatever": "x"},
            "status": {"foo": 1}
        });
        let before = body.clone();
        assert_eq!(find(&mut body), UnknownFields::default());
        assert_eq!(body, before);
    }

    #[test]
    fn every_schema_of_a_served_spec_is_a_type_kubernetes_knows() {
        for (name, schema) in components() {
            if schema.get("properties").is_none() {
                continue; // scalars: IntOrString, Quantity
            }
            let status = name.ends_with("Status")
                || name.contains(".ContainerState")
                || name.ends_with(".Condition")
                || name.ends_with(".LoadBalancerIngress")
                || name.ends_with(".NodeAddress")
                || name.ends_with(".NodeSystemInfo")
                || name.ends_with(".PodIP");
            // A kind of Bramble's own group has no Kubernetes type to be named after.
            let bramble_only = name.starts_with("dev.bramble.");
            assert!(
                status || bramble_only || k8s_fields::knows_type(name),
                "{name} is not a Kubernetes type name: rename it (schemars(rename)) after its Kubernetes type"
            );
        }
    }

    #[test]
    fn field_validation_parses_as_kubernetes_does() {
        assert_eq!(FieldValidation::parse(None), Ok(FieldValidation::Warn));
        assert_eq!(
            FieldValidation::parse(Some("Strict")),
            Ok(FieldValidation::Strict)
        );
        assert_eq!(
            FieldValidation::parse(Some("Ignore")),
            Ok(FieldValidation::Ignore)
        );
        assert!(FieldValidation::parse(Some("strict")).is_err());
    }
}
