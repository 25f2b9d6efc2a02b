//! The Swagger 2.0 document Kubernetes serves at `/openapi/v2`: one document
//! for every kind Bramble serves, converted from the OpenAPI v3 documents
//! ([`super::openapi`]) and their schemas ([`super::components`]), so the two
//! versions cannot disagree. Schemas move from `#/components/schemas/X` to
//! `#/definitions/X`, a `$ref` with siblings (v3's `allOf: [{$ref}]`) becomes
//! a `$ref` beside its description as Kubernetes writes it, v3's `writeOnly`
//! is dropped, parameters carry their type themselves, and request bodies
//! become `in: body` parameters with `consumes`. Vendor extensions (`x-kubernetes-*`) are kept as they are.

use serde_json::{Map, Value, json};

use super::{components, openapi};

const V3_PREFIX: &str = "#/components/schemas/";
const V2_PREFIX: &str = "#/definitions/";

/// The whole Swagger 2.0 document: `paths` of every served group version and
/// `definitions` of every schema they reach.
pub fn document() -> Value {
    let mut paths = Map::new();
    for gv in openapi::documents() {
        if let Some(Value::Object(p)) = gv.document.get("paths") {
            for (path, item) in p {
                paths.insert(path.clone(), path_item(item));
            }
        }
    }
    let definitions: Map<String, Value> = components()
        .iter()
        .map(|(name, s)| (name.clone(), schema(s)))
        .collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::KUBERNETES_VERSION},
        "paths": paths,
        "definitions": definitions,
    })
}

