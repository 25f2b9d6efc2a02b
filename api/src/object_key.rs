//! `namespace/name`: how an object of a namespaced kind is named in logs,
//! maps keyed by object and kubectl's output, in one type instead of a
//! `format!` at every use.

use std::fmt;

use crate::meta::ObjectMeta;

/// A namespaced object's namespace and name; prints `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ObjectKey {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl From<&ObjectMeta> for ObjectKey {
    /// The key of the object `meta` describes (`default` when it names no
    /// namespace, as kubectl assumes).
    fn from(meta: &ObjectMeta) -> ObjectKey {
        ObjectKey::new(meta.namespace_or_default(), meta.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_namespace_slash_name_and_defaults_the_namespace() {
        let meta = ObjectMeta {
            name: "web".into(),
            ..ObjectMeta::default()
        };
        assert_eq!(ObjectKey::from(&meta).to_string(), "default/web");
        assert_eq!(
            ObjectKey::new("kube-system", "dns").to_string(),
            "kube-system/dns"
        );
    }
}
