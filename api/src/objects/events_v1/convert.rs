//! `core/v1` ⇄ `events.k8s.io/v1` Events, field by field as Kubernetes
//! converts them (`Convert_core_Event_To_v1_Event` and back):
//! `involvedObject` is `regarding`, `message` is `note`,
//! `reportingComponent` is `reportingController`, `source`, `firstTimestamp`,
//! `lastTimestamp` and `count` are the `deprecated*` fields; the rest keep
//! their names.
//!
//! One addition: Kubernetes shows an Event recorded without an `eventTime`
//! (every `core/v1` recorder, the hub's too) with `eventTime: null`, which
//! the official Python client refuses (`EventsV1Event` requires it:
//! kubernetes-client/python#1616), so [`shown`] fills it in from the first
//! time the Event was seen. That value is not stored: [`unfill`] takes it
//! back out of a write that returns it unchanged.

use crate::objects::event::{self as core};

use super::time::{instant, micro_time};
use super::{API_VERSION, Event, EventSeries};

/// `core` in this version, exactly as Kubernetes converts it.
pub fn from_core(core: &core::Event) -> Event {
    let c = core.clone();
    Event {
        api_version: API_VERSION.to_string(),
        kind: "Event".to_string(),
        metadata: c.metadata,
        event_time: c.event_time,
        series: c.series.map(|s| EventSeries {
            count: s.count.unwrap_or(0),
            last_observed_time: s.last_observed_time.unwrap_or_default(),
        }),
        reporting_controller: c.reporting_component,
        reporting_instance: c.reporting_instance,
        action: c.action,
        reason: c.reason,
        regarding: c.involved_object,
        related: c.related,
        note: c.message,
        type_: c.type_,
        deprecated_source: c.source,
        deprecated_first_timestamp: c.first_timestamp,
        deprecated_last_timestamp: c.last_timestamp,
        deprecated_count: c.count,
    }
}

/// `core` as the hub shows it in this version: [`from_core`] with an
/// `eventTime` when the Event has none ([`shown_event_time`]).
pub fn shown(core: &core::Event) -> Event {
    let mut e = from_core(core);
    e.event_time = shown_event_time(core);
    e
}

/// The `eventTime` [`shown`] gives `core`: its own, else the first of
/// `firstTimestamp`, `lastTimestamp` and `creationTimestamp` that is a
/// time, as a MicroTime.
pub fn shown_event_time(core: &core::Event) -> Option<String> {
    if core.event_time.is_some() {
        return core.event_time.clone();
    }
    [
        &core.first_timestamp,
        &core.last_timestamp,
        &core.metadata.creation_timestamp,
    ]
    .into_iter()
    .flatten()
    .find_map(|t| micro_time(t))
}

/// Takes the `eventTime` [`shown`] made up back out of a write over
/// `stored` that sends it unchanged (a client replacing what it read), so
/// a `core/v1` Event stays one.
pub fn unfill(event: &mut Event, stored: &core::Event) {
    if stored.event_time.is_some() {
        return;
    }
    let given = event.event_time.as_deref().and_then(instant);
    let shown = shown_event_time(stored).as_deref().and_then(instant);
    if given.is_some() && given == shown {
        event.event_time = None;
    }
}

/// `event` as a `core/v1` Event, as Kubernetes converts it (an absent
/// `regarding` is an empty `involvedObject`, as Go's zero value).
pub fn to_core(event: Event) -> core::Event {
    core::Event {
        api_version: "v1".to_string(),
        kind: "Event".to_string(),
        metadata: event.metadata,
        involved_object: Some(event.regarding.unwrap_or_default()),
        reason: event.reason,
        message: event.note,
        source: event.deprecated_source,
        first_timestamp: event.deprecated_first_timestamp,
        last_timestamp: event.deprecated_last_timestamp,
        count: event.deprecated_count,
        type_: event.type_,
        event_time: event.event_time,
        series: event.series.map(|s| core::EventSeries {
            count: Some(s.count),
            last_observed_time: Some(s.last_observed_time).filter(|t| !t.is_empty()),
        }),
        action: event.action,
        related: event.related,
        reporting_component: event.reporting_controller,
        reporting_instance: event.reporting_instance,
    }
}
