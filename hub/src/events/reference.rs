//! [`Involved`]: the object an event is about, as an `ObjectReference`.

use bramble_api::meta::ObjectMeta;
use bramble_api::objects::Pod;
use serde_json::{Value, json};

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Involved {
    pub api_version: String,
    pub kind: String,
    /// Empty for cluster-scoped objects (Nodes).
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.containers{web}` for a container's events.
    pub field_path: Option<String>,
}

impl Involved {
    /// A pod.
    pub fn pod(pod: &Pod) -> Involved {
        Involved {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: pod.namespace().to_string(),
            name: pod.name().to_string(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: None,
        }
    }

    /// A typed object of `api_version` and `kind` by its metadata.
    pub fn typed(api_version: &str, kind: &str, meta: &ObjectMeta) -> Involved {
        Involved {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone(),
            uid: meta.uid.clone().unwrap_or_default(),
            field_path: None,
        }
    }

    /// The controller owning `object` (a pod's Deployment or DaemonSet), if any.
    pub fn owner_of(object: &Value) -> Option<Involved> {
        let owners = object.pointer("/metadata/ownerReferences")?.as_array()?;
        let o = owners
            .iter()
            .find(|o| o["controller"].as_bool() == Some(true))
            .or_else(|| owners.first())?;
        let s = |k: &str| o[k].as_str().unwrap_or("").to_string();
        Some(Involved {
            api_version: s("apiVersion"),
            kind: s("kind"),
            namespace: object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            name: s("name"),
            uid: s("uid"),
            field_path: None,
        })
    }

    /// Any stored object, from its `apiVersion`, `kind` and metadata.
    pub fn of(object: &Value) -> Involved {
        let s = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("");
        Involved {
            api_version: s("/apiVersion").to_string(),
            kind: s("/kind").to_string(),
            namespace: s("/metadata/namespace").to_string(),
            name: s("/metadata/name").to_string(),
            uid: s("/metadata/uid").to_string(),
            field_path: None,
        }
    }

    /// The same object, narrowed to one container.
    pub fn container(mut self, name: &str) -> Involved {
        self.field_path = Some(format!("spec.containers{{{name}}}"));
        self
    }

    /// The namespace the event lives in (`default` for cluster-scoped objects).
    pub fn event_namespace(&self) -> &str {
        if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// As `involvedObject`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
        });
        if !self.namespace.is_empty() {
            v["namespace"] = self.namespace.clone().into();
        }
        if let Some(f) = &self.field_path {
            v["fieldPath"] = f.clone().into();
        }
        v
    }
}
