//! What `describe` shows for each kind: the common metadata, then the
//! kind's own sections where they are simple, else its spec and status as YAML.
//! Secrets show their keys and sizes, never their values.
//!
//! Length: over 600 lines because its unit tests included; the code is under
//! 600 lines.

use serde_json::Value;

use super::writer::Describer;
use crate::columns::{label_selector, node_status, pod_status, service_ports};
use crate::json::{bool_at, int_at, list_at, pairs_at, scalar, str_at};
use crate::table::Table;

/// The full description of one object of `kind`.
pub fn describe(kind: &str, o: &Value, namespaced: bool) -> String {
    let mut d = Describer::new();
    d.field(0, "Name", crate::json::name(o));
    if namespaced {
        d.field(0, "Namespace", crate::json::namespace(o).unwrap_or(""));
    }
    if kind == "Node" {
        d.field(0, "Roles", crate::columns::node_roles(o));
    }
    d.pairs(0, "Labels", &pairs_at(o, "/metadata/labels"));
    d.pairs(0, "Annotations", &pairs_at(o, "/metadata/annotations"));
    d.field(
        0,
        "CreationTimestamp",
        str_at(o, "/metadata/creationTimestamp").unwrap_or("<unknown>"),
    );
    if let Some(owner) = list_at(o, "/metadata/ownerReferences")
        .iter()
        .find(|r| bool_at(r, "/controller") == Some(true))
    {
        d.field(
            0,
            "Controlled By",
            format!(
                "{}/{}",
                str_at(owner, "/kind").unwrap_or(""),
                str_at(owner, "/name").unwrap_or("")
            ),
        );
    }
    match kind {
        "Pod" => pod(&mut d, o),
        "Deployment" => deployment(&mut d, o),
        "DaemonSet" => daemonset(&mut d, o),
        "Service" => service(&mut d, o),
        "Node" => node(&mut d, o),
        "Secret" => secret(&mut d, o),
        "ConfigMap" => configmap(&mut d, o),
        "PersistentVolumeClaim" => super::storage::claim(&mut d, o),
        "PersistentVolume" => super::storage::volume(&mut d, o),
        "StorageClass" => super::storage::class(&mut d, o),
        "Namespace" => {
            d.field(0, "Status", str_at(o, "/status/phase").unwrap_or("Active"));
        }
        _ => spec_and_status(&mut d, o),
    }
    d.render()
}

fn or_none(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".into(),
    }
}

fn pod(d: &mut Describer, o: &Value) {
    let node = match (str_at(o, "/spec/nodeName"), str_at(o, "/status/hostIP")) {
        (Some(n), Some(ip)) => format!("{n}/{ip}"),
        (Some(n), None) => n.to_string(),
        _ => "<none>".into(),
    };
    d.field(0, "Node", node);
    if let Some(t) = str_at(o, "/status/startTime") {
        d.field(0, "Start Time", t);
    }
    d.field(0, "Status", pod_status(o));
    d.field(0, "IP", str_at(o, "/status/podIP").unwrap_or(""));
    let statuses = list_at(o, "/status/containerStatuses");
    if !list_at(o, "/spec/initContainers").is_empty() {
        d.section(0, "Init Containers");
        containers(
            d,
            list_at(o, "/spec/initContainers"),
            list_at(o, "/status/initContainerStatuses"),
            true,
        );
    }
    d.section(0, "Containers");
    containers(d, list_at(o, "/spec/containers"), statuses, true);
    conditions(d, o, &["Type", "Status"]);
    volumes(d, o.pointer("/spec"));
    d.pairs(0, "Node-Selectors", &pairs_at(o, "/spec/nodeSelector"));
}

