//! Deployment controller scenarios: plan, apply in memory, mark pods ready,
//! plan again, asserting invariants at every step.
//!
//! Length: over 600 lines because the Deployment controller's scenario tests;
//! no code.

use bramble_api::objects::{Deployment, ReplicaSet};
use serde_json::json;

use super::action::Action;
use super::deployment::{DeploymentInput, plan_deployment};
use super::deployment_status::{REASON_COMPLETE, REASON_DEADLINE};
use super::naming::{POD_TEMPLATE_HASH, template_hash};
use super::pods::is_ready;
use super::replicasets::{
    CHANGE_CAUSE_ANNOTATION, DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION, owned, revision,
};
use super::revision::{UndoError, history, undo};
use super::rollout::{Fenceposts, fenceposts};
use super::testutil::{World, deployment, make_ready, t};

fn plan(w: &World, now: u64) -> Vec<Action> {
    w.plan_deployment(t(now))
}

fn changes_pods(a: &Action) -> bool {
    matches!(
        a,
        Action::CreatePod(_) | Action::DeletePod { .. } | Action::CreateReplicaSet(_)
    )
}

/// `(revision, image, spec.replicas)` of each ReplicaSet, oldest first.
fn revisions(w: &World) -> Vec<(i64, String, i32)> {
    owned(&w.deployment, &w.replica_sets)
        .into_iter()
        .map(|rs| {
            (
                revision(rs),
                rs.spec.template.spec.containers[0].image.clone(),
                rs.replicas(),
            )
        })
        .collect()
}

/// The ReplicaSet of the Deployment's current template.
fn current(w: &World) -> &ReplicaSet {
    w.replica_set(&format!(
        "web-{}",
        template_hash(&w.deployment.spec.template)
    ))
}

/// Plans and applies until nothing changes, marking every pod ready one
/// second after each step; `check` runs after every change. Returns the time.
fn converge(w: &mut World, mut now: u64, check: impl Fn(&World)) -> u64 {
    for _ in 0..200 {
        let actions = plan(w, now);
        let busy = actions.iter().any(changes_pods);
        w.apply(actions, t(now));
        check(w);
        now += 1;
        if !busy && w.pods.iter().all(is_ready) {
            // One more plan for the final status, which must then be stable.
            let last = plan(w, now);
            w.apply(last, t(now));
            assert!(
                plan(w, now).is_empty(),
                "not idempotent: {:?}",
                plan(w, now)
            );
            return now;
        }
        w.ready_all(t(now));
        check(w);
    }
    panic!("did not converge: {:?}", w.pods);
}

fn world(d: Deployment) -> World {
    World {
        deployment: d,
        ..World::default()
    }
}

fn set_image(w: &mut World, image: &str) {
    w.deployment.spec.template.spec.containers[0].image = image.into();
    w.deployment.metadata.generation = w.deployment.metadata.generation.map(|g| g + 1);
}

fn ready_count(w: &World) -> usize {
    w.pods.iter().filter(|p| is_ready(p)).count()
}