/// A v3 schema as Swagger 2.0 writes it.
pub fn schema(v3: &Value) -> Value {
    let Value::Object(obj) = v3 else {
        return v3.clone();
    };
    let mut out = Map::new();
    for (key, v) in obj {
        match (key.as_str(), v) {
            // Swagger 2.0 has no `writeOnly` (Secret's `stringData`), and
            // Kubernetes' v2 document does not say it either.
            ("writeOnly", _) => {}
            ("$ref", Value::String(r)) => {
                out.insert(key.clone(), Value::String(reference(r)));
            }
            ("allOf", Value::Array(all)) if all.len() == 1 && all[0].get("$ref").is_some() => {
                if let Some(Value::String(r)) = all[0].get("$ref") {
                    out.insert("$ref".into(), Value::String(reference(r)));
                }
            }
            ("properties", Value::Object(props)) => {
                let props = props.iter().map(|(k, p)| (k.clone(), schema(p))).collect();
                out.insert(key.clone(), Value::Object(props));
            }
            ("items" | "additionalProperties", sub @ Value::Object(_)) => {
                out.insert(key.clone(), schema(sub));
            }
            ("allOf", Value::Array(all)) => {
                out.insert(key.clone(), all.iter().map(schema).collect());
            }
            _ => {
                out.insert(key.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn reference(v3: &str) -> String {
    match v3.strip_prefix(V3_PREFIX) {
        Some(name) => format!("{V2_PREFIX}{name}"),
        None => v3.to_string(),
    }
}

fn path_item(v3: &Value) -> Value {
    let Value::Object(obj) = v3 else {
        return v3.clone();
    };
    obj.iter()
        // No empty lists: their protobuf encoding could not tell them from absent.
        .filter(|(k, v)| !(k.as_str() == "parameters" && v.as_array().is_some_and(Vec::is_empty)))
        .map(|(k, v)| {
            let v = match k.as_str() {
                "parameters" => parameters(v),
                "get" | "put" | "post" | "delete" | "patch" | "head" | "options" => operation(v),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect::<Map<_, _>>()
        .into()
}

/// v3's `{name, in, schema: {type, ...}}` as v2's `{name, in, type, ...}`.
fn parameters(v3: &Value) -> Value {
    let Value::Array(params) = v3 else {
        return v3.clone();
    };
    params
        .iter()
        .map(|p| {
            let Value::Object(p) = p else {
                return p.clone();
            };
            let mut out = Map::new();
            for (k, v) in p {
                match (k.as_str(), v) {
                    ("schema", Value::Object(s)) => out.extend(s.clone()),
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(out)
        })
        .collect()
}

fn operation(v3: &Value) -> Value {
    let Value::Object(obj) = v3 else {
        return v3.clone();
    };
    let mut out = Map::new();
    let mut params = match obj.get("parameters") {
        Some(p) => parameters(p),
        None => json!([]),
    };
    let mut produces: Vec<String> = Vec::new();
    for (k, v) in obj {
        match k.as_str() {
            "parameters" => {}
            "requestBody" => {
                let content = v.get("content").and_then(Value::as_object);
                let consumes: Vec<&String> =
                    content.map(|c| c.keys().collect()).unwrap_or_default();
                let body_schema = content
                    .and_then(|c| c.values().next())
                    .and_then(|m| m.get("schema"))
                    .map(schema)
                    .unwrap_or_else(|| json!({"type": "object"}));
                if let Value::Array(p) = &mut params {
                    p.push(json!({
                        "name": "body", "in": "body", "required": true, "schema": body_schema,
                    }));
                }
                out.insert("consumes".into(), json!(consumes));
            }
            "responses" => {
                let mut responses = Map::new();
                for (code, r) in v.as_object().into_iter().flatten() {
                    let mut resp = Map::new();
                    resp.insert(
                        "description".into(),
                        r.get("description").cloned().unwrap_or_else(|| "".into()),
                    );
                    if let Some(Value::Object(content)) = r.get("content") {
                        for (ct, media) in content {
                            if !produces.contains(ct) {
                                produces.push(ct.clone());
                            }
                            if let Some(s) = media.get("schema") {
                                resp.insert("schema".into(), schema(s));
                            }
                        }
                    }
                    responses.insert(code.clone(), Value::Object(resp));
                }
                out.insert(k.clone(), Value::Object(responses));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if params.as_array().is_some_and(|p| !p.is_empty()) {
        out.insert("parameters".into(), params);
    }
    out.insert("produces".into(), json!(produces));
    out.insert("schemes".into(), json!(["https"]));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_served_kind_is_defined_with_its_gvk_and_paths() {
        let d = document();
        assert_eq!(d["swagger"], "2.0");
        for r in crate::resource::served() {
            let name = super::super::component_name(r);
            let def = &d["definitions"][&name];
            assert_eq!(
                def["x-kubernetes-group-version-kind"],
                json!([{"group": r.group, "kind": r.kind, "version": r.version}]),
                "{name}"
            );
            let collection = r.collection_path(r.namespaced.then_some("{namespace}"));
            let list = &d["paths"][&collection]["get"];
            assert_eq!(list["x-kubernetes-action"], "list", "{collection}");
            assert_eq!(
                list["x-kubernetes-group-version-kind"]["kind"], r.kind,
                "{collection}"
            );
        }
    }

    #[test]
    fn every_reference_names_a_definition() {
        let d = document();
        let mut all = Vec::new();
        refs(&d, &mut all);
        assert!(all.len() > 100, "{}", all.len());
        for r in all {
            let name = r
                .strip_prefix(V2_PREFIX)
                .unwrap_or_else(|| panic!("{r} is not a v2 reference"));
            assert!(d["definitions"][name].is_object(), "{r}");
        }
        assert!(!d.to_string().contains("allOf"));
    }

    #[test]
    fn a_reference_keeps_its_description_beside_it() {
        let d = document();
        let surge = &d["definitions"]["io.k8s.api.apps.v1.RollingUpdateDeployment"]["properties"]["maxSurge"];
        assert_eq!(
            surge["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"
        );
        assert!(surge["description"].is_string());
        let containers =
            &d["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(
            containers["items"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.Container"
        );
    }

    #[test]
    fn operations_take_bodies_and_parameters_as_swagger_2_does() {
        let d = document();
        let item = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        assert_eq!(item["parameters"][0]["name"], "namespace");
        assert_eq!(item["parameters"][0]["type"], "string");
        assert!(item["parameters"][0].get("schema").is_none());
        let patch = &item["patch"];
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert_eq!(
            patch["consumes"],
            json!([
                "application/apply-patch+yaml",
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json"
            ])
        );
        let params = patch["parameters"].as_array().unwrap();
        let validation = params
            .iter()
            .find(|p| p["name"] == "fieldValidation")
            .unwrap();
        assert_eq!(validation["in"], "query");
        assert_eq!(validation["type"], "string");
        let body = params.iter().find(|p| p["in"] == "body").unwrap();
        assert_eq!(
            body["schema"]["$ref"],
            "#/definitions/io.k8s.api.apps.v1.Deployment"
        );
        assert_eq!(
            patch["responses"]["200"]["schema"]["$ref"],
            "#/definitions/io.k8s.api.apps.v1.Deployment"
        );
        assert_eq!(patch["produces"], json!(["application/json"]));
    }

    /// The keys a Swagger 2.0 Schema Object may have; v3-only ones (`oneOf`,
    /// `nullable`, ...) would be dropped by clients, so none may be left.
    #[test]
    fn schemas_use_only_swagger_2_keys() {
        const KEYS: &[&str] = &[
            "$ref",
            "format",
            "title",
            "description",
            "default",
            "multipleOf",
            "maximum",
            "exclusiveMaximum",
            "minimum",
            "exclusiveMinimum",
            "maxLength",
            "minLength",
            "pattern",
            "maxItems",
            "minItems",
            "uniqueItems",
            "maxProperties",
            "minProperties",
            "required",
            "enum",
            "additionalProperties",
            "type",
            "items",
            "allOf",
            "properties",
            "readOnly",
            "example",
        ];
        fn check(at: &str, s: &Value) {
            let Value::Object(obj) = s else {
                panic!("{at}: {s}")
            };
            for (k, v) in obj {
                assert!(
                    k.starts_with("x-") || KEYS.contains(&k.as_str()),
                    "{at}: {k}"
                );
                match (k.as_str(), v) {
                    ("properties", Value::Object(p)) => {
                        p.iter().for_each(|(n, p)| check(&format!("{at}.{n}"), p))
                    }
                    ("items" | "additionalProperties", sub @ Value::Object(_)) => {
                        check(&format!("{at}[{k}]"), sub)
                    }
                    ("type", t) => assert!(t.is_string(), "{at}: type {t}"),
                    _ => {}
                }
            }
        }
        for (name, s) in document()["definitions"].as_object().unwrap() {
            check(name, s);
        }
    }
}
