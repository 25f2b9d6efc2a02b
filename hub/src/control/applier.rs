//! The one applier: executes the controllers' [`Action`]s as store writes,
//! in order. It decides nothing; a write that finds its object gone (deleted
//! meanwhile) is skipped — the next plan sees the new state. Writes the
//! controller manager reports are recorded as its events: `SuccessfulCreate`
//! and `SuccessfulDelete` on a pod's owner, `NodeReady` / `NodeNotReady`.

use anyhow::Context;
use bramble_api::objects::common::Condition;
use serde::Serialize;
use serde_json::Value;

use bramble_api::objects::Endpoints;

use super::snapshot::{
    REVISIONS_TABLE, autoscalers, daemonsets, deployments, endpoints, nodes, pods,
};
use crate::controllers::{Action, PodRef};
use crate::events::{EventType, Involved, Recorder, Source};
use crate::store::{KvWrite, Store, StoreError, object as obj};

/// Fields of a created object the store owns.
const STORE_OWNED: [&str; 4] = ["uid", "resourceVersion", "generation", "creationTimestamp"];

/// Applies `actions` in order; returns how many wrote something. An error
/// stops the batch (the next round plans again from the store).
pub async fn apply(
    store: &Store,
    actions: Vec<Action>,
    events: &Recorder,
) -> anyhow::Result<usize> {
    let mut wrote = 0;
    for action in actions {
        let what = describe(&action);
        match apply_one(store, action, events).await {
            Ok(true) => wrote += 1,
            Ok(false) => {}
            Err(e) if is_gone(&e) => tracing::debug!(%what, "object gone; action skipped"),
            Err(e) => return Err(e).with_context(|| format!("applying {what}")),
        }
    }
    Ok(wrote)
}

fn is_gone(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<StoreError>(),
        Some(StoreError::NotFound { .. } | StoreError::Conflict { .. })
    )
}

fn describe(a: &Action) -> String {
    match a {
        Action::CreatePod(p) => format!("create pod {}/{}", p.namespace(), p.name()),
        Action::DeletePod { pod, reason } => {
            format!("delete pod {}/{} ({reason})", pod.namespace, pod.name)
        }
        Action::UpdateDeploymentStatus {
            namespace, name, ..
        } => {
            format!("status of deployment {namespace}/{name}")
        }
        Action::SetDeploymentRevision {
            namespace, name, ..
        } => {
            format!("revision of deployment {namespace}/{name}")
        }
        Action::SaveRevision(r) => format!("revision record {}/{}", r.owner_uid, r.hash),
        Action::DeleteRevision { owner_uid, hash } => {
            format!("drop revision record {owner_uid}/{hash}")
        }
        Action::UpdateDaemonSetStatus {
            namespace, name, ..
        } => {
            format!("status of daemonset {namespace}/{name}")
        }
        Action::SetNodeReady { node, .. } => format!("Ready of node {node}"),
        Action::EvictPod { pod, node, .. } => {
            format!("evict pod {}/{} from {node}", pod.namespace, pod.name)
        }
        Action::PutEndpoints(e) => format!("endpoints {}/{}", e.namespace(), e.name()),
        Action::DeleteEndpoints { namespace, name } => {
            format!("delete endpoints {namespace}/{name}")
        }
        Action::FencePods { node, pods } => format!("fence {} pods on {node}", pods.len()),
        Action::ScaleDeployment {
            namespace,
            name,
            replicas,
        } => format!("scale deployment {namespace}/{name} to {replicas}"),
        Action::UpdateHpaStatus {
            namespace, name, ..
        } => {
            format!("status of autoscaler {namespace}/{name}")
        }
    }
}

/// The controller that records events about `owner`.
fn controller_of(owner: &Involved) -> Source {
    Source::hub(match owner.kind.as_str() {
        "DaemonSet" => "daemonset-controller",
        _ => "deployment-controller",
    })
}

