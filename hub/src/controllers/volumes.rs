//! The volume controller: binds PersistentVolumeClaims to
//! PersistentVolumes, provisions `local-path` volumes, keeps both kinds'
//! phases as Kubernetes reports them, and retires volumes whose claims are
//! gone. Pure, like every plan (see [`super`]).
//!
//! - A claim naming a volume (`spec.volumeName`) gets it if the volume is
//!   free or already reserved for it.
//! - Otherwise it gets a volume reserved for it (`claimRef`), else the
//!   smallest free volume of its class that fits (access modes, size,
//!   selector; for a `WaitForFirstConsumer` class only once its first pod
//!   is placed, and only a volume usable on that node), else — class
//!   `local-path`, first pod placed (the binder wrote the node into the
//!   claim's `volume.kubernetes.io/selected-node`, or a pod using it was
//!   created bound to a node) — a new volume
//!   `pvc-<claim uid>` on that node, pinned there by `nodeAffinity`.
//! - Claim phases: `Bound` (capacity and access modes of its volume),
//!   `Lost` (its volume was deleted after binding), else `Pending`. Volume
//!   phases: `Available`, `Bound`, `Released` (claim gone), `Failed` (claim
//!   gone, policy `Delete`, but not a `local-path` volume: Bramble deletes
//!   no administrator's data).
//! - Size: a bound claim whose `local-path` volume holds more than its
//!   capacity (as its node measures it) gets the condition
//!   `CapacityExceeded` saying by how much; a directory has no limit of
//!   its own, so nothing is stopped.
//! - Reclaim: a released `local-path` volume with policy `Delete` that no
//!   pod uses is in its node's desired set to delete
//!   ([`Claims::to_reclaim`]); once that node's agent reports the
//!   directory gone, the volume object is deleted. Only the volume's own
//!   node is believed: a board cannot have another board's volume retired.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use bramble_api::meta::ObjectMeta;
use bramble_api::objects::common::Condition;
use bramble_api::objects::common::ObjectReference;
use bramble_api::objects::persistent_volume::{
    HOSTNAME_LABEL, LocalVolumeSource, PersistentVolumeSpec, PersistentVolumeStatus,
    VolumeNodeAffinity,
};
use bramble_api::objects::persistent_volume_claim::PersistentVolumeClaimStatus;
use bramble_api::objects::scheduling::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use bramble_api::objects::storage_class::LOCAL_PATH_PROVISIONER;
use bramble_api::objects::{Node, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass};

use super::action::{Action, ObjectRef};
use super::pods::is_finished;
use super::time;
use crate::claims::{BIND_COMPLETED, Claims, PROVISIONED_BY, bound_to, is_local_path};

/// Node annotation with the agent's volume directory (from its `hello`).
pub const VOLUMES_DIR_ANNOTATION: &str = "bramble.dev/volumes-dir";
/// The agent's volume directory when its node does not say.
pub const DEFAULT_VOLUMES_DIR: &str = "/var/lib/bramble-agent/volumes";
/// Access modes a `local-path` volume can offer: one node at a time.
pub const LOCAL_PATH_ACCESS_MODES: &[&str] = &["ReadWriteOnce", "ReadWriteOncePod"];

/// What the plan reads.
#[derive(Debug, Clone, Copy)]
pub struct VolumeInput<'a> {
    pub claims: &'a [PersistentVolumeClaim],
    pub volumes: &'a [PersistentVolume],
    pub classes: &'a [StorageClass],
    pub pods: &'a [Pod],
    pub nodes: &'a [Node],
    /// Per node, the volumes its agent reported deleted.
    pub reclaimed: &'a BTreeMap<String, BTreeSet<String>>,
    /// Per node, the bytes each of its volumes holds.
    pub usage: &'a BTreeMap<String, BTreeMap<String, u64>>,
    pub now: SystemTime,
}

