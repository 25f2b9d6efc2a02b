//! JSON parsing that notices duplicate keys: `{"replicas": 1, "replicas": 2}`
//! is valid JSON whose first value every parser drops. Kubernetes' strict
//! decoding reports each one (`duplicate field "spec.replicas"`), so the hub
//! parses request bodies with [`parse`], which keeps the last value as every
//! other parser does and says where the duplicates were.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::field::{index, join};

/// Parses `bytes` as JSON; returns the value (last duplicate wins) and the
/// path of every duplicated key, in document order.
pub fn parse(bytes: &[u8]) -> Result<(Value, Vec<String>), serde_json::Error> {
    let mut duplicates = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Tracked {
        path: String::new(),
        duplicates: &mut duplicates,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((value, duplicates))
}

struct Tracked<'a> {
    path: String,
    duplicates: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Tracked<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tracked<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Tracked {
            path: index(&self.path, items.len()),
            duplicates: &mut *self.duplicates,
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            let v = map.next_value_seed(Tracked {
                path: path.clone(),
                duplicates: &mut *self.duplicates,
            })?;
            if obj.insert(key, v).is_some() {
                self.duplicates.push(path);
            }
        }
        Ok(Value::Object(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_are_named_and_the_last_value_wins() {
        let body = br#"{"spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "a", "image": "x", "name": "b"}]}}, "replicas": 3}, "kind": "Deployment"}"#;
        let (value, dups) = parse(body).unwrap();
        assert_eq!(
            dups,
            ["spec.template.spec.containers[0].name", "spec.replicas"]
        );
        assert_eq!(value["spec"]["replicas"], 3);
        assert_eq!(
            value["spec"]["template"]["spec"]["containers"][0]["name"],
            "b"
        );
    }

    #[test]
    fn parses_like_serde_json_without_duplicates() {
        let body = br#"{"a": [1, -2, 2.5, "s", null, true, {}], "b": {"c": 18446744073709551615}}"#;
        let (value, dups) = parse(body).unwrap();
        assert!(dups.is_empty());
        assert_eq!(value, serde_json::from_slice::<Value>(body).unwrap());
        assert_eq!(value["a"][1], json!(-2));
        assert!(parse(b"{\"a\": 1} x").is_err());
        assert!(parse(b"{\"a\": ").is_err());
    }
}
