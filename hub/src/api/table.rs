//! Server-side printing: a list or an object as a `meta.k8s.io` `Table` when
//! the client's `Accept` asks for one (`application/json;as=Table;v=v1;g=meta.k8s.io`,
//! what `kubectl get` sends), with the columns kubectl shows for a real
//! cluster (`priority: 1` ones are `-o wide`'s) from
//! [`bramble_api::printing::columns`]. Each row carries the object's metadata
//! (`includeObject=Metadata`, the default), the whole object (`Object`) or
//! nothing (`None`).

use std::time::SystemTime;

use bramble_api::ResourceInfo;
use bramble_api::printing::columns;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};

/// The `Table` version a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRequest {
    /// `meta.k8s.io/v1` or (older clients) `meta.k8s.io/v1beta1`.
    api_version: &'static str,
    include: Include,
}

/// What each row carries (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Include {
    None,
    Metadata,
    Object,
}

impl TableRequest {
    /// The first `as=Table` media range of `accept` this server serves, if
    /// any (`application/json` ranges before it win, as in Kubernetes'
    /// negotiation: the client's order is its preference).
    pub fn negotiate(accept: &str, include_object: Option<&str>) -> ApiResult<Option<Self>> {
        let mut api_version = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let (mut as_, mut g, mut v) = (None, None, None);
            for p in parts {
                match p.split_once('=') {
                    Some(("as", x)) => as_ = Some(x),
                    Some(("g", x)) => g = Some(x),
                    Some(("v", x)) => v = Some(x),
                    _ => {}
                }
            }
            if as_.is_none() && matches!(media, "application/json" | "*/*" | "application/*") {
                break;
            }
            if media != "application/json" || as_ != Some("Table") || g != Some("meta.k8s.io") {
                continue;
            }
            match v {
                Some("v1") => api_version = Some("meta.k8s.io/v1"),
                Some("v1beta1") => api_version = Some("meta.k8s.io/v1beta1"),
                _ => continue,
            }
            break;
        }
        let Some(api_version) = api_version else {
            return Ok(None);
        };
        let include = match include_object {
            None | Some("") | Some("Metadata") => Include::Metadata,
            Some("Object") => Include::Object,
            Some("None") => Include::None,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "includeObject={other:?} is not supported: use None, Metadata or Object"
                )));
            }
        };
        Ok(Some(TableRequest {
            api_version,
            include,
        }))
    }

    /// `items` of `resource` as a `Table`; `metadata` is the list's
    /// (`resourceVersion`, `continue`).
    pub fn table(
        &self,
        resource: &ResourceInfo,
        items: &[Value],
        metadata: Value,
        now: SystemTime,
    ) -> Value {
        self.table_shown(resource, items, items, metadata, now)
    }

    /// [`Self::table`] for a kind served by conversion: the cells printed
    /// from the stored `items` of `resource` (Kubernetes prints every
    /// version of a kind from one internal type), each row carrying its
    /// object as `shown` in the version asked for.
    pub fn table_shown(
        &self,
        resource: &ResourceInfo,
        items: &[Value],
        shown: &[Value],
        metadata: Value,
        now: SystemTime,
    ) -> Value {
        let (base, wide) = columns::headers_of(resource.kind);
        let definitions: Vec<Value> = base
            .iter()
            .map(|h| (h, 0))
            .chain(wide.iter().map(|h| (h, 1)))
            .map(|(h, priority)| {
                let mut d = json!({
                    "name": title(h),
                    "type": "string",
                    "format": "",
                    "description": format!("{} of the {}", title(h), resource.kind),
                    "priority": priority,
                });
                if *h == "NAME" {
                    d["format"] = "name".into();
                    d["description"] = "Name must be unique within a namespace.".into();
                }
                d
            })
            .collect();
        let rows: Vec<Value> = items
            .iter()
            .zip(shown)
            .map(|(o, shown)| self.row(resource, o, shown, now))
            .collect();
        json!({
            "kind": "Table",
            "apiVersion": self.api_version,
            "metadata": metadata,
            "columnDefinitions": definitions,
            "rows": rows,
        })
    }

    fn row(
        &self,
        resource: &ResourceInfo,
        object: &Value,
        shown: &Value,
        now: SystemTime,
    ) -> Value {
        let (base, wide) = columns::cells(resource.kind, object, now);
        let cells: Vec<Value> = base.into_iter().chain(wide).map(Value::String).collect();
        let mut row = json!({"cells": cells});
        match self.include {
            Include::None => {}
            Include::Metadata => {
                row["object"] = json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": self.api_version,
                    "metadata": shown["metadata"],
                });
            }
            Include::Object => row["object"] = shown.clone(),
        }
        row
    }
}

