//! The dispatcher: each node's desired set (its bound pods and the
//! ConfigMaps and Secrets they reference) published retained on
//! `nodes/{node}/desired`, with a generation that grows whenever the content
//! changes. MQTT delivery is not trusted: until the agent reports that
//! generation the set is republished, and after every (re)connect of the
//! hub's client all sets are (a restarted broker forgot retained messages).
//!
//! Every set is signed by the hub and sealed to the node's registered key
//! (it carries the node's Secrets): the broker and other boards see only
//! ciphertext. A node without a registered key (pending approval, revoked)
//! gets none.
//!
//! A pod with PersistentVolumeClaims goes with the volumes of its claims
//! ([`crate::claims::Claims::mounts_of`]), and only once they are bound and
//! only to an agent that mounts claims (its `hello` announced the
//! `volumes` feature); until then it is held back. The set also names the
//! node's `local-path` volumes whose directories the agent must delete.
//!
//! Generations are store revisions, so they keep growing across hub
//! restarts without being stored: a restarted hub recomputes every set from
//! redb and publishes it at the current revision.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bramble_api::objects::{ConfigMap, Pod, Secret};
use std::sync::Arc;

use bramble_api::objects::Node;
use bramble_api::protocol::{
    Desired, FEATURE_BUILD, FEATURE_VOLUMES, Generation, NetworkConfig, Topic, TopicKind,
    encode_frame,
};

use crate::claims::Claims;
use crate::network::table::FEATURES_ANNOTATION;

use crate::control::snapshot::{References, Snapshot};
use crate::controllers::naming::fnv1a;
use crate::controllers::pods::is_finished;
use crate::fleet::{Fleet, Outgoing};
use crate::identity::Identity;
use crate::network::NetworkSettings;
use crate::network::pod_hosts::pod_hosts;
use crate::network::policy::{PolicyInput, resolve as resolve_policies};
use crate::network::table::{ClusterTables, ServiceTable, has_feature, network_for};

/// How long to wait for an agent to report a generation before publishing
/// it again.
pub const REPUBLISH_AFTER: Duration = Duration::from_secs(3);

/// The desired set of `node` (generation left 0): unfinished pods bound to
/// it, without status and store bookkeeping, and what they reference.
pub fn desired_for(snap: &Snapshot, node: &str) -> Desired {
    let bound: Vec<&Pod> = snap
        .pods
        .iter()
        .filter(|p| p.node_name() == Some(node))
        .collect();
    let view = Claims::new(&snap.claims, &snap.volumes, &snap.storage_classes);
    desired_of(snap, &view, node, &bound)
}

/// Whether `node`'s agent announced the `volumes` feature.
fn mounts_claims(snap: &Snapshot, node: &str) -> bool {
    snap.nodes
        .iter()
        .find(|n| n.name() == node)
        .is_some_and(|n: &Node| {
            n.metadata
                .annotations
                .get(FEATURES_ANNOTATION)
                .is_some_and(|f| f.split(',').any(|x| x.trim() == FEATURE_VOLUMES))
        })
}

/// The network part of `node`'s set (see [`crate::network::table`]).
fn network_of(
    settings: &NetworkSettings,
    snap: &Snapshot,
    node: &str,
    tables: &ClusterTables,
) -> Option<NetworkConfig> {
    let n = snap.nodes.iter().find(|n| n.name() == node)?;
    network_for(settings, &snap.nodes, n, tables)
}

