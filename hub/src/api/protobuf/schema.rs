//! What a schema table entry says: a message's fields by number, each with
//! its JSON name, value type and how Kubernetes' JSON encoding treats it.

use super::schema_table as t;

/// One protobuf message (a Go struct of the Kubernetes API).
#[derive(Debug)]
pub struct Message {
    /// OpenAPI-style name, as in error messages: `io.k8s.api.core.v1.Container`.
    pub name: &'static str,
    /// Sorted by number.
    pub fields: &'static [Field],
}

impl Message {
    pub fn field(&self, number: u32) -> Option<&'static Field> {
        self.fields
            .binary_search_by_key(&number, |f| f.number)
            .ok()
            .map(|i| &self.fields[i])
    }
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    pub number: u32,
    /// The JSON name (empty for an inline field).
    pub json: &'static str,
    pub ty: Ty,
    pub label: Label,
}

/// The value type of a field (the element type of a repeated field, the value
/// type of a map).
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    String,
    /// Base64 in JSON.
    Bytes,
    Bool,
    Int32,
    /// A JSON number, as Go's encoding/json writes an int64.
    Int64,
    Message(&'static Message),
    /// `resource.Quantity` {1: string}: the string.
    Quantity,
    /// `intstr.IntOrString` {1: type, 2: intVal, 3: strVal}: a number or a string.
    IntOrString,
    /// `metav1.Time` {1: seconds, 2: nanos}: RFC 3339 in UTC, seconds
    /// precision; an empty message is Go's zero time, `null`.
    Time,
}

/// How a field maps to JSON. Go's protobuf encoder writes every non-pointer
/// field, zero or not; the JSON encoder omits what `omitempty` omits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// A pointer field: written only when set, so emitted whenever present,
    /// zero or not (`replicas: 0`).
    Opt,
    /// A non-pointer scalar with `omitempty`: a zero value is absent in JSON.
    OmitEmpty,
    /// A non-pointer field without `omitempty`, or a struct (Go's JSON never
    /// omits a struct): always emitted.
    Plain,
    /// A list.
    Repeated,
    /// A map with string keys (entries are messages {1: key, 2: value}).
    Map,
    /// An embedded struct with `json:",inline"`: its fields join the parent's.
    Inline,
}

/// A schema table entry (a `const fn` so the generated table stays one line a field).
pub const fn f(number: u32, json: &'static str, ty: Ty, label: Label) -> Field {
    Field {
        number,
        json,
        ty,
        label,
    }
}

/// The message a `runtime.Unknown` envelope's TypeMeta names, if Bramble
/// decodes it.
pub fn root(api_version: &str, kind: &str) -> Option<&'static Message> {
    Some(match (api_version, kind) {
        ("v1", "Pod") => &t::CORE_POD,
        ("v1", "Service") => &t::CORE_SERVICE,
        ("v1", "ConfigMap") => &t::CORE_CONFIG_MAP,
        ("v1", "Secret") => &t::CORE_SECRET,
        ("v1", "Endpoints") => &t::CORE_ENDPOINTS,
        ("v1", "Node") => &t::CORE_NODE,
        ("v1", "Namespace") => &t::CORE_NAMESPACE,
        ("v1", "Event") => &super::schema_events::CORE_EVENT,
        ("v1", "PersistentVolumeClaim") => &t::CORE_PERSISTENT_VOLUME_CLAIM,
        ("v1", "PersistentVolume") => &t::CORE_PERSISTENT_VOLUME,
        ("apps/v1", "Deployment") => &t::APPS_DEPLOYMENT,
        ("apps/v1", "DaemonSet") => &t::APPS_DAEMON_SET,
        ("apps/v1", "StatefulSet") => &t::APPS_STATEFUL_SET,
        ("autoscaling/v2", "HorizontalPodAutoscaler") => &t::HPA_HORIZONTAL_POD_AUTOSCALER,
        ("networking.k8s.io/v1", "Ingress") => &t::NET_INGRESS,
        ("networking.k8s.io/v1", "NetworkPolicy") => &t::NET_NETWORK_POLICY,
        ("batch/v1", "Job") => &t::BATCH_JOB,
        ("batch/v1", "CronJob") => &t::BATCH_CRON_JOB,
        ("policy/v1", "Eviction") => &t::POLICY_EVICTION,
        ("storage.k8s.io/v1", "StorageClass") => &t::STORAGE_STORAGE_CLASS,
        // client-go sends DeleteOptions under the group version of the
        // resource being deleted (v1, apps/v1, ...) or as meta.k8s.io/v1.
        (_, "DeleteOptions") => &t::META_DELETE_OPTIONS,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message's fields are sorted and unique (`field` binary-searches).
    fn check(m: &'static Message, seen: &mut Vec<&'static str>) {
        if seen.contains(&m.name) {
            return;
        }
        seen.push(m.name);
        assert!(
            m.fields.windows(2).all(|w| w[0].number < w[1].number),
            "{} fields out of order",
            m.name
        );
        for f in m.fields {
            if let Ty::Message(inner) = f.ty {
                check(inner, seen);
            }
        }
    }

    #[test]
    fn fields_are_sorted_in_every_reachable_message() {
        let mut seen = Vec::new();
        for (v, k) in [
            ("v1", "Pod"),
            ("v1", "Service"),
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "Endpoints"),
            ("v1", "Node"),
            ("v1", "Namespace"),
            ("v1", "Event"),
            ("apps/v1", "Deployment"),
            ("apps/v1", "DaemonSet"),
            ("apps/v1", "StatefulSet"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("networking.k8s.io/v1", "Ingress"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
            ("batch/v1", "Job"),
            ("batch/v1", "CronJob"),
            ("policy/v1", "Eviction"),
            ("v1", "PersistentVolumeClaim"),
            ("v1", "PersistentVolume"),
            ("storage.k8s.io/v1", "StorageClass"),
            ("v1", "DeleteOptions"),
        ] {
            check(root(v, k).expect(k), &mut seen);
        }
        assert!(seen.len() > 100, "{} messages reachable", seen.len());
    }

    #[test]
    fn every_kind_clients_write_has_a_root_message() {
        // Kinds only the hub writes are refused before their body is read; a
        // kind of Bramble's own group has no Kubernetes message (its protobuf
        // bodies get 415: clients send JSON).
        for r in bramble_api::resource::RESOURCES.iter().filter(|r| {
            !r.hub_written && r.group != "bramble.dev" && !r.group.ends_with(".bramble.dev")
        }) {
            assert!(root(&r.api_version(), r.kind).is_some(), "{}", r.kind);
        }
    }
}
