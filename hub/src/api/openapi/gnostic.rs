//! A Swagger 2.0 JSON document as gnostic's `openapi.v2.Document` protobuf
//! (github.com/google/gnostic-models `openapiv2/OpenAPIv2.proto`), which
//! client-go's `DiscoveryClient.OpenAPISchema()` unmarshals. Written by hand
//! with `prost`'s wire helpers from the tables below (field numbers from the
//! .proto): no codegen. Vendor extensions and `default`/`enum`/`example`
//! values are `Any {yaml}`, as gnostic writes them. A key with no field in
//! its message is an error, never dropped: the JSON document and its
//! protobuf say the same thing.

use prost::encoding::{WireType, encode_key, encode_varint};
use serde_json::{Map, Value};

/// A JSON document that does not fit gnostic's messages.
#[derive(Debug, thiserror::Error)]
pub enum GnosticError {
    #[error("{at}: gnostic's {message} has no field for {key:?}")]
    UnknownKey {
        at: String,
        message: &'static str,
        key: String,
    },
    #[error("{at}: expected {expected}, found {found}")]
    WrongType {
        at: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{at}: the value cannot be written as YAML: {source}")]
    Yaml {
        at: String,
        #[source]
        source: serde_yaml_ng::Error,
    },
}

/// How a JSON value is written into its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    Strs,
    Bool,
    Double,
    Int64,
    /// `Any {2: yaml}`.
    Any,
    /// A JSON array of `Any`.
    Anys,
    Info,
    Paths,
    Definitions,
    Operation,
    /// `repeated ParametersItem`.
    Parameters,
    Responses,
    Schema,
    /// A JSON array of `Schema` (`allOf`).
    Schemas,
    /// `SchemaItem {1: Schema}` (a response's schema).
    SchemaItem,
    /// `ItemsItem {1: repeated Schema}`: one schema or an array of them.
    Items,
    /// `AdditionalPropertiesItem {1: Schema | 2: bool}`.
    AdditionalProperties,
    /// `TypeItem {1: repeated string}`: a string or an array of them.
    Type,
    /// `Properties {1: repeated NamedSchema}`.
    Properties,
}

/// One message: its JSON keys' field numbers and where `x-` keys go.
pub(super) struct Message {
    pub name: &'static str,
    pub fields: &'static [(&'static str, u32, Kind)],
    /// The field of `repeated NamedAny vendor_extension`.
    pub extensions: u32,
}

use Kind::*;

pub(super) const DOCUMENT: Message = Message {
    name: "Document",
    fields: &[
        ("swagger", 1, Str),
        ("info", 2, Info),
        ("host", 3, Str),
        ("basePath", 4, Str),
        ("schemes", 5, Strs),
        ("consumes", 6, Strs),
        ("produces", 7, Strs),
        ("paths", 8, Paths),
        ("definitions", 9, Definitions),
    ],
    extensions: 16,
};

pub(super) const INFO: Message = Message {
    name: "Info",
    fields: &[
        ("title", 1, Str),
        ("version", 2, Str),
        ("description", 3, Str),
    ],
    extensions: 7,
};

pub(super) const PATH_ITEM: Message = Message {
    name: "PathItem",
    fields: &[
        ("$ref", 1, Str),
        ("get", 2, Operation),
        ("put", 3, Operation),
        ("post", 4, Operation),
        ("delete", 5, Operation),
        ("options", 6, Operation),
        ("head", 7, Operation),
        ("patch", 8, Operation),
        ("parameters", 9, Parameters),
    ],
    extensions: 10,
};

pub(super) const OPERATION: Message = Message {
    name: "Operation",
    fields: &[
        ("tags", 1, Strs),
        ("summary", 2, Str),
        ("description", 3, Str),
        ("operationId", 5, Str),
        ("produces", 6, Strs),
        ("consumes", 7, Strs),
        ("parameters", 8, Parameters),
        ("responses", 9, Responses),
        ("schemes", 10, Strs),
        ("deprecated", 11, Bool),
    ],
    extensions: 13,
};

