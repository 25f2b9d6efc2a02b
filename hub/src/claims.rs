//! Which volume serves a claim: one read-only view of the cluster's
//! PersistentVolumeClaims, PersistentVolumes and StorageClasses, shared by
//! the volume controller (`controllers::volumes`), the scheduler's volume
//! filter (`scheduler::volumes`) and the dispatcher (the volumes a node's
//! pods mount, the directories it must delete). Pure: no store, no clock.

use std::collections::{BTreeSet, HashMap};

use bramble_api::objects::persistent_volume_claim::SELECTED_NODE;
use bramble_api::objects::storage_class::LOCAL_PATH_PROVISIONER;
use bramble_api::objects::{Node, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass};
use bramble_api::protocol::ClaimVolume;

use crate::controllers::pods::is_finished;

/// Annotation on a volume a provisioner made, naming it.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// Annotation on a claim once the hub bound it (Kubernetes' marker that
/// tells a claim that lost its volume from one never bound).
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";

/// The claims, volumes and classes of one snapshot, indexed.
#[derive(Debug)]
pub struct Claims<'a> {
    claims: HashMap<(&'a str, &'a str), &'a PersistentVolumeClaim>,
    volumes: HashMap<&'a str, &'a PersistentVolume>,
    classes: HashMap<&'a str, &'a StorageClass>,
    default_class: Option<&'a StorageClass>,
}

