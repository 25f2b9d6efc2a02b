//! The gnostic encoding decoded again: back into JSON through the same
//! tables (every field of the served document survives the round trip), and
//! read with field numbers copied from OpenAPIv2.proto (the paths client-go
//! and kubectl read: definitions, their GVK extension, a PATCH's
//! `fieldValidation` parameter).

use prost::encoding::{WireType, decode_key, decode_varint};
use serde_json::{Map, Value, json};

use super::gnostic::{
    BODY_PARAMETER, DOCUMENT, GnosticError, INFO, Kind, Message, OPERATION, PATH_ITEM,
    PATH_PARAMETER, QUERY_PARAMETER, RESPONSE, SCHEMA, encode,
};

enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
}

/// Every field of one message, in order; panics on anything malformed.
fn fields(mut buf: &[u8]) -> Vec<(u32, Raw<'_>)> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (number, wire) = decode_key(&mut buf).unwrap();
        let raw = match wire {
            WireType::Varint => Raw::Varint(decode_varint(&mut buf).unwrap()),
            WireType::SixtyFourBit => {
                let (b, rest) = buf.split_at(8);
                buf = rest;
                Raw::Fixed64(u64::from_le_bytes(b.try_into().unwrap()))
            }
            WireType::LengthDelimited => {
                let len = decode_varint(&mut buf).unwrap() as usize;
                let (b, rest) = buf.split_at(len);
                buf = rest;
                Raw::Bytes(b)
            }
            other => panic!("field {number}: unexpected wire type {other:?}"),
        };
        out.push((number, raw));
    }
    out
}

fn bytes<'a>(raw: &Raw<'a>) -> &'a [u8] {
    match raw {
        Raw::Bytes(b) => b,
        _ => panic!("not length-delimited"),
    }
}

fn text(raw: &Raw<'_>) -> String {
    String::from_utf8(bytes(raw).to_vec()).unwrap()
}

/// The fields numbered `n` of a message.
fn all(buf: &[u8], n: u32) -> Vec<&[u8]> {
    fields(buf)
        .into_iter()
        .filter(|(m, _)| *m == n)
        .map(|(_, r)| bytes(&r))
        .collect()
}

fn one(buf: &[u8], n: u32) -> &[u8] {
    let found = all(buf, n);
    assert_eq!(found.len(), 1, "field {n}");
    found[0]
}

fn name_and_value(buf: &[u8]) -> (String, &[u8]) {
    let name = String::from_utf8(one(buf, 1).to_vec()).unwrap();
    (name, one(buf, 2))
}

fn any(buf: &[u8]) -> Value {
    serde_yaml_ng::from_str(std::str::from_utf8(one(buf, 2)).unwrap()).unwrap()
}

fn push(out: &mut Map<String, Value>, key: &str, v: Value) {
    match out.entry(key.to_string()).or_insert_with(|| json!([])) {
        Value::Array(a) => a.push(v),
        other => panic!("{key} is {other}"),
    }
}

/// The JSON a message was encoded from, through the encoder's own tables.
fn decode(spec: &Message, buf: &[u8]) -> Value {
    let mut out = Map::new();
    for (number, raw) in fields(buf) {
        if number == spec.extensions {
            let (name, value) = name_and_value(bytes(&raw));
            out.insert(name, any(value));
            continue;
        }
        let &(key, _, kind) = spec
            .fields
            .iter()
            .find(|(_, n, _)| *n == number)
            .unwrap_or_else(|| panic!("{}: field {number}", spec.name));
        match kind {
            Kind::Str => {
                out.insert(key.into(), text(&raw).into());
            }
            Kind::Strs => push(&mut out, key, text(&raw).into()),
            Kind::Bool => {
                let Raw::Varint(v) = raw else { panic!() };
                out.insert(key.into(), (v != 0).into());
            }
            Kind::Double => {
                let Raw::Fixed64(bits) = raw else { panic!() };
                let f = f64::from_bits(bits);
                let n = if f.fract() == 0.0 {
                    json!(f as i64)
                } else {
                    json!(f)
                };
                out.insert(key.into(), n);
            }
            Kind::Int64 => {
                let Raw::Varint(v) = raw else { panic!() };
                out.insert(key.into(), json!(v as i64));
            }
            Kind::Any => {
                out.insert(key.into(), any(bytes(&raw)));
            }
            Kind::Anys => push(&mut out, key, any(bytes(&raw))),
            Kind::Info => {
                out.insert(key.into(), decode(&INFO, bytes(&raw)));
            }
            Kind::Operation => {
                out.insert(key.into(), decode(&OPERATION, bytes(&raw)));
            }
            Kind::Schema => {
                out.insert(key.into(), decode(&SCHEMA, bytes(&raw)));
            }
            Kind::Schemas => push(&mut out, key, decode(&SCHEMA, bytes(&raw))),
            Kind::SchemaItem => {
                out.insert(key.into(), decode(&SCHEMA, one(bytes(&raw), 1)));
            }
            Kind::Items => {
                let items: Vec<Value> = all(bytes(&raw), 1)
                    .into_iter()
                    .map(|s| decode(&SCHEMA, s))
                    .collect();
                let v = match <[Value; 1]>::try_from(items) {
                    Ok([single]) => single,
                    Err(many) => Value::Array(many),
                };
                out.insert(key.into(), v);
            }
            Kind::AdditionalProperties => {
                let v = match &fields(bytes(&raw))[..] {
                    [(1, s)] => decode(&SCHEMA, bytes(s)),
                    [(2, Raw::Varint(b))] => (*b != 0).into(),
                    _ => panic!("AdditionalPropertiesItem"),
                };
                out.insert(key.into(), v);
            }
            Kind::Type => {
                let types: Vec<Value> = fields(bytes(&raw))
                    .iter()
                    .map(|(_, t)| text(t).into())
                    .collect();
                let v = match <[Value; 1]>::try_from(types) {
                    Ok([single]) => single,
                    Err(many) => Value::Array(many),
                };
                out.insert(key.into(), v);
            }
            Kind::Properties | Kind::Definitions => {
                let named: Map<String, Value> = all(bytes(&raw), 1)
                    .into_iter()
                    .map(|n| {
                        let (name, s) = name_and_value(n);
                        (name, decode(&SCHEMA, s))
                    })
                    .collect();
                out.insert(key.into(), named.into());
            }
            Kind::Paths => {
                let mut paths = Map::new();
                for (n, r) in fields(bytes(&raw)) {
                    let (name, v) = name_and_value(bytes(&r));
                    let v = if n == 1 {
                        any(v)
                    } else {
                        decode(&PATH_ITEM, v)
                    };
                    paths.insert(name, v);
                }
                out.insert(key.into(), paths.into());
            }
            Kind::Responses => {
                let mut responses = Map::new();
                for (n, r) in fields(bytes(&raw)) {
                    let (name, v) = name_and_value(bytes(&r));
                    let v = if n == 2 {
                        any(v)
                    } else {
                        decode(&RESPONSE, one(v, 1))
                    };
                    responses.insert(name, v);
                }
                out.insert(key.into(), responses.into());
            }
            Kind::Parameters => {
                let parameter = one(bytes(&raw), 1);
                let v = match &fields(parameter)[..] {
                    [(1, b)] => decode(&BODY_PARAMETER, bytes(b)),
                    [(2, nb)] => match &fields(bytes(nb))[..] {
                        [(1 | 4, p)] => decode(&PATH_PARAMETER, bytes(p)),
                        [(2 | 3, q)] => decode(&QUERY_PARAMETER, bytes(q)),
                        _ => panic!("NonBodyParameter"),
                    },
                    _ => panic!("Parameter"),
                };
                push(&mut out, key, v);
            }
        }
    }
    Value::Object(out)
}