pub(super) const RESPONSE: Message = Message {
    name: "Response",
    fields: &[("description", 1, Str), ("schema", 2, SchemaItem)],
    extensions: 5,
};

pub(super) const BODY_PARAMETER: Message = Message {
    name: "BodyParameter",
    fields: &[
        ("description", 1, Str),
        ("name", 2, Str),
        ("in", 3, Str),
        ("required", 4, Bool),
        ("schema", 5, Schema),
    ],
    extensions: 6,
};

/// `QueryParameterSubSchema` and `FormDataParameterSubSchema` (the same numbers).
pub(super) const QUERY_PARAMETER: Message = Message {
    name: "QueryParameterSubSchema",
    fields: &[
        ("required", 1, Bool),
        ("in", 2, Str),
        ("description", 3, Str),
        ("name", 4, Str),
        ("allowEmptyValue", 5, Bool),
        ("type", 6, Str),
        ("format", 7, Str),
        ("collectionFormat", 9, Str),
        ("default", 10, Any),
        ("maximum", 11, Double),
        ("exclusiveMaximum", 12, Bool),
        ("minimum", 13, Double),
        ("exclusiveMinimum", 14, Bool),
        ("maxLength", 15, Int64),
        ("minLength", 16, Int64),
        ("pattern", 17, Str),
        ("maxItems", 18, Int64),
        ("minItems", 19, Int64),
        ("uniqueItems", 20, Bool),
        ("enum", 21, Anys),
        ("multipleOf", 22, Double),
    ],
    extensions: 23,
};

/// `PathParameterSubSchema` and `HeaderParameterSubSchema` (the same numbers).
pub(super) const PATH_PARAMETER: Message = Message {
    name: "PathParameterSubSchema",
    fields: &[
        ("required", 1, Bool),
        ("in", 2, Str),
        ("description", 3, Str),
        ("name", 4, Str),
        ("type", 5, Str),
        ("format", 6, Str),
        ("collectionFormat", 8, Str),
        ("default", 9, Any),
        ("maximum", 10, Double),
        ("exclusiveMaximum", 11, Bool),
        ("minimum", 12, Double),
        ("exclusiveMinimum", 13, Bool),
        ("maxLength", 14, Int64),
        ("minLength", 15, Int64),
        ("pattern", 16, Str),
        ("maxItems", 17, Int64),
        ("minItems", 18, Int64),
        ("uniqueItems", 19, Bool),
        ("enum", 20, Anys),
        ("multipleOf", 21, Double),
    ],
    extensions: 22,
};

pub(super) const SCHEMA: Message = Message {
    name: "Schema",
    fields: &[
        ("$ref", 1, Str),
        ("format", 2, Str),
        ("title", 3, Str),
        ("description", 4, Str),
        ("default", 5, Any),
        ("multipleOf", 6, Double),
        ("maximum", 7, Double),
        ("exclusiveMaximum", 8, Bool),
        ("minimum", 9, Double),
        ("exclusiveMinimum", 10, Bool),
        ("maxLength", 11, Int64),
        ("minLength", 12, Int64),
        ("pattern", 13, Str),
        ("maxItems", 14, Int64),
        ("minItems", 15, Int64),
        ("uniqueItems", 16, Bool),
        ("maxProperties", 17, Int64),
        ("minProperties", 18, Int64),
        ("required", 19, Strs),
        ("enum", 20, Anys),
        ("additionalProperties", 21, AdditionalProperties),
        ("type", 22, Type),
        ("items", 23, Items),
        ("allOf", 24, Schemas),
        ("properties", 25, Properties),
        ("discriminator", 26, Str),
        ("readOnly", 27, Bool),
        ("example", 30, Any),
    ],
    extensions: 31,
};

/// Encodes a whole Swagger 2.0 document as `openapi.v2.Document`.
pub fn encode(document: &Value) -> Result<Vec<u8>, GnosticError> {
    message(&DOCUMENT, document, "$")
}

