//! The volume controller's plan, applied round after round to an in-memory
//! world the way the hub's applier writes it.

use std::collections::{BTreeMap, BTreeSet};

use bramble_api::admit::Object;
use bramble_api::objects::persistent_volume_claim::SELECTED_NODE;
use bramble_api::objects::{Node, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass};
use serde_json::{Value, json};

use super::action::Action;
use super::testutil::{node, t};
use super::volumes::{VOLUMES_DIR_ANNOTATION, VolumeInput, plan_volumes};
use crate::claims::{BIND_COMPLETED, Claims};

#[derive(Default)]
struct World {
    claims: Vec<PersistentVolumeClaim>,
    volumes: Vec<PersistentVolume>,
    classes: Vec<StorageClass>,
    pods: Vec<Pod>,
    nodes: Vec<Node>,
    reclaimed: BTreeMap<String, BTreeSet<String>>,
    usage: BTreeMap<String, BTreeMap<String, u64>>,
    /// Every action of the last round.
    last: Vec<Action>,
}

fn claim(name: &str, spec: Value) -> PersistentVolumeClaim {
    let mut v = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "db", "uid": format!("{name}-uid"),
                     "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    });
    super::testutil::merge(&mut v["spec"], spec);
    let mut c: PersistentVolumeClaim = serde_json::from_value(v).unwrap();
    c.apply_defaults();
    c
}

fn static_volume(name: &str, size: &str, node: &str, class: Option<&str>) -> PersistentVolume {
    let mut v = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "uid": format!("{name}-uid")},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                 "local": {"path": format!("/srv/{name}")},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}
    });
    if let Some(c) = class {
        v["spec"]["storageClassName"] = c.into();
    }
    serde_json::from_value(v).unwrap()
}

fn pod_using(name: &str, claim: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "db", "uid": format!("{name}-uid")},
        "spec": {"containers": [{"name": "c", "image": "i"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}
    }))
    .unwrap()
}

fn pi(name: &str) -> Node {
    let mut n = node(name, json!({"kubernetes.io/hostname": name}));
    n.metadata
        .annotations
        .insert(VOLUMES_DIR_ANNOTATION.into(), "/data/volumes".into());
    n
}

impl World {
    fn edge_site() -> World {
        World {
            classes: vec![StorageClass::local_path()],
            nodes: vec![pi("pi-1"), pi("pi-2")],
            ..World::default()
        }
    }

    /// One round: plan, then apply as the hub does.
    fn round(&mut self) -> &[Action] {
        let actions = plan_volumes(VolumeInput {
            claims: &self.claims,
            volumes: &self.volumes,
            classes: &self.classes,
            pods: &self.pods,
            nodes: &self.nodes,
            reclaimed: &self.reclaimed,
            usage: &self.usage,
            now: t(100),
        });
        for a in &actions {
            self.apply(a.clone());
        }
        self.last = actions;
        &self.last
    }

    /// Rounds until nothing is left to do.
    fn settle(&mut self) {
        for _ in 0..10 {
            if self.round().is_empty() {
                return;
            }
        }
        panic!("no convergence: {:#?}", self.last);
    }

    fn apply(&mut self, a: Action) {
        match a {
            Action::CreateVolume(pv) => {
                let mut pv = *pv;
                assert!(pv.validate().is_empty(), "{}", pv.validate());
                pv.metadata.uid = Some(format!("{}-uid", pv.name()));
                assert!(!self.volumes.iter().any(|v| v.name() == pv.name()));
                self.volumes.push(pv);
            }
            Action::BindVolume { name, claim } => {
                let pv = self.volumes.iter_mut().find(|v| v.name() == name).unwrap();
                assert!(pv.spec.claim_ref.is_none(), "{name} reserved twice");
                pv.spec.claim_ref = Some(*claim);
            }
            Action::BindClaim { claim, volume } => {
                let c = self
                    .claims
                    .iter_mut()
                    .find(|c| c.name() == claim.name)
                    .unwrap();
                assert!(c.volume_name().is_none());
                c.spec.volume_name = Some(volume);
                c.metadata
                    .annotations
                    .insert(BIND_COMPLETED.into(), "yes".into());
            }
            Action::UpdateClaimStatus { name, status, .. } => {
                let c = self.claims.iter_mut().find(|c| c.name() == name).unwrap();
                c.status = Some(*status);
            }
            Action::UpdateVolumeStatus { name, status } => {
                let pv = self.volumes.iter_mut().find(|v| v.name() == name).unwrap();
                pv.status = Some(*status);
            }
            Action::DeleteVolume { name, .. } => self.volumes.retain(|v| v.name() != name),
            other => panic!("not a volume action: {other:?}"),
        }
    }

