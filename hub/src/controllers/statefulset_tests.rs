//! StatefulSet controller scenarios: ordered and parallel creation with
//! claims first, scale down from the highest ordinal, failed and deleted
//! pods recreated under their names, rolling updates with a partition,
//! `OnDelete`, and the status `kubectl rollout status` reads.

use std::time::SystemTime;

use bramble_api::admit::Object;
use bramble_api::objects::{PersistentVolumeClaim, Pod, StatefulSet};
use serde_json::{Value, json};

use super::action::Action;
use super::daemonset::CONTROLLER_REVISION_HASH;
use super::statefulset::{
    POD_INDEX_LABEL, POD_NAME_LABEL, StatefulSetInput, plan_statefulset, update_revision,
};
use super::testutil::{make_ready, merge, t};
use super::time;

/// A defaulted StatefulSet `db` (uid `db-uid`) of `replicas` running
/// `image`, a claim template `data`, `spec` merged over it.
fn statefulset(replicas: i32, image: &str, spec: Value) -> StatefulSet {
    let mut v = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default", "uid": "db-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": image,
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    });
    merge(&mut v["spec"], spec);
    let mut s: StatefulSet = serde_json::from_value(v).unwrap();
    s.apply_defaults();
    assert!(s.validate().is_empty(), "{}", s.validate());
    s
}

/// The store as the StatefulSet controller sees it.
struct World {
    sts: StatefulSet,
    pods: Vec<Pod>,
    claims: Vec<PersistentVolumeClaim>,
    /// Every pod and claim action applied, in order.
    log: Vec<String>,
}

impl World {
    fn new(sts: StatefulSet) -> World {
        World {
            sts,
            pods: Vec::new(),
            claims: Vec::new(),
            log: Vec::new(),
        }
    }

    fn plan(&self, now: u64) -> Vec<Action> {
        self.plan_refused(now, None)
    }

    fn plan_refused(&self, now: u64, refused: Option<&str>) -> Vec<Action> {
        plan_statefulset(StatefulSetInput {
            statefulset: &self.sts,
            pods: &self.pods,
            claims: &self.claims,
            refused,
            now: t(now),
        })
    }