fn message(spec: &Message, v: &Value, at: &str) -> Result<Vec<u8>, GnosticError> {
    let mut out = Vec::new();
    for (key, value) in object(v, at)? {
        let at = format!("{at}.{key}");
        if key.starts_with("x-") {
            let named = named(key, &any(value, &at)?);
            embedded(spec.extensions, &named, &mut out);
            continue;
        }
        let Some(&(_, number, kind)) = spec.fields.iter().find(|(k, _, _)| k == key) else {
            return Err(GnosticError::UnknownKey {
                at,
                message: spec.name,
                key: key.clone(),
            });
        };
        field(number, kind, value, &at, &mut out)?;
    }
    Ok(out)
}

fn field(
    number: u32,
    kind: Kind,
    v: &Value,
    at: &str,
    out: &mut Vec<u8>,
) -> Result<(), GnosticError> {
    match kind {
        Str => string(number, text(v, at)?, out),
        Strs => {
            for s in array(v, at)? {
                string(number, text(s, at)?, out);
            }
        }
        Bool => {
            let b = v.as_bool().ok_or_else(|| wrong(at, "a boolean", v))?;
            encode_key(number, WireType::Varint, out);
            encode_varint(u64::from(b), out);
        }
        Double => {
            let f = v.as_f64().ok_or_else(|| wrong(at, "a number", v))?;
            prost::encoding::double::encode(number, &f, out);
        }
        Int64 => {
            let i = v.as_i64().ok_or_else(|| wrong(at, "an integer", v))?;
            prost::encoding::int64::encode(number, &i, out);
        }
        Any => embedded(number, &any(v, at)?, out),
        Anys => {
            for (i, e) in array(v, at)?.iter().enumerate() {
                embedded(number, &any(e, &format!("{at}[{i}]"))?, out);
            }
        }
        Info => embedded(number, &message(&INFO, v, at)?, out),
        Operation => embedded(number, &message(&OPERATION, v, at)?, out),
        Schema => embedded(number, &message(&SCHEMA, v, at)?, out),
        Schemas => {
            for (i, s) in array(v, at)?.iter().enumerate() {
                embedded(number, &message(&SCHEMA, s, &format!("{at}[{i}]"))?, out);
            }
        }
        SchemaItem => {
            let mut item = Vec::new();
            embedded(1, &message(&SCHEMA, v, at)?, &mut item);
            embedded(number, &item, out);
        }
        Items => {
            let mut item = Vec::new();
            match v {
                Value::Array(all) => {
                    for (i, s) in all.iter().enumerate() {
                        embedded(1, &message(&SCHEMA, s, &format!("{at}[{i}]"))?, &mut item);
                    }
                }
                _ => embedded(1, &message(&SCHEMA, v, at)?, &mut item),
            }
            embedded(number, &item, out);
        }
        AdditionalProperties => {
            let mut item = Vec::new();
            match v {
                Value::Bool(b) => {
                    encode_key(2, WireType::Varint, &mut item);
                    encode_varint(u64::from(*b), &mut item);
                }
                _ => embedded(1, &message(&SCHEMA, v, at)?, &mut item),
            }
            embedded(number, &item, out);
        }
        Type => {
            let mut item = Vec::new();
            match v {
                Value::Array(types) => {
                    for t in types {
                        string(1, text(t, at)?, &mut item);
                    }
                }
                _ => string(1, text(v, at)?, &mut item),
            }
            embedded(number, &item, out);
        }
        Properties | Definitions => {
            // Properties and Definitions: {1: repeated NamedSchema}.
            let mut item = Vec::new();
            for (name, s) in object(v, at)? {
                let schema = message(&SCHEMA, s, &format!("{at}.{name}"))?;
                embedded(1, &named(name, &schema), &mut item);
            }
            embedded(number, &item, out);
        }
        Paths => {
            // Paths {1: repeated NamedAny vendor_extension, 2: repeated NamedPathItem}.
            let mut item = Vec::new();
            for (path, p) in object(v, at)? {
                let at = format!("{at}.{path}");
                if path.starts_with("x-") {
                    embedded(1, &named(path, &any(p, &at)?), &mut item);
                } else {
                    embedded(2, &named(path, &message(&PATH_ITEM, p, &at)?), &mut item);
                }
            }
            embedded(number, &item, out);
        }
        Responses => {
            // Responses {1: repeated NamedResponseValue, 2: vendor extensions};
            // ResponseValue {1: Response}.
            let mut item = Vec::new();
            for (code, r) in object(v, at)? {
                let at = format!("{at}.{code}");
                if code.starts_with("x-") {
                    embedded(2, &named(code, &any(r, &at)?), &mut item);
                    continue;
                }
                let mut value = Vec::new();
                embedded(1, &message(&RESPONSE, r, &at)?, &mut value);
                embedded(1, &named(code, &value), &mut item);
            }
            embedded(number, &item, out);
        }
        Parameters => {
            for (i, p) in array(v, at)?.iter().enumerate() {
                embedded(number, &parameters_item(p, &format!("{at}[{i}]"))?, out);
            }
        }
    }
    Ok(())
}

