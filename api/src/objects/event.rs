//! `v1 Event`: something that happened to an object (`involvedObject`), as
//! kube-scheduler, the controllers and the kubelet record it and `kubectl
//! describe` lists it. Validated as the Kubernetes API server validates
//! `core/v1` Events (`legacyValidateEvent`), plus `type` Normal|Warning.

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::field::{FieldError, FieldErrors};
use crate::meta::ObjectMeta;
use crate::names;

use super::common::{ObjectReference, check_opt_enum};

/// The two event types Kubernetes knows.
pub const EVENT_TYPES: [&str; 2] = ["Normal", "Warning"];
/// Longest `message` (Kubernetes' `NoteLengthLimit`) of an Event with an
/// `eventTime`; recorders truncate to it (see [`truncate_message`]).
pub const MESSAGE_LIMIT: usize = 1024;
/// Longest `reason`, `action` and `reportingInstance` (Kubernetes' limits).
pub const SHORT_FIELD_LIMIT: usize = 128;

/// `v1 Event`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Event")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The object this event is about; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub involved_object: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<EventSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
    /// `Normal` or `Warning`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// MicroTime (`2026-12-06T20:12:26.123456Z`) of "new" (events.k8s.io) events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// How often an events.k8s.io-style recorder saw this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<EventSeries>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_instance: Option<String>,
}

/// `series` of an event a recorder saw repeatedly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.EventSeries")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventSeries {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
    /// MicroTime of the last occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observed_time: Option<String>,
}

/// Who recorded an event: `{component: default-scheduler}`, `{component: kubelet, host: pi-1}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.EventSource")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `message` cut to [`MESSAGE_LIMIT`] bytes as Kubernetes' event recorders
/// cut it: the first 1021 bytes (on a character boundary) and `...`.
pub fn truncate_message(message: &str) -> String {
    if message.len() <= MESSAGE_LIMIT {
        return message.to_string();
    }
    let mut end = MESSAGE_LIMIT - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

impl Object for Event {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let ns = self.metadata.namespace.as_deref().unwrap_or("");
        let Some(involved) = &self.involved_object else {
            errs.push(FieldError::required("involvedObject"));
            return errs;
        };
        let involved_ns = involved.namespace.as_deref().unwrap_or("");
        let mismatch = || {
            FieldError::invalid(
                "involvedObject.namespace",
                format!("{involved_ns:?}: does not match event.namespace"),
            )
        };
        if self.event_time.is_none() {
            // Legacy events: the namespaces agree (a cluster-scoped object's
            // events live in `default`).
            if involved_ns.is_empty() {
                if !ns.is_empty() && ns != "default" {
                    errs.push(mismatch());
                }
            } else if ns != involved_ns {
                errs.push(mismatch());
            }
        } else {
            if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
                errs.push(mismatch());
            }
            match self.reporting_component.as_deref().unwrap_or("") {
                "" => errs.push(FieldError::required("reportingComponent")),
                c => {
                    if let Err(why) = names::label_key(c) {
                        errs.push(FieldError::invalid("reportingComponent", why));
                    }
                }
            }
            required_short(&mut errs, "reportingInstance", &self.reporting_instance);
            required_short(&mut errs, "action", &self.action);
            required_short(&mut errs, "reason", &self.reason);
            if self.message.as_deref().unwrap_or("").len() > MESSAGE_LIMIT {
                errs.push(FieldError::invalid(
                    "message",
                    format!("can have at most {MESSAGE_LIMIT} characters"),
                ));
            }
        }
        check_opt_enum(&mut errs, "type", self.type_.as_deref(), &EVENT_TYPES);
        if self.count.is_some_and(|c| c < 0) {
            errs.push(FieldError::invalid(
                "count",
                "must be greater than or equal to 0",
            ));
        }
        errs
    }
}

/// `field` must be set and at most [`SHORT_FIELD_LIMIT`] long.
fn required_short(errs: &mut FieldErrors, field: &str, value: &Option<String>) {
    match value.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(field)),
        v if v.len() > SHORT_FIELD_LIMIT => errs.push(FieldError::invalid(
            field,
            format!("can have at most {SHORT_FIELD_LIMIT} characters"),
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admit;
    use serde_json::json;

    fn event(extra: serde_json::Value) -> serde_json::Value {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
            "reason": "Started", "message": "Started container web", "type": "Normal",
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    fn error(v: serde_json::Value) -> String {
        admit(v).unwrap_err().to_string()
    }

    #[test]
    fn a_kubectl_style_event_is_admitted() {
        let a = admit(event(json!({"count": 3}))).unwrap();
        assert_eq!(a.object["count"], 3);
        assert_eq!(a.object["involvedObject"]["name"], "web");
    }

    #[test]
    fn type_must_be_normal_or_warning() {
        assert!(error(event(json!({"type": "Fatal"}))).contains("type: Unsupported value"));
    }

    #[test]
    fn involved_object_is_required_and_in_the_event_namespace() {
        let mut v = event(json!({}));
        v.as_object_mut().unwrap().remove("involvedObject");
        assert!(error(v).contains("involvedObject: Required value"));
        let v =
            event(json!({"involvedObject": {"kind": "Pod", "name": "w", "namespace": "other"}}));
        assert!(error(v).contains("does not match event.namespace"));
        // A node's events live in `default`.
        let v = event(json!({"involvedObject": {"kind": "Node", "name": "pi-1"}}));
        assert!(admit(v).is_ok());
    }

    #[test]
    fn new_style_events_need_reporter_action_and_a_short_message() {
        let e = error(event(json!({"eventTime": "2026-01-01T00:00:00.000000Z"})));
        assert!(e.contains("reportingComponent: Required value"), "{e}");
        assert!(e.contains("action: Required value"), "{e}");
        let v = event(json!({
            "eventTime": "2026-01-01T00:00:00.000000Z", "reportingComponent": "kubelet",
            "reportingInstance": "pi-1", "action": "Starting", "message": "x".repeat(1025),
        }));
        assert!(error(v).contains("message: Invalid value"));
    }

    #[test]
    fn long_messages_are_cut_to_one_kib_with_an_ellipsis() {
        assert_eq!(truncate_message("short"), "short");
        let cut = truncate_message(&"é".repeat(1000));
        assert!(cut.len() <= MESSAGE_LIMIT && cut.ends_with("..."));
    }
}