/// The `Containers:` entries of a pod (with states) or a template (without).
fn containers(d: &mut Describer, specs: &[Value], statuses: &[Value], with_state: bool) {
    if specs.is_empty() {
        d.text(1, "<none>");
    }
    for c in specs {
        let name = str_at(c, "/name").unwrap_or("");
        d.section(1, name);
        d.field(2, "Image", str_at(c, "/image").unwrap_or(""));
        let ports: Vec<String> = list_at(c, "/ports")
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    int_at(p, "/containerPort").unwrap_or(0),
                    str_at(p, "/protocol").unwrap_or("TCP")
                )
            })
            .collect();
        d.field(2, "Port", or_none(Some(&ports.join(", "))));
        let words = |ptr: &str| -> Vec<String> { list_at(c, ptr).iter().map(scalar).collect() };
        let command = words("/command");
        if !command.is_empty() {
            d.field(2, "Command", command.join("\n"));
        }
        let args = words("/args");
        if !args.is_empty() {
            d.field(2, "Args", args.join("\n"));
        }
        if with_state {
            let st = statuses.iter().find(|s| str_at(s, "/name") == Some(name));
            match st {
                Some(s) => {
                    state(d, s.pointer("/state"), "State");
                    if s.pointer("/lastState")
                        .is_some_and(|l| l.as_object().is_some_and(|m| !m.is_empty()))
                    {
                        state(d, s.pointer("/lastState"), "Last State");
                    }
                    d.field(
                        2,
                        "Ready",
                        if bool_at(s, "/ready") == Some(true) {
                            "True"
                        } else {
                            "False"
                        },
                    );
                    d.field(
                        2,
                        "Restart Count",
                        int_at(s, "/restartCount").unwrap_or(0).to_string(),
                    );
                }
                None => {
                    d.field(2, "State", "Waiting");
                    d.field(2, "Ready", "False");
                    d.field(2, "Restart Count", "0");
                }
            }
        }
        for (title, ptr) in [
            ("Limits", "/resources/limits"),
            ("Requests", "/resources/requests"),
        ] {
            let pairs = pairs_at(c, ptr);
            if !pairs.is_empty() {
                d.section(2, title);
                for (k, v) in pairs {
                    d.field(3, &k, v);
                }
            }
        }
        let env = list_at(c, "/env");
        if env.is_empty() {
            d.field(2, "Environment", "<none>");
        } else {
            d.section(2, "Environment");
            for e in env {
                let value = match (str_at(e, "/value"), e.get("valueFrom")) {
                    (Some(v), _) => v.to_string(),
                    (None, Some(from)) => env_source(from),
                    _ => String::new(),
                };
                d.field(3, str_at(e, "/name").unwrap_or(""), value);
            }
        }
        let mounts = list_at(c, "/volumeMounts");
        if mounts.is_empty() {
            d.field(2, "Mounts", "<none>");
        } else {
            d.section(2, "Mounts");
            for m in mounts {
                d.text(
                    3,
                    &format!(
                        "{} from {} ({})",
                        str_at(m, "/mountPath").unwrap_or(""),
                        str_at(m, "/name").unwrap_or(""),
                        if bool_at(m, "/readOnly") == Some(true) {
                            "ro"
                        } else {
                            "rw"
                        }
                    ),
                );
            }
        }
    }
}

fn env_source(from: &Value) -> String {
    if let Some(r) = from.get("secretKeyRef") {
        format!(
            "<set to the key '{}' in secret '{}'>",
            str_at(r, "/key").unwrap_or(""),
            str_at(r, "/name").unwrap_or("")
        )
    } else if let Some(r) = from.get("configMapKeyRef") {
        format!(
            "<set to the key '{}' of config map '{}'>",
            str_at(r, "/key").unwrap_or(""),
            str_at(r, "/name").unwrap_or("")
        )
    } else if let Some(r) = from.get("fieldRef") {
        format!("({})", str_at(r, "/fieldPath").unwrap_or(""))
    } else {
        "<set from another source>".into()
    }
}

fn state(d: &mut Describer, s: Option<&Value>, title: &str) {
    let Some(s) = s.and_then(Value::as_object) else {
        d.field(2, title, "Waiting");
        return;
    };
    if let Some(r) = s.get("running") {
        d.field(2, title, "Running");
        if let Some(t) = str_at(r, "/startedAt") {
            d.field(3, "Started", t);
        }
    } else if let Some(t) = s.get("terminated") {
        d.field(2, title, "Terminated");
        if let Some(r) = str_at(t, "/reason") {
            d.field(3, "Reason", r);
        }
        if let Some(m) = str_at(t, "/message") {
            d.field(3, "Message", m);
        }
        d.field(
            3,
            "Exit Code",
            int_at(t, "/exitCode").unwrap_or(0).to_string(),
        );
        if let Some(sig) = int_at(t, "/signal") {
            d.field(3, "Signal", sig.to_string());
        }
        if let Some(x) = str_at(t, "/startedAt") {
            d.field(3, "Started", x);
        }
        if let Some(x) = str_at(t, "/finishedAt") {
            d.field(3, "Finished", x);
        }
    } else {
        d.field(2, title, "Waiting");
        if let Some(r) = s.get("waiting").and_then(|w| str_at(w, "/reason")) {
            d.field(3, "Reason", r);
        }
        if let Some(m) = s.get("waiting").and_then(|w| str_at(w, "/message")) {
            d.field(3, "Message", m);
        }
    }
}