/// How a claim a pod names stands, for scheduling and dispatch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClaimState<'a> {
    /// No such claim in the pod's namespace.
    Missing,
    /// Bound to this volume.
    Bound(&'a PersistentVolume),
    /// Bound to a volume that does not exist.
    Lost { volume: &'a str },
    /// Not bound; its class makes a volume where the first pod lands.
    WaitsForConsumer(&'a PersistentVolumeClaim),
    /// Not bound, and no pod placement will change that by itself.
    Unbound(&'a PersistentVolumeClaim),
}

impl<'a> Claims<'a> {
    /// Indexes the snapshot's objects.
    pub fn new(
        claims: &'a [PersistentVolumeClaim],
        volumes: &'a [PersistentVolume],
        classes: &'a [StorageClass],
    ) -> Claims<'a> {
        // Several defaults: Kubernetes takes the newest; names break ties.
        let default_class = classes.iter().filter(|c| c.is_default()).max_by(|a, b| {
            (a.metadata.creation_timestamp.as_deref(), b.name())
                .cmp(&(b.metadata.creation_timestamp.as_deref(), a.name()))
        });
        Claims {
            claims: claims
                .iter()
                .map(|c| ((c.namespace(), c.name()), c))
                .collect(),
            volumes: volumes.iter().map(|v| (v.name(), v)).collect(),
            classes: classes.iter().map(|c| (c.name(), c)).collect(),
            default_class,
        }
    }

    /// The claim `name` of namespace `ns`.
    pub fn claim(&self, ns: &str, name: &str) -> Option<&'a PersistentVolumeClaim> {
        self.claims.get(&(ns, name)).copied()
    }

    /// A volume by name.
    pub fn volume(&self, name: &str) -> Option<&'a PersistentVolume> {
        self.volumes.get(name).copied()
    }

    /// The class a claim uses: the one it names, or the default class when
    /// it names none (`storageClassName` unset; `""` means no class).
    pub fn class_of(&self, claim: &PersistentVolumeClaim) -> Option<&'a StorageClass> {
        match claim.spec.storage_class_name.as_deref() {
            None => self.default_class,
            Some("") => None,
            Some(name) => self.classes.get(name).copied(),
        }
    }

    /// The class name volumes for `claim` must have (`""`: none).
    pub fn class_name_of<'c>(&self, claim: &'c PersistentVolumeClaim) -> &'c str
    where
        'a: 'c,
    {
        match claim.spec.storage_class_name.as_deref() {
            None => self.default_class.map_or("", |c| c.name()),
            Some(name) => name,
        }
    }

    /// How claim `name` of namespace `ns` stands.
    pub fn state(&self, ns: &str, name: &str) -> ClaimState<'a> {
        let Some(claim) = self.claim(ns, name) else {
            return ClaimState::Missing;
        };
        if let Some(v) = claim.volume_name() {
            return match self.volume(v) {
                Some(pv) if bound_to(pv, claim) => ClaimState::Bound(pv),
                Some(_) => ClaimState::Unbound(claim),
                None => ClaimState::Lost { volume: v },
            };
        }
        match self.class_of(claim) {
            Some(c) if c.waits_for_first_consumer() => ClaimState::WaitsForConsumer(claim),
            _ => ClaimState::Unbound(claim),
        }
    }

    /// The volumes of `pod`'s claims as its node mounts them, or why one
    /// cannot be mounted yet. A claim deleted while its pod runs still
    /// resolves through its released volume (the volume is not reclaimed
    /// while a pod uses it).
    pub fn mounts_of(&self, pod: &Pod) -> Result<Vec<ClaimVolume>, String> {
        let ns = pod.namespace();
        let mut out = Vec::new();
        for v in &pod.spec.volumes {
            let Some(c) = &v.persistent_volume_claim else {
                continue;
            };
            let pv = match self.state(ns, &c.claim_name) {
                ClaimState::Bound(pv) => pv,
                ClaimState::Missing => self
                    .volumes
                    .values()
                    .copied()
                    .filter(|pv| {
                        pv.claim()
                            .is_some_and(|(cns, cname, _)| cns == ns && cname == c.claim_name)
                    })
                    .min_by_key(|pv| pv.name())
                    .ok_or_else(|| format!("persistentvolumeclaim {:?} not found", c.claim_name))?,
                _ => {
                    return Err(format!(
                        "persistentvolumeclaim {:?} is not bound",
                        c.claim_name
                    ));
                }
            };
            out.push(ClaimVolume {
                namespace: ns.to_string(),
                claim: c.claim_name.clone(),
                volume: pv.name().to_string(),
                path: if is_local_path(pv) {
                    None
                } else {
                    pv.spec
                        .local
                        .as_ref()
                        .map(|l| l.path.clone())
                        .or_else(|| pv.spec.host_path.as_ref().map(|h| h.path.clone()))
                },
            });
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Whether some unfinished pod names the claim `(ns, name)`.
    pub fn in_use(pods: &[Pod], ns: &str, name: &str) -> bool {
        pods.iter().any(|p| {
            p.namespace() == ns
                && !is_finished(p)
                && p.spec.volumes.iter().any(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .is_some_and(|c| c.claim_name == name)
                })
        })
    }

    /// Whether `pv`'s claim is gone (deleted, or replaced by another claim
    /// of the same name).
    pub fn claim_gone(&self, pv: &PersistentVolume) -> bool {
        let Some((ns, name, uid)) = pv.claim() else {
            return false;
        };
        self.claim(ns, name)
            .is_none_or(|c| uid.is_some_and(|u| c.metadata.uid.as_deref() != Some(u)))
    }

    /// The `local-path` volumes of `node` whose directories its agent must
    /// delete: claim gone, reclaim policy `Delete`, no pod using the claim.
    pub fn to_reclaim(&self, pods: &[Pod], node: &str) -> BTreeSet<&'a str> {
        self.volumes
            .values()
            .filter(|pv| {
                is_local_path(pv)
                    && pv.pinned_node() == Some(node)
                    && pv.reclaim_policy() == "Delete"
                    && self.claim_gone(pv)
                    && pv
                        .claim()
                        .is_none_or(|(ns, name, _)| !Self::in_use(pods, ns, name))
            })
            .map(|pv| pv.name())
            .collect()
    }

    /// The node a waiting claim's first pod was placed on.
    pub fn selected_node(claim: &PersistentVolumeClaim) -> Option<&str> {
        claim.annotation(SELECTED_NODE).filter(|n| !n.is_empty())
    }

    /// Whether `node` still exists.
    pub fn node_exists(nodes: &[Node], node: &str) -> bool {
        nodes.iter().any(|n| n.name() == node)
    }
}

/// Whether `pv` is bound to `claim` (its `claimRef` names the claim, and its
/// uid when the ref has one).
pub fn bound_to(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    pv.claim().is_some_and(|(ns, name, uid)| {
        ns == claim.namespace()
            && name == claim.name()
            && uid.is_none_or(|u| claim.metadata.uid.as_deref() == Some(u))
    })
}

/// Whether the `local-path` provisioner made `pv` (its directory is the
/// agent's to create and delete).
pub fn is_local_path(pv: &PersistentVolume) -> bool {
    pv.metadata
        .annotations
        .get(PROVISIONED_BY)
        .is_some_and(|p| p == LOCAL_PATH_PROVISIONER)
}