/// Plans one round. See the module docs.
pub fn plan_volumes(input: VolumeInput<'_>) -> Vec<Action> {
    let view = Claims::new(input.claims, input.volumes, input.classes);
    let mut actions = Vec::new();
    // Volumes taken in this round, so two claims never get the same one.
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut claims: Vec<&PersistentVolumeClaim> = input.claims.iter().collect();
    claims.sort_by(|a, b| {
        (
            a.metadata.creation_timestamp.as_deref(),
            a.namespace(),
            a.name(),
        )
            .cmp(&(
                b.metadata.creation_timestamp.as_deref(),
                b.namespace(),
                b.name(),
            ))
    });
    for claim in claims {
        let bound = bind_claim(&view, &input, claim, &mut taken, &mut actions);
        // Bound once (the hub marked it), and the volume is gone.
        let lost = claim
            .volume_name()
            .is_some_and(|v| view.volume(v).is_none())
            && claim.annotation(BIND_COMPLETED).is_some();
        let mut want = claim_status(claim, bound, lost);
        set_capacity_condition(&mut want, bound, &input);
        if claim.status.as_ref() != Some(&want) {
            actions.push(Action::UpdateClaimStatus {
                namespace: claim.namespace().to_string(),
                name: claim.name().to_string(),
                status: Box::new(want),
            });
        }
    }
    for pv in input.volumes {
        volume_round(&view, &input, pv, &mut actions);
    }
    actions
}

/// Binding steps for one claim; returns its volume when bound.
fn bind_claim<'a>(
    view: &Claims<'a>,
    input: &VolumeInput<'a>,
    claim: &'a PersistentVolumeClaim,
    taken: &mut BTreeSet<&'a str>,
    actions: &mut Vec<Action>,
) -> Option<&'a PersistentVolume> {
    if let Some(name) = claim.volume_name() {
        let pv = view.volume(name)?;
        taken.insert(pv.name());
        if bound_to(pv, claim) {
            return Some(pv);
        }
        if pv.claim().is_none() {
            // Asked for by name and free: reserve it.
            actions.push(Action::BindVolume {
                name: pv.name().to_string(),
                claim: Box::new(claim_ref(claim)),
            });
        }
        return None;
    }
    // A volume already reserved for it (provisioned, or made for it).
    if let Some(pv) = input
        .volumes
        .iter()
        .filter(|pv| bound_to(pv, claim) && !taken.contains(pv.name()))
        .min_by_key(|pv| pv.name())
    {
        taken.insert(pv.name());
        actions.push(Action::BindClaim {
            claim: ObjectRef::of(&claim.metadata),
            volume: pv.name().to_string(),
        });
        return None;
    }
    let class = view.class_of(claim);
    let waits = class.is_some_and(|c| c.waits_for_first_consumer());
    // The scheduler's choice, or the node of a pod using the claim that was
    // created bound (`spec.nodeName`: a DaemonSet's, or a user's).
    let selected = Claims::selected_node(claim).or_else(|| {
        input
            .pods
            .iter()
            .filter(|p| p.namespace() == claim.namespace() && !is_finished(p))
            .filter(|p| {
                p.spec.volumes.iter().any(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .is_some_and(|c| c.claim_name == claim.name())
                })
            })
            .filter_map(|p| p.node_name().filter(|n| !n.is_empty()))
            .min()
    });
    if waits && selected.is_none() {
        return None;
    }
    let node = selected.and_then(|n| input.nodes.iter().find(|x| x.name() == n));
    if let Some(pv) = best_fit(view, input, claim, node, taken) {
        taken.insert(pv.name());
        actions.push(Action::BindVolume {
            name: pv.name().to_string(),
            claim: Box::new(claim_ref(claim)),
        });
        actions.push(Action::BindClaim {
            claim: ObjectRef::of(&claim.metadata),
            volume: pv.name().to_string(),
        });
        return None;
    }
    if let (Some(class), Some(node)) = (class, node)
        && class.provisioner == LOCAL_PATH_PROVISIONER
        && local_path_problem(claim).is_none()
        && let Some(pv) = provision(claim, class, node)
    {
        actions.push(Action::CreateVolume(Box::new(pv)));
    }
    None
}