/// `Conditions:` as a small table of the given columns (object keys in lower camel case).
fn conditions(d: &mut Describer, o: &Value, columns: &[&str]) {
    let list = list_at(o, "/status/conditions");
    if list.is_empty() {
        return;
    }
    d.section(0, "Conditions");
    let mut t = Table::new(columns.iter().map(|c| c.to_string()).collect());
    for c in list {
        t.push(
            columns
                .iter()
                .map(|col| {
                    let key = lower_camel(col);
                    c.get(&key).map(scalar).unwrap_or_default()
                })
                .collect(),
        );
    }
    d.block(1, &t.render(true));
}

fn lower_camel(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn volumes(d: &mut Describer, spec: Option<&Value>) {
    let Some(spec) = spec else { return };
    let vols = list_at(spec, "/volumes");
    if vols.is_empty() {
        d.field(0, "Volumes", "<none>");
        return;
    }
    d.section(0, "Volumes");
    for v in vols {
        d.section(1, str_at(v, "/name").unwrap_or(""));
        if let Some((kind, source)) = v
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| *k != "name"))
        {
            d.field(2, "Type", kind.as_str());
            if let Some(m) = source.as_object() {
                for (k, val) in m {
                    if !val.is_object() && !val.is_array() {
                        d.field(2, k, scalar(val));
                    }
                }
            }
        }
    }
}

fn pod_template(d: &mut Describer, o: &Value) {
    d.section(0, "Pod Template");
    d.pairs(1, "Labels", &pairs_at(o, "/spec/template/metadata/labels"));
    d.section(1, "Containers");
    let specs = list_at(o, "/spec/template/spec/containers");
    containers(d, specs, &[], false);
    if let Some(spec) = o.pointer("/spec/template/spec") {
        let vols = list_at(spec, "/volumes");
        if !vols.is_empty() {
            d.section(1, "Volumes");
            for v in vols {
                d.text(2, str_at(v, "/name").unwrap_or(""));
            }
        }
    }
}

fn deployment(d: &mut Describer, o: &Value) {
    d.field(0, "Selector", label_selector(o.pointer("/spec/selector")));
    let desired = int_at(o, "/spec/replicas").unwrap_or(1);
    let n = |p: &str| int_at(o, p).unwrap_or(0);
    d.field(
        0,
        "Replicas",
        format!(
            "{desired} desired | {} updated | {} total | {} available | {} unavailable",
            n("/status/updatedReplicas"),
            n("/status/replicas"),
            n("/status/availableReplicas"),
            n("/status/unavailableReplicas"),
        ),
    );
    let strategy = str_at(o, "/spec/strategy/type").unwrap_or("RollingUpdate");
    d.field(0, "StrategyType", strategy);
    d.field(0, "MinReadySeconds", n("/spec/minReadySeconds").to_string());
    if strategy == "RollingUpdate" {
        let get = |p: &str| o.pointer(p).map(scalar).unwrap_or_else(|| "25%".into());
        d.field(
            0,
            "RollingUpdateStrategy",
            format!(
                "{} max unavailable, {} max surge",
                get("/spec/strategy/rollingUpdate/maxUnavailable"),
                get("/spec/strategy/rollingUpdate/maxSurge")
            ),
        );
    }
    pod_template(d, o);
    conditions(d, o, &["Type", "Status", "Reason"]);
}

fn daemonset(d: &mut Describer, o: &Value) {
    d.field(0, "Selector", label_selector(o.pointer("/spec/selector")));
    d.field(
        0,
        "Node-Selector",
        crate::json::join_pairs(&pairs_at(o, "/spec/template/spec/nodeSelector")),
    );
    let n = |p: &str| int_at(o, p).unwrap_or(0).to_string();
    d.field(
        0,
        "Desired Number of Nodes Scheduled",
        n("/status/desiredNumberScheduled"),
    );
    d.field(
        0,
        "Current Number of Nodes Scheduled",
        n("/status/currentNumberScheduled"),
    );
    d.field(
        0,
        "Number of Nodes Scheduled with Up-to-date Pods",
        n("/status/updatedNumberScheduled"),
    );
    d.field(
        0,
        "Number of Nodes Scheduled with Available Pods",
        n("/status/numberAvailable"),
    );
    d.field(
        0,
        "Number of Nodes Misscheduled",
        n("/status/numberMisscheduled"),
    );
    d.field(
        0,
        "Pods Status",
        format!("{} Ready", n("/status/numberReady")),
    );
    pod_template(d, o);
}

