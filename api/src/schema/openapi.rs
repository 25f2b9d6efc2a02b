//! The OpenAPI v3 documents Kubernetes serves at `/openapi/v3/<group-version>`,
//! one per API group version, built from [`super::components`]: the paths of
//! each kind with their operations, tagged with
//! `x-kubernetes-group-version-kind` and `x-kubernetes-action` and listing the
//! query parameters the hub implements (kubectl looks for `fieldValidation`
//! on a kind's PATCH to decide that the server validates fields), and the
//! schemas those paths reach (`kubectl explain` reads them).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::resource::{self, ResourceInfo};

use super::{component_name, components};

/// The document of one group version.
#[derive(Debug, Clone)]
pub struct GroupVersionDocument {
    /// Its path under `/openapi/v3/`: `api/v1`, `apis/apps/v1`.
    pub path: String,
    pub document: Value,
}

/// One document per group version Bramble serves, core first.
pub fn documents() -> Vec<GroupVersionDocument> {
    let mut gvs: Vec<(&str, &str)> = Vec::new();
    for r in resource::served() {
        if !gvs.contains(&(r.group, r.version)) {
            gvs.push((r.group, r.version));
        }
    }
    gvs.into_iter()
        .map(|(group, version)| {
            let kinds: Vec<&ResourceInfo> = resource::served()
                .filter(|r| r.group == group && r.version == version)
                .collect();
            GroupVersionDocument {
                path: gv_path(group, version),
                document: document(&kinds),
            }
        })
        .collect()
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn document(kinds: &[&ResourceInfo]) -> Value {
    let mut paths = Map::new();
    for r in kinds {
        resource_paths(r, &mut paths);
    }
    let roots: Vec<String> = kinds.iter().map(|r| component_name(r)).collect();
    let mut schemas = Map::new();
    for name in reachable(&roots) {
        if let Some(s) = components().get(&name) {
            schemas.insert(name, s.clone());
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::KUBERNETES_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// The component names `roots` refer to, transitively, themselves included.
fn reachable(roots: &[String]) -> BTreeSet<String> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.rsplit('/').next().unwrap_or("").to_string());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = roots.to_vec();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(s) = components().get(&name) {
            refs(s, &mut todo);
        }
    }
    seen
}

fn query(name: &str, description: &str, ty: &str) -> Value {
    json!({
        "name": name, "in": "query", "description": description,
        "schema": {"type": ty, "uniqueItems": true},
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

fn field_validation() -> Value {
    query(
        "fieldValidation",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown fields. Valid values are: - Ignore: unknown fields are dropped silently. - Warn: unknown fields are dropped, each with a warning (the default). - Strict: the request fails with a BadRequest naming every unknown field. A field Kubernetes has and Bramble does not implement is refused in every mode.",
        "string",
    )
}

/// The parameters of every write: `fieldValidation`, `dryRun`, `fieldManager`.
fn write_params() -> Vec<Value> {
    vec![
        field_validation(),
        query(
            "dryRun",
            "When present, indicates that modifications should not be persisted. The only valid value is All: the request is checked and answered as if it were made, and nothing is stored.",
            "string",
        ),
        query(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes, recorded in metadata.managedFields. Required for apply requests (application/apply-patch+yaml).",
            "string",
        ),
    ]
}

fn list_params() -> Vec<Value> {
    vec![
        query(
            "labelSelector",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
            "string",
        ),
        query(
            "fieldSelector",
            "A selector to restrict the list of returned objects by their fields: metadata.name, metadata.namespace, and the fields Kubernetes selects by for the kind (spec.nodeName, status.phase... for pods).",
            "string",
        ),
        query(
            "resourceVersion",
            "For watch: the revision after which changes are streamed.",
            "string",
        ),
        query(
            "limit",
            "The most objects to return; the list then carries metadata.continue for the next page.",
            "integer",
        ),
        query(
            "continue",
            "The metadata.continue of the previous page, to get the next one.",
            "string",
        ),
        query(
            "timeoutSeconds",
            "Timeout for the list/watch call.",
            "integer",
        ),
        query(
            "watch",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
            "boolean",
        ),
    ]
}

fn operation(
    r: &ResourceInfo,
    action: &str,
    verb: &str,
    scope: &str,
    description: &str,
    params: Vec<Value>,
    body: Option<&[&str]>,
) -> Value {
    let kind_ref = json!({"$ref": format!("#/components/schemas/{}", component_name(r))});
    let group = r
        .group
        .split('.')
        .next()
        .map(capitalize)
        .unwrap_or_default();
    let mut op = json!({
        "operationId": format!("{verb}{group}{}{scope}{}", capitalize(r.version), r.kind),
        "description": description,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": kind_ref}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "kind": r.kind, "version": r.version},
    });
    if let Some(types) = body {
        let content: Map<String, Value> = types
            .iter()
            .map(|t| (t.to_string(), json!({"schema": kind_ref})))
            .collect();
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn resource_paths(r: &ResourceInfo, paths: &mut Map<String, Value>) {
    let (collection, scope, mut common) = if r.namespaced {
        (
            r.collection_path(Some("{namespace}")),
            "Namespaced",
            vec![path_param(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            )],
        )
    } else {
        (r.collection_path(None), "", vec![])
    };
    let kind = r.kind;
    let write = write_params();
    let mut patch_params = write_params();
    patch_params.push(query(
        "force",
        "Force is going to \"force\" Apply requests: the applier takes over fields other managers own. Must be unset for other patches.",
        "boolean",
    ));
    let mut collection_ops = json!({
        "get": operation(r, "list", "list", scope, &format!("list or watch objects of kind {kind}"), list_params(), None),
        "parameters": common,
    });
    if !r.hub_written {
        collection_ops["post"] = operation(
            r,
            "post",
            "create",
            scope,
            &format!("create a {kind}"),
            write.to_vec(),
            Some(&["application/json", "application/vnd.kubernetes.protobuf"]),
        );
    }
    if r.verbs().contains(&"deletecollection") {
        collection_ops["delete"] = operation(
            r,
            "deletecollection",
            "deleteCollection",
            scope,
            &format!("delete collection of {kind}"),
            list_params(),
            None,
        );
    }
    paths.insert(collection.clone(), collection_ops);
    common.push(path_param("name", &format!("name of the {kind}")));
    let mut ops = json!({
        "get": operation(r, "get", "read", scope, &format!("read the specified {kind}"), vec![], None),
        "delete": operation(r, "delete", "delete", scope, &format!("delete a {kind}"), vec![], None),
        "parameters": common,
    });
    // Objects only the hub writes are not replaced or patched by clients.
    if !r.hub_written {
        ops["put"] = operation(
            r,
            "put",
            "replace",
            scope,
            &format!("replace the specified {kind}"),
            write.to_vec(),
            Some(&["application/json", "application/vnd.kubernetes.protobuf"]),
        );
        ops["patch"] = operation(
            r,
            "patch",
            "patch",
            scope,
            &format!("partially update the specified {kind}"),
            patch_params,
            Some(&[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
                "application/apply-patch+yaml",
            ]),
        );
    }
    paths.insert(format!("{collection}/{{name}}"), ops);
    if r.namespaced {
        paths.insert(
            r.collection_path(None),
            json!({
                "get": operation(r, "list", "list", "ForAllNamespaces", &format!("list or watch objects of kind {kind}"), list_params(), None),
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str) -> Value {
        documents()
            .into_iter()
            .find(|d| d.path == path)
            .unwrap()
            .document
    }

    #[test]
    fn one_document_per_group_version() {
        let paths: Vec<String> = documents().into_iter().map(|d| d.path).collect();
        assert_eq!(
            paths,
            [
                "api/v1",
                "apis/apps/v1",
                "apis/autoscaling/v2",
                "apis/networking.k8s.io/v1",
                "apis/storage.k8s.io/v1",
                "apis/batch/v1",
                "apis/bramble.dev/v1",
                "apis/events.k8s.io/v1"
            ]
        );
    }

    #[test]
    fn events_v1_is_its_own_schema_with_core_references() {
        let d = doc("apis/events.k8s.io/v1");
        let s = &d["components"]["schemas"];
        let event = &s["io.k8s.api.events.v1.Event"];
        assert_eq!(
            event["x-kubernetes-group-version-kind"],
            json!([{"group": "events.k8s.io", "kind": "Event", "version": "v1"}])
        );
        for field in [
            "regarding",
            "note",
            "deprecatedCount",
            "reportingController",
        ] {
            assert!(event["properties"][field].is_object(), "{field}");
        }
        assert_eq!(
            event["required"],
            json!(["apiVersion", "kind", "eventTime"])
        );
        assert!(s["io.k8s.api.core.v1.ObjectReference"].is_object());
        assert!(s["io.k8s.api.events.v1.EventSeries"].is_object());
        assert!(s.get("io.k8s.api.core.v1.Event").is_none());
        let collection = &d["paths"]["/apis/events.k8s.io/v1/namespaces/{namespace}/events"];
        assert_eq!(
            collection["get"]["operationId"],
            "listEventsV1NamespacedEvent"
        );
        assert_eq!(
            collection["delete"]["x-kubernetes-action"],
            "deletecollection"
        );
        // Core events keep theirs.
        let core = &doc("api/v1")["components"]["schemas"]["io.k8s.api.core.v1.Event"];
        assert!(core["properties"]["involvedObject"].is_object());
    }

    #[test]
    fn patch_of_each_kind_names_its_gvk_and_field_validation() {
        let d = doc("apis/apps/v1");
        let patch = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"fieldValidation"), "{names:?}");
        let ns = &doc("api/v1")["paths"]["/api/v1/namespaces/{name}"]["patch"];
        assert_eq!(ns["x-kubernetes-group-version-kind"]["kind"], "Namespace");
    }

    #[test]
    fn replica_sets_are_read_and_deleted_only() {
        let d = doc("apis/apps/v1");
        let ops = |p: &str| -> Vec<String> {
            let mut v: Vec<String> = d["paths"][p]
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .cloned()
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            ops("/apis/apps/v1/namespaces/{namespace}/replicasets"),
            ["get"]
        );
        assert_eq!(
            ops("/apis/apps/v1/namespaces/{namespace}/replicasets/{name}"),
            ["delete", "get"]
        );
        assert_eq!(
            d["components"]["schemas"]["io.k8s.api.apps.v1.ReplicaSet"]["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "ReplicaSet", "version": "v1"}])
        );
    }

    /// kubectl explain fails on a schema that says neither a type nor a reference.
    #[test]
    fn every_schema_has_a_type_or_a_reference() {
        fn check(name: &str, at: &str, s: &Value) {
            let typed = ["type", "$ref", "allOf"].iter().any(|k| s.get(k).is_some());
            assert!(typed, "{name} {at}: {s}");
            if let Some(Value::Object(props)) = s.get("properties") {
                for (k, p) in props {
                    check(name, &format!("{at}.{k}"), p);
                }
            }
            for k in ["items", "additionalProperties"] {
                if let Some(sub @ Value::Object(_)) = s.get(k) {
                    check(name, &format!("{at}[{k}]"), sub);
                }
            }
        }
        for (name, s) in components() {
            check(name, "", s);
        }
    }

    #[test]
    fn schemas_carry_kubernetes_names_descriptions_gvks_and_merge_keys() {
        let d = doc("apis/apps/v1");
        let s = &d["components"]["schemas"];
        let dep = &s["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            dep["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        let strategy = &s["io.k8s.api.apps.v1.DeploymentStrategy"];
        assert!(strategy["properties"]["rollingUpdate"].is_object());
        assert!(
            strategy["properties"]["type"]["description"]
                .as_str()
                .unwrap()
                .contains("Recreate")
        );
        let spec = &s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(spec["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(spec["x-kubernetes-patch-strategy"], "merge");
        let env = &s["io.k8s.api.core.v1.Container"]["properties"]["env"];
        assert_eq!(env["x-kubernetes-patch-merge-key"], "name");
        let ports = &s["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        assert!(s["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
        let surge = &s["io.k8s.api.apps.v1.RollingUpdateDeployment"]["properties"]["maxSurge"];
        // A reference with a description beside it, as Kubernetes writes it.
        assert!(surge["description"].is_string());
        assert_eq!(
            surge["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"
        );
        assert_eq!(
            s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["x-kubernetes-int-or-string"],
            true
        );
        assert!(
            s.get("io.k8s.api.core.v1.Service").is_none(),
            "only this group's kinds and what they reach"
        );
    }
}
