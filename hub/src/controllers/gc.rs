//! Garbage collection by owner reference, as Kubernetes' garbage collector
//! does it in the background: a pod, ReplicaSet or Job whose every
//! `ownerReference` names a Deployment, ReplicaSet, DaemonSet, StatefulSet,
//! Job or CronJob that no longer exists (no object of that kind with that
//! uid in its namespace) is deleted. So deleting a Deployment deletes its
//! ReplicaSets, and then their pods; deleting a CronJob its Jobs, and then
//! theirs; deleting a StatefulSet its pods (never its claims, which have no
//! owner). An object with no owner, or with an owner of a kind the hub
//! does not run, is never touched. Revision records of older hubs whose
//! Deployment is gone are dropped too.
//!
//! Safe against the snapshot's per-kind reads as long as dependents are
//! read before their owners (pods, then ReplicaSets and Jobs, then
//! Deployments, DaemonSets, StatefulSets and CronJobs): an owner missing
//! from the later read was deleted.

use std::collections::BTreeSet;

use bramble_api::meta::{ObjectMeta, OwnerReference};
use bramble_api::objects::{CronJob, DaemonSet, Deployment, Job, Pod, ReplicaSet, StatefulSet};

use super::action::{Action, Garbage, ObjectRef, PodRef};
use super::revision::Revision;

/// The kinds (`apiVersion`, kind) whose objects own others here: the
/// collector can tell one of them gone.
pub const OWNER_KINDS: [(&str, &str); 6] = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
];

/// What the garbage collector reads: every object of these kinds.
#[derive(Debug, Clone, Copy)]
pub struct GcInput<'a> {
    pub pods: &'a [Pod],
    pub replica_sets: &'a [ReplicaSet],
    pub deployments: &'a [Deployment],
    pub daemonsets: &'a [DaemonSet],
    pub jobs: &'a [Job],
    pub cron_jobs: &'a [CronJob],
    pub statefulsets: &'a [StatefulSet],
    pub revisions: &'a [Revision],
}

/// `(kind, namespace, uid)` of every object that can own others.
type Owners<'a> = BTreeSet<(&'static str, &'a str, &'a str)>;

/// The deletions of objects whose owners are all gone.
pub fn plan_gc(input: GcInput<'_>) -> Vec<Action> {
    let mut owners: Owners<'_> = BTreeSet::new();
    collect(
        &mut owners,
        "Deployment",
        input.deployments.iter().map(|d| &d.metadata),
    );
    collect(
        &mut owners,
        "ReplicaSet",
        input.replica_sets.iter().map(|r| &r.metadata),
    );
    collect(
        &mut owners,
        "DaemonSet",
        input.daemonsets.iter().map(|d| &d.metadata),
    );
    collect(&mut owners, "Job", input.jobs.iter().map(|j| &j.metadata));
    collect(
        &mut owners,
        "CronJob",
        input.cron_jobs.iter().map(|c| &c.metadata),
    );
    collect(
        &mut owners,
        "StatefulSet",
        input.statefulsets.iter().map(|s| &s.metadata),
    );

    let mut actions = Vec::new();
    for j in input.jobs {
        if orphaned(&owners, &j.metadata) {
            actions.push(Action::CollectGarbage(Garbage::Job(ObjectRef::of(
                &j.metadata,
            ))));
        }
    }
    for rs in input.replica_sets {
        if orphaned(&owners, &rs.metadata) {
            actions.push(Action::CollectGarbage(Garbage::ReplicaSet(ObjectRef::of(
                &rs.metadata,
            ))));
        }
    }
    for p in input.pods {
        if orphaned(&owners, &p.metadata) {
            actions.push(Action::CollectGarbage(Garbage::Pod(PodRef::of(p))));
        }
    }
    let deployments: BTreeSet<&str> = input
        .deployments
        .iter()
        .filter_map(|d| d.metadata.uid.as_deref())
        .collect();
    for r in input.revisions {
        if !deployments.contains(r.owner_uid.as_str()) {
            actions.push(Action::DeleteRevision {
                owner_uid: r.owner_uid.clone(),
                hash: r.hash.clone(),
            });
        }
    }
    actions
}

fn collect<'a>(
    owners: &mut Owners<'a>,
    kind: &'static str,
    metas: impl Iterator<Item = &'a ObjectMeta>,
) {
    for m in metas {
        if let Some(uid) = m.uid.as_deref() {
            owners.insert((kind, m.namespace_or_default(), uid));
        }
    }
}