/// `UP-TO-DATE` → `Up-To-Date`, `CLUSTER-IP` → `Cluster-IP`: kubectl prints
/// names upper-case; other clients show them as Kubernetes spells them.
fn title(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if matches!(word.as_str(), "IP" | "OS" | "(S)") {
            out.push_str(if word == "(S)" { "(s)" } else { word });
        } else {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.push(first);
                out.extend(chars.flat_map(char::to_lowercase));
            }
        }
        word.clear();
    };
    for c in header.chars() {
        if c == '-' || c == ' ' || c == '(' {
            flush(&mut word, &mut out);
            if c == '(' {
                word.push(c);
            } else {
                out.push(c);
            }
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

    #[test]
    fn kubectls_accept_gets_a_v1_table_and_plain_json_gets_none() {
        let t = TableRequest::negotiate(KUBECTL, None).unwrap().unwrap();
        assert_eq!(t.api_version, "meta.k8s.io/v1");
        assert_eq!(t.include, Include::Metadata);
        assert_eq!(
            TableRequest::negotiate("application/json", None).unwrap(),
            None
        );
        assert_eq!(
            TableRequest::negotiate(
                "application/json, application/json;as=Table;v=v1;g=meta.k8s.io",
                None
            )
            .unwrap(),
            None,
            "the client prefers plain JSON"
        );
        let old = "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
        assert_eq!(
            TableRequest::negotiate(old, Some("None"))
                .unwrap()
                .unwrap()
                .api_version,
            "meta.k8s.io/v1beta1"
        );
        assert!(TableRequest::negotiate(KUBECTL, Some("All")).is_err());
    }

    #[test]
    fn a_deployment_table_has_kubectls_columns_and_wide_ones_at_priority_1() {
        let deployments = bramble_api::resource::by_kind("apps/v1", "Deployment").unwrap();
        let d = json!({"metadata": {"name": "web", "namespace": "shop", "creationTimestamp": "2026-11-27T22:55:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let now = bramble_api::printing::age::parse_time("2026-11-27T23:00:00Z").unwrap();
        let t = TableRequest::negotiate(KUBECTL, None)
            .unwrap()
            .unwrap()
            .table(deployments, &[d], json!({"resourceVersion": "7"}), now);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Up-To-Date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(t["columnDefinitions"][4]["priority"], 0);
        assert_eq!(t["columnDefinitions"][5]["priority"], 1);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "2/3", "3", "2", "5m", "web", "nginx:1.27", "app=web"])
        );
        assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "shop");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn a_converted_kinds_rows_print_the_stored_object_and_carry_the_shown_one() {
        let events = bramble_api::resource::by_kind("v1", "Event").unwrap();
        let stored = json!({"metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web"}, "reason": "Started",
            "message": "Started container web", "type": "Normal", "count": 2,
            "lastTimestamp": "2026-11-27T22:59:00Z"});
        let shown = json!({"apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "web.1", "namespace": "default"}, "note": "Started container web"});
        let now = bramble_api::printing::age::parse_time("2026-11-27T23:00:00Z").unwrap();
        let t = TableRequest::negotiate(KUBECTL, Some("Object"))
            .unwrap()
            .unwrap()
            .table_shown(
                events,
                std::slice::from_ref(&stored),
                std::slice::from_ref(&shown),
                json!({}),
                now,
            );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "60s",
                "Normal",
                "Started",
                "pod/web",
                "Started container web",
                "",
                "",
                "<unknown>",
                "2",
                "web.1"
            ])
        );
        assert_eq!(t["rows"][0]["object"], shown);
    }

    #[test]
    fn titles_are_spelled_as_kubernetes_spells_them() {
        assert_eq!(title("CLUSTER-IP"), "Cluster-IP");
        assert_eq!(title("PORT(S)"), "Port(s)");
        assert_eq!(title("NODE SELECTOR"), "Node Selector");
        assert_eq!(title("OS-IMAGE"), "OS-Image");
    }
}
