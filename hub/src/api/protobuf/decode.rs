//! Decodes one message by the schema table into the JSON Kubernetes' own
//! encoding gives for it: zero non-pointer scalars with `omitempty` left out,
//! pointers kept when set, structs always written, inline structs merged.
//! A field number the table does not know is an error, never dropped.

use base64::Engine;
use prost::encoding::WireType;
use serde_json::{Map, Value};

use super::MAX_DEPTH;
use super::error::ProtoError;
use super::schema::{Field, Label, Message, Ty};
use super::wire::Reader;

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
/// 9999-12-31T23:59:59Z: Go's JSON encoding of a Time stops at year 9999.
const MAX_SECONDS: i64 = 253_402_300_799;

/// Decodes `bytes` (starting at byte `base` of the body) as `m`, `depth`
/// messages deep.
pub fn message(
    m: &'static Message,
    bytes: &[u8],
    base: usize,
    depth: usize,
) -> Result<Map<String, Value>, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep { message: m.name });
    }
    let mut out = Map::new();
    let mut r = Reader::new(bytes, base, m.name);
    while !r.is_empty() {
        let at = r.offset();
        let (number, wire) = r.key()?;
        let field = m.field(number).ok_or(ProtoError::UnsupportedField {
            message: m.name,
            field: number,
        })?;
        match field.label {
            Label::Repeated => repeated(&mut r, field, wire, at, depth, &mut out)?,
            Label::Map => {
                r.expect(number, wire, WireType::LengthDelimited, at)?;
                let (entry, start) = r.bytes()?;
                let (k, v) = map_entry(m, field, entry, start, depth)?;
                let obj = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(obj) = obj {
                    obj.insert(k, v);
                }
            }
            Label::Inline => {
                let inner = value(&mut r, field, wire, at, depth)?;
                if let Value::Object(inner) = inner {
                    out.extend(inner);
                }
            }
            Label::Opt | Label::Plain | Label::OmitEmpty => {
                let v = value(&mut r, field, wire, at, depth)?;
                if field.label == Label::OmitEmpty && is_zero(&v) {
                    out.remove(field.json);
                } else {
                    out.insert(field.json.to_string(), v);
                }
            }
        }
    }
    Ok(out)
}

/// One element of a list; a packed list of varints (proto3 style) is
/// accepted too, though Kubernetes' proto2 encoder does not write them.
fn repeated(
    r: &mut Reader<'_>,
    field: &'static Field,
    wire: WireType,
    at: usize,
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), ProtoError> {
    let list = out
        .entry(field.json)
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(list) = list else {
        return Ok(());
    };
    let varint = matches!(field.ty, Ty::Bool | Ty::Int32 | Ty::Int64);
    if varint && wire == WireType::LengthDelimited {
        let (packed, start) = r.bytes()?;
        let mut p = Reader::new(packed, start, r.message);
        while !p.is_empty() {
            list.push(scalar(field.ty, p.varint()?));
        }
        return Ok(());
    }
    list.push(value(r, field, wire, at, depth)?);
    Ok(())
}

/// A map entry {1: key, 2: value}.
fn map_entry(
    m: &'static Message,
    field: &'static Field,
    bytes: &[u8],
    base: usize,
    depth: usize,
) -> Result<(String, Value), ProtoError> {
    let mut r = Reader::new(bytes, base, m.name);
    let mut key = String::new();
    let mut val = None;
    while !r.is_empty() {
        let at = r.offset();
        let (number, wire) = r.key()?;
        match number {
            1 => {
                r.expect(number, wire, WireType::LengthDelimited, at)?;
                let (b, start) = r.bytes()?;
                key = utf8(&r, b, start)?;
            }
            2 => val = Some(value(&mut r, field, wire, at, depth)?),
            _ => {
                return Err(r.malformed(
                    at,
                    format!(
                        "an entry of map field {} ({}) has field {number}; map entries have \
                         only 1 (key) and 2 (value)",
                        field.number, field.json
                    ),
                ));
            }
        }
    }
    // A missing value is the value type's zero, as Go decodes it.
    let val = match val {
        Some(v) => v,
        None => zero(field.ty),
    };
    Ok((key, val))
}

/// One value of `field`'s type.
fn value(
    r: &mut Reader<'_>,
    field: &'static Field,
    wire: WireType,
    at: usize,
    depth: usize,
) -> Result<Value, ProtoError> {
    let n = field.number;
    if matches!(field.ty, Ty::Bool | Ty::Int32 | Ty::Int64) {
        r.expect(n, wire, WireType::Varint, at)?;
        return Ok(scalar(field.ty, r.varint()?));
    }
    r.expect(n, wire, WireType::LengthDelimited, at)?;
    let (b, start) = r.bytes()?;
    Ok(match field.ty {
        Ty::String => Value::String(utf8(r, b, start)?),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Ty::Message(m) => Value::Object(message(m, b, start, depth + 1)?),
        Ty::Quantity => quantity(b, start)?,
        Ty::IntOrString => int_or_string(b, start)?,
        Ty::Time => time(b, start)?,
        Ty::Bool | Ty::Int32 | Ty::Int64 => unreachable!("varints handled above"),
    })
}

