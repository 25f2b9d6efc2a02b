//! kubectl's table columns for each kind: headers, and cells computed from an
//! object as the hub stores it. Statuses may still be empty early in an
//! object's life, so every cell has a kubectl-like fallback (`<none>`, `0`,
//! `Pending`). The hub's server-side `Table`s and the CLI's tables both come
//! from here.
//!
//! Length: over 600 lines because its unit tests included; the code is under
//! 600 lines (one column set per kind).

use std::time::SystemTime;

use serde_json::Value;

use super::age::age;
use super::json::{bool_at, int_at, len_at, list_at, pairs_at, str_at};

/// Headers and `-o wide` extra headers of a kind.
pub fn headers_of(kind: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        "Pod" => (
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            &["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        ),
        "Deployment" => (
            &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            &["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        "ReplicaSet" => (
            &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            &["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        "DaemonSet" => (
            &[
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "NODE SELECTOR",
                "AGE",
            ],
            &["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        "StatefulSet" => (&["NAME", "READY", "AGE"], &["CONTAINERS", "IMAGES"]),
        "Service" => (
            &[
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
            ],
            &["SELECTOR"],
        ),
        "ConfigMap" => (&["NAME", "DATA", "AGE"], &[]),
        "Secret" => (&["NAME", "TYPE", "DATA", "AGE"], &[]),
        "Node" => (
            &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
            // Kubernetes' wide columns, then ARCH: on a mixed ARM/x86 fleet
            // it decides placement.
            &[
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME",
                "ARCH",
            ],
        ),
        "Namespace" => (&["NAME", "STATUS", "AGE"], &[]),
        "Endpoints" => (&["NAME", "ENDPOINTS", "AGE"], &[]),
        "Ingress" => (&["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], &[]),
        "NetworkPolicy" => (&["NAME", "POD-SELECTOR", "AGE"], &[]),
        "Job" => super::batch::JOB_HEADERS,
        "CronJob" => super::batch::CRONJOB_HEADERS,
        "Build" => super::build::BUILD_HEADERS,
        // kubectl interleaves SUBOBJECT and SOURCE before MESSAGE under -o
        // wide; here the wide columns follow the default ones.
        "Event" => (
            &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            &["SUBOBJECT", "SOURCE", "FIRST SEEN", "COUNT", "NAME"],
        ),
        "HorizontalPodAutoscaler" => (
            &[
                "NAME",
                "REFERENCE",
                "TARGETS",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "AGE",
            ],
            &[],
        ),
        "PersistentVolumeClaim" => (
            &[
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "ACCESS MODES",
                "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS",
                "AGE",
            ],
            &["VOLUMEMODE"],
        ),
        "PersistentVolume" => (
            &[
                "NAME",
                "CAPACITY",
                "ACCESS MODES",
                "RECLAIM POLICY",
                "STATUS",
                "CLAIM",
                "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS",
                "REASON",
                "AGE",
            ],
            &["VOLUMEMODE"],
        ),
        "StorageClass" => (
            &[
                "NAME",
                "PROVISIONER",
                "RECLAIMPOLICY",
                "VOLUMEBINDINGMODE",
                "ALLOWVOLUMEEXPANSION",
                "AGE",
            ],
            &[],
        ),
        _ => (&["NAME", "AGE"], &[]),
    }
}

/// Base cells (NAME first) and wide cells of one object.
pub fn cells(kind: &str, o: &Value, now: SystemTime) -> (Vec<String>, Vec<String>) {
    let name = super::json::name(o).to_string();
    let age = age(str_at(o, "/metadata/creationTimestamp"), now);
    match kind {
        "Pod" => {
            let containers = list_at(o, "/spec/containers").len();
            let statuses = list_at(o, "/status/containerStatuses");
            let ready = statuses
                .iter()
                .filter(|s| bool_at(s, "/ready") == Some(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .map(|s| int_at(s, "/restartCount").unwrap_or(0))
                .sum();
            (
                vec![
                    name,
                    format!("{ready}/{containers}"),
                    pod_status(o),
                    restarts.to_string(),
                    age,
                ],
                vec![
                    or_none(str_at(o, "/status/podIP")),
                    or_none(str_at(o, "/spec/nodeName")),
                    or_none(str_at(o, "/status/nominatedNodeName")),
                    // Bramble has no readiness gates: kubectl's `<none>`.
                    "<none>".to_string(),
                ],
            )
        }
        "Deployment" => {
            let desired = int_at(o, "/spec/replicas").unwrap_or(1);
            (
                vec![
                    name,
                    format!("{}/{desired}", count(o, "/status/readyReplicas")),
                    count(o, "/status/updatedReplicas"),
                    count(o, "/status/availableReplicas"),
                    age,
                ],
                template_columns(o),
            )
        }
        "ReplicaSet" => (
            vec![
                name,
                int_at(o, "/spec/replicas").unwrap_or(1).to_string(),
                count(o, "/status/replicas"),
                count(o, "/status/readyReplicas"),
                age,
            ],
            template_columns(o),
        ),
        "DaemonSet" => (
            vec![
                name,
                count(o, "/status/desiredNumberScheduled"),
                count(o, "/status/currentNumberScheduled"),
                count(o, "/status/numberReady"),
                count(o, "/status/updatedNumberScheduled"),
                count(o, "/status/numberAvailable"),
                super::json::join_pairs(&pairs_at(o, "/spec/template/spec/nodeSelector")),
                age,
            ],
            template_columns(o),
        ),
        "StatefulSet" => (
            vec![
                name,
                format!(
                    "{}/{}",
                    count(o, "/status/readyReplicas"),
                    int_at(o, "/spec/replicas").unwrap_or(1)
                ),
                age,
            ],
            template_columns(o)[..2].to_vec(),
        ),
        "Service" => (
            vec![
                name,
                str_at(o, "/spec/type").unwrap_or("ClusterIP").to_string(),
                or_none(str_at(o, "/spec/clusterIP")),
                service_external_ip(o),
                service_ports(o),
                age,
            ],
            vec![super::json::join_pairs(&pairs_at(o, "/spec/selector"))],
        ),
        "ConfigMap" => (
            vec![
                name,
                (len_at(o, "/data") + len_at(o, "/binaryData")).to_string(),
                age,
            ],
            vec![],
        ),
        "Secret" => (
            vec![
                name,
                str_at(o, "/type").unwrap_or("Opaque").to_string(),
                len_at(o, "/data").to_string(),
                age,
            ],
            vec![],
        ),
        "Node" => {
            let info = |f: &str| or_none(str_at(o, &format!("/status/nodeInfo/{f}")));
            (
                vec![
                    name,
                    node_status(o),
                    node_roles(o),
                    age,
                    info("kubeletVersion"),
                ],
                vec![
                    node_address(o, "InternalIP"),
                    node_address(o, "ExternalIP"),
                    info("osImage"),
                    info("kernelVersion"),
                    info("containerRuntimeVersion"),
                    info("architecture"),
                ],
            )
        }
        "Namespace" => (
            vec![
                name,
                str_at(o, "/status/phase").unwrap_or("Active").to_string(),
                age,
            ],
            vec![],
        ),
        "Endpoints" => (vec![name, endpoints(o), age], vec![]),
        "Ingress" => (
            vec![
                name,
                or_none(str_at(o, "/spec/ingressClassName")),
                ingress_hosts(o),
                load_balancer_addresses(o).unwrap_or_default(),
                if list_at(o, "/spec/tls").is_empty() {
                    "80".into()
                } else {
                    "80, 443".into()
                },
                age,
            ],
            vec![],
        ),
        "NetworkPolicy" => (
            vec![name, label_selector(o.pointer("/spec/podSelector")), age],
            vec![],
        ),
        "HorizontalPodAutoscaler" => (
            vec![
                name,
                format!(
                    "{}/{}",
                    str_at(o, "/spec/scaleTargetRef/kind").unwrap_or(""),
                    str_at(o, "/spec/scaleTargetRef/name").unwrap_or("")
                ),
                hpa_targets(o),
                int_at(o, "/spec/minReplicas").unwrap_or(1).to_string(),
                count(o, "/spec/maxReplicas"),
                count(o, "/status/currentReplicas"),
                age,
            ],
            vec![],
        ),
        "Event" => event_cells(o, name, now),
        "PersistentVolumeClaim" => (
            vec![
                name,
                str_at(o, "/status/phase").unwrap_or("Pending").to_string(),
                str_at(o, "/spec/volumeName").unwrap_or("").to_string(),
                str_at(o, "/status/capacity/storage")
                    .unwrap_or("")
                    .to_string(),
                access_modes(o, "/status/accessModes"),
                or_unset(str_at(o, "/spec/storageClassName")),
                "<unset>".into(),
                age,
            ],
            vec![volume_mode(o)],
        ),
        "PersistentVolume" => {
            let claim = volume_claim(o);
            (
                vec![
                    name,
                    str_at(o, "/spec/capacity/storage")
                        .unwrap_or("")
                        .to_string(),
                    access_modes(o, "/spec/accessModes"),
                    str_at(o, "/spec/persistentVolumeReclaimPolicy")
                        .unwrap_or("Retain")
                        .to_string(),
                    str_at(o, "/status/phase").unwrap_or("Pending").to_string(),
                    claim,
                    str_at(o, "/spec/storageClassName")
                        .unwrap_or("")
                        .to_string(),
                    "<unset>".into(),
                    str_at(o, "/status/reason").unwrap_or("").to_string(),
                    age,
                ],
                vec![volume_mode(o)],
            )
        }
        "StorageClass" => {
            let default = str_at(
                o,
                "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
            ) == Some("true");
            (
                vec![
                    if default {
                        format!("{name} (default)")
                    } else {
                        name
                    },
                    str_at(o, "/provisioner").unwrap_or("").to_string(),
                    str_at(o, "/reclaimPolicy").unwrap_or("Delete").to_string(),
                    str_at(o, "/volumeBindingMode")
                        .unwrap_or("Immediate")
                        .to_string(),
                    bool_at(o, "/allowVolumeExpansion")
                        .unwrap_or(false)
                        .to_string(),
                    age,
                ],
                vec![],
            )
        }
        "Job" => super::batch::job_cells(o, name, now),
        "CronJob" => super::batch::cronjob_cells(o, name, now),
        "Build" => super::build::build_cells(o, name, now),
        _ => (vec![name, age], vec![]),
    }
}

/// kubectl's event row: times fall back from `lastTimestamp` to
/// `firstTimestamp` to `eventTime`, a series' count and last time win.
fn event_cells(o: &Value, name: String, now: SystemTime) -> (Vec<String>, Vec<String>) {
    let first = str_at(o, "/firstTimestamp").or_else(|| str_at(o, "/eventTime"));
    let mut last = str_at(o, "/lastTimestamp").or(first);
    let mut count = int_at(o, "/count").unwrap_or(0);
    if o.pointer("/series").is_some_and(Value::is_object) {
        last = str_at(o, "/series/lastObservedTime").or(last);
        count = int_at(o, "/series/count").unwrap_or(count);
    } else if count == 0 {
        count = 1;
    }
    let kind = str_at(o, "/involvedObject/kind")
        .unwrap_or("")
        .to_ascii_lowercase();
    let object = match str_at(o, "/involvedObject/name").filter(|n| !n.is_empty()) {
        Some(n) => format!("{kind}/{n}"),
        None => kind,
    };
    let component = str_at(o, "/source/component")
        .filter(|c| !c.is_empty())
        .or_else(|| str_at(o, "/reportingComponent"));
    let host = str_at(o, "/source/host")
        .filter(|h| !h.is_empty())
        .or_else(|| str_at(o, "/reportingInstance"))
        .filter(|h| !h.is_empty());
    let source = match (component, host) {
        (Some(c), Some(h)) => format!("{c}, {h}"),
        (Some(c), None) => c.to_string(),
        (None, _) => String::new(),
    };
    (
        vec![
            age(last, now),
            str_at(o, "/type").unwrap_or("").to_string(),
            str_at(o, "/reason").unwrap_or("").to_string(),
            object,
            str_at(o, "/message").unwrap_or("").trim().to_string(),
        ],
        vec![
            str_at(o, "/involvedObject/fieldPath")
                .unwrap_or("")
                .to_string(),
            source,
            age(first, now),
            count.to_string(),
            name,
        ],
    )
}

/// A PersistentVolume's claim as kubectl shows it: `namespace/name`.
pub fn volume_claim(o: &Value) -> String {
    match (
        str_at(o, "/spec/claimRef/namespace"),
        str_at(o, "/spec/claimRef/name"),
    ) {
        (Some(ns), Some(n)) => format!("{ns}/{n}"),
        (None, Some(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// kubectl's short access modes: `RWO,ROX`.
pub fn access_modes(o: &Value, pointer: &str) -> String {
    list_at(o, pointer)
        .iter()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn volume_mode(o: &Value) -> String {
    str_at(o, "/spec/volumeMode")
        .unwrap_or("Filesystem")
        .to_string()
}

fn or_unset(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<unset>".into(),
    }
}

fn or_none(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".into(),
    }
}

fn count(o: &Value, pointer: &str) -> String {
    int_at(o, pointer).unwrap_or(0).to_string()
}

/// kubectl's pod STATUS: the most telling reason among phase, pod reason and
/// container states; `Terminating` once deletion started.
pub fn pod_status(o: &Value) -> String {
    let mut reason = str_at(o, "/status/phase")
        .filter(|s| !s.is_empty())
        .unwrap_or("Pending")
        .to_string();
    if let Some(r) = str_at(o, "/status/reason").filter(|s| !s.is_empty()) {
        reason = r.to_string();
    }

    let inits = list_at(o, "/status/initContainerStatuses");
    let total_inits = list_at(o, "/spec/initContainers").len().max(inits.len());
    let mut initializing = false;
    for (i, s) in inits.iter().enumerate() {
        if int_at(s, "/state/terminated/exitCode") == Some(0) {
            continue;
        }
        initializing = true;
        reason = if let Some(r) = str_at(s, "/state/terminated/reason").filter(|r| !r.is_empty()) {
            format!("Init:{r}")
        } else if let Some(code) = int_at(s, "/state/terminated/exitCode") {
            format!("Init:ExitCode:{code}")
        } else if let Some(r) =
            str_at(s, "/state/waiting/reason").filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            format!("Init:{r}")
        } else {
            format!("Init:{i}/{total_inits}")
        };
        break;
    }

    if !initializing {
        let mut has_running = false;
        for s in list_at(o, "/status/containerStatuses").iter().rev() {
            if let Some(r) = str_at(s, "/state/waiting/reason").filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if let Some(r) = str_at(s, "/state/terminated/reason").filter(|r| !r.is_empty())
            {
                reason = r.to_string();
            } else if let Some(sig) = int_at(s, "/state/terminated/signal").filter(|s| *s != 0) {
                reason = format!("Signal:{sig}");
            } else if let Some(code) = int_at(s, "/state/terminated/exitCode") {
                reason = format!("ExitCode:{code}");
            } else if bool_at(s, "/ready") == Some(true) && s.pointer("/state/running").is_some() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".into();
        }
    }

    if str_at(o, "/metadata/deletionTimestamp").is_some() {
        reason = if str_at(o, "/status/reason") == Some("NodeLost") {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

/// CONTAINERS, IMAGES and SELECTOR of a pod template owner.
fn template_columns(o: &Value) -> Vec<String> {
    let containers = list_at(o, "/spec/template/spec/containers");
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| str_at(c, "/name"))
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| str_at(c, "/image"))
        .collect();
    vec![
        or_none(Some(&names.join(","))),
        or_none(Some(&images.join(","))),
        label_selector(o.pointer("/spec/selector")),
    ]
}

/// A `LabelSelector` object (`matchLabels`/`matchExpressions`) as a string.
pub fn label_selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel else {
        return "<none>".into();
    };
    let mut parts: Vec<String> = pairs_at(sel, "/matchLabels")
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in list_at(sel, "/matchExpressions") {
        let key = str_at(e, "/key").unwrap_or("");
        let values: Vec<&str> = list_at(e, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match str_at(e, "/operator").unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({})", values.join(",")),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// Service ports as `80/TCP,443:30443/TCP`.
pub fn service_ports(o: &Value) -> String {
    let ports: Vec<String> = list_at(o, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int_at(p, "/port").unwrap_or(0);
            let proto = str_at(p, "/protocol").unwrap_or("TCP");
            match int_at(p, "/nodePort").filter(|n| *n != 0) {
                Some(np) => format!("{port}:{np}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    or_none(Some(&ports.join(",")))
}

fn service_external_ip(o: &Value) -> String {
    let external: Vec<&str> = list_at(o, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(o, "/spec/type").unwrap_or("ClusterIP") {
        "LoadBalancer" => {
            let mut all: Vec<String> = load_balancer_addresses(o)
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            all.extend(external.iter().map(|s| s.to_string()));
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => or_none(str_at(o, "/spec/externalName")),
        _ => or_none(Some(&external.join(","))),
    }
}

fn load_balancer_addresses(o: &Value) -> Option<String> {
    let addrs: Vec<&str> = list_at(o, "/status/loadBalancer/ingress")
        .iter()
        .filter_map(|i| str_at(i, "/ip").or_else(|| str_at(i, "/hostname")))
        .collect();
    (!addrs.is_empty()).then(|| addrs.join(","))
}

fn ingress_hosts(o: &Value) -> String {
    let hosts: Vec<&str> = list_at(o, "/spec/rules")
        .iter()
        .map(|r| str_at(r, "/host").unwrap_or("*"))
        .collect();
    if hosts.is_empty() {
        "*".into()
    } else {
        hosts.join(",")
    }
}

/// `Ready`, `NotReady` or `Unknown`, plus `,SchedulingDisabled` when cordoned.
pub fn node_status(o: &Value) -> String {
    let ready = list_at(o, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == Some("Ready"))
        .and_then(|c| str_at(c, "/status"));
    let mut s = match ready {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if bool_at(o, "/spec/unschedulable") == Some(true) {
        s.push_str(",SchedulingDisabled");
    }
    s
}

/// Roles from `node-role.kubernetes.io/ROLE` labels.
pub fn node_roles(o: &Value) -> String {
    let roles: Vec<String> = pairs_at(o, "/metadata/labels")
        .into_iter()
        .filter_map(|(k, _)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .filter(|r| !r.is_empty())
                .map(str::to_string)
        })
        .collect();
    or_none(Some(&roles.join(",")))
}

/// The first address of `kind` (`InternalIP`, `Hostname`, ...).
pub fn node_address(o: &Value, kind: &str) -> String {
    or_none(
        list_at(o, "/status/addresses")
            .iter()
            .find(|a| str_at(a, "/type") == Some(kind))
            .and_then(|a| str_at(a, "/address")),
    )
}

/// `ip:port` pairs, at most three shown.
fn endpoints(o: &Value) -> String {
    let mut all = Vec::new();
    for subset in list_at(o, "/subsets") {
        let ports = list_at(subset, "/ports");
        for addr in list_at(subset, "/addresses") {
            let ip = str_at(addr, "/ip").unwrap_or("");
            if ports.is_empty() {
                all.push(ip.to_string());
            }
            for p in ports {
                all.push(format!("{ip}:{}", int_at(p, "/port").unwrap_or(0)));
            }
        }
    }
    if all.is_empty() {
        return "<none>".into();
    }
    let shown = all[..all.len().min(3)].join(",");
    if all.len() > 3 {
        format!("{shown} + {} more...", all.len() - 3)
    } else {
        shown
    }
}

/// `cpu: 40%/50%` per resource metric; `<unknown>` until the hub measured.
fn hpa_targets(o: &Value) -> String {
    let current = list_at(o, "/status/currentMetrics");
    let parts: Vec<String> = list_at(o, "/spec/metrics")
        .iter()
        .filter(|m| str_at(m, "/type") == Some("Resource"))
        .map(|m| {
            let res = str_at(m, "/resource/name").unwrap_or("?");
            let cur = current
                .iter()
                .find(|c| str_at(c, "/resource/name") == Some(res))
                .and_then(|c| c.pointer("/resource/current"));
            if let Some(target) = int_at(m, "/resource/target/averageUtilization") {
                let now = cur
                    .and_then(|c| int_at(c, "/averageUtilization"))
                    .map(|v| format!("{v}%"))
                    .unwrap_or_else(|| "<unknown>".into());
                format!("{res}: {now}/{target}%")
            } else {
                let target = m
                    .pointer("/resource/target/averageValue")
                    .map(super::json::scalar)
                    .unwrap_or_else(|| "?".into());
                let now = cur
                    .and_then(|c| c.get("averageValue"))
                    .map(super::json::scalar)
                    .unwrap_or_else(|| "<unknown>".into());
                format!("{res}: {now}/{target}")
            }
        })
        .collect();
    or_none(Some(&parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replica_set_rows_are_kubectls() {
        let now = super::super::age::parse_time("2026-01-01T00:10:00Z").unwrap();
        let rs = json!({
            "metadata": {"name": "web-5d8f7c9b4x", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7c9b4x"}},
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
            "status": {"replicas": 1},
        });
        let (base, wide) = cells("ReplicaSet", &rs, now);
        assert_eq!(base, ["web-5d8f7c9b4x", "0", "1", "0", "10m"]);
        assert_eq!(
            wide,
            ["web", "nginx:1.27", "app=web,pod-template-hash=5d8f7c9b4x"]
        );
        assert_eq!(
            headers_of("ReplicaSet"),
            (
                &["NAME", "DESIRED", "CURRENT", "READY", "AGE"][..],
                &["CONTAINERS", "IMAGES", "SELECTOR"][..]
            )
        );
    }

    #[test]
    fn storage_rows_are_kubectls() {
        let now = super::super::age::parse_time("2026-01-01T00:10:00Z").unwrap();
        let t = "2026-01-01T00:00:00Z";
        let pvc = json!({"metadata": {"name": "data", "creationTimestamp": t},
            "spec": {"storageClassName": "local-path", "volumeName": "pvc-1"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce", "ReadWriteOncePod"]}});
        assert_eq!(
            cells("PersistentVolumeClaim", &pvc, now),
            (
                vec![
                    "data",
                    "Bound",
                    "pvc-1",
                    "1Gi",
                    "RWO,RWOP",
                    "local-path",
                    "<unset>",
                    "10m"
                ]
                .into_iter()
                .map(String::from)
                .collect(),
                vec!["Filesystem".to_string()]
            )
        );
        let pv = json!({"metadata": {"name": "pvc-1", "creationTimestamp": t},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"],
                "claimRef": {"namespace": "db", "name": "data"}},
            "status": {"phase": "Released", "reason": "X"}});
        let (base, _) = cells("PersistentVolume", &pv, now);
        assert_eq!(
            base,
            [
                "pvc-1", "1Gi", "ROX", "Retain", "Released", "db/data", "", "<unset>", "X", "10m"
            ]
        );
        let sc = json!({"metadata": {"name": "keep", "creationTimestamp": t},
            "provisioner": "bramble.dev/local-path"});
        let (base, _) = cells("StorageClass", &sc, now);
        assert_eq!(
            base,
            [
                "keep",
                "bramble.dev/local-path",
                "Delete",
                "Immediate",
                "false",
                "10m"
            ]
        );
    }

    #[test]
    fn statefulset_rows_are_kubectls() {
        let now = super::super::age::parse_time("2026-01-01T00:10:00Z").unwrap();
        let sts = json!({
            "metadata": {"name": "db", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "db"}},
                "template": {"spec": {"containers": [{"name": "db", "image": "busybox"},
                    {"name": "log", "image": "fluent-bit:3"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2},
        });
        let (base, wide) = cells("StatefulSet", &sts, now);
        assert_eq!(base, ["db", "2/3", "10m"]);
        assert_eq!(wide, ["db,log", "busybox,fluent-bit:3"]);
        let fresh =
            json!({"metadata": {"name": "db", "creationTimestamp": "2026-01-01T00:00:00Z"}});
        assert_eq!(cells("StatefulSet", &fresh, now).0, ["db", "0/1", "10m"]);
        assert_eq!(
            headers_of("StatefulSet"),
            (&["NAME", "READY", "AGE"][..], &["CONTAINERS", "IMAGES"][..])
        );
    }

    #[test]
    fn event_rows_fall_back_as_kubectl_does() {
        let now = super::super::age::parse_time("2026-01-01T00:10:00Z").unwrap();
        let e = json!({
            "metadata": {"name": "web.1"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
            "type": "Normal", "reason": "Started", "message": " Started container web\n",
            "source": {"component": "kubelet", "host": "pi-1"},
            "firstTimestamp": "2026-01-01T00:00:00Z",
        });
        let (base, wide) = cells("Event", &e, now);
        assert_eq!(
            base,
            [
                "10m",
                "Normal",
                "Started",
                "pod/web",
                "Started container web"
            ]
        );
        assert_eq!(
            wide,
            ["spec.containers{web}", "kubelet, pi-1", "10m", "1", "web.1"]
        );
        // A series' count and last time win; an object without a name is its kind.
        let e = json!({
            "metadata": {"name": "n.1"}, "involvedObject": {"kind": "Node"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "reportingComponent": "node-controller",
            "series": {"count": 7, "lastObservedTime": "2026-01-01T00:09:00.000000Z"},
        });
        let (base, wide) = cells("Event", &e, now);
        assert_eq!((base[0].as_str(), base[3].as_str()), ("60s", "node"));
        assert_eq!(
            (wide[1].as_str(), wide[3].as_str()),
            ("node-controller", "7")
        );
        let (headers, _) = headers_of("Event");
        assert_eq!(
            headers,
            ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        );
    }
}
