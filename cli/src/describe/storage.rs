//! `describe` of PersistentVolumeClaims, PersistentVolumes and
//! StorageClasses, in kubectl's layout (after the common metadata).

use serde_json::Value;

use super::writer::Describer;
use crate::json::{list_at, pairs_at, str_at};
use bramble_api::printing::columns::{access_modes, volume_claim};

/// `describe pvc`.
pub fn claim(d: &mut Describer, o: &Value) {
    d.field(
        0,
        "StorageClass",
        str_at(o, "/spec/storageClassName").unwrap_or(""),
    );
    d.field(0, "Status", str_at(o, "/status/phase").unwrap_or("Pending"));
    d.field(0, "Volume", str_at(o, "/spec/volumeName").unwrap_or(""));
    d.field(
        0,
        "Capacity",
        str_at(o, "/status/capacity/storage").unwrap_or(""),
    );
    d.field(0, "Access Modes", access_modes(o, "/status/accessModes"));
    d.field(
        0,
        "VolumeMode",
        str_at(o, "/spec/volumeMode").unwrap_or("Filesystem"),
    );
    d.field(
        0,
        "Requested",
        str_at(o, "/spec/resources/requests/storage").unwrap_or(""),
    );
    conditions(d, o);
}

/// `describe pv`.
pub fn volume(d: &mut Describer, o: &Value) {
    d.field(
        0,
        "StorageClass",
        str_at(o, "/spec/storageClassName").unwrap_or(""),
    );
    d.field(0, "Status", str_at(o, "/status/phase").unwrap_or("Pending"));
    d.field(0, "Claim", volume_claim(o));
    d.field(
        0,
        "Reclaim Policy",
        str_at(o, "/spec/persistentVolumeReclaimPolicy").unwrap_or("Retain"),
    );
    d.field(0, "Access Modes", access_modes(o, "/spec/accessModes"));
    d.field(
        0,
        "VolumeMode",
        str_at(o, "/spec/volumeMode").unwrap_or("Filesystem"),
    );
    d.field(
        0,
        "Capacity",
        str_at(o, "/spec/capacity/storage").unwrap_or(""),
    );
    d.text(0, "Node Affinity:");
    let terms = list_at(o, "/spec/nodeAffinity/required/nodeSelectorTerms");
    if terms.is_empty() {
        d.field(1, "Required Terms", "<none>");
    } else {
        d.text(1, "Required Terms:");
        for (i, term) in terms.iter().enumerate() {
            let exprs: Vec<String> = list_at(term, "/matchExpressions")
                .iter()
                .map(|e| {
                    let values: Vec<&str> = list_at(e, "/values")
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
                    format!(
                        "{} {} [{}]",
                        str_at(e, "/key").unwrap_or(""),
                        str_at(e, "/operator").unwrap_or("").to_lowercase(),
                        values.join(", ")
                    )
                })
                .collect();
            d.field(2, &format!("Term {i}"), exprs.join(", "));
        }
    }
    d.field(0, "Message", str_at(o, "/status/message").unwrap_or(""));
    d.text(0, "Source:");
    if let Some(path) = str_at(o, "/spec/local/path") {
        d.field(
            1,
            "Type",
            "LocalVolume (a persistent volume backed by local storage on a node)",
        );
        d.field(1, "Path", path);
    } else if let Some(path) = str_at(o, "/spec/hostPath/path") {
        d.field(1, "Type", "HostPath (bare host directory volume)");
        d.field(1, "Path", path);
        d.field(
            1,
            "HostPathType",
            str_at(o, "/spec/hostPath/type").unwrap_or(""),
        );
    }
}

/// `describe sc`.
pub fn class(d: &mut Describer, o: &Value) {
    let default = str_at(
        o,
        "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
    ) == Some("true");
    d.field(0, "IsDefaultClass", if default { "Yes" } else { "No" });
    d.field(0, "Provisioner", str_at(o, "/provisioner").unwrap_or(""));
    let params: Vec<String> = pairs_at(o, "/parameters")
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    d.field(
        0,
        "Parameters",
        if params.is_empty() {
            "<none>".to_string()
        } else {
            params.join(",")
        },
    );
    d.field(
        0,
        "AllowVolumeExpansion",
        match o.pointer("/allowVolumeExpansion").and_then(Value::as_bool) {
            Some(b) => b.to_string(),
            None => "<unset>".into(),
        },
    );
    d.field(0, "MountOptions", "<none>");
    d.field(
        0,
        "ReclaimPolicy",
        str_at(o, "/reclaimPolicy").unwrap_or("Delete"),
    );
    d.field(
        0,
        "VolumeBindingMode",
        str_at(o, "/volumeBindingMode").unwrap_or("Immediate"),
    );
}

/// A claim's conditions (`CapacityExceeded`), as kubectl lists them.
fn conditions(d: &mut Describer, o: &Value) {
    let cs = list_at(o, "/status/conditions");
    if cs.is_empty() {
        return;
    }
    d.text(0, "Conditions:");
    d.text(1, "Type\tStatus\tReason\tMessage");
    for c in cs {
        d.text(
            1,
            &format!(
                "{}\t{}\t{}\t{}",
                str_at(c, "/type").unwrap_or(""),
                str_at(c, "/status").unwrap_or(""),
                str_at(c, "/reason").unwrap_or(""),
                str_at(c, "/message").unwrap_or("")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::kinds::describe;
    use serde_json::json;

    #[test]
    fn claims_volumes_and_classes_read_as_kubectl_shows_them() {
        let c = json!({"metadata": {"name": "data", "namespace": "db"},
            "spec": {"storageClassName": "local-path", "volumeName": "pvc-1",
                "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}});
        let text = describe("PersistentVolumeClaim", &c, true);
        for want in [
            "StorageClass:       local-path\n",
            "Status:             Bound\n",
            "Volume:             pvc-1\n",
            "Access Modes:       RWO\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        let v = json!({"metadata": {"name": "pvc-1"},
            "spec": {"storageClassName": "local-path", "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {"namespace": "db", "name": "data"},
                "local": {"path": "/var/lib/bramble-agent/volumes/pvc-1"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["pi-1"]}]}]}}},
            "status": {"phase": "Bound"}});
        let text = describe("PersistentVolume", &v, false);
        for want in [
            "Claim:              db/data\n",
            "Reclaim Policy:     Delete\n",
            "    Term 0:  kubernetes.io/hostname in [pi-1]\n",
            "Path:  /var/lib/bramble-agent/volumes/pvc-1\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        let s = json!({"metadata": {"name": "local-path",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "bramble.dev/local-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"});
        let text = describe("StorageClass", &s, false);
        for want in [
            "IsDefaultClass:        Yes\n",
            "Provisioner:           bramble.dev/local-path\n",
            "VolumeBindingMode:     WaitForFirstConsumer\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}