fn scalar(ty: Ty, v: u64) -> Value {
    match ty {
        Ty::Bool => Value::Bool(v != 0),
        // A negative int32 is sign-extended to 64 bits on the wire.
        Ty::Int32 => Value::from(v as i64 as i32),
        _ => Value::from(v as i64),
    }
}

fn zero(ty: Ty) -> Value {
    match ty {
        Ty::String | Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::Int32 | Ty::Int64 | Ty::IntOrString => Value::from(0),
        Ty::Quantity => Value::String("0".into()),
        Ty::Message(_) => Value::Object(Map::new()),
        Ty::Time => Value::Null,
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    }
}

fn utf8(r: &Reader<'_>, b: &[u8], at: usize) -> Result<String, ProtoError> {
    String::from_utf8(b.to_vec())
        .map_err(|e| r.malformed(at + e.utf8_error().valid_up_to(), "a string is not UTF-8"))
}

/// Reads the fields of a small fixed message, calling `each(number, wire, reader, at)`.
fn fields(
    name: &'static str,
    bytes: &[u8],
    base: usize,
    known: &[u32],
    mut each: impl FnMut(u32, WireType, &mut Reader<'_>, usize) -> Result<(), ProtoError>,
) -> Result<(), ProtoError> {
    let mut r = Reader::new(bytes, base, name);
    while !r.is_empty() {
        let at = r.offset();
        let (number, wire) = r.key()?;
        if !known.contains(&number) {
            return Err(ProtoError::UnsupportedField {
                message: name,
                field: number,
            });
        }
        each(number, wire, &mut r, at)?;
    }
    Ok(())
}

/// `resource.Quantity` {1: string}.
fn quantity(bytes: &[u8], base: usize) -> Result<Value, ProtoError> {
    let mut s = String::new();
    fields(QUANTITY, bytes, base, &[1], |n, w, r, at| {
        r.expect(n, w, WireType::LengthDelimited, at)?;
        let (b, start) = r.bytes()?;
        s = utf8(r, b, start)?;
        Ok(())
    })?;
    // Go decodes an empty string as the zero Quantity, which JSON writes as "0".
    Ok(Value::String(if s.is_empty() { "0".into() } else { s }))
}

/// `intstr.IntOrString` {1: type (0 int, 1 string), 2: intVal, 3: strVal}.
fn int_or_string(bytes: &[u8], base: usize) -> Result<Value, ProtoError> {
    let (mut ty, mut int, mut string) = (0u64, 0i32, String::new());
    fields(INT_OR_STRING, bytes, base, &[1, 2, 3], |n, w, r, at| {
        if n == 3 {
            r.expect(n, w, WireType::LengthDelimited, at)?;
            let (b, start) = r.bytes()?;
            string = utf8(r, b, start)?;
        } else {
            r.expect(n, w, WireType::Varint, at)?;
            let v = r.varint()?;
            if n == 1 {
                ty = v;
            } else {
                int = v as i64 as i32;
            }
        }
        Ok(())
    })?;
    match ty {
        0 => Ok(Value::from(int)),
        1 => Ok(Value::String(string)),
        other => Err(ProtoError::Malformed {
            message: INT_OR_STRING,
            offset: base,
            reason: format!("type {other} is neither 0 (int) nor 1 (string)"),
        }),
    }
}

/// `metav1.Time` {1: seconds, 2: nanos} as Go's JSON writes it: RFC 3339,
/// UTC, whole seconds; the zero time (an empty message) is `null`.
fn time(bytes: &[u8], base: usize) -> Result<Value, ProtoError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let mut seconds = 0i64;
    fields(TIME, bytes, base, &[1, 2], |n, w, r, at| {
        r.expect(n, w, WireType::Varint, at)?;
        let v = r.varint()? as i64;
        if n == 1 {
            seconds = v;
        }
        Ok(())
    })?;
    if !(0..=MAX_SECONDS).contains(&seconds) {
        return Err(ProtoError::Malformed {
            message: TIME,
            offset: base,
            reason: format!(
                "{seconds} seconds since 1970 is outside the times Bramble stores \
                 (1970-01-01 to 9999-12-31)"
            ),
        });
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64);
    Ok(Value::String(
        humantime::format_rfc3339_seconds(t).to_string(),
    ))
}