    /// What the binder does when it places the claim's first pod.
    fn select(&mut self, claim: &str, node: &str) {
        let c = self.claims.iter_mut().find(|c| c.name() == claim).unwrap();
        c.metadata
            .annotations
            .insert(SELECTED_NODE.into(), node.into());
    }

    fn claim(&self, name: &str) -> &PersistentVolumeClaim {
        self.claims.iter().find(|c| c.name() == name).unwrap()
    }

    fn volume(&self, name: &str) -> &PersistentVolume {
        self.volumes.iter().find(|v| v.name() == name).unwrap()
    }

    fn reclaim_list(&self, node: &str) -> Vec<&str> {
        Claims::new(&self.claims, &self.volumes, &self.classes)
            .to_reclaim(&self.pods, node)
            .into_iter()
            .collect()
    }
}

#[test]
fn a_local_path_claim_waits_for_its_first_pod_then_gets_a_volume_on_that_node() {
    let mut w = World::edge_site();
    w.claims.push(claim("data", json!({})));
    w.settle();
    assert_eq!(w.claim("data").phase(), "Pending");
    assert!(w.volumes.is_empty(), "nothing before a pod is placed");

    w.select("data", "pi-2");
    w.settle();
    let c = w.claim("data");
    assert_eq!(c.phase(), "Bound");
    assert_eq!(c.volume_name(), Some("pvc-data-uid"));
    let status = c.status.as_ref().unwrap();
    assert_eq!(status.capacity["storage"].as_str(), "1Gi");
    assert_eq!(status.access_modes, ["ReadWriteOnce"]);
    let pv = w.volume("pvc-data-uid");
    assert_eq!(pv.phase(), "Bound");
    assert_eq!(pv.pinned_node(), Some("pi-2"));
    assert_eq!(pv.reclaim_policy(), "Delete");
    assert_eq!(pv.class(), "local-path");
    assert_eq!(
        pv.spec.local.as_ref().unwrap().path,
        "/data/volumes/pvc-data-uid"
    );
    assert_eq!(pv.claim(), Some(("db", "data", Some("data-uid"))));
}

#[test]
fn a_deleted_claims_volume_is_reclaimed_by_its_own_node_only_once_no_pod_uses_it() {
    let mut w = World::edge_site();
    w.claims.push(claim("data", json!({})));
    w.select("data", "pi-1");
    w.settle();
    w.pods.push(pod_using("db-0", "data"));
    w.claims.clear();
    w.settle();
    let pv = w.volume("pvc-data-uid");
    assert_eq!(pv.phase(), "Released");
    assert!(
        pv.status
            .as_ref()
            .unwrap()
            .message
            .as_deref()
            .unwrap()
            .contains("once no pod uses it"),
        "{pv:?}"
    );
    assert!(w.reclaim_list("pi-1").is_empty(), "in use");

    w.pods.clear();
    w.settle();
    assert_eq!(w.reclaim_list("pi-1"), ["pvc-data-uid"]);
    assert!(w.reclaim_list("pi-2").is_empty());
    // Another board claiming to have deleted it is not believed.
    w.reclaimed
        .insert("pi-2".into(), BTreeSet::from(["pvc-data-uid".to_string()]));
    w.settle();
    assert_eq!(w.volume("pvc-data-uid").phase(), "Released");
    // Its own node is.
    w.reclaimed
        .insert("pi-1".into(), BTreeSet::from(["pvc-data-uid".to_string()]));
    w.settle();
    assert!(w.volumes.is_empty());
}

#[test]
fn retain_keeps_the_volume_released_and_a_static_delete_volume_fails() {
    let mut w = World::edge_site();
    let mut retain = StorageClass::local_path();
    retain.metadata.name = "keep".into();
    retain.metadata.annotations.clear();
    retain.reclaim_policy = Some("Retain".into());
    w.classes.push(retain);
    w.claims
        .push(claim("data", json!({"storageClassName": "keep"})));
    w.select("data", "pi-1");
    let mut delete = static_volume("disk", "5Gi", "pi-2", None);
    delete.spec.persistent_volume_reclaim_policy = Some("Delete".into());
    w.volumes.push(delete);
    w.claims
        .push(claim("manual", json!({"storageClassName": ""})));
    w.settle();
    assert_eq!(w.claim("manual").volume_name(), Some("disk"));
    assert_eq!(w.claim("data").phase(), "Bound");

    w.claims.clear();
    w.settle();
    let kept = w.volume("pvc-data-uid");
    assert_eq!(kept.phase(), "Released");
    assert!(w.reclaim_list("pi-1").is_empty());
    let disk = w.volume("disk");
    assert_eq!(disk.phase(), "Failed");
    assert_eq!(
        disk.status.as_ref().unwrap().reason.as_deref(),
        Some("VolumeFailedDelete")
    );
    assert!(
        w.reclaim_list("pi-2").is_empty(),
        "static data is never deleted"
    );
}

