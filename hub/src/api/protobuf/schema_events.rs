//! The protobuf messages of `core/v1 Event` (what client-go recorders send
//! when set to protobuf), written by hand from Kubernetes v1.32's
//! `k8s.io/api/core/v1` `types.go` and `generated.proto` until
//! `gen_schema_table.py` is run again with Events in Bramble's model.
//! `eventTime` and `series.lastObservedTime` are `metav1.MicroTime`, read
//! here as `Time`: their fractions of a second are dropped.

use super::schema::{Label, Message, Ty, f};
use super::schema_table::{CORE_OBJECT_REFERENCE, META_OBJECT_META};

pub static CORE_EVENT: Message = Message {
    name: "io.k8s.api.core.v1.Event",
    fields: &[
        f(1, "metadata", Ty::Message(&META_OBJECT_META), Label::Plain),
        f(
            2,
            "involvedObject",
            Ty::Message(&CORE_OBJECT_REFERENCE),
            Label::Plain,
        ),
        f(3, "reason", Ty::String, Label::OmitEmpty),
        f(4, "message", Ty::String, Label::OmitEmpty),
        f(5, "source", Ty::Message(&CORE_EVENT_SOURCE), Label::Plain),
        f(6, "firstTimestamp", Ty::Time, Label::Plain),
        f(7, "lastTimestamp", Ty::Time, Label::Plain),
        f(8, "count", Ty::Int32, Label::OmitEmpty),
        f(9, "type", Ty::String, Label::OmitEmpty),
        f(10, "eventTime", Ty::Time, Label::Plain),
        f(11, "series", Ty::Message(&CORE_EVENT_SERIES), Label::Opt),
        f(12, "action", Ty::String, Label::OmitEmpty),
        f(
            13,
            "related",
            Ty::Message(&CORE_OBJECT_REFERENCE),
            Label::Opt,
        ),
        f(14, "reportingComponent", Ty::String, Label::Plain),
        f(15, "reportingInstance", Ty::String, Label::Plain),
    ],
};

pub static CORE_EVENT_SOURCE: Message = Message {
    name: "io.k8s.api.core.v1.EventSource",
    fields: &[
        f(1, "component", Ty::String, Label::OmitEmpty),
        f(2, "host", Ty::String, Label::OmitEmpty),
    ],
};

pub static CORE_EVENT_SERIES: Message = Message {
    name: "io.k8s.api.core.v1.EventSeries",
    fields: &[
        f(1, "count", Ty::Int32, Label::OmitEmpty),
        f(2, "lastObservedTime", Ty::Time, Label::Plain),
    ],
};