/// The desired set made of `bound` (the pods bound to `node`).
fn desired_of(snap: &Snapshot, view: &Claims<'_>, node: &str, bound: &[&Pod]) -> Desired {
    let volumes_ok = mounts_claims(snap, node);
    let mut volumes = Vec::new();
    let mut pods: Vec<Pod> = bound
        .iter()
        .filter(|p| !is_finished(p))
        .filter(|p| {
            if !p
                .spec
                .volumes
                .iter()
                .any(|v| v.persistent_volume_claim.is_some())
            {
                return true;
            }
            if !volumes_ok {
                tracing::debug!(pod = %p.metadata.key(), %node, "held back: the node's agent does not mount claims");
                return false;
            }
            match view.mounts_of(p) {
                Ok(v) => {
                    volumes.extend(v);
                    true
                }
                Err(why) => {
                    tracing::debug!(pod = %p.metadata.key(), %node, %why, "held back until its volumes are bound");
                    false
                }
            }
        })
        .map(|p| (*p).clone())
        .map(|mut p| {
            p.status = None;
            p.metadata.resource_version = None;
            p
        })
        .collect();
    pods.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
    let mut refs = References::default();
    for p in &pods {
        refs.add_pod(p);
    }
    let config_maps: Vec<ConfigMap> = snap
        .config_maps
        .iter()
        .filter(|c| {
            refs.config_maps
                .contains(&(c.namespace().to_string(), c.name().to_string()))
        })
        .cloned()
        .map(|mut c| {
            c.metadata.resource_version = None;
            c
        })
        .collect();
    let secrets: Vec<Secret> = snap
        .secrets
        .iter()
        .filter(|s| {
            refs.secrets.contains(&(
                s.metadata.namespace_or_default().to_string(),
                s.metadata.name.clone(),
            ))
        })
        .cloned()
        .map(|mut s| {
            s.metadata.resource_version = None;
            s
        })
        .collect();
    volumes.sort();
    volumes.dedup();
    let reclaim: Vec<String> = if volumes_ok {
        view.to_reclaim(&snap.pods, node)
            .into_iter()
            .filter(|v| !volumes.iter().any(|c| c.volume == *v))
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    Desired {
        generation: Generation(0),
        pods,
        config_maps,
        secrets,
        network: None,
        volumes,
        reclaim,
        builds: Vec::new(),
    }
}

/// What was last published to one node.
#[derive(Debug, Clone)]
struct Sent {
    hash: u64,
    generation: Generation,
    payload: Vec<u8>,
    at: Instant,
    connection: u64,
}

/// Publishes desired sets as they change. See the module docs.
#[derive(Debug)]
pub struct Dispatcher {
    sent: HashMap<String, Sent>,
    /// The store revision the sets in `sent` were computed at.
    revision: Option<u64>,
    network: NetworkSettings,
    identity: Arc<Identity>,
    /// Build jobs to hand out (hubs that run builds), and the version of
    /// them the sets in `sent` hold.
    builds: Option<Arc<crate::build::Builds>>,
    builds_version: u64,
}

impl Dispatcher {
    /// A dispatcher for a cluster with this address plan, signing with the
    /// hub's keys and sealing to the nodes' registered ones.
    pub fn new(network: NetworkSettings, identity: Arc<Identity>) -> Dispatcher {
        Dispatcher {
            sent: HashMap::new(),
            revision: None,
            network,
            identity,
            builds: None,
            builds_version: 0,
        }
    }

    /// Hands out build jobs too (to agents with the `build` feature).
    pub fn with_builds(mut self, builds: Arc<crate::build::Builds>) -> Dispatcher {
        self.builds = Some(builds);
        self
    }

    /// Publishes `node`'s last set again when a reconnect happened or the
    /// agent has not confirmed it for [`REPUBLISH_AFTER`].
    async fn republish(
        &mut self,
        node: &str,
        s: Sent,
        live: &BTreeMap<String, crate::fleet::NodeLive>,
        fleet: &Fleet,
        connection: u64,
        now: Instant,
    ) {
        let l = live.get(node);
        let refused = l
            .and_then(|l| l.rejected.as_ref())
            .and_then(|r| r.generation)
            == Some(s.generation);
        let unconfirmed = l.and_then(|l| l.observed) != Some(s.generation) && !refused;
        let online = l.is_some_and(|l| l.online);
        let stale = now.duration_since(s.at) >= REPUBLISH_AFTER;
        if s.connection == connection && !(unconfirmed && online && stale) {
            return;
        }
        let Ok(topic) = Topic::new(node, TopicKind::Desired) else {
            return;
        };
        fleet
            .publish(Outgoing {
                topic: topic.to_string(),
                payload: s.payload.clone(),
                retain: true,
            })
            .await;
        self.sent.insert(
            node.to_string(),
            Sent {
                at: now,
                connection,
                ..s
            },
        );
    }

    /// The cluster's address plan.
    pub fn network(&self) -> &NetworkSettings {
        &self.network
    }

    /// The generation last published to `node`.
    pub fn generation(&self, node: &str) -> Option<Generation> {
        self.sent.get(node).map(|s| s.generation)
    }

    /// One round over every node of `snap`: publish changed sets, republish
    /// unconfirmed ones after [`REPUBLISH_AFTER`] and all after a reconnect
    /// (`connection` is the fleet's connection counter).
    pub async fn round(&mut self, snap: &Snapshot, fleet: &Fleet, connection: u64, now: Instant) {
        let live = fleet.snapshot();
        let names: BTreeSet<&str> = snap.nodes.iter().map(|n| n.name()).collect();
        let gone: Vec<String> = self
            .sent
            .keys()
            .filter(|n| !names.contains(n.as_str()))
            .cloned()
            .collect();
        for node in gone {
            // The node was deleted: clear its retained set from the broker.
            self.sent.remove(&node);
            if let Ok(topic) = Topic::new(&node, TopicKind::Desired) {
                fleet
                    .publish(Outgoing {
                        topic: topic.to_string(),
                        payload: Vec::new(),
                        retain: true,
                    })
                    .await;
            }
        }
        // Unchanged store: the sets are what was computed; only republish.
        let builds_version = self.builds.as_ref().map_or(0, |b| b.version());
        let recompute =
            self.revision != Some(snap.revision) || self.builds_version != builds_version;
        self.revision = Some(snap.revision);
        self.builds_version = builds_version;
        let mut by_node: HashMap<&str, Vec<&Pod>> = HashMap::new();
        let tables = if recompute {
            ClusterTables {
                services: ServiceTable::build(&snap.services, &snap.endpoints),
                hosts: pod_hosts(&snap.services, &snap.endpoints),
                policies: resolve_policies(PolicyInput {
                    policies: &snap.network_policies,
                    pods: &snap.pods,
                    namespaces: &snap.namespaces,
                }),
                lb_ports: crate::service_lb::nodes::node_ports(
                    &snap.services,
                    &snap.nodes,
                    &crate::service_lb::plan::LbPlan::build(&snap.services),
                ),
            }
        } else {
            ClusterTables::default()
        };
        if recompute {
            for p in &snap.pods {
                if let Some(n) = p.node_name() {
                    by_node.entry(n).or_default().push(p);
                }
            }
        }
        let view = Claims::new(&snap.claims, &snap.volumes, &snap.storage_classes);
        for node in names {
            if !recompute && let Some(s) = self.sent.get(node) {
                self.republish(node, s.clone(), &live, fleet, connection, now)
                    .await;
                continue;
            }
            let mut desired =
                desired_of(snap, &view, node, by_node.get(node).map_or(&[][..], |v| v));
            desired.network = network_of(&self.network, snap, node, &tables);
            if let Some(b) = &self.builds
                && snap
                    .nodes
                    .iter()
                    .any(|n| n.name() == node && has_feature(n, FEATURE_BUILD))
            {
                desired.builds = b.jobs_for(node);
            }
            let body = match serde_json::to_vec(&desired) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(%node, error = %e, "desired set does not serialize");
                    continue;
                }
            };
            let hash = fnv1a(&[&body]);
            let observed = live.get(node).and_then(|l| l.observed);
            let online = live.get(node).is_some_and(|l| l.online);
            let prev = self.sent.get(node);
            let publish_new = prev.is_none_or(|s| s.hash != hash);
            let payload = if publish_new {
                let next = prev
                    .map_or(Generation(0), |s| s.generation)
                    .next_after(observed);
                let Some(next) = next else {
                    tracing::error!(%node, observed = ?observed, "no generation left below the largest one; desired set not sent");
                    continue;
                };
                desired.generation = Generation(snap.revision.max(next.0));
                let Some(key) = self.identity.node_key(node) else {
                    tracing::debug!(%node, "node has no registered key; no desired set");
                    continue;
                };
                let Ok(topic) = Topic::new(node, TopicKind::Desired) else {
                    continue;
                };
                match encode_frame(self.identity.hub_keys(), &topic, &desired, Some(&key)) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(%node, pods = desired.pods.len(), error = %e, "desired set cannot be sent");
                        continue;
                    }
                }
            } else {
                let s = prev.expect("not new");
                // A set the agent refused is not sent again until it changes.
                let refused = live
                    .get(node)
                    .and_then(|l| l.rejected.as_ref())
                    .and_then(|r| r.generation)
                    == Some(s.generation);
                let unconfirmed = observed != Some(s.generation) && !refused;
                let stale = now.duration_since(s.at) >= REPUBLISH_AFTER;
                if s.connection == connection && !(unconfirmed && online && stale) {
                    continue;
                }
                s.payload.clone()
            };
            let generation = if publish_new {
                desired.generation
            } else {
                self.sent[node].generation
            };
            let Ok(topic) = Topic::new(node, TopicKind::Desired) else {
                tracing::warn!(%node, "node name is not a valid topic level; not dispatching");
                continue;
            };
            tracing::debug!(%node, %generation, pods = desired.pods.len(), new = publish_new, "publishing desired set");
            fleet
                .publish(Outgoing {
                    topic: topic.to_string(),
                    payload: payload.clone(),
                    retain: true,
                })
                .await;
            self.sent.insert(
                node.to_string(),
                Sent {
                    hash,
                    generation,
                    payload,
                    at: now,
                    connection,
                },
            );
        }
    }

    /// Generations per node, for status pages and tests.
    pub fn generations(&self) -> BTreeMap<String, Generation> {
        self.sent
            .iter()
            .map(|(n, s)| (n.clone(), s.generation))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, spec: serde_json::Value) -> Pod {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "resourceVersion": "7"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Running"}
        });
        crate::controllers::testutil::merge(&mut v["spec"], spec);
        serde_json::from_value(v).unwrap()
    }

    fn cm(name: &str) -> ConfigMap {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": "3"}, "data": {"k": "v"}}))
        .unwrap()
    }

    #[test]
    fn a_nodes_set_holds_its_pods_and_their_references_only() {
        let snap = Snapshot {
            revision: 10,
            pods: vec![
                pod(
                    "a",
                    "n1",
                    json!({"volumes": [{"name": "v", "configMap": {"name": "used"}}]}),
                ),
                pod("b", "n2", json!({})),
            ],
            config_maps: vec![cm("used"), cm("unused")],
            ..Snapshot::default()
        };
        let d = desired_for(&snap, "n1");
        assert_eq!(d.pods.len(), 1);
        assert_eq!(d.pods[0].name(), "a");
        assert!(d.pods[0].status.is_none());
        assert!(d.pods[0].metadata.resource_version.is_none());
        assert_eq!(d.config_maps.len(), 1);
        assert_eq!(d.config_maps[0].name(), "used");
        assert!(desired_for(&snap, "n3").pods.is_empty());
    }
}
