//! The `components.schemas` of every kind Bramble serves, generated once from
//! the Rust types and rewritten into Kubernetes' OpenAPI shape: no
//! `nullable`, a `$ref` with siblings as `allOf: [{$ref}]`, the kinds tagged
//! with `x-kubernetes-group-version-kind`, lists tagged with their patch
//! metadata ([`crate::patch::merge_keys`]).

use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::objects;
use crate::resource::{self, ResourceInfo};

/// Kubernetes' name of a kind's schema (`io.k8s.api.apps.v1.Deployment`).
pub fn component_name(r: &ResourceInfo) -> String {
    if r.group == "bramble.dev" {
        return format!("dev.bramble.{}.{}", r.version, r.kind);
    }
    let group = match r.group {
        "" => "core",
        g => g.strip_suffix(".k8s.io").unwrap_or(g),
    };
    format!("io.k8s.api.{group}.{}.{}", r.version, r.kind)
}

/// Every schema, by Kubernetes name; built at first use.
pub fn components() -> &'static Map<String, Value> {
    static COMPONENTS: OnceLock<Map<String, Value>> = OnceLock::new();
    COMPONENTS.get_or_init(build)
}

fn build() -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    for r in resource::served() {
        if r.group == "events.k8s.io" {
            generator.subschema_for::<objects::events_v1::Event>();
            continue;
        }
        match r.kind {
            "Pod" => generator.subschema_for::<objects::Pod>(),
            "Service" => generator.subschema_for::<objects::Service>(),
            "ConfigMap" => generator.subschema_for::<objects::ConfigMap>(),
            "Secret" => generator.subschema_for::<objects::Secret>(),
            "Endpoints" => generator.subschema_for::<objects::Endpoints>(),
            "Node" => generator.subschema_for::<objects::Node>(),
            "Namespace" => generator.subschema_for::<objects::Namespace>(),
            "Deployment" => generator.subschema_for::<objects::Deployment>(),
            "DaemonSet" => generator.subschema_for::<objects::DaemonSet>(),
            "StatefulSet" => generator.subschema_for::<objects::StatefulSet>(),
            "ReplicaSet" => generator.subschema_for::<objects::ReplicaSet>(),
            "HorizontalPodAutoscaler" => {
                generator.subschema_for::<objects::HorizontalPodAutoscaler>()
            }
            "Ingress" => generator.subschema_for::<objects::Ingress>(),
            "NetworkPolicy" => generator.subschema_for::<objects::NetworkPolicy>(),
            "Event" => generator.subschema_for::<objects::Event>(),
            "PersistentVolumeClaim" => generator.subschema_for::<objects::PersistentVolumeClaim>(),
            "PersistentVolume" => generator.subschema_for::<objects::PersistentVolume>(),
            "StorageClass" => generator.subschema_for::<objects::StorageClass>(),
            "Job" => generator.subschema_for::<objects::Job>(),
            "CronJob" => generator.subschema_for::<objects::CronJob>(),
            "Build" => generator.subschema_for::<objects::Build>(),
            other => unreachable!("no schema for {other}: add it to schema::components"),
        };
    }
    let mut defs = generator.take_definitions(true);
    for (name, schema) in defs.iter_mut() {
        normalize(schema);
        add_patch_meta(name, schema);
    }
    for r in resource::served() {
        if let Some(Value::Object(s)) = defs.get_mut(&component_name(r)) {
            s.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": r.group, "kind": r.kind, "version": r.version}]),
            );
        }
    }
    defs
}

/// Rewrites schemars' OpenAPI 3.0 output into the forms Kubernetes publishes.
fn normalize(schema: &mut Value) {
    let Value::Object(obj) = schema else { return };
    obj.remove("nullable");
    obj.remove("$schema");
    if obj.get("additionalProperties") == Some(&Value::Bool(false)) {
        obj.remove("additionalProperties");
    }
    if let Some(Value::Array(types)) = obj.get("type") {
        let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if kept.len() == 1 {
            obj.insert("type".into(), kept[0].clone());
        }
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(alts)) = obj.get(key) else {
            continue;
        };
        let mut kept: Vec<Value> = alts.iter().filter(|a| !is_null(a)).cloned().collect();
        if kept.len() != 1 {
            continue;
        }
        obj.remove(key);
        if let Value::Object(alt) = kept.remove(0) {
            obj.extend(alt);
        }
    }
    if obj.contains_key("$ref") && obj.len() > 1 {
        let r = obj.remove("$ref").unwrap_or_default();
        obj.insert("allOf".into(), json!([{"$ref": r}]));
    }
    if obj.is_empty() {
        // Any JSON value (a `serde_json::Value` field): Kubernetes' way of
        // saying so, which kubectl explain can print.
        obj.insert("type".into(), "object".into());
        obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }
    // Only into subschemas: `default` and `enum` hold values, not schemas.
    for (key, v) in obj.iter_mut() {
        match (key.as_str(), v) {
            ("properties", Value::Object(props)) => props.values_mut().for_each(normalize),
            ("items" | "additionalProperties" | "not", v @ Value::Object(_)) => normalize(v),
            ("allOf" | "anyOf" | "oneOf", Value::Array(all)) => all.iter_mut().for_each(normalize),
            _ => {}
        }
    }
}

/// The `null` alternative schemars adds to an `Option`.
fn is_null(schema: &Value) -> bool {
    schema.get("type") == Some(&json!("null")) || schema.get("enum") == Some(&json!([null]))
}

fn add_patch_meta(owner: &str, schema: &mut Value) {
    let Some(Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    for (field, prop) in props.iter_mut() {
        let (Some(meta), Value::Object(p)) = (crate::patch::merge_keys::lookup(owner, field), prop)
        else {
            continue;
        };
        let strategy = match (meta.merge, meta.retain_keys) {
            (true, true) => "merge,retainKeys",
            (true, false) => "merge",
            (false, true) => "retainKeys",
            (false, false) => continue,
        };
        p.insert("x-kubernetes-patch-strategy".into(), strategy.into());
        if let Some(key) = meta.merge_key {
            p.insert("x-kubernetes-patch-merge-key".into(), key.into());
            p.insert("x-kubernetes-list-type".into(), "map".into());
            p.insert("x-kubernetes-list-map-keys".into(), json!([key]));
        }
    }
}