/// `ParametersItem {1: Parameter {1: BodyParameter | 2: NonBodyParameter
/// {1: header | 2: formData | 3: query | 4: path}}}`, chosen by `in`.
fn parameters_item(p: &Value, at: &str) -> Result<Vec<u8>, GnosticError> {
    let location = p.get("in").and_then(Value::as_str).unwrap_or_default();
    let mut parameter = Vec::new();
    if location == "body" {
        embedded(1, &message(&BODY_PARAMETER, p, at)?, &mut parameter);
    } else {
        let (number, spec) = match location {
            "header" => (1, &PATH_PARAMETER),
            "formData" => (2, &QUERY_PARAMETER),
            "query" => (3, &QUERY_PARAMETER),
            "path" => (4, &PATH_PARAMETER),
            _ => {
                return Err(wrong(
                    &format!("{at}.in"),
                    "body, header, formData, query or path",
                    p,
                ));
            }
        };
        let mut non_body = Vec::new();
        embedded(number, &message(spec, p, at)?, &mut non_body);
        embedded(2, &non_body, &mut parameter);
    }
    let mut item = Vec::new();
    embedded(1, &parameter, &mut item);
    Ok(item)
}

/// `Any {2: yaml}`: the value as YAML, as gnostic keeps what it does not model.
fn any(v: &Value, at: &str) -> Result<Vec<u8>, GnosticError> {
    let yaml = serde_yaml_ng::to_string(v).map_err(|source| GnosticError::Yaml {
        at: at.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    string(2, &yaml, &mut out);
    Ok(out)
}

/// The `Named*` messages: `{1: name, 2: value}`.
fn named(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    string(1, name, &mut out);
    embedded(2, value, &mut out);
    out
}

fn string(number: u32, s: &str, out: &mut Vec<u8>) {
    embedded(number, s.as_bytes(), out);
}

/// A length-delimited field: an embedded message, a string. Written even when
/// empty, so a present empty message (`properties: {}`) stays present.
fn embedded(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, GnosticError> {
    v.as_object().ok_or_else(|| wrong(at, "an object", v))
}

fn array<'a>(v: &'a Value, at: &str) -> Result<&'a Vec<Value>, GnosticError> {
    v.as_array().ok_or_else(|| wrong(at, "an array", v))
}

fn text<'a>(v: &'a Value, at: &str) -> Result<&'a str, GnosticError> {
    v.as_str().ok_or_else(|| wrong(at, "a string", v))
}

fn wrong(at: &str, expected: &'static str, found: &Value) -> GnosticError {
    GnosticError::WrongType {
        at: at.to_string(),
        expected,
        found: match found {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        },
    }
}