/// Records `reason` ("Created pod: NAME") on the owner of `pod`, if it has one.
fn record_on_owner(events: &Recorder, pod: &Value, reason: &'static str, verb: &str) {
    if let Some(owner) = Involved::owner_of(pod) {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        let source = controller_of(&owner);
        events.record(
            owner,
            EventType::Normal,
            reason,
            format!("{verb} pod: {name}"),
            source,
        );
    }
}

async fn apply_one(store: &Store, action: Action, events: &Recorder) -> anyhow::Result<bool> {
    match action {
        Action::CreatePod(pod) => {
            let value = serde_json::to_value(&*pod)?;
            let admitted = bramble_api::admit(value)
                .map_err(|e| anyhow::anyhow!("controller made an invalid pod: {e}"))?;
            let mut object = admitted.object;
            for f in STORE_OWNED {
                obj::remove_meta(&mut object, f);
            }
            if let Some(m) = object.as_object_mut() {
                m.remove("status");
            }
            let created = store.create(pods(), object).await?;
            tracing::info!(pod = %format!("{}/{}", pod.namespace(), pod.name()), node = created["spec"]["nodeName"].as_str().unwrap_or(""), "pod created");
            record_on_owner(events, &created, "SuccessfulCreate", "Created");
            Ok(true)
        }
        Action::DeletePod { pod, reason } => {
            let Some(current) = store.get(pods(), Some(&pod.namespace), &pod.name)? else {
                return Ok(false);
            };
            if !uid_matches(&current, &pod) {
                return Ok(false);
            }
            store
                .delete(pods(), Some(&pod.namespace), &pod.name, None)
                .await?;
            tracing::info!(pod = %format!("{}/{}", pod.namespace, pod.name), reason, "pod deleted");
            record_on_owner(events, &current, "SuccessfulDelete", "Deleted");
            Ok(true)
        }
        Action::UpdateDeploymentStatus {
            namespace,
            name,
            status,
        } => set_status(store, deployments(), Some(&namespace), &name, &*status).await,
        Action::SetDeploymentRevision {
            namespace,
            name,
            revision,
        } => {
            let Some(mut d) = store.get(deployments(), Some(&namespace), &name)? else {
                return Ok(false);
            };
            let key = crate::controllers::revision::REVISION_ANNOTATION;
            let want = Value::String(revision.to_string());
            if d["metadata"]["annotations"][key] == want {
                return Ok(false);
            }
            if !d["metadata"]["annotations"].is_object() {
                d["metadata"]["annotations"] = Value::Object(Default::default());
            }
            d["metadata"]["annotations"][key] = want;
            Ok(store.update(deployments(), d).await?.1)
        }
        Action::SaveRevision(r) => {
            store
                .kv_write(vec![KvWrite {
                    table: REVISIONS_TABLE,
                    key: format!("{}/{}", r.owner_uid, r.hash),
                    value: Some(serde_json::to_vec(&*r)?),
                }])
                .await?;
            Ok(true)
        }
        Action::DeleteRevision { owner_uid, hash } => {
            store
                .kv_write(vec![KvWrite {
                    table: REVISIONS_TABLE,
                    key: format!("{owner_uid}/{hash}"),
                    value: None,
                }])
                .await?;
            Ok(true)
        }
        Action::UpdateDaemonSetStatus {
            namespace,
            name,
            status,
        } => set_status(store, daemonsets(), Some(&namespace), &name, &*status).await,
        Action::SetNodeReady { node, condition } => {
            set_ready(store, &node, condition, events).await
        }
        Action::EvictPod {
            pod,
            node,
            reason,
            message,
        } => {
            let Some(mut current) = store.get(pods(), Some(&pod.namespace), &pod.name)? else {
                return Ok(false);
            };
            if !uid_matches(&current, &pod) {
                return Ok(false);
            }
            if !current["status"].is_object() {
                current["status"] = Value::Object(Default::default());
            }
            current["status"]["phase"] = "Failed".into();
            current["status"]["reason"] = reason.into();
            current["status"]["message"] = message.clone().into();
            tracing::warn!(pod = %format!("{}/{}", pod.namespace, pod.name), %node, reason, %message, "pod evicted");
            Ok(store.update_status(pods(), current).await?.1)
        }
        Action::ScaleDeployment {
            namespace,
            name,
            replicas,
        } => {
            let Some(mut d) = store.get(deployments(), Some(&namespace), &name)? else {
                return Ok(false);
            };
            if d["spec"]["replicas"].as_i64() == Some(i64::from(replicas)) {
                return Ok(false);
            }
            tracing::info!(deployment = %format!("{namespace}/{name}"), from = %d["spec"]["replicas"], to = replicas, "autoscaling");
            d["spec"]["replicas"] = replicas.into();
            Ok(store.update(deployments(), d).await?.1)
        }
        Action::UpdateHpaStatus {
            namespace,
            name,
            status,
        } => set_status(store, autoscalers(), Some(&namespace), &name, &*status).await,
        Action::PutEndpoints(e) => put_endpoints(store, &e).await,
        Action::DeleteEndpoints { namespace, name } => {
            if store.get(endpoints(), Some(&namespace), &name)?.is_none() {
                return Ok(false);
            }
            store
                .delete(endpoints(), Some(&namespace), &name, None)
                .await?;
            Ok(true)
        }
        Action::FencePods { node, pods } => {
            // The dispatcher's desired set already leaves these out; the
            // agent stops them when it applies it.
            tracing::info!(%node, pods = ?pods.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect::<Vec<_>>(), "fencing pods the store no longer has on this node");
            Ok(false)
        }
    }
}

