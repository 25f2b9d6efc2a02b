//! The Events section of `describe`, as kubectl prints it: the object's
//! events (asked for by involved object name, namespace, kind and uid),
//! oldest first, with `8s (x3 over 2m)` ages for repeats.

use std::time::SystemTime;

use serde_json::Value;

use crate::age::age;
use crate::json::{int_at, str_at};
use crate::table::Table;

/// The events collection to ask and the `fieldSelector` for `object` of `kind`.
pub fn query(kind: &str, object: &Value, namespaced: bool) -> (String, String) {
    let name = str_at(object, "/metadata/name").unwrap_or("");
    let ns = if namespaced {
        str_at(object, "/metadata/namespace").unwrap_or("default")
    } else {
        ""
    };
    let mut selector = format!(
        "involvedObject.name={name},involvedObject.namespace={ns},involvedObject.kind={kind}"
    );
    if let Some(uid) = str_at(object, "/metadata/uid") {
        selector.push_str(&format!(",involvedObject.uid={uid}"));
    }
    let path = if namespaced {
        format!("/api/v1/namespaces/{ns}/events")
    } else {
        "/api/v1/events".to_string()
    };
    (path, selector)
}

/// `Events:` and a table of `events`, or `Events:  <none>`.
pub fn section(events: &[Value], now: SystemTime) -> String {
    if events.is_empty() {
        return "Events:  <none>\n".into();
    }
    let mut sorted: Vec<&Value> = events.iter().collect();
    sorted.sort_by_key(|e| last_seen(e).map(str::to_string));
    let mut t = Table::new(
        ["Type", "Reason", "Age", "From", "Message"]
            .map(String::from)
            .to_vec(),
    );
    t.push(
        ["----", "------", "----", "----", "-------"]
            .map(String::from)
            .to_vec(),
    );
    for e in sorted {
        let count = int_at(e, "/count").unwrap_or(1);
        let first = str_at(e, "/firstTimestamp").or_else(|| str_at(e, "/eventTime"));
        let interval = if count > 1 {
            format!(
                "{} (x{count} over {})",
                age(last_seen(e), now),
                age(first, now)
            )
        } else {
            age(first.or(last_seen(e)), now)
        };
        t.push(vec![
            str_at(e, "/type").unwrap_or("").to_string(),
            str_at(e, "/reason").unwrap_or("").to_string(),
            interval,
            str_at(e, "/source/component")
                .or_else(|| str_at(e, "/reportingComponent"))
                .unwrap_or("")
                .to_string(),
            str_at(e, "/message").unwrap_or("").trim().to_string(),
        ]);
    }
    let mut out = String::from("Events:\n");
    for line in t.render(true).lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn last_seen(e: &Value) -> Option<&str> {
    str_at(e, "/lastTimestamp")
        .or_else(|| str_at(e, "/firstTimestamp"))
        .or_else(|| str_at(e, "/eventTime"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn asks_for_the_objects_events_as_kubectl_does() {
        let pod = json!({"metadata": {"name": "web", "namespace": "shop", "uid": "u1"}});
        let (path, sel) = query("Pod", &pod, true);
        assert_eq!(path, "/api/v1/namespaces/shop/events");
        assert_eq!(
            sel,
            "involvedObject.name=web,involvedObject.namespace=shop,involvedObject.kind=Pod,involvedObject.uid=u1"
        );
        let (path, sel) = query("Node", &json!({"metadata": {"name": "pi-1"}}), false);
        assert_eq!(path, "/api/v1/events");
        assert!(sel.contains("involvedObject.namespace=,"));
    }

    #[test]
    fn lists_events_oldest_first_with_repeats() {
        let now = crate::age::parse_time("2026-01-01T00:10:00Z").unwrap();
        let events = [
            json!({"type": "Normal", "reason": "Started", "message": "Started container web",
                "source": {"component": "kubelet", "host": "pi-1"},
                "firstTimestamp": "2026-01-01T00:09:50Z", "lastTimestamp": "2026-01-01T00:09:50Z"}),
            json!({"type": "Warning", "reason": "FailedScheduling", "message": "0/1 nodes",
                "source": {"component": "default-scheduler"}, "count": 3,
                "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:09:00Z"}),
        ];
        let text = section(&events, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Events:");
        assert!(lines[1].trim_start().starts_with("Type"));
        assert!(lines[3].contains("FailedScheduling") && lines[3].contains("60s (x3 over 10m)"));
        assert!(lines[4].contains("kubelet") && lines[4].ends_with("Started container web"));
        assert_eq!(section(&[], now), "Events:  <none>\n");
    }
}
