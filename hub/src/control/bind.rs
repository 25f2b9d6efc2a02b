//! Scheduling round: every pending pod (no `spec.nodeName`, not finished) is
//! placed by the pure scheduler in creation order and bound with one store
//! write; a pod that fits nowhere gets `PodScheduled=False` with the
//! scheduler's message (`0/3 nodes are available: ...`), written only when
//! it changes. Both are recorded as kube-scheduler's events: `Scheduled`,
//! and `FailedScheduling` whenever the message changes.
//!
//! Pods with PersistentVolumeClaims are placed where their volumes are
//! ([`crate::scheduler::volumes`]). A claim waiting for its first consumer
//! gets the node of the first pod placed with it
//! (`volume.kubernetes.io/selected-node`), where the volume controller
//! then provisions its volume; other pods of that claim wait for the next
//! round, which keeps them on the same node.

use std::time::SystemTime;

use bramble_api::objects::Pod;
use serde_json::Value;

use super::snapshot::{Snapshot, claims, pods};
use crate::claims::{ClaimState, Claims};
use crate::controllers::pods::is_finished;
use crate::events::{EventType, Involved, Recorder, Source};
use crate::scheduler::volumes::{VolumeNeeds, needs_of};
use crate::scheduler::{Cluster, ImagePlatforms, PendingPod, schedule_batch, workload_key};
use crate::store::{Store, StoreError};
use bramble_api::objects::persistent_volume_claim::SELECTED_NODE;

/// The events' source.
const SCHEDULER: Source = Source::hub("default-scheduler");

/// Binds what can be bound; returns the number of pods bound.
pub async fn schedule_pending(
    store: &Store,
    snap: &Snapshot,
    images: &ImagePlatforms,
    events: &Recorder,
) -> Result<usize, StoreError> {
    let mut pending: Vec<&Pod> = snap
        .pods
        .iter()
        .filter(|p| p.node_name().is_none_or(str::is_empty) && !is_finished(p))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    if pending.is_empty() {
        return Ok(0);
    }
    pending.sort_by(|a, b| {
        (a.metadata.creation_timestamp.as_deref(), a.name())
            .cmp(&(b.metadata.creation_timestamp.as_deref(), b.name()))
    });
    let mut cluster = Cluster::new(&snap.nodes);
    for p in &snap.pods {
        if p.node_name().is_some_and(|n| !n.is_empty()) {
            cluster.add_pod(p, workload_key(p).as_deref());
        }
    }
    let view = Claims::new(&snap.claims, &snap.volumes, &snap.storage_classes);
    // One pod per claim still waiting for a first consumer: the first
    // placed picks the claim's node for the others.
    let mut choosing = std::collections::BTreeSet::new();
    pending.retain(|p| {
        waiting_claims(p, &view)
            .into_iter()
            .all(|c| choosing.insert((c.namespace().to_string(), c.name().to_string())))
    });
    let keys: Vec<Option<String>> = pending.iter().map(|p| workload_key(p)).collect();
    let needs: Vec<Option<VolumeNeeds>> = pending
        .iter()
        .map(|p| {
            p.spec
                .volumes
                .iter()
                .any(|v| v.persistent_volume_claim.is_some())
                .then(|| needs_of(p, &view, &snap.nodes))
        })
        .collect();
    let batch: Vec<PendingPod<'_>> = pending
        .iter()
        .zip(&keys)
        .zip(&needs)
        .map(|((p, k), n)| PendingPod {
            pod: p,
            workload: k.as_deref(),
            volumes: n.as_ref(),
        })
        .collect();
    let results = schedule_batch(&mut cluster, &batch, images);
    let mut bound = 0;
    for (pod, result) in pending.iter().zip(results) {
        let Some(mut current) = store.get(pods(), Some(pod.namespace()), pod.name())? else {
            continue;
        };
        if current["metadata"]["uid"].as_str() != pod.metadata.uid.as_deref() {
            continue;
        }
        match result {
            Ok(placement) => {
                for claim in waiting_claims(pod, &view) {
                    select_node(store, claim, &placement.node).await?;
                }
                current["spec"]["nodeName"] = placement.node.clone().into();
                store.update(pods(), current).await?;
                let mut bound_pod = store
                    .get(pods(), Some(pod.namespace()), pod.name())?
                    .unwrap_or_default();
                if set_scheduled(&mut bound_pod, "True", None, None) {
                    store.update_status(pods(), bound_pod).await?;
                }
                tracing::info!(pod = %pod.metadata.key(), node = %placement.node, score = placement.score, feasible = placement.feasible, "pod bound");
                events.record(
                    Involved::pod(pod),
                    EventType::Normal,
                    "Scheduled",
                    format!(
                        "Successfully assigned {}/{} to {}",
                        pod.namespace(),
                        pod.name(),
                        placement.node
                    ),
                    SCHEDULER,
                );
                bound += 1;
            }
            Err(why) => {
                let message = why.to_string();
                if set_scheduled(&mut current, "False", Some("Unschedulable"), Some(&message)) {
                    tracing::info!(pod = %pod.metadata.key(), %message, "pod unschedulable");
                    store.update_status(pods(), current).await?;
                    events.record(
                        Involved::pod(pod),
                        EventType::Warning,
                        "FailedScheduling",
                        message,
                        SCHEDULER,
                    );
                }
            }
        }
    }
    Ok(bound)
}