#[test]
fn creates_a_replica_set_then_six_stamped_replicas_and_reports_status() {
    let mut w = world(deployment(6, "web:1", json!({})));
    let hash = template_hash(&w.deployment.spec.template);
    // The ReplicaSet alone first: its pods need its uid.
    let actions = plan(&w, 0);
    let [Action::CreateReplicaSet(rs)] = actions.as_slice() else {
        panic!("{actions:?}");
    };
    assert_eq!(rs.name(), format!("web-{hash}"));
    assert_eq!(rs.spec.replicas, Some(0));
    assert_eq!(rs.metadata.labels[POD_TEMPLATE_HASH], hash);
    assert_eq!(rs.spec.template.metadata.labels[POD_TEMPLATE_HASH], hash);
    assert_eq!(
        rs.spec.selector.as_ref().unwrap().match_labels[POD_TEMPLATE_HASH],
        hash
    );
    assert_eq!(rs.metadata.annotations[REVISION_ANNOTATION], "1");
    let o = &rs.metadata.owner_references[0];
    assert_eq!(
        (o.kind.as_str(), o.uid.as_str(), o.controller),
        ("Deployment", "web-uid", Some(true))
    );
    w.apply(actions, t(0));

    let actions = plan(&w, 0);
    let created: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePod(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 6);
    for p in &created {
        assert_eq!(p.metadata.labels["app"], "web");
        assert_eq!(p.metadata.labels[POD_TEMPLATE_HASH], hash);
        assert!(p.name().starts_with(&format!("web-{hash}-")));
        let o = &p.metadata.owner_references[0];
        let rs_uid = format!("uid-web-{hash}");
        assert_eq!(
            (o.kind.as_str(), o.uid.as_str()),
            ("ReplicaSet", rs_uid.as_str())
        );
        assert_eq!(o.controller, Some(true));
        assert!(p.spec.node_name.is_none());
    }
    assert!(actions.contains(&Action::SetDeploymentRevision {
        namespace: "default".into(),
        name: "web".into(),
        revision: 1
    }));
    let scaled = actions.iter().find_map(|a| match a {
        Action::UpdateReplicaSet(rs) => Some(rs),
        _ => None,
    });
    let scaled = scaled.expect("the ReplicaSet is scaled up with its pods");
    assert_eq!(scaled.spec.replicas, Some(6));
    assert_eq!(
        scaled.metadata.annotations[DESIRED_REPLICAS_ANNOTATION],
        "6"
    );
    assert_eq!(scaled.metadata.annotations[MAX_REPLICAS_ANNOTATION], "8");
    let now = converge(&mut w, 0, |_| {});
    let s = w.deployment.status.clone().unwrap();
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas
        ),
        (Some(6), Some(6), Some(6), Some(6))
    );
    assert_eq!(s.unavailable_replicas, Some(0));
    assert_eq!(s.observed_generation, Some(1));
    let progressing = s
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(progressing.reason.as_deref(), Some(REASON_COMPLETE));
    assert!(
        s.conditions
            .iter()
            .any(|c| c.type_ == "Available" && c.is_true())
    );
    assert_eq!(w.deployment.metadata.annotations[REVISION_ANNOTATION], "1");
    let rs = current(&w).status.clone().unwrap();
    assert_eq!(
        (
            rs.replicas,
            rs.fully_labeled_replicas,
            rs.ready_replicas,
            rs.available_replicas
        ),
        (6, 6, 6, 6)
    );
    assert_eq!(rs.observed_generation, current(&w).metadata.generation);
    // Ready for 10 s, the release counts as fully available (for automatic
    // rollbacks): one mark, then nothing.
    let marked = plan(&w, now + 100);
    assert!(
        matches!(marked.as_slice(), [Action::MarkFullyAvailable { .. }]),
        "{marked:?}"
    );
    w.apply(marked, t(now + 100));
    assert!(plan(&w, now + 100).is_empty());
}