    /// Applies as the store would: a create of a taken name fails the
    /// test, a delete marks the pod terminating (it goes in [`Self::finish`]).
    fn apply(&mut self, actions: Vec<Action>, now: SystemTime) {
        for a in actions {
            match a {
                Action::CreatePod(p) => {
                    let mut p = *p;
                    assert!(
                        !self.pods.iter().any(|x| x.name() == p.name()),
                        "{} exists",
                        p.name()
                    );
                    for v in &p.spec.volumes {
                        if let Some(c) = &v.persistent_volume_claim {
                            assert!(
                                self.claims.iter().any(|x| x.name() == c.claim_name),
                                "{} before its claim {}",
                                p.name(),
                                c.claim_name
                            );
                        }
                    }
                    p.metadata.uid = Some(format!("uid-{}", p.name()));
                    p.metadata.creation_timestamp = Some(time::format(now));
                    self.log.push(format!("create {}", p.name()));
                    self.pods.push(p);
                }
                Action::DeletePod { pod, .. } => {
                    let p = self.pods.iter_mut().find(|p| p.name() == pod.name).unwrap();
                    assert_eq!(p.metadata.uid, pod.uid);
                    p.metadata.deletion_timestamp = Some(time::format(now));
                    self.log.push(format!("delete {}", pod.name));
                }
                Action::CreateClaim(c) => {
                    assert!(!self.claims.iter().any(|x| x.name() == c.name()));
                    self.log.push(format!("claim {}", c.name()));
                    self.claims.push(*c);
                }
                Action::UpdateStatefulSetStatus { status, .. } => {
                    self.sts.status = Some(*status);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Terminating pods are gone.
    fn finish(&mut self) {
        self.pods
            .retain(|p| p.metadata.deletion_timestamp.is_none());
    }

    fn ready_all(&mut self, at: u64) {
        for p in &mut self.pods {
            if !super::pods::is_ready(p) {
                make_ready(p, t(at));
            }
        }
    }

    fn pod(&self, name: &str) -> &Pod {
        self.pods.iter().find(|p| p.name() == name).unwrap()
    }

    fn pod_mut(&mut self, name: &str) -> &mut Pod {
        self.pods.iter_mut().find(|p| p.name() == name).unwrap()
    }

    /// `name=image` of the pods, by name.
    fn images(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .pods
            .iter()
            .map(|p| format!("{}={}", p.name(), p.spec.containers[0].image))
            .collect();
        v.sort();
        v
    }

    fn claim_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.claims.iter().map(|c| c.name()).collect();
        v.sort();
        v
    }

    /// Plans and applies until nothing changes, pods finishing their
    /// termination and becoming Ready after each step; `check` runs after
    /// every step. Returns the time reached.
    fn converge(&mut self, mut now: u64, check: impl Fn(&World)) -> u64 {
        for _ in 0..100 {
            let actions = self.plan(now);
            let busy = actions
                .iter()
                .any(|a| !matches!(a, Action::UpdateStatefulSetStatus { .. }));
            self.apply(actions, t(now));
            check(self);
            now += 1;
            let before = (self.pods.clone(), self.sts.status.clone());
            self.finish();
            self.ready_all(now);
            if !busy && before == (self.pods.clone(), self.sts.status.clone()) {
                let again = self.plan(now);
                assert!(again.is_empty(), "not idempotent: {again:?}");
                return now;
            }
        }
        panic!("did not converge");
    }
}

fn names(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePod(p) => Some(format!("create {}", p.name())),
            Action::DeletePod { pod, reason } => Some(format!("delete {} ({reason})", pod.name)),
            Action::CreateClaim(c) => Some(format!("claim {}", c.name())),
            _ => None,
        })
        .collect()
}

#[test]
fn ordered_ready_creates_one_ordinal_at_a_time_each_after_its_claim() {
    let mut w = World::new(statefulset(3, "busybox:1", json!({})));
    let first = w.plan(0);
    assert_eq!(names(&first), ["claim data-db-0", "create db-0"]);
    w.apply(first, t(0));
    assert!(
        names(&w.plan(1)).is_empty(),
        "db-1 waits for db-0 to be Ready"
    );
    // Running but not Ready still blocks.
    w.pod_mut("db-0").status = Some(serde_json::from_value(json!({"phase": "Running"})).unwrap());
    assert!(names(&w.plan(1)).is_empty());
    w.ready_all(2);
    assert_eq!(names(&w.plan(2)), ["claim data-db-1", "create db-1"]);
    w.converge(2, |w| {
        // Never a pod without every lower ordinal Ready.
        for p in &w.pods {
            let i: i32 = p.name()[3..].parse().unwrap();
            for lower in 0..i {
                assert!(super::pods::is_ready(w.pod(&format!("db-{lower}"))));
            }
        }
    });
    assert_eq!(
        w.images(),
        ["db-0=busybox:1", "db-1=busybox:1", "db-2=busybox:1"]
    );
    assert_eq!(w.claim_names(), ["data-db-0", "data-db-1", "data-db-2"]);
    assert_eq!(
        w.log,
        [
            "claim data-db-0",
            "create db-0",
            "claim data-db-1",
            "create db-1",
            "claim data-db-2",
            "create db-2"
        ]
    );
}

#[test]
fn a_pod_has_its_identity_its_claims_and_the_revision_label() {
    let mut w = World::new(statefulset(1, "busybox:1", json!({})));
    w.converge(0, |_| {});
    let p = w.pod("db-0");
    let revision = update_revision(&w.sts);
    assert!(
        revision.starts_with("db-") && revision.len() == 13,
        "{revision}"
    );
    assert_eq!(p.metadata.labels["app"], "db");
    assert_eq!(p.metadata.labels[POD_NAME_LABEL], "db-0");
    assert_eq!(p.metadata.labels[POD_INDEX_LABEL], "0");
    assert_eq!(p.metadata.labels[CONTROLLER_REVISION_HASH], revision);
    assert_eq!(p.spec.hostname.as_deref(), Some("db-0"));
    assert_eq!(p.spec.subdomain.as_deref(), Some("db"));
    assert_eq!(
        p.spec.volumes[0]
            .persistent_volume_claim
            .as_ref()
            .unwrap()
            .claim_name,
        "data-db-0"
    );
    let owner = &p.metadata.owner_references[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("StatefulSet", "db-uid")
    );
    let c = &w.claims[0];
    assert_eq!(c.metadata.labels["app"], "db", "the selector's labels");
    assert!(
        c.metadata.owner_references.is_empty(),
        "claims are kept: no owner"
    );
    assert_eq!(c.spec.access_modes, ["ReadWriteOnce"]);
    assert_eq!(c.namespace(), "default");
}

#[test]
fn parallel_creates_and_removes_all_at_once() {
    let mut w = World::new(statefulset(
        3,
        "busybox:1",
        json!({"podManagementPolicy": "Parallel"}),
    ));
    let first = w.plan(0);
    assert_eq!(
        names(&first),
        [
            "claim data-db-0",
            "create db-0",
            "claim data-db-1",
            "create db-1",
            "claim data-db-2",
            "create db-2"
        ]
    );
    w.apply(first, t(0));
    w.converge(1, |_| {});
    w.sts.spec.replicas = Some(0);
    assert_eq!(
        names(&w.plan(10)),
        [
            "delete db-2 (ScaleDown)",
            "delete db-1 (ScaleDown)",
            "delete db-0 (ScaleDown)"
        ]
    );
}

#[test]
fn scale_down_goes_from_the_highest_one_at_a_time_and_keeps_the_claims() {
    let mut w = World::new(statefulset(3, "busybox:1", json!({})));
    let now = w.converge(0, |_| {});
    w.sts.spec.replicas = Some(1);
    let step = w.plan(now);
    assert_eq!(names(&step), ["delete db-2 (ScaleDown)"]);
    w.apply(step, t(now));
    assert!(
        names(&w.plan(now)).is_empty(),
        "db-1 waits for db-2 to be gone"
    );
    w.finish();
    // A remaining pod not Ready blocks the next removal.
    w.pod_mut("db-0")
        .status
        .as_mut()
        .unwrap()
        .conditions
        .clear();
    assert!(names(&w.plan(now)).is_empty());
    w.ready_all(now);
    assert_eq!(names(&w.plan(now)), ["delete db-1 (ScaleDown)"]);
    let now = w.converge(now, |_| {});
    assert_eq!(w.images(), ["db-0=busybox:1"]);
    assert_eq!(w.claim_names(), ["data-db-0", "data-db-1", "data-db-2"]);
    // Back to 3: the old claims are used again, none is made.
    w.sts.spec.replicas = Some(3);
    w.log.clear();
    w.converge(now, |_| {});
    assert_eq!(w.log, ["create db-1", "create db-2"]);
    assert_eq!(
        w.pod("db-2").spec.volumes[0]
            .persistent_volume_claim
            .as_ref()
            .unwrap()
            .claim_name,
        "data-db-2"
    );
}

#[test]
fn a_failed_or_deleted_pod_comes_back_under_its_name_once_gone() {
    let mut w = World::new(statefulset(3, "busybox:1", json!({})));
    let now = w.converge(0, |_| {});
    w.pod_mut("db-1").status.as_mut().unwrap().phase = Some("Failed".into());
    let step = w.plan(now);
    assert_eq!(names(&step), ["delete db-1 (Failed)"]);
    w.apply(step, t(now));
    assert!(
        names(&w.plan(now)).is_empty(),
        "the name is held until db-1 is gone"
    );
    w.finish();
    assert_eq!(names(&w.plan(now)), ["create db-1"]);
    let now = w.converge(now, |_| {});
    // Every pod deleted by the user: recreated in order with their claims.
    for p in &mut w.pods {
        p.metadata.deletion_timestamp = Some(time::format(t(now)));
    }
    assert!(names(&w.plan(now)).is_empty());
    w.finish();
    w.log.clear();
    w.converge(now, |_| {});
    assert_eq!(w.log, ["create db-0", "create db-1", "create db-2"]);
}

#[test]
fn a_pending_pod_gets_its_claim_again_and_a_deleted_claim_holds_its_pod() {
    let mut w = World::new(statefulset(1, "busybox:1", json!({})));
    w.apply(w.plan(0), t(0));
    w.claims.clear();
    assert_eq!(names(&w.plan(1)), ["claim data-db-0"]);
    // A claim being deleted: the pod waits for it to be gone.
    let now = w.converge(1, |_| {});
    w.pod_mut("db-0").metadata.deletion_timestamp = Some(time::format(t(now)));
    w.finish();
    w.claims[0].metadata.deletion_timestamp = Some(time::format(t(now)));
    assert!(names(&w.plan(now)).is_empty());
    w.claims.clear();
    assert_eq!(names(&w.plan(now)), ["claim data-db-0", "create db-0"]);
}

#[test]
fn a_pod_of_the_name_not_ours_holds_it() {
    let mut w = World::new(statefulset(1, "busybox:1", json!({})));
    let stranger: Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db-0", "namespace": "default", "uid": "x"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}}))
    .unwrap();
    w.pods.push(stranger);
    assert_eq!(names(&w.plan(0)), Vec::<String>::new());
}

#[test]
fn rolling_update_replaces_from_the_highest_down_to_the_partition() {
    let mut w = World::new(statefulset(3, "busybox:1", json!({})));
    let now = w.converge(0, |_| {});
    let old = update_revision(&w.sts);
    w.sts.spec.template.spec.containers[0].image = "busybox:2".into();
    w.sts
        .spec
        .update_strategy
        .as_mut()
        .unwrap()
        .rolling_update
        .as_mut()
        .unwrap()
        .partition = Some(2);
    w.sts.metadata.generation = Some(2);
    let new = update_revision(&w.sts);
    assert_ne!(old, new);
    let step = w.plan(now);
    assert_eq!(names(&step), ["delete db-2 (RollingUpdate)"]);
    w.apply(step, t(now));
    let s = w.sts.status.clone().unwrap();
    assert_eq!(
        (s.current_revision.as_str(), s.update_revision.as_str()),
        (old.as_str(), new.as_str())
    );
    assert_eq!(s.observed_generation, Some(2));
    let now = w.converge(now, |w| {
        // One pod down at a time.
        assert!(
            w.pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_some())
                .count()
                <= 1
        );
    });
    assert_eq!(
        w.images(),
        ["db-0=busybox:1", "db-1=busybox:1", "db-2=busybox:2"]
    );
    let s = w.sts.status.clone().unwrap();
    assert_eq!(
        (
            s.replicas,
            s.ready_replicas,
            s.updated_replicas,
            s.current_replicas
        ),
        (3, 3, 1, 2)
    );
    assert_eq!(s.current_revision, old, "not every pod is updated");
    // db-0, below the partition, comes back at the current revision (read
    // back from db-1, which runs it).
    w.pod_mut("db-0").metadata.deletion_timestamp = Some(time::format(t(now)));
    w.finish();
    let now = w.converge(now, |_| {});
    assert_eq!(
        w.images(),
        ["db-0=busybox:1", "db-1=busybox:1", "db-2=busybox:2"]
    );
    assert_eq!(w.pod("db-0").metadata.labels[CONTROLLER_REVISION_HASH], old);
    assert_eq!(w.pod("db-0").spec.hostname.as_deref(), Some("db-0"));
    // Partition 0: the rest, and the current revision catches up.
    w.sts
        .spec
        .update_strategy
        .as_mut()
        .unwrap()
        .rolling_update
        .as_mut()
        .unwrap()
        .partition = Some(0);
    w.log.clear();
    w.converge(now, |_| {});
    assert_eq!(
        w.log,
        ["delete db-1", "create db-1", "delete db-0", "create db-0"]
    );
    assert_eq!(
        w.images(),
        ["db-0=busybox:2", "db-1=busybox:2", "db-2=busybox:2"]
    );
    let s = w.sts.status.clone().unwrap();
    assert_eq!(
        (
            s.current_revision.as_str(),
            s.current_replicas,
            s.updated_replicas
        ),
        (new.as_str(), 3, 3)
    );
}