/// The claims of `pod` that wait for a first consumer and have no node yet.
fn waiting_claims<'a>(
    pod: &Pod,
    view: &Claims<'a>,
) -> Vec<&'a bramble_api::objects::PersistentVolumeClaim> {
    pod.spec
        .volumes
        .iter()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .filter_map(|c| match view.state(pod.namespace(), &c.claim_name) {
            ClaimState::WaitsForConsumer(claim) if Claims::selected_node(claim).is_none() => {
                Some(claim)
            }
            _ => None,
        })
        .collect()
}

/// Writes `node` into the claim's `volume.kubernetes.io/selected-node`.
async fn select_node(
    store: &Store,
    claim: &bramble_api::objects::PersistentVolumeClaim,
    node: &str,
) -> Result<(), StoreError> {
    let Some(mut current) = store.get(claims(), Some(claim.namespace()), claim.name())? else {
        return Ok(());
    };
    if current["metadata"]["uid"].as_str() != claim.metadata.uid.as_deref() {
        return Ok(());
    }
    if !current["metadata"]["annotations"].is_object() {
        current["metadata"]["annotations"] = Value::Object(Default::default());
    }
    current["metadata"]["annotations"][SELECTED_NODE] = node.into();
    store.update(claims(), current).await?;
    tracing::info!(claim = %claim.metadata.key(), %node, "claim's node selected");
    Ok(())
}

/// Sets the `PodScheduled` condition (and `phase: Pending` if unset);
/// returns whether anything changed.
fn set_scheduled(
    pod: &mut Value,
    status: &str,
    reason: Option<&str>,
    message: Option<&str>,
) -> bool {
    if !pod.is_object() {
        return false;
    }
    if !pod["status"].is_object() {
        pod["status"] = Value::Object(Default::default());
    }
    let before = pod["status"].clone();
    if pod["status"]["phase"].is_null() {
        pod["status"]["phase"] = "Pending".into();
    }
    let mut conditions: Vec<Value> = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let old = conditions.iter().find(|c| c["type"] == "PodScheduled");
    let same = old.is_some_and(|c| {
        c["status"] == status && c["reason"].as_str() == reason && c["message"].as_str() == message
    });
    if !same {
        conditions.retain(|c| c["type"] != "PodScheduled");
        let mut c = serde_json::json!({
            "type": "PodScheduled",
            "status": status,
            "lastTransitionTime": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        });
        if let Some(r) = reason {
            c["reason"] = r.into();
        }
        if let Some(m) = message {
            c["message"] = m.into();
        }
        conditions.push(c);
        pod["status"]["conditions"] = Value::Array(conditions);
    }
    pod["status"] != before
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scheduled_condition_is_written_once() {
        let mut pod = json!({"metadata": {"name": "a"}, "spec": {}});
        assert!(set_scheduled(
            &mut pod,
            "False",
            Some("Unschedulable"),
            Some("0/1 nodes")
        ));
        assert_eq!(pod["status"]["phase"], "Pending");
        assert!(!set_scheduled(
            &mut pod,
            "False",
            Some("Unschedulable"),
            Some("0/1 nodes")
        ));
        assert!(set_scheduled(&mut pod, "True", None, None));
        let conds = pod["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0]["status"], "True");
        assert!(conds[0].get("reason").is_none());
    }
}
