//! `events.k8s.io/v1 Event`: the store's `core/v1` Events as the second API
//! version Kubernetes serves them at (one storage, two versions). Only the
//! hub serves it, so this module is behind the `schema` feature.
//!
//! [`convert`] maps the two versions field by field, as Kubernetes'
//! conversion does; [`validate`] is the API server's validation of writes
//! through this version; [`admit`] ties them together: a body in, the
//! `core/v1` Event to store out.

pub mod convert;
pub mod time;
pub mod validate;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admit::AdmitError;
use crate::meta::{NameRule, ObjectMeta};
use crate::objects::common::ObjectReference;
use crate::objects::event::{self as core, EventSource};

/// `apiVersion` of this version.
pub const API_VERSION: &str = "events.k8s.io/v1";
/// How Kubernetes names the kind in errors.
pub const QUALIFIED_KIND: &str = "Event.events.k8s.io";

/// The field selectors this version takes, each with the `core/v1` field it
/// selects on (Kubernetes' `AddFieldLabelConversionsForEvent`): `regarding.*`
/// is `involvedObject.*`; `involvedObject.*` itself is not a label here.
pub const FIELD_LABELS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
];

/// Event is a report of an event somewhere in the cluster. It generally
/// denotes some state change in the system. Events have a limited retention
/// time and triggers and messages may evolve with time. Event consumers
/// should not rely on the timing of an event with a given Reason reflecting
/// a consistent underlying trigger, or the continued existence of events
/// with that Reason. Events should be treated as informative, best-effort,
/// supplemental data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.events.v1.Event")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    /// APIVersion defines the versioned schema of this representation of an object.
    pub api_version: String,
    /// Kind is a string value representing the REST resource this object represents.
    pub kind: String,
    /// metadata is the standard object's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// eventTime is the time when this Event was first observed. It is
    /// required. (MicroTime: `2026-12-06T20:12:26.123456Z`.)
    // No `default`: serde reads a missing Option as None anyway, and schemars
    // then lists the field as required, as Kubernetes' schema does.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(required))]
    pub event_time: Option<String>,
    /// series is data about the Event series this event represents or nil if
    /// it's a singleton Event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<EventSeries>,
    /// reportingController is the name of the controller that emitted this
    /// Event, e.g. `kubernetes.io/kubelet`. This field cannot be empty for
    /// new Events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_controller: Option<String>,
    /// reportingInstance is the ID of the controller instance, e.g.
    /// `kubelet-xyzf`. This field cannot be empty for new Events and it can
    /// have at most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_instance: Option<String>,
    /// action is what action was taken/failed regarding to the regarding
    /// object. It is machine-readable. This field cannot be empty for new
    /// Events and it can have at most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// reason is why the action was taken. It is human-readable. This field
    /// cannot be empty for new Events and it can have at most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// regarding contains the object this Event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regarding: Option<ObjectReference>,
    /// related is the optional secondary object for more complex actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<ObjectReference>,
    /// note is a human-readable description of the status of this operation.
    /// Maximal length of the note is 1kB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// type is the type of this event (Normal, Warning). It is
    /// machine-readable. This field cannot be empty for new Events.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// deprecatedSource is the deprecated field assuring backward
    /// compatibility with core.v1 Event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_source: Option<EventSource>,
    /// deprecatedFirstTimestamp is the deprecated field assuring backward
    /// compatibility with core.v1 Event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_first_timestamp: Option<String>,
    /// deprecatedLastTimestamp is the deprecated field assuring backward
    /// compatibility with core.v1 Event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_last_timestamp: Option<String>,
    /// deprecatedCount is the deprecated field assuring backward
    /// compatibility with core.v1 Event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_count: Option<i32>,
}

/// EventSeries contain information on series of events, i.e. thing that
/// was/is happening continuously for some time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.events.v1.EventSeries")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventSeries {
    /// count is the number of occurrences in this series up to the last
    /// heartbeat time.
    #[serde(default)]
    pub count: i32,
    /// lastObservedTime is the time when last Event from the series was seen
    /// before last heartbeat.
    #[serde(default)]
    pub last_observed_time: String,
}

/// Why a stored `core/v1` Event cannot be shown in this version.
#[derive(Debug, thiserror::Error)]
#[error("stored Event {name:?} does not decode as a core/v1 Event: {source}")]
pub struct StoredEventError {
    pub name: String,
    #[source]
    pub source: serde_json::Error,
}

/// Decodes a stored `core/v1` Event.
pub fn stored(object: &Value) -> Result<core::Event, StoredEventError> {
    serde_json::from_value(object.clone()).map_err(|source| StoredEventError {
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        source,
    })
}

/// A stored `core/v1` Event as this version shows it ([`convert::shown`]).
pub fn show(object: &Value) -> Result<Value, StoredEventError> {
    let event = convert::shown(&stored(object)?);
    Ok(serde_json::to_value(event).expect("an Event always serializes"))
}

/// Admits a create (`stored` is `None`) or an update of the stored `core/v1`
/// Event `stored` through this version: decodes `value` (its unknown fields
/// already sorted out), validates it as the API server validates
/// `events.k8s.io/v1` writes (every invalid field at once) and converts it.
/// Returns the canonical `core/v1` Event to store.
pub fn admit(value: Value, stored: Option<&core::Event>) -> Result<Value, AdmitError> {
    let name = value["metadata"]["name"].as_str().unwrap_or("").to_string();
    let invalid = |errors| AdmitError::Invalid {
        kind: QUALIFIED_KIND.to_string(),
        name: name.clone(),
        errors,
    };
    let (event, undecoded) = crate::decode::decode_all::<Event>(value);
    let Some(mut event) = event else {
        return Err(invalid(undecoded));
    };
    time::normalize(&mut event);
    if let Some(old) = stored {
        convert::unfill(&mut event, old);
    }
    let mut errs = event.metadata.validate("metadata", NameRule::Subdomain);
    errs.extend(validate::legacy(&event));
    errs.extend(match stored {
        None => validate::create(&event),
        Some(old) => validate::update(&event, &convert::from_core(old)),
    });
    crate::admit::merge_undecoded(&mut errs, undecoded);
    errs.into_result().map_err(invalid)?;
    let core = serde_json::to_value(convert::to_core(event)).expect("an Event always serializes");
    Ok(crate::admit(core)?.object)
}

#[cfg(test)]
mod tests;
