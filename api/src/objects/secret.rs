//! `v1 Secret`: base64 `data`, write-only `stringData`. Values never appear in
//! error messages or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors};
use crate::meta::ObjectMeta;
use crate::names;

/// Secret types whose required keys Bramble checks, with those keys.
const REQUIRED_KEYS: &[(&str, &[&str])] = &[
    ("kubernetes.io/tls", &["tls.crt", "tls.key"]),
    ("kubernetes.io/dockerconfigjson", &[".dockerconfigjson"]),
    ("kubernetes.io/dockercfg", &[".dockercfg"]),
    ("kubernetes.io/ssh-auth", &["ssh-privatekey"]),
];

/// Placeholder shown instead of a secret value.
pub const REDACTED: &str = "<secret contents redacted>";

/// `v1 Secret`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Secret")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secret {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `Opaque` (default), `kubernetes.io/tls`, `kubernetes.io/dockerconfigjson`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Base64-encoded values.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub data: BTreeMap<String, String>,
    /// Plain-text values, merged into `data` on admission and never stored.
    #[serde(default, skip_serializing, deserialize_with = "string_map")]
    pub string_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("metadata", &self.metadata)
            .field("type", &self.type_)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field(
                "string_data_keys",
                &self.string_data.keys().collect::<Vec<_>>(),
            )
            .field("immutable", &self.immutable)
            .finish()
    }
}

/// Decodes a map of strings whose type errors never echo the value.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    /// A string whose type errors never echo the value.
    struct Redacted(String);

    impl<'de> Deserialize<'de> for Redacted {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match serde_json::Value::deserialize(d)? {
                serde_json::Value::String(s) => Ok(Redacted(s)),
                _ => Err(D::Error::custom(format!("{REDACTED}: must be a string"))),
            }
        }
    }

    let m = BTreeMap::<String, Redacted>::deserialize(d)?;
    Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
}

impl Secret {
    /// The secret's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The secret's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// The type, `Opaque` when unset.
    pub fn type_(&self) -> &str {
        self.type_.as_deref().unwrap_or("Opaque")
    }

    /// The decoded value of `key` (`None` if absent or not base64).
    pub fn decoded(&self, key: &str) -> Option<Vec<u8>> {
        STANDARD.decode(self.data.get(key)?).ok()
    }

    /// Every value decoded (entries that are not valid base64 are skipped).
    pub fn decoded_data(&self) -> BTreeMap<String, Vec<u8>> {
        self.data
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), STANDARD.decode(v).ok()?)))
            .collect()
    }
}

impl Object for Secret {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// type Opaque; `stringData` entries are base64-encoded into `data`
    /// (overriding keys of the same name) and never serialized.
    fn apply_defaults(&mut self) {
        self.type_.get_or_insert_with(|| "Opaque".into());
        for (k, v) in &self.string_data {
            self.data.insert(k.clone(), STANDARD.encode(v));
        }
    }

    fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let mut total = 0usize;
        for k in self.string_data.keys() {
            if let Err(why) = names::config_key(k) {
                errs.push(FieldError::invalid(format!("stringData[{k}]"), why));
            }
        }
        for (k, v) in &self.data {
            let from_string_data = self.string_data.contains_key(k);
            if !from_string_data && let Err(why) = names::config_key(k) {
                errs.push(FieldError::invalid(format!("data[{k}]"), why));
            }
            match STANDARD.decode(v) {
                Ok(bytes) => total += k.len() + bytes.len(),
                Err(_) => errs.push(FieldError::invalid(
                    format!("data[{k}]"),
                    format!("{REDACTED:?}: must be base64-encoded"),
                )),
            }
        }
        if total > 1024 * 1024 {
            errs.push(FieldError::invalid(
                "data",
                "must be no more than 1 MiB in total",
            ));
        }
        if self.type_().is_empty() {
            errs.push(FieldError::required("type"));
        }
        if let Some((_, keys)) = REQUIRED_KEYS.iter().find(|(t, _)| *t == self.type_()) {
            for key in *keys {
                if !self.data.contains_key(*key) {
                    errs.push(FieldError::required(format!("data[{key}]")));
                }
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(v: serde_json::Value) -> Secret {
        let mut base = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}});
        base.as_object_mut()
            .unwrap()
            .extend(v.as_object().unwrap().clone());
        let mut s: Secret = crate::decode::decode(base).unwrap();
        s.apply_defaults();
        s
    }

    #[test]
    fn string_data_is_merged_encoded_and_dropped() {
        let s = secret(
            json!({"data": {"user": "YWRtaW4=", "password": "b2xk"}, "stringData": {"password": "hunter2"}}),
        );
        assert!(s.validate().is_empty(), "{}", s.validate());
        assert_eq!(s.decoded("password").unwrap(), b"hunter2");
        assert_eq!(s.decoded("user").unwrap(), b"admin");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["type"], "Opaque");
        assert!(v.get("stringData").is_none());
        assert_eq!(v["data"]["password"], STANDARD.encode("hunter2"));
        assert_eq!(s.decoded_data().len(), 2);
    }

    #[test]
    fn bad_base64_never_echoes_the_value() {
        let s = secret(json!({"data": {"token": "s3cr3t-value!"}}));
        let msg = s.validate().to_string();
        assert_eq!(
            msg,
            "data[token]: Invalid value: \"<secret contents redacted>\": must be base64-encoded"
        );
        assert!(!msg.contains("s3cr3t"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("s3cr3t") && dbg.contains("token"), "{dbg}");
    }

    #[test]
    fn type_errors_never_echo_the_value() {
        let e = crate::decode::decode::<Secret>(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": {"pin": 12345}
        }))
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("stringData.pin: Invalid value"), "{msg}");
        assert!(!msg.contains("12345"), "{msg}");
    }

    #[test]
    fn keys_and_typed_secrets() {
        let s = secret(
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "bad key": "eA=="}, "stringData": {"a/b": "x"}}),
        );
        let errs = s.validate();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["stringData[a/b]", "data[bad key]", "data[tls.key]"]);
    }
}