fn service(d: &mut Describer, o: &Value) {
    d.field(
        0,
        "Selector",
        crate::json::join_pairs(&pairs_at(o, "/spec/selector")),
    );
    d.field(0, "Type", str_at(o, "/spec/type").unwrap_or("ClusterIP"));
    d.field(0, "IP", or_none(str_at(o, "/spec/clusterIP")));
    let external: Vec<String> = list_at(o, "/spec/externalIPs").iter().map(scalar).collect();
    if !external.is_empty() {
        d.field(0, "External IPs", external.join(","));
    }
    let ports = list_at(o, "/spec/ports");
    if ports.is_empty() {
        d.field(0, "Port", service_ports(o));
    }
    for p in ports {
        let proto = str_at(p, "/protocol").unwrap_or("TCP");
        let name = str_at(p, "/name").unwrap_or("<unset>");
        d.field(
            0,
            "Port",
            format!("{name}  {}/{proto}", int_at(p, "/port").unwrap_or(0)),
        );
        let target = p
            .get("targetPort")
            .map(scalar)
            .unwrap_or_else(|| int_at(p, "/port").unwrap_or(0).to_string());
        d.field(0, "TargetPort", format!("{target}/{proto}"));
        if let Some(np) = int_at(p, "/nodePort").filter(|n| *n != 0) {
            d.field(0, "NodePort", format!("{name}  {np}/{proto}"));
        }
    }
    d.field(
        0,
        "Session Affinity",
        str_at(o, "/spec/sessionAffinity").unwrap_or("None"),
    );
}

fn node(d: &mut Describer, o: &Value) {
    d.field(
        0,
        "Unschedulable",
        if bool_at(o, "/spec/unschedulable") == Some(true) {
            "true"
        } else {
            "false"
        },
    );
    d.field(0, "Status", node_status(o));
    conditions(
        d,
        o,
        &["Type", "Status", "LastHeartbeatTime", "Reason", "Message"],
    );
    let addresses = list_at(o, "/status/addresses");
    if addresses.is_empty() {
        d.field(0, "Addresses", "<none>");
    } else {
        d.section(0, "Addresses");
        for a in addresses {
            d.field(
                1,
                str_at(a, "/type").unwrap_or(""),
                str_at(a, "/address").unwrap_or(""),
            );
        }
    }
    for (title, ptr) in [
        ("Capacity", "/status/capacity"),
        ("Allocatable", "/status/allocatable"),
    ] {
        let pairs = pairs_at(o, ptr);
        if !pairs.is_empty() {
            d.section(0, title);
            for (k, v) in pairs {
                d.field(1, &k, v);
            }
        }
    }
    d.section(0, "System Info");
    let info = |f: &str| {
        str_at(o, &format!("/status/nodeInfo/{f}"))
            .unwrap_or("")
            .to_string()
    };
    d.field(1, "Architecture", info("architecture"));
    d.field(1, "Operating System", info("operatingSystem"));
    d.field(1, "OS Image", info("osImage"));
    d.field(1, "Kernel Version", info("kernelVersion"));
    d.field(
        1,
        "Container Runtime Version",
        info("containerRuntimeVersion"),
    );
    d.field(1, "Kubelet Version", info("kubeletVersion"));
    d.field(0, "PodCIDR", or_none(str_at(o, "/spec/podCIDR")));
}

/// Decoded size of base64 text without decoding it.
fn base64_len(s: &str) -> usize {
    let chars = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .count();
    chars * 3 / 4
}

fn secret(d: &mut Describer, o: &Value) {
    d.blank();
    d.field(0, "Type", str_at(o, "/type").unwrap_or("Opaque"));
    d.blank();
    d.text(0, "Data");
    d.text(0, "====");
    let data = o.pointer("/data").and_then(Value::as_object);
    match data {
        Some(m) if !m.is_empty() => {
            for (k, v) in m {
                let n = v.as_str().map(base64_len).unwrap_or(0);
                d.field(0, k, format!("{n} bytes"));
            }
        }
        _ => {}
    }
}