/// Why the `local-path` provisioner cannot serve `claim`, if it cannot.
pub fn local_path_problem(claim: &PersistentVolumeClaim) -> Option<String> {
    let bad: Vec<&str> = claim
        .spec
        .access_modes
        .iter()
        .map(String::as_str)
        .filter(|m| !LOCAL_PATH_ACCESS_MODES.contains(m))
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "the local-path provisioner makes ReadWriteOnce and ReadWriteOncePod volumes only (claim {:?} asks for {})",
            claim.name(),
            bad.join(", ")
        )
    })
}

/// The smallest free volume of the claim's class that fits it (and fits
/// `node`, when the claim waits for its first consumer).
fn best_fit<'a>(
    view: &Claims<'a>,
    input: &VolumeInput<'a>,
    claim: &PersistentVolumeClaim,
    node: Option<&Node>,
    taken: &BTreeSet<&str>,
) -> Option<&'a PersistentVolume> {
    let class = view.class_name_of(claim);
    let selector = claim.spec.selector.as_ref().map(|s| s.to_selector());
    input
        .volumes
        .iter()
        .filter(|pv| pv.claim().is_none() && !taken.contains(pv.name()))
        .filter(|pv| pv.class() == class)
        .filter(|pv| {
            claim
                .spec
                .access_modes
                .iter()
                .all(|m| pv.spec.access_modes.contains(m))
        })
        .filter(|pv| pv.capacity_bytes() >= claim.requested_bytes())
        .filter(|pv| {
            selector
                .as_ref()
                .is_none_or(|s| s.matches(&pv.metadata.labels))
        })
        .filter(|pv| node.is_none_or(|n| pv.fits_node(&n.metadata.labels, n.name())))
        .min_by_key(|pv| (pv.capacity_bytes(), pv.name()))
}

/// A new `local-path` volume for `claim` on `node`.
fn provision(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &Node,
) -> Option<PersistentVolume> {
    let uid = claim.metadata.uid.as_deref()?;
    let name = format!("pvc-{uid}");
    let dir = node
        .metadata
        .annotations
        .get(VOLUMES_DIR_ANNOTATION)
        .map_or(DEFAULT_VOLUMES_DIR, String::as_str)
        .trim_end_matches('/');
    let storage = claim.spec.resources.requests.get("storage")?.clone();
    Some(PersistentVolume {
        api_version: "v1".into(),
        kind: "PersistentVolume".into(),
        metadata: ObjectMeta {
            name: name.clone(),
            annotations: BTreeMap::from([(
                PROVISIONED_BY.to_string(),
                LOCAL_PATH_PROVISIONER.to_string(),
            )]),
            ..ObjectMeta::default()
        },
        spec: PersistentVolumeSpec {
            capacity: BTreeMap::from([("storage".to_string(), storage)]),
            access_modes: claim.spec.access_modes.clone(),
            persistent_volume_reclaim_policy: Some(class.reclaim_policy().to_string()),
            storage_class_name: Some(class.name().to_string()),
            volume_mode: Some("Filesystem".into()),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: vec![NodeSelectorRequirement {
                            key: HOSTNAME_LABEL.into(),
                            operator: "In".into(),
                            values: vec![node.name().to_string()],
                        }],
                        match_fields: Vec::new(),
                    }],
                }),
            }),
            claim_ref: Some(claim_ref(claim)),
            local: Some(LocalVolumeSource {
                path: format!("{dir}/{name}"),
                fs_type: None,
            }),
            host_path: None,
        },
        status: None,
    })
}

