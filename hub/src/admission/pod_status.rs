//! A new pod's status as Kubernetes' API server starts it: `phase: Pending`
//! and its `qosClass` (`bramble_api::objects::PodSpec::qos_class`), before
//! any scheduler or node wrote one, so that a client reading the pod at
//! once (`kubectl get pod -o jsonpath='{.status.phase}'`, a watch's `ADDED`
//! event, the create's own answer) sees what Kubernetes would show. Every
//! new pod goes through here: the API's creates and the controllers'. The
//! class is kept when a node reports the pod's status
//! (`crate::ingest::status`), as the kubelet keeps it.

use bramble_api::objects::PodSpec;
use serde_json::{Value, json};

/// Gives the admitted new Pod `object` its first status; any other object
/// is left as it is.
pub fn start(object: &mut Value) {
    if object["apiVersion"] != "v1" || object["kind"] != "Pod" {
        return;
    }
    let qos = serde_json::from_value::<PodSpec>(object["spec"].clone())
        .map(|spec| spec.qos_class())
        .unwrap_or("BestEffort");
    object["status"] = json!({"phase": "Pending", "qosClass": qos});
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_new_pod_is_pending_and_other_kinds_are_untouched() {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "x",
                "resources": {"requests": {"cpu": "10m"}}}]}});
        super::start(&mut pod);
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "Burstable"})
        );
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        super::start(&mut cm);
        assert!(cm.get("status").is_none(), "{cm}");
    }
}