async fn put_endpoints(store: &Store, e: &Endpoints) -> anyhow::Result<bool> {
    let want = serde_json::to_value(e)?;
    match store.get(endpoints(), Some(e.namespace()), e.name())? {
        None => {
            store.create(endpoints(), want).await?;
            Ok(true)
        }
        Some(mut current) => {
            current["subsets"] = want.get("subsets").cloned().unwrap_or(Value::Null);
            if let Some(m) = current.as_object_mut()
                && m.get("subsets").is_some_and(Value::is_null)
            {
                m.remove("subsets");
            }
            current["metadata"]["labels"] = want["metadata"]["labels"].clone();
            Ok(store.update(endpoints(), current).await?.1)
        }
    }
}

fn uid_matches(current: &Value, pod: &PodRef) -> bool {
    pod.uid
        .as_deref()
        .is_none_or(|u| current["metadata"]["uid"].as_str() == Some(u))
}

async fn set_status<S: Serialize>(
    store: &Store,
    resource: &'static bramble_api::ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    status: &S,
) -> anyhow::Result<bool> {
    let Some(mut current) = store.get(resource, namespace, name)? else {
        return Ok(false);
    };
    let status = serde_json::to_value(status)?;
    if current["status"] == status {
        return Ok(false);
    }
    current["status"] = status;
    Ok(store.update_status(resource, current).await?.1)
}

async fn set_ready(
    store: &Store,
    node: &str,
    condition: Condition,
    events: &Recorder,
) -> anyhow::Result<bool> {
    let Some(mut current) = store.get(nodes(), None, node)? else {
        return Ok(false);
    };
    let was_ready = current["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"] == "True");
    let ready = condition.status == "True";
    if !current["status"].is_object() {
        current["status"] = Value::Object(Default::default());
    }
    let mut conditions: Vec<Value> = current["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions.retain(|c| c["type"] != "Ready");
    conditions.push(serde_json::to_value(&condition)?);
    current["status"]["conditions"] = Value::Array(conditions);
    tracing::info!(%node, status = %condition.status, reason = condition.reason.as_deref().unwrap_or(""), "node Ready changed");
    let (stored, changed) = store.update_status(nodes(), current).await?;
    if changed && was_ready != Some(ready) {
        let status = if ready { "NodeReady" } else { "NodeNotReady" };
        events.record(
            Involved::of(&stored),
            // Kubernetes' node controller records both as Normal.
            EventType::Normal,
            status,
            format!("Node {node} status is now: {status}"),
            Source::hub("node-controller"),
        );
    }
    Ok(changed)
}
