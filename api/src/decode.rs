//! Typed decoding of JSON values that turns serde errors into field paths.
//!
//! Every object struct uses `deny_unknown_fields`; this module turns serde's
//! "unknown field `x`" into `path.x: not supported`, and type errors into
//! `path: Invalid value: ...`, so a user sees exactly which field is wrong;
//! [`decode_all`] reports every such field at once.

use serde::de::DeserializeOwned;
use serde_json::Value;

use serde_path_to_error::Segment;

use crate::field::{FieldError, FieldErrors};

/// Decodes `value` as `T`, reporting the first failure with its full path.
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, FieldErrors> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let (err, _) = field_error(&e);
        FieldErrors(vec![err])
    })
}

/// At most this many fields that do not decode are reported at once.
pub const MAX_DECODE_ERRORS: usize = 32;

/// Decodes `value` as `T`, reporting *every* field that does not decode
/// (up to [`MAX_DECODE_ERRORS`]), as Kubernetes lists every invalid field:
/// a field whose value has the wrong type (or is unknown) is dropped and
/// decoding tried again. The object when the rest decodes (without the
/// dropped fields: for validating the rest, never for storing), and the
/// errors. A missing required field, or a bad element of a list, stops
/// there (dropping cannot help).
pub fn decode_all<T: DeserializeOwned>(mut value: Value) -> (Option<T>, FieldErrors) {
    let mut errors = FieldErrors::new();
    for _ in 0..MAX_DECODE_ERRORS {
        // An owned Value, as in [`decode`]: deserializing from `&Value`
        // would compile every type's deserializer a second time (+260 KB
        // in the armv7 agent). The clone is one object per write.
        let e = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(t) => return (Some(t), errors),
            Err(e) => e,
        };
        let mut segments: Vec<Segment> = e.path().iter().cloned().collect();
        let (err, unknown) = field_error(&e);
        let required = err.kind == crate::field::FieldErrorKind::Required;
        let repeated = errors.0.iter().any(|x| x.path == err.path);
        if !repeated {
            errors.push(err);
        }
        if let Some(key) = unknown
            && !matches!(segments.last(), Some(Segment::Map { key: k }) if *k == key)
        {
            segments.push(Segment::Map { key });
        }
        if required || repeated || !drop_at(&mut value, &segments) {
            break;
        }
    }
    (None, errors)
}

/// Removes the object member at `path`; `false` if there is none.
fn drop_at(value: &mut Value, path: &[Segment]) -> bool {
    let Some((Segment::Map { key }, parents)) = path.split_last() else {
        return false;
    };
    let mut at = value;
    for seg in parents {
        let next = match seg {
            Segment::Seq { index } => at.get_mut(*index),
            Segment::Map { key } | Segment::Enum { variant: key } => at.get_mut(key.as_str()),
            Segment::Unknown => None,
        };
        let Some(next) = next else { return false };
        at = next;
    }
    at.as_object_mut().is_some_and(|o| o.remove(key).is_some())
}

/// The field error of a serde failure, and the unknown key it names.
///
/// serde reports unknown and missing fields only as text: its
/// `de::Error::unknown_field` and `missing_field` build the messages
/// ("unknown field `x`", "missing field `x`") that serde_json keeps as its
/// error's only content, so this reads them back; every other failure is an
/// `Invalid` with serde's message. (Typed alternatives, such as collecting
/// ignored keys with a wrapper deserializer, would add code per type to the
/// agent binary.)
fn field_error(e: &serde_path_to_error::Error<serde_json::Error>) -> (FieldError, Option<String>) {
    let path = render_path(e.path());
    let msg = e.inner().to_string();
    if let Some(field) = unknown_field(&msg) {
        // serde_path_to_error reports the unknown key itself as the last segment
        // on some versions and not on others: append it only when missing.
        let full = if path.ends_with(&field) || path.ends_with(&format!("[{field}]")) {
            path
        } else {
            crate::field::join(&path, &field)
        };
        (FieldError::not_supported(full), Some(field))
    } else if let Some(field) = missing_field(&msg) {
        (
            FieldError::required(crate::field::join(&path, &field)),
            None,
        )
    } else {
        let path = if path.is_empty() { ".".into() } else { path };
        (FieldError::invalid(path, msg), None)
    }
}

/// Parses `bytes` as JSON and decodes it as `T` like [`decode`], the error
/// as one line (`path: reason`). Typed decoding everywhere goes through
/// this path-tracking deserializer over [`Value`]: every type's
/// deserializer is compiled once for it, not once per input kind (slice,
/// value, with and without paths), which keeps the agent binary small.
pub fn decode_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    decode(value).map_err(|e| e.to_string())
}

fn render_path(p: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for seg in p.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn between_backticks(msg: &str, prefix: &str) -> Option<String> {
    let rest = msg.strip_prefix(prefix)?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

fn unknown_field(msg: &str) -> Option<String> {
    between_backticks(msg, "unknown field `")
}

fn missing_field(msg: &str) -> Option<String> {
    between_backticks(msg, "missing field `")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        #[serde(default)]
        port: u16,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[test]
    fn unknown_field_gets_full_path() {
        let v = json!({"items": [{"name": "a"}, {"name": "b", "lifecycle": {}}]});
        let e = decode::<Outer>(v).unwrap_err();
        assert_eq!(e.to_string(), "items[1].lifecycle: not supported");
    }

    #[test]
    fn type_error_and_missing_field_get_paths() {
        let e = decode::<Outer>(json!({"items": [{"name": "a", "port": "x"}]})).unwrap_err();
        assert!(
            e.to_string().starts_with("items[0].port: Invalid value"),
            "{e}"
        );
        let e = decode::<Outer>(json!({"items": [{}]})).unwrap_err();
        assert_eq!(e.to_string(), "items[0].name: Required value");
    }

    #[test]
    fn decode_all_reports_every_bad_field_and_decodes_the_rest() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Both {
            a: Option<u16>,
            b: Option<u16>,
            #[serde(default)]
            c: u16,
        }
        let (obj, errs) = decode_all::<Both>(json!({"a": "x", "b": -1, "c": 7, "d": true}));
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "b", "d"], "{errs}");
        let obj = obj.expect("the rest decodes");
        assert_eq!((obj.a, obj.b, obj.c), (None, None, 7));

        // A missing required field (or a bad list element) stops there.
        let (obj, errs) = decode_all::<Outer>(json!({"items": [{"port": 1}]}));
        assert!(obj.is_none());
        assert_eq!(errs.to_string(), "items[0].name: Required value");
        let (obj, errs) = decode_all::<Outer>(json!({"items": [{"name": 1}, 2]}));
        assert!(obj.is_none());
        assert_eq!(errs.0.len(), 1, "{errs}");
    }

    #[test]
    fn slices_decode_with_paths_and_syntax_errors_say_where() {
        let o: Outer = decode_slice(br#"{"items": [{"name": "a", "port": 80}]}"#).unwrap();
        assert_eq!(o.items[0].port, 80);
        let e = decode_slice::<Outer>(br#"{"items": [{"name": "a", "tls": 1}]}"#).unwrap_err();
        assert_eq!(e, "items[0].tls: not supported");
        let e = decode_slice::<Outer>(b"{\"items\": [").unwrap_err();
        assert!(e.contains("line 1 column"), "{e}");
    }
}
