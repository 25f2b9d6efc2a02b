//! Handling `status` (already verified as the node's): drop other sessions'
//! and old or duplicate reports, ignore an absurd observed generation,
//! record the heartbeat in the [`crate::fleet::Fleet`], and write each
//! reported pod's status to the store when the pod is the same one (uid) and
//! bound to this node, and the status changed (the store commits durably, so
//! no-op writes are skipped before they reach it). A pod that left a terminal
//! phase (`Succeeded`, `Failed`, e.g. evicted with `NodeLost`) is not moved
//! back. Pods the store does not have on this node are only listed in the
//! fleet, for the dispatcher to fence. Each written change also records the
//! kubelet's events of it ([`crate::events::kubelet`]). Pod addresses the
//! node may not report are dropped first ([`super::pod_ips`]).

use bramble_api::ObjectKey;
use std::time::SystemTime;

use bramble_api::protocol::{PodReport, Status};
use bramble_api::resource::{ResourceInfo, by_plural};
use serde_json::Value;
use tokio::task::JoinSet;

use super::Ingest;
use crate::controllers::PodRef;
use crate::events::kubelet::{self, PodEvent};
use crate::events::{Involved, Recorder, Source};
use crate::store::{Store, StoreError};

fn pods() -> &'static ResourceInfo {
    by_plural("", "v1", "pods").expect("pods are registered")
}

impl Ingest {
    /// Applies one decoded `status` of `node`.
    pub(super) async fn on_status(&self, node: &str, status: Status) {
        // A hub that restarted while its agents stayed connected to an
        // external broker knows no live sessions: it resumes the one the
        // node's last hello registered (a status of an older session, even
        // signed, is a replay).
        let stored = self.stored_session(node);
        let plausible = status.observed_generation.is_none_or(|g| g.plausible());
        if !plausible {
            tracing::warn!(node, observed = ?status.observed_generation,
                "status reports an absurd observed generation; ignored");
        }
        let build_reports = status.builds.clone();
        let accepted = self.fleet.update(node, |live| {
            let resumed = live.session.is_empty();
            super::adopt_stored_session(node, live, stored);
            if live.session.is_empty() || live.session != status.session {
                return Err("its session is not the node's accepted one (no hello yet?)");
            }
            if resumed {
                live.online = true;
            }
            if status.seq <= live.last_seq && live.last_seq != 0 {
                return Err("duplicate or reordered seq");
            }
            live.last_seq = status.seq;
            live.last_heartbeat = Some(SystemTime::now());
            if plausible {
                live.observed = status.observed_generation;
            }
            live.rpc_seq = live.rpc_seq.max(status.rpc_seq.unwrap_or(0));
            live.rejected = status.desired_rejected.clone();
            live.reclaimed = status.reclaimed.iter().cloned().collect();
            if !status.volume_usage.is_empty() {
                live.volume_usage = status.volume_usage.clone();
            }
            live.running = status
                .pods
                .iter()
                .map(|p| PodRef {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    uid: Some(p.uid.clone()),
                })
                .collect();
            live.pod_usage = status
                .pods
                .iter()
                .filter_map(|p| {
                    let usage = p.usage.clone()?;
                    Some((ObjectKey::new(&p.namespace, &p.name).to_string(), usage))
                })
                .collect();
            let sampled = status.usage_sampled_millis.unwrap_or(status.uptime_millis);
            for (key, usage) in live.pod_usage.clone() {
                live.sample_usage(&key, sampled, &usage);
            }
            let keep = status
                .pods
                .iter()
                .map(|p| ObjectKey::new(&p.namespace, &p.name).to_string())
                .collect();
            live.retain_usage(&keep);
            if let Some(u) = status.node_usage {
                live.sample_node_usage(sampled, &u);
                live.node_usage = Some(u);
            }
            Ok(())
        });
        if let Err(why) = accepted {
            tracing::debug!(
                node,
                session = status.session,
                seq = status.seq,
                why,
                "status ignored"
            );
            return;
        }
        if let Some(builds) = &self.builds {
            builds.report(node, build_reports);
        }
        // Most heartbeats repeat the last report: those pods are skipped
        // without reading the store.
        let before = self
            .fleet
            .update(node, |live| std::mem::take(&mut live.status_hashes));
        let mut seen = std::collections::HashMap::with_capacity(status.pods.len());
        // Read once per report, and only when some pod's status changed.
        let mut addresses = None;
        let mut writes = JoinSet::new();
        for report in status.pods {
            let id = format!("{}/{}/{}", report.namespace, report.name, report.uid);
            let hash = serde_json::to_vec(&report.status)
                .map(|b| crate::controllers::naming::fnv1a(&[&b]))
                .unwrap_or(0);
            if before.get(&id) == Some(&hash) {
                seen.insert(id, hash);
                continue;
            }
            if addresses.is_none() {
                match node_addresses(&self.store, node) {
                    Ok(a) => addresses = Some(a),
                    Err(e) => {
                        tracing::warn!(node, error = %e, "reading the node failed");
                        continue;
                    }
                }
            }
            let Some(node_addresses) = &addresses else {
                continue;
            };
            match pending_write(&self.store, node, node_addresses, &report) {
                Ok(Some((object, events))) => {
                    let store = self.store.clone();
                    let recorder = self.events.clone();
                    let node = node.to_string();
                    writes.spawn(async move {
                        let written = store.update_status(pods(), object).await;
                        if let Ok((pod, true)) = &written {
                            record_pod_events(&recorder, pod, &node, events);
                        }
                        (report, id, hash, written)
                    });
                }
                Ok(None) => {
                    seen.insert(id, hash);
                }
                Err(e) => {
                    tracing::warn!(node, pod = %key(&report), error = %e, "reading pod failed")
                }
            }
        }
        while let Some(done) = writes.join_next().await {
            match done {
                Ok((_, id, hash, Ok(_))) => {
                    seen.insert(id, hash);
                }
                // A concurrent change wins; the next heartbeat retries.
                Ok((
                    report,
                    _,
                    _,
                    Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }),
                )) => {
                    tracing::debug!(node, pod = %key(&report), "pod changed meanwhile; status skipped")
                }
                Ok((report, _, _, Err(e))) => {
                    tracing::warn!(node, pod = %key(&report), error = %e, "writing pod status failed")
                }
                Err(e) => tracing::error!(node, error = %e, "pod status task failed"),
            }
        }
        self.fleet.update(node, |live| live.status_hashes = seen);
    }
}