#[test]
fn scale_down_removes_unscheduled_then_unready_then_newest() {
    let mut w = world(deployment(6, "web:1", json!({})));
    w.apply(plan(&w, 0), t(0));
    w.apply(plan(&w, 0), t(0));
    // Ages: pod i created at second i; all scheduled and ready except two.
    for (i, p) in w.pods.iter_mut().enumerate() {
        p.metadata.creation_timestamp = Some(super::time::format(t(i as u64)));
        p.spec.node_name = Some("pi-1".into());
        make_ready(p, t(10));
    }
    let unscheduled = w.pods[0].name().to_string();
    w.pods[0].spec.node_name = None;
    let unready = w.pods[1].name().to_string();
    w.pods[1].status = None;
    let newest = w.pods[5].name().to_string();
    w.deployment.spec.replicas = Some(3);
    let deleted: Vec<String> = plan(&w, 20)
        .into_iter()
        .filter_map(|a| match a {
            Action::DeletePod { pod, .. } => Some(pod.name),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, [unscheduled, unready, newest]);
}

#[test]
fn rolling_update_surge_one_never_drops_below_replicas() {
    let d = deployment(
        4,
        "web:1",
        json!({"strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}),
    );
    let mut w = world(d);
    let now = converge(&mut w, 0, |_| {});
    set_image(&mut w, "web:2");
    let now = converge(&mut w, now, |w| {
        assert!(ready_count(w) >= 4, "ready fell to {}", ready_count(w));
        assert!(w.pods.len() <= 5, "surged to {}", w.pods.len());
    });
    assert_eq!(w.images(), ["web:2"; 4]);
    assert_eq!(w.deployment.metadata.annotations[REVISION_ANNOTATION], "2");
    assert_eq!(
        revisions(&w),
        [(1, "web:1".into(), 0), (2, "web:2".into(), 4)],
        "the old ReplicaSet is scaled to 0 and kept"
    );
    let s = w.deployment.status.as_ref().unwrap();
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(s.updated_replicas, Some(4));
    assert!(plan(&w, now).is_empty());
}

#[test]
fn rolling_update_default_percentages_respect_both_bounds() {
    let mut w = world(deployment(10, "web:1", json!({})));
    assert_eq!(
        fenceposts(&w.deployment),
        Fenceposts {
            max_surge: 3,
            max_unavailable: 2
        }
    );
    let now = converge(&mut w, 0, |_| {});
    set_image(&mut w, "web:2");
    converge(&mut w, now, |w| {
        assert!(ready_count(w) >= 8, "ready fell to {}", ready_count(w));
        assert!(w.pods.len() <= 13, "surged to {}", w.pods.len());
    });
    assert_eq!(w.images(), ["web:2"; 10]);
}

#[test]
fn fenceposts_round_and_never_both_zero() {
    let d = deployment(
        1,
        "x",
        json!({"strategy": {"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "10%"}}}),
    );
    assert_eq!(
        fenceposts(&d),
        Fenceposts {
            max_surge: 0,
            max_unavailable: 1
        }
    );
    let d = deployment(
        3,
        "x",
        json!({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 5}}}),
    );
    assert_eq!(fenceposts(&d).max_unavailable, 3);
}

#[test]
fn min_ready_seconds_gates_scale_down_of_old_pods() {
    let d = deployment(
        2,
        "web:1",
        json!({"minReadySeconds": 30,
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}),
    );
    let mut w = world(d);
    w.apply(plan(&w, 0), t(0));
    w.apply(plan(&w, 0), t(0));
    w.ready_all(t(0));
    set_image(&mut w, "web:2");
    w.apply(plan(&w, 40), t(40)); // the new ReplicaSet
    w.apply(plan(&w, 40), t(40)); // one new pod (surge)
    assert_eq!(w.pods.len(), 3);
    w.ready_all(t(41));
    // Ready but not yet for 30 s: nothing old may go.
    assert!(!plan(&w, 50).iter().any(changes_pods));
    assert_eq!(
        w.deployment.status.as_ref().unwrap().available_replicas,
        Some(2)
    );
    let deletes = plan(&w, 71)
        .into_iter()
        .filter(|a| matches!(a, Action::DeletePod { .. }))
        .count();
    assert_eq!(deletes, 1);
}

#[test]
fn recreate_deletes_all_old_before_creating() {
    let mut w = world(deployment(
        3,
        "web:1",
        json!({"strategy": {"type": "Recreate"}}),
    ));
    let now = converge(&mut w, 0, |_| {});
    set_image(&mut w, "web:2");
    w.apply(plan(&w, now), t(now)); // the new ReplicaSet
    let first = plan(&w, now);
    assert_eq!(
        first
            .iter()
            .filter(|a| matches!(a, Action::DeletePod { .. }))
            .count(),
        3
    );
    assert!(!first.iter().any(|a| matches!(a, Action::CreatePod(_))));
    converge(&mut w, now, |w| {
        let imgs = w.images();
        assert!(
            imgs.iter().all(|i| i == "web:1") || imgs.iter().all(|i| i == "web:2"),
            "mixed versions: {imgs:?}"
        );
    });
    assert_eq!(w.images(), ["web:2"; 3]);
}

#[test]
fn undo_returns_previous_template_and_renumbers() {
    let mut w = world(deployment(2, "web:1", json!({})));
    let v1 = w.deployment.spec.template.clone();
    let now = converge(&mut w, 0, |_| {});
    set_image(&mut w, "web:2");
    w.deployment
        .metadata
        .annotations
        .insert(CHANGE_CAUSE_ANNOTATION.into(), "image web:2".into());
    let now = converge(&mut w, now, |_| {});
    let rs = owned(&w.deployment, &w.replica_sets);
    assert_eq!(history(&rs), [(1, None), (2, Some("image web:2"))]);
    let back = undo(&w.deployment, &rs, 0).unwrap();
    assert_eq!(back, v1);
    assert_eq!(undo(&w.deployment, &rs, 1).unwrap(), v1);
    assert_eq!(
        undo(&w.deployment, &rs, 2),
        Err(UndoError::AlreadyCurrent {
            name: "web".into(),
            revision: 2
        })
    );
    assert!(matches!(
        undo(&w.deployment, &rs, 7),
        Err(UndoError::NotFound { revision: 7, .. })
    ));
    // What `kubectl rollout undo` writes: the template, and the annotations
    // of the old ReplicaSet (no change cause).
    w.deployment.spec.template = back;
    w.deployment
        .metadata
        .annotations
        .remove(CHANGE_CAUSE_ANNOTATION);
    converge(&mut w, now, |_| {});
    assert_eq!(w.images(), ["web:1"; 2]);
    assert_eq!(w.deployment.metadata.annotations[REVISION_ANNOTATION], "3");
    assert_eq!(
        revisions(&w),
        [(2, "web:2".into(), 0), (3, "web:1".into(), 2)],
        "revision 1 came back as 3"
    );
    assert_eq!(
        current(&w).metadata.annotations[REVISION_HISTORY_ANNOTATION],
        "1"
    );
    // The previous one is now revision 2 (web:2).
    let rs = owned(&w.deployment, &w.replica_sets);
    let prev = undo(&w.deployment, &rs, 0).unwrap();
    assert_eq!(prev.spec.containers[0].image, "web:2");
    assert!(!prev.metadata.labels.contains_key(POD_TEMPLATE_HASH));
}

#[test]
fn undo_without_history_fails() {
    let mut w = world(deployment(1, "web:1", json!({})));
    converge(&mut w, 0, |_| {});
    let rs = owned(&w.deployment, &w.replica_sets);
    assert!(matches!(
        undo(&w.deployment, &rs, 0),
        Err(UndoError::NoHistory { .. })
    ));
}

#[test]
fn revision_history_limit_prunes_oldest_unused() {
    let mut w = world(deployment(1, "web:1", json!({"revisionHistoryLimit": 2})));
    let mut now = converge(&mut w, 0, |_| {});
    for v in 2..=5 {
        set_image(&mut w, &format!("web:{v}"));
        now = converge(&mut w, now, |_| {});
    }
    assert_eq!(
        revisions(&w),
        [
            (3, "web:3".to_string(), 0),
            (4, "web:4".to_string(), 0),
            (5, "web:5".to_string(), 1)
        ]
    );
}

#[test]
fn a_paused_deployment_makes_no_replica_set_and_changes_no_pod() {
    let mut w = world(deployment(2, "web:1", json!({})));
    let now = converge(&mut w, 0, |_| {});
    w.deployment.spec.paused = true;
    set_image(&mut w, "web:2");
    let actions = plan(&w, now);
    assert!(!actions.iter().any(changes_pods), "{actions:?}");
    w.apply(actions, t(now));
    assert_eq!(w.replica_sets.len(), 1);
    assert!(plan(&w, now + 1).is_empty());
    w.deployment.spec.paused = false;
    converge(&mut w, now + 1, |_| {});
    assert_eq!(w.images(), ["web:2"; 2]);
    assert_eq!(w.replica_sets.len(), 2);
}

#[test]
fn stuck_rollout_exceeds_progress_deadline() {
    let mut w = world(deployment(
        1,
        "web:1",
        json!({"progressDeadlineSeconds": 60}),
    ));
    w.apply(plan(&w, 0), t(0)); // the ReplicaSet
    w.apply(plan(&w, 0), t(0));
    // The pod never becomes ready; the last progress is its creation being
    // observed at 30 s.
    w.apply(plan(&w, 30), t(30));
    assert!(plan(&w, 89).is_empty());
    w.apply(plan(&w, 90), t(90));
    let s = w.deployment.status.as_ref().unwrap();
    let p = s
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (p.status.as_str(), p.reason.as_deref()),
        ("False", Some(REASON_DEADLINE))
    );
    assert!(plan(&w, 200).is_empty());
}

#[test]
fn pods_and_replica_sets_of_other_owners_are_left_alone() {
    // A Deployment of the same name and template but another uid (the old
    // one of a deletion the garbage collector has not finished): its
    // ReplicaSet has the name this one's would have.
    let mut w = world(deployment(1, "web:1", json!({})));
    let mut other = deployment(1, "web:1", json!({}));
    other.metadata.uid = Some("other-uid".into());
    for _ in 0..2 {
        let actions = plan_deployment(DeploymentInput {
            deployment: &other,
            pods: &w.pods,
            replica_sets: &w.replica_sets,
            revisions: &[],
            refused: None,
            now: t(0),
        });
        w.apply(actions, t(0));
    }
    assert_eq!((w.pods.len(), w.replica_sets.len()), (1, 1));
    let theirs = w.replica_sets[0].clone();
    // The name is taken: the collision count salts the hash.
    let actions = plan(&w, 1);
    let [Action::UpdateDeploymentStatus { status, .. }] = actions.as_slice() else {
        panic!("{actions:?}");
    };
    assert_eq!(status.collision_count, Some(1));
    w.apply(actions, t(1));
    converge(&mut w, 1, |_| {});
    assert_eq!((w.pods.len(), w.replica_sets.len()), (2, 2));
    assert_eq!(w.replica_set(theirs.name()), &theirs, "untouched");
    let mine = owned(&w.deployment, &w.replica_sets);
    assert_eq!(mine.len(), 1);
    assert_ne!(mine[0].name(), theirs.name());
    assert_eq!(revision(mine[0]), 1);
}

#[test]
fn pods_pod_security_refuses_are_not_created_and_a_condition_says_why() {
    use bramble_api::objects::common::find_condition;
    let why = "violates PodSecurity \"baseline:latest\": privileged (container \"web\" must not set securityContext.privileged=true)";
    let refused = |w: &World, now: u64| {
        plan_deployment(DeploymentInput {
            deployment: &w.deployment,
            pods: &w.pods,
            replica_sets: &w.replica_sets,
            revisions: &w.revisions,
            refused: Some(why),
            now: t(now),
        })
    };
    let mut w = world(deployment(2, "web:1", json!({})));
    w.apply(refused(&w, 0), t(0)); // the ReplicaSet
    let actions = refused(&w, 0);
    assert!(!actions.iter().any(changes_pods), "{actions:?}");
    w.apply(actions, t(0));
    let hash = template_hash(&w.deployment.spec.template);
    let status = w.deployment.status.clone().unwrap();
    let c = find_condition(&status.conditions, "ReplicaFailure").unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("True", Some("FailedCreate"))
    );
    assert_eq!(
        c.message.as_deref().unwrap(),
        format!("pods \"web-{hash}-\" is forbidden: {why}")
    );
    // Stable while refused: nothing to write round after round.
    assert!(refused(&w, 5).is_empty(), "{:?}", refused(&w, 5));
    // Admitted again: the pods come and the condition goes.
    converge(&mut w, 6, |_| {});
    assert_eq!(w.pods.len(), 2);
    let status = w.deployment.status.clone().unwrap();
    assert!(find_condition(&status.conditions, "ReplicaFailure").is_none());
    // Pods already running are left alone: a refusal only stops creations
    // (the release is marked fully available once, as any other).
    let marked = refused(&w, 100);
    assert!(
        marked
            .iter()
            .all(|a| matches!(a, Action::MarkFullyAvailable { .. })),
        "{marked:?}"
    );
    w.apply(marked, t(100));
    assert!(refused(&w, 100).is_empty());
}

#[test]
fn an_older_hubs_pods_and_records_become_replica_sets_without_a_restart() {
    use super::pods::from_template;
    use super::revision::Revision;
    let mut w = world(deployment(2, "web:2", json!({})));
    let v2 = w.deployment.spec.template.clone();
    let mut v1 = v2.clone();
    v1.spec.containers[0].image = "web:1".into();
    let (h1, h2) = (template_hash(&v1), template_hash(&v2));
    let record = |revision, hash: &str, template, cause: Option<&str>| Revision {
        owner_uid: "web-uid".into(),
        revision,
        hash: hash.into(),
        template,
        change_cause: cause.map(str::to_string),
    };
    w.revisions = vec![
        record(1, &h1, v1, None),
        record(2, &h2, v2.clone(), Some("image web:2")),
    ];
    w.deployment
        .metadata
        .annotations
        .insert(REVISION_ANNOTATION.into(), "2".into());
    for i in 0..2 {
        let name = format!("web-{h2}-old{i}");
        let labels = [(POD_TEMPLATE_HASH, h2.as_str())];
        let mut p = from_template(&v2, name, "Deployment", &w.deployment.metadata, &labels);
        p.metadata.uid = Some(format!("old-{i}"));
        make_ready(&mut p, t(0));
        w.pods.push(p);
    }
    let before = w.pods.clone();

    let actions = plan(&w, 10);
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(
        actions
            .iter()
            .all(|a| matches!(a, Action::CreateReplicaSet(_)))
    );
    w.apply(actions, t(10));
    assert_eq!(
        revisions(&w),
        [(1, "web:1".into(), 0), (2, "web:2".into(), 2)]
    );
    assert_eq!(
        current(&w).metadata.annotations[CHANGE_CAUSE_ANNOTATION],
        "image web:2"
    );
    let now = converge(&mut w, 10, |w| assert_eq!(w.pods.len(), 2));
    assert_eq!(w.pods, before, "the pods are adopted as they are");
    assert!(w.revisions.is_empty(), "the records are dropped");
    let s = current(&w).status.clone().unwrap();
    assert_eq!((s.replicas, s.ready_replicas), (2, 2));
    assert_eq!(w.deployment.metadata.annotations[REVISION_ANNOTATION], "2");

    // A rollout replaces them through the ReplicaSets.
    set_image(&mut w, "web:3");
    converge(&mut w, now, |_| {});
    assert_eq!(w.images(), ["web:3"; 2]);
    assert!(
        w.pods
            .iter()
            .all(|p| p.metadata.owner_references[0].kind == "ReplicaSet")
    );
    assert_eq!(
        revisions(&w),
        [
            (1, "web:1".into(), 0),
            (2, "web:2".into(), 0),
            (3, "web:3".into(), 2)
        ]
    );
}