#[test]
fn a_rolling_update_waits_for_the_replaced_pod_to_be_ready() {
    let mut w = World::new(statefulset(2, "busybox:1", json!({})));
    let now = w.converge(0, |_| {});
    w.sts.spec.template.spec.containers[0].image = "busybox:2".into();
    let step = w.plan(now);
    assert_eq!(names(&step), ["delete db-1 (RollingUpdate)"]);
    w.apply(step, t(now));
    w.finish();
    let step = w.plan(now);
    assert_eq!(names(&step), ["create db-1"]);
    w.apply(step, t(now));
    assert!(
        names(&w.plan(now)).is_empty(),
        "db-0 waits for the new db-1"
    );
    w.ready_all(now);
    assert_eq!(names(&w.plan(now)), ["delete db-0 (RollingUpdate)"]);
}

#[test]
fn on_delete_stamps_the_new_template_only_on_pods_the_user_deletes() {
    let mut w = World::new(statefulset(
        2,
        "busybox:1",
        json!({"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}),
    ));
    w.sts.spec.update_strategy.as_mut().unwrap().rolling_update = None;
    let now = w.converge(0, |_| {});
    w.sts.spec.template.spec.containers[0].image = "busybox:2".into();
    assert!(names(&w.plan(now)).is_empty());
    w.pod_mut("db-1").metadata.deletion_timestamp = Some(time::format(t(now)));
    w.finish();
    w.converge(now, |_| {});
    assert_eq!(w.images(), ["db-0=busybox:1", "db-1=busybox:2"]);
    let s = w.sts.status.clone().unwrap();
    assert_eq!((s.updated_replicas, s.current_replicas), (1, 1));
}

#[test]
fn status_is_what_kubectl_rollout_status_reads() {
    let mut w = World::new(statefulset(2, "busybox:1", json!({})));
    w.apply(w.plan(0), t(0));
    let s = w.sts.status.clone().unwrap();
    assert_eq!(
        (s.replicas, s.ready_replicas),
        (0, 0),
        "status counts the pods read"
    );
    w.converge(0, |_| {});
    let s = serde_json::to_value(w.sts.status.as_ref().unwrap()).unwrap();
    let rev = update_revision(&w.sts);
    assert_eq!(
        s,
        json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "currentReplicas": 2,
               "updatedReplicas": 2, "availableReplicas": 2, "currentRevision": rev,
               "updateRevision": rev, "collisionCount": 0})
    );
}

