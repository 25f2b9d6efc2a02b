//! The `Node` object an accepted `hello` registers: labels, capacity and
//! system info from the board's report, `Ready=True` (`AgentReady`), and a
//! warning when the memory cgroup controller is missing. Pure functions; the
//! caller admits and writes the result.

use bramble_api::protocol::Hello;
use serde_json::{Map, Value, json};

use crate::controllers::nodes::REASON_READY;
use crate::controllers::volumes::VOLUMES_DIR_ANNOTATION;
use crate::network::table::FEATURES_ANNOTATION;

/// Pods a node accepts at most (the Kubernetes default); fewer when its
/// pod CIDR has fewer addresses ([`max_pods`]).
pub const MAX_PODS: u32 = 110;
/// Condition type set while the memory cgroup controller is missing.
pub const CONDITION_MEMORY_CGROUP: &str = "MemoryCgroupMissing";
/// Annotation with the same warning, for `kubectl describe`-style readers.
pub const ANNOTATION_MEMORY_CGROUP: &str = "bramble.dev/memory-cgroup";
/// What the operator reads when memory limits cannot be enforced.
pub const MEMORY_CGROUP_WARNING: &str = "the memory cgroup controller is missing: memory limits \
     are not enforced on this node; add cgroup_enable=memory to the kernel command line \
     (/boot/firmware/cmdline.txt on Raspberry Pi OS) and reboot";

/// The node's object (spec and metadata) after `hello`: `existing` keeps its
/// spec (taints, unschedulable), annotations and labels, and gains the
/// board's labels and the well-known ones.
pub fn node_object(existing: Option<&Value>, hello: &Hello) -> Value {
    let mut node = existing.cloned().unwrap_or_else(|| {
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": hello.node_name}, "spec": {}})
    });
    if let Some(m) = node.as_object_mut() {
        m.remove("status");
    }
    let meta = node["metadata"]
        .as_object_mut()
        .expect("metadata is an object");
    let labels = object_entry(meta, "labels");
    for (k, v) in &hello.labels {
        labels.insert(k.clone(), v.clone().into());
    }
    labels.insert(
        "kubernetes.io/hostname".into(),
        hello.node_name.clone().into(),
    );
    labels.insert(
        "kubernetes.io/arch".into(),
        hello.platform.architecture.clone().into(),
    );
    labels.insert("kubernetes.io/os".into(), hello.platform.os.clone().into());
    let annotations = object_entry(meta, "annotations");
    if hello.features.is_empty() {
        annotations.remove(FEATURES_ANNOTATION);
    } else {
        annotations.insert(FEATURES_ANNOTATION.into(), hello.features.join(",").into());
    }
    match &hello.volumes_dir {
        Some(d) => {
            annotations.insert(VOLUMES_DIR_ANNOTATION.into(), d.clone().into());
        }
        None => {
            annotations.remove(VOLUMES_DIR_ANNOTATION);
        }
    }
    if hello.cgroups.memory_missing() {
        annotations.insert(
            ANNOTATION_MEMORY_CGROUP.into(),
            MEMORY_CGROUP_WARNING.into(),
        );
    } else {
        annotations.remove(ANNOTATION_MEMORY_CGROUP);
    }
    if annotations.is_empty() {
        meta.remove("annotations");
    }
    node
}

/// Pods a node with pod CIDR `pod_cidr` can hold: [`MAX_PODS`], or the
/// addresses of its block when fewer (less the network and broadcast
/// addresses and the bridge's gateway: 61 of a /26).
pub fn max_pods(pod_cidr: Option<&str>) -> u32 {
    let Some(cidr) = pod_cidr.and_then(|c| c.parse::<bramble_api::cidr::Cidr>().ok()) else {
        return MAX_PODS;
    };
    let bits = 32u32.saturating_sub(u32::from(cidr.prefix));
    let addresses = 1u64.checked_shl(bits).unwrap_or(u64::MAX);
    let usable = addresses.saturating_sub(3);
    MAX_PODS.min(u32::try_from(usable).unwrap_or(u32::MAX))
}