fn configmap(d: &mut Describer, o: &Value) {
    d.blank();
    d.text(0, "Data");
    d.text(0, "====");
    for (k, v) in pairs_at(o, "/data") {
        d.text(0, &format!("{k}:"));
        d.text(0, "----");
        d.block(0, &v);
        d.blank();
    }
    d.text(0, "BinaryData");
    d.text(0, "====");
    if let Some(m) = o.pointer("/binaryData").and_then(Value::as_object) {
        for (k, v) in m {
            let n = v.as_str().map(base64_len).unwrap_or(0);
            d.text(0, &format!("{k}: {n} bytes"));
        }
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Kinds without their own layout: spec and status as YAML.
fn spec_and_status(d: &mut Describer, o: &Value) {
    for (title, key) in [("Spec", "spec"), ("Status", "status")] {
        match o.get(key) {
            Some(v) if !is_empty_value(v) => {
                d.section(0, title);
                let text = serde_yaml_ng::to_string(v).unwrap_or_default();
                d.block(1, &text);
            }
            _ => {}
        }
    }
    // Endpoints keep their data in subsets.
    if let Some(subsets) = o.get("subsets") {
        d.section(0, "Subsets");
        d.block(1, &serde_yaml_ng::to_string(subsets).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_description_has_node_status_ip_and_containers() {
        let p = json!({"metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"},
                "creationTimestamp": "2026-11-27T22:56:02Z"},
            "spec": {"nodeName": "pi-1", "containers": [{"name": "web", "image": "nginx:1.27",
                "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]}]},
            "status": {"phase": "Running", "podIP": "10.42.0.7", "hostIP": "192.168.1.20",
                "containerStatuses": [{"name": "web", "ready": true, "restartCount": 1,
                    "state": {"running": {"startedAt": "2026-11-27T22:56:10Z"}}}]}});
        let text = describe("Pod", &p, true);
        for want in [
            "Name:               web-1\n",
            "Namespace:          default\n",
            "Labels:             app=web\n",
            "Annotations:        <none>\n",
            "Node:               pi-1/192.168.1.20\n",
            "Status:             Running\n",
            "IP:                 10.42.0.7\n",
            "Containers:\n  web:\n    Image:          nginx:1.27\n    Port:           80/TCP\n    State:          Running\n      Started:      2026-11-27T22:56:10Z\n    Ready:          True\n    Restart Count:  1\n",
            "      PW:        <set to the key 'pw' in secret 'db'>\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn fresh_pod_and_deployment_cope_with_no_status() {
        let p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        let text = describe("Pod", &p, true);
        assert!(text.contains("Status:             Pending\n"), "{text}");
        assert!(text.contains("Node:               <none>\n"), "{text}");
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        let text = describe("Deployment", &d, true);
        assert!(text.contains("Replicas:               3 desired | 0 updated | 0 total | 0 available | 0 unavailable\n"), "{text}");
        assert!(
            text.contains("StrategyType:           RollingUpdate\n"),
            "{text}"
        );
        assert!(text.contains("Selector:               app=web\n"), "{text}");
    }

    #[test]
    fn secrets_show_sizes_never_values() {
        // "hunter2" = aHVudGVyMg==, "abc" = YWJj
        let s = json!({"metadata": {"name": "db"}, "type": "Opaque", "data": {"pw": "aHVudGVyMg==", "user": "YWJj"}});
        let text = describe("Secret", &s, true);
        assert!(text.contains("pw:    7 bytes\n"), "{text}");
        assert!(text.contains("user:  3 bytes\n"), "{text}");
        assert!(!text.contains("aHVudGVyMg"), "{text}");
        assert_eq!(base64_len(""), 0);
        assert_eq!(base64_len("YQ=="), 1);
        assert_eq!(base64_len("YWI="), 2);
    }

    #[test]
    fn services_nodes_and_fallback() {
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.10",
            "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
        let text = describe("Service", &svc, true);
        assert!(
            text.contains("Port:               http  80/TCP\n"),
            "{text}"
        );
        assert!(text.contains("TargetPort:         8080/TCP\n"), "{text}");
        assert!(text.contains("IP:                 10.43.0.10\n"), "{text}");

        let n = json!({"metadata": {"name": "pi-1"}, "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "AgentReady"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.20"}],
            "nodeInfo": {"architecture": "arm64"}}});
        let text = describe("Node", &n, false);
        assert!(!text.contains("Namespace:"), "{text}");
        assert!(text.contains("Conditions:\n  Type    Status   LastHeartbeatTime   Reason       Message\n  Ready   True                         AgentReady\n"), "{text}");
        assert!(text.contains("  InternalIP:  192.168.1.20\n"), "{text}");
        assert!(
            text.contains("  Architecture:               arm64\n"),
            "{text}"
        );

        let hpa = json!({"metadata": {"name": "h"}, "spec": {"maxReplicas": 3}, "status": {}});
        let text = describe("HorizontalPodAutoscaler", &hpa, true);
        assert!(text.contains("Spec:\n  maxReplicas: 3\n"), "{text}");
        assert!(!text.contains("Status:"), "{text}");
    }
}