fn served() -> Value {
    bramble_api::schema::swagger::document()
}

#[test]
fn the_served_document_round_trips() {
    let doc = served();
    let bytes = encode(&doc).unwrap();
    let back = decode(&DOCUMENT, &bytes);
    assert_eq!(difference(&back, &doc, "$"), None);
}

/// Where two JSON values first differ, short enough to read.
fn difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (Some(xv), Some(yv)) = (x.get(k), y.get(k)) else {
                    return Some(format!("{at}.{k} is on one side only"));
                };
                if let Some(d) = difference(xv, yv, &format!("{at}.{k}")) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (xv, yv))| difference(xv, yv, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} != {b}")),
    }
}

/// Read as client-go reads it, with OpenAPIv2.proto's numbers.
#[test]
fn definitions_carry_their_gvk_where_kubectl_looks() {
    let bytes = encode(&served()).unwrap();
    assert_eq!(one(&bytes, 1), b"2.0");
    let definitions = one(&bytes, 9);
    let (name, deployment) = all(definitions, 1)
        .into_iter()
        .map(name_and_value)
        .find(|(n, _)| n == "io.k8s.api.apps.v1.Deployment")
        .expect("Deployment is defined");
    assert_eq!(name, "io.k8s.api.apps.v1.Deployment");
    let gvk = all(deployment, 31)
        .into_iter()
        .map(name_and_value)
        .find(|(n, _)| n == "x-kubernetes-group-version-kind")
        .map(|(_, any)| String::from_utf8(one(any, 2).to_vec()).unwrap())
        .unwrap();
    assert_eq!(gvk, "- group: apps\n  kind: Deployment\n  version: v1\n");
    let properties = one(deployment, 25);
    let names: Vec<String> = all(properties, 1)
        .into_iter()
        .map(|n| name_and_value(n).0)
        .collect();
    assert_eq!(names, ["apiVersion", "kind", "metadata", "spec", "status"]);
}

#[test]
fn a_patch_lists_field_validation_where_the_v2_verifier_looks() {
    let bytes = encode(&served()).unwrap();
    let paths = one(&bytes, 8);
    let (_, item) = all(paths, 2)
        .into_iter()
        .map(name_and_value)
        .find(|(n, _)| n == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        .unwrap();
    let patch = one(item, 8);
    let query_names: Vec<String> = all(patch, 8)
        .into_iter()
        .filter_map(|item| {
            let non_body = all(one(item, 1), 2);
            let query = all(non_body.first()?, 3);
            Some(String::from_utf8(one(query.first()?, 4).to_vec()).unwrap())
        })
        .collect();
    assert!(
        query_names.iter().any(|n| n == "fieldValidation"),
        "{query_names:?}"
    );
}

#[test]
fn a_key_gnostic_has_no_field_for_is_an_error() {
    let doc = json!({"swagger": "2.0", "definitions": {"X": {"type": "object", "oneOf": []}}});
    match encode(&doc) {
        Err(GnosticError::UnknownKey { at, message, key }) => {
            assert_eq!(
                (at.as_str(), message, key.as_str()),
                ("$.definitions.X.oneOf", "Schema", "oneOf")
            );
        }
        other => panic!("{other:?}"),
    }
    let doc = json!({"swagger": "2.0", "definitions": {"X": {"type": 3}}});
    assert!(matches!(encode(&doc), Err(GnosticError::WrongType { .. })));
}
