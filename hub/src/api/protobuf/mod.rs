//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`),
//! as kubectl's typed client sends them, decoded into the JSON the handlers
//! take, so admission and the store never see protobuf.
//!
//! A body is the magic `k8s\0` and a `runtime.Unknown` {1: TypeMeta {1:
//! apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType}; `raw`
//! is the object's message, decoded by the schema table ([`schema_table`]).
//! A pure decoder: bytes in, `serde_json::Value` or a [`ProtoError`] out.
//! Responses stay JSON: client-go asks for `protobuf, json` and takes either.

mod decode;
mod error;
mod schema;
mod schema_events;
mod schema_table;
#[cfg(test)]
mod tests;
mod wire;

use prost::encoding::WireType;
use serde_json::{Map, Value};

pub use error::ProtoError;
use wire::Reader;

/// The media type of Kubernetes' protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// How deep messages may nest (a Deployment's deepest field is 9 levels down).
pub const MAX_DEPTH: usize = 32;

const MAGIC: &[u8] = b"k8s\0";
const UNKNOWN: &str = "io.k8s.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "io.k8s.apimachinery.pkg.runtime.TypeMeta";

/// Decodes a whole request body into the object's JSON, `apiVersion` and
/// `kind` included.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtoError::NotEnvelope)?;
    let mut r = Reader::new(envelope, MAGIC.len(), UNKNOWN);
    let (mut api_version, mut kind) = (String::new(), String::new());
    let mut raw: (&[u8], usize) = (&[], r.offset());
    while !r.is_empty() {
        let at = r.offset();
        let (number, wire) = r.key()?;
        if !(1..=4).contains(&number) {
            return Err(ProtoError::UnsupportedField {
                message: UNKNOWN,
                field: number,
            });
        }
        r.expect(number, wire, WireType::LengthDelimited, at)?;
        let (b, start) = r.bytes()?;
        match number {
            1 => (api_version, kind) = type_meta(b, start)?,
            2 => raw = (b, start),
            3 if !b.is_empty() => {
                return Err(ProtoError::ContentEncoding(
                    String::from_utf8_lossy(b).into_owned(),
                ));
            }
            4 if !b.is_empty() && b != MEDIA_TYPE.as_bytes() => {
                return Err(ProtoError::ContentType(
                    String::from_utf8_lossy(b).into_owned(),
                ));
            }
            _ => {}
        }
    }
    let message = schema::root(&api_version, &kind).ok_or_else(|| ProtoError::UnsupportedKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let fields = decode::message(message, raw.0, raw.1, 1)?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(kind));
    out.insert("apiVersion".into(), Value::String(api_version));
    out.extend(fields);
    Ok(Value::Object(out))
}

/// `runtime.TypeMeta` {1: apiVersion, 2: kind}.
fn type_meta(bytes: &[u8], base: usize) -> Result<(String, String), ProtoError> {
    let mut r = Reader::new(bytes, base, TYPE_META);
    let (mut api_version, mut kind) = (String::new(), String::new());
    while !r.is_empty() {
        let at = r.offset();
        let (number, wire) = r.key()?;
        let slot = match number {
            1 => &mut api_version,
            2 => &mut kind,
            _ => {
                return Err(ProtoError::UnsupportedField {
                    message: TYPE_META,
                    field: number,
                });
            }
        };
        r.expect(number, wire, WireType::LengthDelimited, at)?;
        let (b, start) = r.bytes()?;
        *slot = String::from_utf8(b.to_vec())
            .map_err(|_| r.malformed(start, "apiVersion or kind is not UTF-8"))?;
    }
    Ok((api_version, kind))
}
