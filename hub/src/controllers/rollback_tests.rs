//! A release that never becomes ready undoes itself when the Deployment
//! asks for it, and only then.

use serde_json::json;

use super::action::Action;
use super::deployment_status::REASON_DEADLINE;
use super::pods::is_ready;
use super::replicasets::{owned, revision};
use super::rollback::{FULLY_AVAILABLE, ROLLBACK_ON_FAILURE, ROLLED_BACK};
use super::testutil::{World, deployment, make_ready, t};

/// Plans and applies from `from` to `to` seconds, one second apart, making
/// pods of `good` images ready as they appear.
fn run(w: &mut World, from: u64, to: u64, good: &str) -> Vec<Action> {
    let mut all = Vec::new();
    for now in from..=to {
        let actions = w.plan_deployment(t(now));
        all.extend(actions.iter().cloned());
        w.apply(actions, t(now));
        for p in &mut w.pods {
            if p.spec.containers[0].image == good && !is_ready(p) {
                make_ready(p, t(now));
            }
        }
    }
    all
}

fn progressing(w: &World) -> (String, Option<String>) {
    let c = w
        .deployment
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    (c.status.clone(), c.reason.clone())
}

fn release(opt_in: bool) -> World {
    let mut d = deployment(2, "web:1", json!({"progressDeadlineSeconds": 60}));
    if opt_in {
        d.metadata
            .annotations
            .insert(ROLLBACK_ON_FAILURE.into(), "true".into());
    }
    let mut w = World {
        deployment: d,
        ..World::default()
    };
    run(&mut w, 0, 20, "web:1");
    let rs = owned(&w.deployment, &w.replica_sets);
    assert!(
        rs[0].metadata.annotations.contains_key(FULLY_AVAILABLE),
        "a completed rollout marks its ReplicaSet"
    );
    // The bad release: its pods never become ready.
    w.deployment.spec.template.spec.containers[0].image = "web:2".into();
    w.deployment.metadata.generation = Some(2);
    w
}

#[test]
fn a_release_that_misses_its_deadline_goes_back_to_the_last_available_revision() {
    let mut w = release(true);
    let actions = run(&mut w, 21, 200, "web:1");
    let rollbacks: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a, Action::RollBack { .. }))
        .collect();
    assert_eq!(rollbacks.len(), 1, "once: {rollbacks:?}");
    let Action::RollBack {
        why, to_revision, ..
    } = rollbacks[0]
    else {
        unreachable!()
    };
    assert_eq!(*to_revision, 1);
    assert!(
        why.starts_with("revision 2 made no progress for 60s (ProgressDeadlineExceeded:"),
        "{why}"
    );
    assert!(
        why.ends_with("rolled back to revision 1, the last fully available"),
        "{why}"
    );
    assert_eq!(w.deployment.metadata.annotations[ROLLED_BACK], *why);
    // All pods are the good release and ready; the rollout completed again.
    assert!(w.pods.iter().all(|p| p.spec.containers[0].image == "web:1"));
    assert_eq!(w.pods.iter().filter(|p| is_ready(p)).count(), 2);
    assert_eq!(
        progressing(&w),
        ("True".into(), Some("NewReplicaSetAvailable".into()))
    );
    // The good template is the newest revision now (Kubernetes renumbers).
    let rs = owned(&w.deployment, &w.replica_sets);
    let good = rs
        .iter()
        .find(|r| r.spec.template.spec.containers[0].image == "web:1")
        .unwrap();
    assert_eq!(revision(good), 3);
}

#[test]
fn a_release_ready_for_an_instant_then_crashing_is_never_counted_available() {
    let mut w = release(true);
    // Its pods become ready (no readiness probe: running is ready) and the
    // rollout completes...
    run(&mut w, 21, 30, "web:2");
    assert_eq!(
        progressing(&w),
        ("True".into(), Some("NewReplicaSetAvailable".into()))
    );
    // ...then they crash, before they were ready for long.
    for p in &mut w.pods {
        let s = p.status.as_mut().unwrap();
        s.conditions.retain(|c| c.type_ != "Ready");
    }
    let actions = run(&mut w, 31, 200, "web:1");
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::MarkFullyAvailable { .. })),
        "{actions:?}"
    );
    let back = actions.iter().find_map(|a| match a {
        Action::RollBack { to_revision, .. } => Some(*to_revision),
        _ => None,
    });
    assert_eq!(back, Some(1));
    assert!(w.pods.iter().all(|p| p.spec.containers[0].image == "web:1"));
}

#[test]
fn without_the_annotation_it_stays_stuck_and_says_so() {
    let mut w = release(false);
    let actions = run(&mut w, 21, 200, "web:1");
    assert!(
        !actions.iter().any(|a| matches!(a, Action::RollBack { .. })),
        "{actions:?}"
    );
    assert_eq!(
        progressing(&w),
        ("False".into(), Some(REASON_DEADLINE.into()))
    );
    assert!(w.pods.iter().any(|p| p.spec.containers[0].image == "web:2"));
}

#[test]
fn a_first_release_that_never_worked_has_nothing_to_go_back_to() {
    let mut d = deployment(1, "web:bad", json!({"progressDeadlineSeconds": 30}));
    d.metadata
        .annotations
        .insert(ROLLBACK_ON_FAILURE.into(), "true".into());
    let mut w = World {
        deployment: d,
        ..World::default()
    };
    let actions = run(&mut w, 0, 120, "web:1");
    assert!(!actions.iter().any(|a| matches!(a, Action::RollBack { .. })));
    assert_eq!(
        progressing(&w),
        ("False".into(), Some(REASON_DEADLINE.into()))
    );
}