/// The pod object to write back with the reported status and the kubelet's
/// events of the change, or `None` when the pod is not this node's, is
/// another pod (uid), or nothing changed.
fn pending_write(
    store: &Store,
    node: &str,
    node_addresses: &super::pod_ips::NodeAddresses,
    report: &PodReport,
) -> Result<Option<(Value, Vec<PodEvent>)>, StoreError> {
    let Some(mut pod) = store.get(pods(), Some(&report.namespace), &report.name)? else {
        return Ok(None);
    };
    if pod["metadata"]["uid"] != report.uid.as_str() || pod["spec"]["nodeName"] != node {
        return Ok(None);
    }
    let Ok(mut reported) = serde_json::to_value(&report.status) else {
        return Ok(None);
    };
    let host_network = pod["spec"]["hostNetwork"].as_bool().unwrap_or(false);
    if let Some(dropped) = super::pod_ips::sanitize(&mut reported, host_network, node_addresses) {
        tracing::warn!(node, pod = %key(report), "{dropped}");
    }
    // The class the pod was created with stays (nodes do not report it).
    if let Some(qos) = pod["status"].get("qosClass")
        && reported.get("qosClass").is_none()
    {
        reported["qosClass"] = qos.clone();
    }
    if pod.get("status") == Some(&reported) {
        return Ok(None);
    }
    let stored_phase = pod["status"]["phase"].as_str().unwrap_or("");
    if matches!(stored_phase, "Succeeded" | "Failed") && reported["phase"] != stored_phase {
        tracing::debug!(node, pod = %key(report), stored_phase, "pod is finished; report ignored");
        return Ok(None);
    }
    let label = kubelet::pod_label(&report.namespace, &report.name, &report.uid);
    let events = kubelet::transitions(&label, &pod["status"], &reported, &report.pulls);
    pod["status"] = reported;
    Ok(Some((pod, events)))
}

/// The pod CIDR and `InternalIP` the store has for `node`.
fn node_addresses(store: &Store, node: &str) -> Result<super::pod_ips::NodeAddresses, StoreError> {
    let n = store.get(nodes(), None, node)?.unwrap_or_default();
    let internal_ip = n["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .and_then(|a| a.parse().ok());
    Ok(super::pod_ips::NodeAddresses {
        pod_cidr: n["spec"]["podCIDR"].as_str().and_then(|c| c.parse().ok()),
        internal_ip,
    })
}

fn nodes() -> &'static ResourceInfo {
    by_plural("", "v1", "nodes").expect("nodes are served")
}

/// Records `events` of the stored `pod` as the kubelet of `node` would.
fn record_pod_events(recorder: &Recorder, pod: &Value, node: &str, events: Vec<PodEvent>) {
    let involved = Involved::of(pod);
    for e in events {
        let involved = match &e.container {
            Some(c) => involved.clone().container(c),
            None => involved.clone(),
        };
        recorder.record(
            involved,
            e.type_,
            e.reason,
            e.message,
            Source {
                component: "kubelet",
                host: Some(node.to_string()),
            },
        );
    }
}

fn key(report: &PodReport) -> String {
    ObjectKey::new(&report.namespace, &report.name).to_string()
}
