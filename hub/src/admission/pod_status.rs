//! A new pod's status as Kubernetes' API server starts it: `phase: Pending`,
//! before any scheduler or node wrote one, so that a client reading the pod
//! at once (`kubectl get pod -o jsonpath='{.status.phase}'`, a watch's
//! `ADDED` event, the create's own answer) sees the phase Kubernetes would
//! show. Every new pod goes through here: the API's creates and the
//! controllers'.

use serde_json::{Value, json};

/// Gives the admitted new Pod `object` its first status; any other object
/// is left as it is.
pub fn start(object: &mut Value) {
    if object["apiVersion"] != "v1" || object["kind"] != "Pod" {
        return;
    }
    object["status"] = json!({"phase": "Pending"});
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_new_pod_is_pending_and_other_kinds_are_untouched() {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        super::start(&mut pod);
        assert_eq!(pod["status"], json!({"phase": "Pending"}));
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        super::start(&mut cm);
        assert!(cm.get("status").is_none(), "{cm}");
    }
}