fn claim_ref(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: Some(claim.namespace().to_string()),
        name: Some(claim.name().to_string()),
        uid: claim.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// The status a claim should show.
fn claim_status(
    claim: &PersistentVolumeClaim,
    bound: Option<&PersistentVolume>,
    lost: bool,
) -> PersistentVolumeClaimStatus {
    let mut status = PersistentVolumeClaimStatus {
        conditions: claim
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
        ..PersistentVolumeClaimStatus::default()
    };
    match bound {
        Some(pv) => {
            status.phase = Some("Bound".into());
            status.access_modes = pv.spec.access_modes.clone();
            status.capacity = pv.spec.capacity.clone();
        }
        None if lost => status.phase = Some("Lost".into()),
        None => status.phase = Some("Pending".into()),
    }
    status
}

/// The claim condition type of an over-full volume.
pub const CAPACITY_EXCEEDED: &str = "CapacityExceeded";

/// Sets or clears [`CAPACITY_EXCEEDED`] on a claim's status from its
/// volume's measured size (claims of volumes nobody measures are left as
/// they are).
fn set_capacity_condition(
    status: &mut PersistentVolumeClaimStatus,
    bound: Option<&PersistentVolume>,
    input: &VolumeInput<'_>,
) {
    let Some(pv) = bound.filter(|pv| is_local_path(pv)) else {
        return;
    };
    let Some(used) = pv
        .pinned_node()
        .and_then(|n| input.usage.get(n))
        .and_then(|u| u.get(pv.name()))
    else {
        return;
    };
    let capacity = pv.capacity_bytes();
    let since = status
        .conditions
        .iter()
        .find(|c| c.type_ == CAPACITY_EXCEEDED)
        .and_then(|c| c.last_transition_time.clone());
    status.conditions.retain(|c| c.type_ != CAPACITY_EXCEEDED);
    if *used > capacity {
        let mib = |b: u64| b.div_ceil(1 << 20);
        status.conditions.push(Condition {
            type_: CAPACITY_EXCEEDED.into(),
            status: "True".into(),
            reason: Some("UsageAboveCapacity".into()),
            message: Some(format!(
                "volume {} holds {} MiB, above its {} MiB: local-path volumes are not capped; free space or move the data to a larger claim",
                pv.name(),
                mib(*used),
                mib(capacity)
            )),
            last_transition_time: since.or_else(|| Some(time::format(input.now))),
            ..Condition::default()
        });
    }
}

/// Phase and retirement of one volume.
fn volume_round(
    view: &Claims<'_>,
    input: &VolumeInput<'_>,
    pv: &PersistentVolume,
    actions: &mut Vec<Action>,
) {
    let gone = view.claim_gone(pv);
    let local = is_local_path(pv);
    let node = pv.pinned_node();
    let (phase, reason, message) = match pv.claim() {
        None => ("Available", None, None),
        Some(_) if !gone => ("Bound", None, None),
        Some(_) if pv.reclaim_policy() == "Retain" => ("Released", None, None),
        Some(_) if !local => (
            "Failed",
            Some("VolumeFailedDelete"),
            Some(
                "Bramble deletes only the volumes its local-path provisioner made: delete this volume's data and the PersistentVolume by hand"
                    .to_string(),
            ),
        ),
        Some((ns, name, _)) => {
            let node = node.unwrap_or("");
            if input
                .reclaimed
                .get(node)
                .is_some_and(|r| r.contains(pv.name()))
            {
                actions.push(Action::DeleteVolume {
                    name: pv.name().to_string(),
                    uid: pv.metadata.uid.clone(),
                });
                return;
            }
            let message = if Claims::in_use(input.pods, ns, name) {
                format!("claim {ns}/{name} is gone; its directory is deleted once no pod uses it")
            } else if Claims::node_exists(input.nodes, node) {
                format!("waiting for node {node:?} to delete the directory")
            } else {
                format!(
                    "node {node:?} is gone: the directory cannot be deleted; delete this PersistentVolume when its data is not needed"
                )
            };
            ("Released", None, Some(message))
        }
    };
    let current = pv.status.clone().unwrap_or_default();
    let changed_phase = current.phase.as_deref() != Some(phase);
    let want = PersistentVolumeStatus {
        phase: Some(phase.to_string()),
        reason: reason.map(str::to_string),
        message,
        last_phase_transition_time: if changed_phase {
            Some(time::format(input.now))
        } else {
            current.last_phase_transition_time.clone()
        },
    };
    if want != current {
        actions.push(Action::UpdateVolumeStatus {
            name: pv.name().to_string(),
            status: Box::new(want),
        });
    }
}