#[test]
fn static_volumes_bind_by_class_size_modes_and_node() {
    let mut w = World::edge_site();
    w.volumes
        .push(static_volume("small", "512Mi", "pi-1", Some("ssd")));
    w.volumes
        .push(static_volume("big", "10Gi", "pi-1", Some("ssd")));
    w.volumes
        .push(static_volume("right", "2Gi", "pi-1", Some("ssd")));
    w.volumes
        .push(static_volume("other-class", "2Gi", "pi-1", None));
    w.classes.push(
        serde_json::from_value(json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "ssd"}, "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "Immediate"}))
        .unwrap(),
    );
    w.claims
        .push(claim("a", json!({"storageClassName": "ssd"})));
    w.claims.push(claim(
        "b",
        json!({"storageClassName": "ssd", "accessModes": ["ReadWriteMany"]}),
    ));
    w.settle();
    assert_eq!(
        w.claim("a").volume_name(),
        Some("right"),
        "the smallest that fits"
    );
    assert_eq!(w.volume("right").phase(), "Bound");
    assert_eq!(w.claim("b").phase(), "Pending", "no volume offers RWX");
    assert_eq!(w.volume("big").phase(), "Available");
    assert_eq!(w.volume("small").phase(), "Available");
}

#[test]
fn a_claim_whose_volume_was_deleted_is_lost() {
    let mut w = World::edge_site();
    w.claims.push(claim("data", json!({})));
    w.select("data", "pi-1");
    w.settle();
    w.volumes.clear();
    w.settle();
    assert_eq!(w.claim("data").phase(), "Lost");
    // Asking for a volume that never existed is merely Pending.
    w.claims.push(claim(
        "named",
        json!({"volumeName": "nope", "storageClassName": ""}),
    ));
    w.settle();
    assert_eq!(w.claim("named").phase(), "Pending");
}

#[test]
fn an_over_full_volume_is_reported_on_its_claim_as_its_own_node_measures_it() {
    let mut w = World::edge_site();
    w.claims.push(claim("data", json!({})));
    w.select("data", "pi-1");
    w.settle();
    let condition = |w: &World| {
        w.claim("data")
            .status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == "CapacityExceeded")
            .cloned()
    };
    let measured = |w: &mut World, node: &str, bytes: u64| {
        w.usage.insert(
            node.into(),
            BTreeMap::from([("pvc-data-uid".to_string(), bytes)]),
        );
        w.settle();
    };
    measured(&mut w, "pi-1", 512 << 20);
    assert_eq!(condition(&w), None, "under its 1Gi");
    // Another board's figures are not this volume's.
    measured(&mut w, "pi-2", 5 << 30);
    assert_eq!(condition(&w), None);
    measured(&mut w, "pi-1", (1 << 30) + (3 << 20));
    let c = condition(&w).expect("over capacity");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("True", Some("UsageAboveCapacity"))
    );
    assert!(
        c.message
            .unwrap()
            .starts_with("volume pvc-data-uid holds 1027 MiB, above its 1024 MiB"),
    );
    measured(&mut w, "pi-1", 1 << 20);
    assert_eq!(condition(&w), None, "cleared once freed");
}

#[test]
fn a_pod_created_bound_to_a_node_gets_its_claims_volume_there() {
    let mut w = World::edge_site();
    w.claims.push(claim("data", json!({})));
    let mut p = pod_using("logger", "data");
    p.spec.node_name = Some("pi-2".into());
    w.pods.push(p);
    w.settle();
    assert_eq!(w.claim("data").phase(), "Bound");
    assert_eq!(w.volume("pvc-data-uid").pinned_node(), Some("pi-2"));
}

#[test]
fn rwx_claims_are_not_provisioned_on_local_path() {
    let mut w = World::edge_site();
    w.claims
        .push(claim("shared", json!({"accessModes": ["ReadWriteMany"]})));
    w.select("shared", "pi-1");
    w.settle();
    assert!(w.volumes.is_empty());
    assert_eq!(w.claim("shared").phase(), "Pending");
}
