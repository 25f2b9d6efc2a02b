use serde_json::{Value, json};

use super::*;

/// A kubelet-style `core/v1` Event, as the hub's recorder stores it.
fn legacy() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default", "uid": "u1",
                     "resourceVersion": "7", "creationTimestamp": "2026-01-01T00:00:09Z"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "p1"},
        "reason": "BackOff", "message": "Back-off restarting failed container",
        "source": {"component": "kubelet", "host": "pi-1"},
        "firstTimestamp": "2026-01-01T00:00:10Z", "lastTimestamp": "2026-01-01T00:01:00Z",
        "count": 4, "type": "Warning",
        "reportingComponent": "kubelet", "reportingInstance": "pi-1",
    })
}

/// An events.k8s.io/v1 create as client-go's new recorder sends it.
fn new_style() -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.2", "namespace": "default"},
        "eventTime": "2026-01-01T00:00:10.123456+00:00",
        "reportingController": "example.com/operator", "reportingInstance": "op-0",
        "action": "Reconciling", "reason": "Synced", "note": "all good", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
    })
}

fn errors(v: Value, stored: Option<&Value>) -> String {
    let old = stored.map(|s| super::stored(s).unwrap());
    admit(v, old.as_ref()).unwrap_err().to_string()
}

#[test]
fn a_legacy_event_shows_with_kubernetes_field_names_and_an_event_time() {
    let v = show(&legacy()).unwrap();
    assert_eq!(v["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v["regarding"]["name"], "web");
    assert_eq!(v["note"], "Back-off restarting failed container");
    assert_eq!(v["deprecatedCount"], 4);
    assert_eq!(v["deprecatedFirstTimestamp"], "2026-01-01T00:00:10Z");
    assert_eq!(v["deprecatedLastTimestamp"], "2026-01-01T00:01:00Z");
    assert_eq!(
        v["deprecatedSource"],
        json!({"component": "kubelet", "host": "pi-1"})
    );
    assert_eq!(v["reportingController"], "kubelet");
    assert_eq!(v["metadata"]["resourceVersion"], "7");
    // Filled in from firstTimestamp (Kubernetes would show null).
    assert_eq!(v["eventTime"], "2026-01-01T00:00:10.000000Z");
    for core_only in [
        "involvedObject",
        "message",
        "count",
        "source",
        "reportingComponent",
    ] {
        assert!(v.get(core_only).is_none(), "{core_only}");
    }
    // Exact conversion keeps the absence.
    let exact = convert::from_core(&stored(&legacy()).unwrap());
    assert_eq!(exact.event_time, None);
}

#[test]
fn a_create_converts_to_core_with_its_time_in_utc_microseconds() {
    let core = admit(new_style(), None).unwrap();
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["involvedObject"]["name"], "web");
    assert_eq!(core["message"], "all good");
    assert_eq!(core["reportingComponent"], "example.com/operator");
    assert_eq!(core["eventTime"], "2026-01-01T00:00:10.123456Z");
    assert!(core.get("note").is_none() && core.get("regarding").is_none());
    // ...and back again, unchanged.
    let back = show(&core).unwrap();
    let mut sent = new_style();
    sent["eventTime"] = "2026-01-01T00:00:10.123456Z".into();
    assert_eq!(back, sent);
}

#[test]
fn a_create_needs_what_kubernetes_requires_of_new_events() {
    let e = errors(
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
               "metadata": {"name": "x", "namespace": "default"}}),
        None,
    );
    assert!(e.starts_with("Event.events.k8s.io \"x\" is invalid"), "{e}");
    assert!(e.contains("eventTime: Required value"), "{e}");
    assert!(e.contains("type: Unsupported value"), "{e}");
    let mut v = new_style();
    v.as_object_mut().unwrap().remove("action");
    v.as_object_mut().unwrap().remove("reportingController");
    v["deprecatedCount"] = 2.into();
    v["deprecatedSource"] = json!({"component": "x"});
    v["series"] = json!({"count": 1});
    v["note"] = "n".repeat(1025).into();
    let e = errors(v, None);
    for want in [
        "reportingController: Required value",
        "action: Required value",
        "note: Invalid value",
        "deprecatedCount: Invalid value: needs to be unset",
        "deprecatedSource: Invalid value: needs to be unset",
        "series.count: Invalid value: should be at least 2",
        "series.lastObservedTime: Required value",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    let mut v = new_style();
    v["regarding"]["namespace"] = "other".into();
    v["eventTime"] = "soon".into();
    v["bogus"] = 1.into();
    let e = errors(v, None);
    assert!(e.contains("eventTime: Invalid value"), "{e}");
    assert!(e.contains("bogus: not supported"), "{e}");
}

#[test]
fn a_cluster_scoped_objects_event_may_live_in_default_or_kube_system() {
    let mut v = new_style();
    v["regarding"] = json!({"kind": "Node", "name": "pi-1"});
    assert!(admit(v.clone(), None).is_ok());
    v["metadata"]["namespace"] = "shop".into();
    assert!(errors(v, None).contains("regarding.namespace: Invalid value"));
}

#[test]
fn a_legacy_event_read_and_written_back_stays_legacy() {
    let stored_json = legacy();
    let mut shown = show(&stored_json).unwrap();
    shown["metadata"]["labels"] = json!({"seen": "yes"});
    // The Python client sends back eventTime as +00:00 without a fraction.
    shown["eventTime"] = "2026-01-01T00:00:10+00:00".into();
    let old = stored(&stored_json).unwrap();
    let core = admit(shown, Some(&old)).unwrap();
    assert!(core.get("eventTime").is_none(), "{core}");
    assert_eq!(core["metadata"]["labels"]["seen"], "yes");
    assert_eq!(core["count"], 4);
}

#[test]
fn an_update_may_change_metadata_and_series_only() {
    let stored_json = admit(new_style(), None).unwrap();
    let old = stored(&stored_json).unwrap();
    let mut v = show(&stored_json).unwrap();
    v["series"] = json!({"count": 3, "lastObservedTime": "2026-01-01T00:05:00.000000Z"});
    let core = admit(v.clone(), Some(&old)).unwrap();
    assert_eq!(core["series"]["count"], 3);
    v["note"] = "changed".into();
    v["eventTime"] = "2026-01-01T00:00:11.000000Z".into();
    v["regarding"]["name"] = "other".into();
    let e = errors(v, Some(&stored_json));
    for want in [
        "note: Invalid value: field is immutable",
        "eventTime: Invalid value: field is immutable",
        "regarding: Invalid value: field is immutable",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
}