#[test]
fn min_ready_seconds_holds_the_next_ordinal_and_availability() {
    let mut w = World::new(statefulset(2, "busybox:1", json!({"minReadySeconds": 10})));
    w.apply(w.plan(0), t(0));
    w.ready_all(1);
    assert!(
        names(&w.plan(5)).is_empty(),
        "db-0 ready but not available yet"
    );
    assert_eq!(w.sts.status.as_ref().unwrap().available_replicas, 0);
    assert_eq!(names(&w.plan(11)), ["claim data-db-1", "create db-1"]);
}

#[test]
fn ordinals_start_numbers_the_pods() {
    let mut w = World::new(statefulset(
        2,
        "busybox:1",
        json!({"ordinals": {"start": 5}}),
    ));
    w.converge(0, |_| {});
    assert_eq!(w.images(), ["db-5=busybox:1", "db-6=busybox:1"]);
    assert_eq!(w.claim_names(), ["data-db-5", "data-db-6"]);
}

#[test]
fn refused_pods_are_not_created_and_a_condition_says_why() {
    let mut w = World::new(statefulset(1, "busybox:1", json!({})));
    let step = w.plan_refused(
        0,
        Some("violates PodSecurity \"baseline:latest\": privileged"),
    );
    assert!(names(&step).is_empty());
    w.apply(step, t(0));
    let c = &w.sts.status.as_ref().unwrap().conditions[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str()),
        ("ReplicaFailure", "True")
    );
    assert!(
        c.message.as_deref().unwrap().contains("privileged"),
        "{c:?}"
    );
    let step = w.plan(1);
    assert_eq!(names(&step), ["claim data-db-0", "create db-0"]);
    w.apply(step, t(1));
    assert!(w.sts.status.as_ref().unwrap().conditions.is_empty());
}

#[test]
fn a_deleted_statefulset_plans_nothing() {
    let mut w = World::new(statefulset(1, "busybox:1", json!({})));
    w.sts.metadata.deletion_timestamp = Some(time::format(t(0)));
    assert!(w.plan(0).is_empty());
}
