//! Reading manifests: multi-document YAML (or JSON) into JSON values.
//!
//! Syntax errors carry the document's source name and line/column so a user can
//! find the mistake; `kind: List` documents are flattened into their items.

use serde::Deserialize;
use serde_json::Value;

/// A manifest that could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// YAML/JSON syntax error at a position.
    #[error("{source_name}: line {line}, column {column}: {message}")]
    Syntax {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Parsed, but a document is not an object.
    #[error(
        "{source_name}: document {document}: expected a mapping with apiVersion and kind, found {found}"
    )]
    NotAnObject {
        source_name: String,
        document: usize,
        found: &'static str,
    },
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses every document of `text`. Empty documents are skipped; `kind: List`
/// documents contribute their `items`. `source_name` (a file name or `-`) is used
/// in error messages only.
pub fn parse_documents(text: &str, source_name: &str) -> Result<Vec<Value>, ManifestError> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ManifestError::Syntax {
                source_name: source_name.to_string(),
                line,
                column,
                message: strip_location(&e.to_string()),
            }
        })?;
        match value {
            Value::Null => continue,
            Value::Object(ref map) => {
                let is_list = map.get("kind").and_then(Value::as_str) == Some("List");
                match (is_list, map.get("items")) {
                    (true, Some(Value::Array(items))) => out.extend(items.iter().cloned()),
                    _ => out.push(value),
                }
            }
            other => {
                return Err(ManifestError::NotAnObject {
                    source_name: source_name.to_string(),
                    document: i + 1,
                    found: type_name(&other),
                });
            }
        }
    }
    Ok(out)
}

/// serde_yaml appends " at line X column Y"; we report position separately.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multiple_documents_and_skips_empty_ones() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\n---\n---\napiVersion: v1\nkind: Secret\n";
        let docs = parse_documents(text, "x.yaml").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["kind"], "Secret");
    }

    #[test]
    fn flattens_lists() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"A"},{"kind":"B"}]}"#;
        let docs = parse_documents(text, "x.json").unwrap();
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn reports_line_and_column() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n";
        let err = parse_documents(text, "bad.yaml").unwrap_err();
        match err {
            ManifestError::Syntax {
                line, source_name, ..
            } => {
                assert_eq!(source_name, "bad.yaml");
                assert!(line >= 4, "line {line}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            parse_documents(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
                "bad.yaml"
            )
            .unwrap_err()
            .to_string()
            .starts_with("bad.yaml: line ")
        );
    }

    #[test]
    fn rejects_scalars() {
        let err = parse_documents("just a string\n", "s.yaml").unwrap_err();
        assert!(err.to_string().contains("expected a mapping"), "{err}");
    }
}
