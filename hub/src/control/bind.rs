//! Scheduling round: every pending pod (no `spec.nodeName`, not finished) is
//! placed by the pure scheduler in creation order and bound with one store
//! write; a pod that fits nowhere gets `PodScheduled=False` with the
//! scheduler's message (`0/3 nodes are available: ...`), written only when
//! it changes. Both are recorded as kube-scheduler's events: `Scheduled`,
//! and `FailedScheduling` whenever the message changes.

use std::time::SystemTime;

use bramble_api::objects::Pod;
use serde_json::Value;

use super::snapshot::{Snapshot, pods};
use crate::controllers::pods::is_finished;
use crate::events::{EventType, Involved, Recorder, Source};
use crate::scheduler::{Cluster, ImagePlatforms, PendingPod, schedule_batch, workload_key};
use crate::store::{Store, StoreError};

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
    let keys: Vec<Option<String>> = pending.iter().map(|p| workload_key(p)).collect();
    let batch: Vec<PendingPod<'_>> = pending
        .iter()
        .zip(&keys)
        .map(|(p, k)| PendingPod {
            pod: p,
            workload: k.as_deref(),
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