/// The node's status after `hello`, for a node with pod CIDR `pod_cidr`;
/// `existing` is the stored status, whose unrelated conditions are kept and
/// whose transition times are kept when a condition does not change.
pub fn node_status(
    existing: Option<&Value>,
    hello: &Hello,
    pod_cidr: Option<&str>,
    now: &str,
) -> Value {
    let resources = json!({
        "cpu": hello.cpus.to_string(),
        "memory": hello.memory_bytes.to_string(),
        "pods": max_pods(pod_cidr).to_string(),
    });
    let mut conditions: Vec<Value> = existing
        .and_then(|s| s["conditions"].as_array())
        .map(|c| {
            c.iter()
                .filter(|c| {
                    !matches!(
                        c["type"].as_str(),
                        Some("Ready") | Some(CONDITION_MEMORY_CGROUP)
                    )
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let old = |ty: &str| {
        existing
            .and_then(|s| s["conditions"].as_array())
            .and_then(|c| c.iter().find(|c| c["type"] == ty))
    };
    let transition = |ty: &str, status: &str| {
        old(ty)
            .filter(|c| c["status"] == status)
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(now)
            .to_string()
    };
    conditions.push(json!({
        "type": "Ready", "status": "True", "reason": REASON_READY,
        "message": format!("agent {} connected (session {})", hello.agent_version, hello.session),
        "lastHeartbeatTime": now,
        "lastTransitionTime": transition("Ready", "True"),
    }));
    if hello.cgroups.memory_missing() {
        conditions.push(json!({
            "type": CONDITION_MEMORY_CGROUP, "status": "True",
            "reason": "MemoryControllerMissing", "message": MEMORY_CGROUP_WARNING,
            "lastTransitionTime": transition(CONDITION_MEMORY_CGROUP, "True"),
        }));
    }
    let runtime = &hello.runtime;
    let mut status = existing.cloned().unwrap_or_else(|| json!({}));
    status["capacity"] = resources.clone();
    status["allocatable"] = resources;
    status["conditions"] = conditions.into();
    let mut addresses = Vec::new();
    if let Some(ip) = hello.internal_ip.as_deref().filter(|ip| !ip.is_empty()) {
        addresses.push(json!({"type": "InternalIP", "address": ip}));
    }
    addresses.push(json!({"type": "Hostname", "address": hello.node_name}));
    status["addresses"] = addresses.into();
    status["nodeInfo"] = json!({
        "architecture": hello.platform.architecture,
        "operatingSystem": hello.platform.os,
        "kernelVersion": hello.kernel_version,
        "osImage": hello.os_image,
        "kubeletVersion": hello.agent_version,
        "containerRuntimeVersion": runtime,
    });
    status
}

fn object_entry<'a>(meta: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = meta
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("just made an object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::{Cgroups, Platform};

    fn hello() -> Hello {
        Hello {
            node_name: "pi-1".into(),
            session: "s1".into(),
            agent_version: "0.1.0".into(),
            platform: Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: "v8".into(),
            },
            kernel_version: "6.6".into(),
            os_image: "Debian".into(),
            cpus: 4,
            memory_bytes: 4 << 30,
            labels: [("room".to_string(), "attic".to_string())].into(),
            cgroups: Cgroups {
                version: 2,
                controllers: vec!["cpu".into()],
            },
            runtime: "libcontainer".into(),
            internal_ip: Some("10.77.0.11".into()),
            features: vec!["network".into()],
            ..Default::default()
        }
    }

    #[test]
    fn builds_a_registered_node_and_keeps_what_others_set() {
        let h = hello();
        let node = node_object(None, &h);
        assert_eq!(node["metadata"]["labels"]["kubernetes.io/arch"], "arm64");
        assert_eq!(node["metadata"]["labels"]["room"], "attic");
        assert!(node["metadata"]["annotations"][ANNOTATION_MEMORY_CGROUP].is_string());
        bramble_api::admit(node.clone()).unwrap();

        let st = node_status(None, &h, Some("10.42.0.0/24"), "2026-01-01T00:00:00Z");
        assert_eq!(st["capacity"]["pods"], "110");
        let small = node_status(None, &h, Some("10.42.0.64/26"), "2026-01-01T00:00:00Z");
        assert_eq!(small["capacity"]["pods"], "61", "the block's addresses");
        assert_eq!(small["allocatable"]["pods"], "61");
        assert_eq!(max_pods(None), 110);
        assert_eq!(max_pods(Some("10.42.0.0/30")), 1);
        assert_eq!(st["nodeInfo"]["kubeletVersion"], "0.1.0");
        assert_eq!(
            st["addresses"],
            json!([{"type": "InternalIP", "address": "10.77.0.11"},
                   {"type": "Hostname", "address": "pi-1"}])
        );
        assert_eq!(
            node["metadata"]["annotations"][FEATURES_ANNOTATION],
            "network"
        );
        let conds = st["conditions"].as_array().unwrap();
        assert_eq!(conds[0]["reason"], REASON_READY);
        assert_eq!(conds[1]["type"], CONDITION_MEMORY_CGROUP);

        let mut existing = node.clone();
        existing["spec"]["unschedulable"] = true.into();
        let mut h2 = h.clone();
        h2.cgroups.controllers.push("memory".into());
        let again = node_object(Some(&existing), &h2);
        assert_eq!(again["spec"]["unschedulable"], true);
        assert!(again["metadata"]["annotations"][ANNOTATION_MEMORY_CGROUP].is_null());
        h2.features.clear();
        let bare = node_object(Some(&existing), &h2);
        assert!(bare["metadata"].get("annotations").is_none());
        let st2 = node_status(Some(&st), &h2, Some("10.42.0.0/24"), "2026-01-02T00:00:00Z");
        let conds = st2["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0]["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(conds[0]["lastHeartbeatTime"], "2026-01-02T00:00:00Z");
    }
}
