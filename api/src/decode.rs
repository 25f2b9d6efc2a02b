//! Typed decoding of JSON values that turns serde errors into field paths.
//!
//! Every object struct uses `deny_unknown_fields`; this module turns serde's
//! "unknown field `x`" into `path.x: not supported`, and type errors into
//! `path: Invalid value: ...`, so a user sees exactly which field is wrong.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::field::{FieldError, FieldErrors};

/// Decodes `value` as `T`, reporting the first failure with its full path.
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, FieldErrors> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = render_path(e.path());
        let msg = e.inner().to_string();
        let err = if let Some(field) = unknown_field(&msg) {
            // serde_path_to_error reports the unknown key itself as the last segment
            // on some versions and not on others: append it only when missing.
            let full = if path.ends_with(&field) || path.ends_with(&format!("[{field}]")) {
                path
            } else {
                crate::field::join(&path, &field)
            };
            FieldError::not_supported(full)
        } else if let Some(field) = missing_field(&msg) {
            FieldError::required(crate::field::join(&path, &field))
        } else {
            FieldError::invalid(if path.is_empty() { ".".into() } else { path }, msg)
        };
        FieldErrors(vec![err])
    })
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
    use serde_path_to_error::Segment;
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
    fn slices_decode_with_paths_and_syntax_errors_say_where() {
        let o: Outer = decode_slice(br#"{"items": [{"name": "a", "port": 80}]}"#).unwrap();
        assert_eq!(o.items[0].port, 80);
        let e = decode_slice::<Outer>(br#"{"items": [{"name": "a", "tls": 1}]}"#).unwrap_err();
        assert_eq!(e, "items[0].tls: not supported");
        let e = decode_slice::<Outer>(b"{\"items\": [").unwrap_err();
        assert!(e.contains("line 1 column"), "{e}");
    }
}