/// The kinds whose objects the hub runs, and so can tell gone.
fn known(o: &OwnerReference) -> Option<&'static str> {
    OWNER_KINDS
        .into_iter()
        .find(|(v, k)| *v == o.api_version && *k == o.kind)
        .map(|(_, k)| k)
}

/// Every owner reference of `meta` names a known kind and a gone object.
fn orphaned(owners: &Owners<'_>, meta: &ObjectMeta) -> bool {
    let ns = meta.namespace_or_default();
    !meta.owner_references.is_empty()
        && meta
            .owner_references
            .iter()
            .all(|o| known(o).is_some_and(|kind| !owners.contains(&(kind, ns, o.uid.as_str()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(name: &str, uid: &str, owners: serde_json::Value) -> serde_json::Value {
        json!({"name": name, "namespace": "default", "uid": uid, "ownerReferences": owners})
    }

    fn owner(kind: &str, name: &str, uid: &str) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true})
    }

    fn pod(name: &str, owners: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": meta(name, &format!("uid-{name}"), owners),
            "spec": {"containers": [{"name": "c", "image": "i"}]}}))
        .unwrap()
    }

    fn rs(name: &str, owners: serde_json::Value) -> ReplicaSet {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": meta(name, &format!("uid-{name}"), owners)}))
        .unwrap()
    }

    fn deployment(name: &str) -> Deployment {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta(name, &format!("uid-{name}"), json!([]))}))
        .unwrap()
    }

    fn statefulset(name: &str) -> StatefulSet {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": meta(name, &format!("uid-{name}"), json!([]))}))
        .unwrap()
    }

    fn collected(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::CollectGarbage(Garbage::Pod(p)) => format!("pod/{}", p.name),
                Action::CollectGarbage(Garbage::ReplicaSet(r)) => format!("rs/{}", r.name),
                Action::CollectGarbage(Garbage::Job(j)) => format!("job/{}", j.name),
                Action::DeleteRevision { owner_uid, .. } => format!("revision/{owner_uid}"),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn dependents_of_gone_owners_go_and_the_rest_stay() {
        let pods = [
            pod("bare", json!([])),
            pod(
                "of-live-rs",
                json!([owner("ReplicaSet", "web-a", "uid-web-a")]),
            ),
            pod(
                "of-gone-rs",
                json!([owner("ReplicaSet", "old-a", "uid-old-a")]),
            ),
            // An older hub's pod, controlled by its Deployment directly.
            pod(
                "of-live-deploy",
                json!([owner("Deployment", "web", "uid-web")]),
            ),
            pod(
                "of-gone-ds",
                json!([owner("DaemonSet", "logs", "uid-logs")]),
            ),
            pod("db-0", json!([owner("StatefulSet", "db", "uid-db")])),
            pod("old-0", json!([owner("StatefulSet", "old", "uid-old")])),
            // A recreated owner has another uid: the old one is gone.
            pod(
                "of-recreated",
                json!([owner("Deployment", "web", "uid-web-before")]),
            ),
            // Kinds the hub does not run are never judged.
            pod(
                "of-another-kind",
                json!([{"apiVersion": "example.bramble.dev/v1", "kind": "Gizmo", "name": "s", "uid": "s"}]),
            ),
            pod(
                "of-gone-job",
                json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "j"}]),
            ),
            pod(
                "one-owner-left",
                json!([
                    owner("ReplicaSet", "old-a", "uid-old-a"),
                    owner("Deployment", "web", "uid-web")
                ]),
            ),
        ];
        let replica_sets = [
            rs("web-a", json!([owner("Deployment", "web", "uid-web")])),
            rs("old-b", json!([owner("Deployment", "old", "uid-old")])),
        ];
        let revisions = [Revision {
            owner_uid: "uid-old".into(),
            revision: 1,
            hash: "h".into(),
            template: Default::default(),
            change_cause: None,
        }];
        let actions = plan_gc(GcInput {
            pods: &pods,
            replica_sets: &replica_sets,
            deployments: &[deployment("web")],
            daemonsets: &[],
            jobs: &[],
            cron_jobs: &[],
            statefulsets: &[statefulset("db")],
            revisions: &revisions,
        });
        assert_eq!(
            collected(&actions),
            [
                "rs/old-b",
                "pod/of-gone-rs",
                "pod/of-gone-ds",
                "pod/old-0",
                "pod/of-recreated",
                "pod/of-gone-job",
                "revision/uid-old"
            ]
        );
    }
}
