//! The Kubernetes API server's validation of writes through
//! `events.k8s.io/v1` (`ValidateEventCreate`/`ValidateEventUpdate` with a
//! request version other than `core/v1`): the legacy rules every Event
//! passes, then on create the strict ones (an `eventTime`, a `type`, none of
//! the `deprecated*` fields, a well-formed `series`), on update the
//! immutable fields. Errors name this version's fields (`regarding`,
//! `note`, `deprecatedCount`) where Kubernetes names some by their `core/v1`
//! names.

use crate::field::{FieldError, FieldErrors};
use crate::names;
use crate::objects::common::check_enum;
use crate::objects::event::{EVENT_TYPES, MESSAGE_LIMIT, SHORT_FIELD_LIMIT};

use super::Event;
use super::time::instant;

/// `legacyValidateEvent`: what every Event must satisfy. Without an
/// `eventTime` only the namespaces are checked (they agree; a
/// cluster-scoped object's events live in `default`); with one, the
/// reporter, action and reason are required and short, the note at most
/// 1 KiB.
pub fn legacy(event: &Event) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let ns = event.metadata.namespace.as_deref().unwrap_or("");
    let regarding_ns = event
        .regarding
        .as_ref()
        .and_then(|r| r.namespace.as_deref())
        .unwrap_or("");
    let mismatch = || {
        FieldError::invalid(
            "regarding.namespace",
            format!("{regarding_ns:?}: does not match event.namespace"),
        )
    };
    if event.event_time.is_none() {
        let agree = if regarding_ns.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == regarding_ns
        };
        if !agree {
            errs.push(mismatch());
        }
        return errs;
    }
    if regarding_ns.is_empty() && ns != "default" && ns != "kube-system" {
        errs.push(mismatch());
    }
    match event.reporting_controller.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required("reportingController")),
        c => {
            if let Err(why) = names::label_key(c) {
                errs.push(FieldError::invalid("reportingController", why));
            }
        }
    }
    required_short(&mut errs, "reportingInstance", &event.reporting_instance);
    required_short(&mut errs, "action", &event.action);
    required_short(&mut errs, "reason", &event.reason);
    if event.note.as_deref().unwrap_or("").len() > MESSAGE_LIMIT {
        errs.push(FieldError::invalid(
            "note",
            format!("can have at most {MESSAGE_LIMIT} characters"),
        ));
    }
    errs
}

/// The strict rules of a create through this version.
pub fn create(event: &Event) -> FieldErrors {
    let mut errs = series(event);
    match event.event_time.as_deref() {
        None | Some("") => errs.push(FieldError::required("eventTime")),
        Some(t) if instant(t).is_none() => errs.push(FieldError::invalid(
            "eventTime",
            format!("{t:?}: not an RFC 3339 time"),
        )),
        Some(_) => {}
    }
    check_enum(
        &mut errs,
        "type",
        event.type_.as_deref().unwrap_or(""),
        &EVENT_TYPES,
    );
    let unset = |errs: &mut FieldErrors, field: &str, set: bool| {
        if set {
            errs.push(FieldError::invalid(field, "needs to be unset"));
        }
    };
    unset(
        &mut errs,
        "deprecatedFirstTimestamp",
        is_set(&event.deprecated_first_timestamp),
    );
    unset(
        &mut errs,
        "deprecatedLastTimestamp",
        is_set(&event.deprecated_last_timestamp),
    );
    unset(
        &mut errs,
        "deprecatedCount",
        event.deprecated_count.unwrap_or(0) != 0,
    );
    let source = event.deprecated_source.clone().unwrap_or_default();
    unset(
        &mut errs,
        "deprecatedSource",
        is_set(&source.component) || is_set(&source.host),
    );
    errs
}

/// The rules of an update through this version over `old`: a changed
/// `series` must be well-formed; everything else but metadata is immutable
/// (`eventTime` to the microsecond).
pub fn update(new: &Event, old: &Event) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if new.series != old.series {
        errs.extend(series(new));
    }
    let mut immutable = |field: &str, same: bool| {
        if !same {
            errs.push(FieldError::invalid(field, "field is immutable"));
        }
    };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    immutable(
        "regarding",
        new.regarding.clone().unwrap_or_default() == old.regarding.clone().unwrap_or_default(),
    );
    immutable("reason", text(&new.reason) == text(&old.reason));
    immutable("note", text(&new.note) == text(&old.note));
    immutable(
        "deprecatedSource",
        new.deprecated_source.clone().unwrap_or_default()
            == old.deprecated_source.clone().unwrap_or_default(),
    );
    immutable(
        "deprecatedFirstTimestamp",
        same_time(
            &new.deprecated_first_timestamp,
            &old.deprecated_first_timestamp,
        ),
    );
    immutable(
        "deprecatedLastTimestamp",
        same_time(
            &new.deprecated_last_timestamp,
            &old.deprecated_last_timestamp,
        ),
    );
    immutable(
        "deprecatedCount",
        new.deprecated_count.unwrap_or(0) == old.deprecated_count.unwrap_or(0),
    );
    immutable("type", text(&new.type_) == text(&old.type_));
    immutable("eventTime", same_time(&new.event_time, &old.event_time));
    immutable("action", text(&new.action) == text(&old.action));
    immutable("related", new.related == old.related);
    immutable(
        "reportingController",
        text(&new.reporting_controller) == text(&old.reporting_controller),
    );
    immutable(
        "reportingInstance",
        text(&new.reporting_instance) == text(&old.reporting_instance),
    );
    errs
}

/// `validateV1EventSeries`: a series counts at least 2 and says when it
/// was last seen.
fn series(event: &Event) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if let Some(s) = &event.series {
        if s.count < 2 {
            errs.push(FieldError::invalid("series.count", "should be at least 2"));
        }
        if s.last_observed_time.is_empty() {
            errs.push(FieldError::required("series.lastObservedTime"));
        } else if instant(&s.last_observed_time).is_none() {
            errs.push(FieldError::invalid(
                "series.lastObservedTime",
                format!("{:?}: not an RFC 3339 time", s.last_observed_time),
            ));
        }
    }
    errs
}

fn is_set(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty())
}

/// Two optional times are the same instant (or both unset; text that is not
/// a time compares as text).
fn same_time(a: &Option<String>, b: &Option<String>) -> bool {
    let a = a.as_deref().filter(|s| !s.is_empty());
    let b = b.as_deref().filter(|s| !s.is_empty());
    match (a, b) {
        (Some(x), Some(y)) => match (instant(x), instant(y)) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (x, y) => x == y,
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
