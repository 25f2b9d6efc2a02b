//! `desired` (hub → agent, `nodes/{node}/desired`, QoS 1, retained): the full
//! set of pods the node should run, with the ConfigMaps and Secrets they
//! reference, stamped with a per-node generation. The agent reconciles to it
//! (no diff here); the hub republishes it until a `status` reports that
//! generation as observed (see [`Generation::freshness`]).
//!
//! Strict: unknown fields are refused, here and in the pods (whose structs
//! deny them), because silently dropping a field of a command could run a pod
//! with less isolation than asked. The agent keeps its previous set and reports
//! the refusal in `status.desiredRejected`. New fields reach an agent only when
//! its `hello` announced the feature.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, index, join};
use crate::objects::{ConfigMap, Pod, Secret};

use super::envelope::Message;
use super::network::NetworkConfig;
use super::volumes::{ClaimVolume, check_volume_name};

/// Limit of an encoded `desired`. ConfigMaps may hold up to 1 MiB each, so a
/// node whose pods mount several large ones can exceed it: the hub then
/// reports the node's set as undeliverable instead of publishing it.
pub const MAX_DESIRED_BYTES: usize = 4 * 1024 * 1024;

/// The largest generation either side accepts (2^53): generations are store
/// revisions, which never come near it (a million writes a second for 285
/// years). Anything above is a bug or an attack: refused and logged, never
/// stored, so no `+ 1` can wrap.
pub const MAX_GENERATION: u64 = 1 << 53;

/// A node's desired-set generation: starts at 1, grows by one per change, is
/// persisted by the hub and never reused for different content.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Generation(pub u64);

/// How a generation compares with another side's (absent = before all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Agent: apply it. Hub: not yet observed, keep republishing.
    Newer,
    /// Agent: already applied (a redelivery). Hub: confirmed, stop.
    Same,
    /// Agent: stale, ignore it. Hub: the agent has seen a later generation than
    /// the hub remembers (restored from an older database): continue at
    /// [`Generation::next_after`] the observed one so the agent accepts it.
    Older,
}

impl Generation {
    /// The first generation.
    pub const FIRST: Generation = Generation(1);

    /// `self` compared with `other`: the agent passes its applied generation,
    /// the hub the observed generation from the node's last status.
    pub fn freshness(self, other: Option<Generation>) -> Freshness {
        match other.map_or(Ordering::Greater, |o| self.cmp(&o)) {
            Ordering::Greater => Freshness::Newer,
            Ordering::Equal => Freshness::Same,
            Ordering::Less => Freshness::Older,
        }
    }

    /// The generation to publish next, above both the hub's `self` and what
    /// the agent reported; `None` past [`MAX_GENERATION`].
    pub fn next_after(self, observed: Option<Generation>) -> Option<Generation> {
        let next = self.0.max(observed.map_or(0, |o| o.0)).checked_add(1)?;
        Generation(next).plausible().then_some(Generation(next))
    }

    /// Whether this generation is at most [`MAX_GENERATION`].
    pub fn plausible(self) -> bool {
        self.0 <= MAX_GENERATION
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The desired state of one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Desired {
    pub generation: Generation,
    /// Every pod bound to the node (`spec.nodeName`), with `metadata.uid`;
    /// `status` is left out by the hub. A pod absent here is stopped.
    #[serde(default)]
    pub pods: Vec<Pod>,
    /// The ConfigMaps those pods reference (volumes, `envFrom`, `valueFrom`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<ConfigMap>,
    /// The Secrets those pods reference, including image pull secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    /// Pod networking for the node; absent until the hub allocates its pod
    /// CIDR, and for agents without the `network` feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
    /// The volumes bound to the claims of those pods (agents with the
    /// `volumes` feature; a pod with a claim is sent only with its volume).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ClaimVolume>,
    /// `local-path` volumes of this node whose claims are gone (reclaim
    /// policy `Delete`): the agent deletes their directories and reports
    /// them in `status.reclaimed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reclaim: Vec<String>,
    /// Image builds the node runs (agents with the `build` feature); a job
    /// no longer listed is cancelled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builds: Vec<super::build::BuildJob>,
}

impl Message for Desired {
    const TYPE: &'static str = "desired";
    const MAX_BYTES: usize = MAX_DESIRED_BYTES;
    const SEALED: bool = true;

    fn validate(&self, node: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if self.generation.0 == 0 {
            errs.push(FieldError::invalid("generation", "0: must be at least 1"));
        }
        if !self.generation.plausible() {
            errs.push(FieldError::invalid(
                "generation",
                format!(
                    "{}: above the largest generation {MAX_GENERATION}",
                    self.generation
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, p) in self.pods.iter().enumerate() {
            let pp = index("pods", i);
            if p.node_name() != Some(node) {
                errs.push(FieldError::invalid(
                    join(&pp, "spec.nodeName"),
                    format!(
                        "{:?}: must be the node in the topic ({node:?})",
                        p.node_name().unwrap_or("")
                    ),
                ));
            }
            if p.name().is_empty() {
                errs.push(FieldError::required(join(&pp, "metadata.name")));
            }
            if p.metadata.uid.as_deref().is_none_or(str::is_empty) {
                errs.push(FieldError::required(join(&pp, "metadata.uid")));
            }
            if !seen.insert((p.namespace(), p.name())) {
                errs.push(FieldError::duplicate(pp));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, c) in self.config_maps.iter().enumerate() {
            if !seen.insert((c.namespace(), c.name())) {
                errs.push(FieldError::duplicate(index("configMaps", i)));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.secrets.iter().enumerate() {
            if !seen.insert((s.metadata.namespace_or_default(), s.metadata.name.as_str())) {
                errs.push(FieldError::duplicate(index("secrets", i)));
            }
        }
        if let Some(n) = &self.network {
            errs.extend(n.validate("network"));
        }
        let mut seen = BTreeSet::new();
        for (i, v) in self.volumes.iter().enumerate() {
            let vp = index("volumes", i);
            errs.extend(v.validate(&vp));
            if !seen.insert((v.namespace.as_str(), v.claim.as_str())) {
                errs.push(FieldError::duplicate(vp));
            }
        }
        for (i, v) in self.reclaim.iter().enumerate() {
            let vp = index("reclaim", i);
            errs.extend(check_volume_name(&vp, v));
            if self.volumes.iter().any(|c| c.volume == *v) {
                errs.push(FieldError::invalid(
                    vp,
                    format!("{v:?}: in use by a claim of this set"),
                ));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::desired;
    use crate::protocol::{ProtocolError, decode, encode};

    #[test]
    fn generations_compare_for_both_sides() {
        let g = Generation(5);
        assert_eq!(g.freshness(None), Freshness::Newer);
        assert_eq!(g.freshness(Some(Generation(4))), Freshness::Newer);
        assert_eq!(g.freshness(Some(g)), Freshness::Same);
        assert_eq!(g.freshness(Some(Generation(9))), Freshness::Older);
        assert_eq!(g.next_after(Some(Generation(9))), Some(Generation(10)));
        assert_eq!(g.next_after(None), Some(Generation(6)));
        assert_eq!(
            Generation::default().next_after(None),
            Some(Generation::FIRST)
        );
        // Checked: an absurd observed generation gives none, never a wrap.
        assert_eq!(g.next_after(Some(Generation(u64::MAX))), None);
        assert_eq!(g.next_after(Some(Generation(MAX_GENERATION))), None);
        assert!(Generation(MAX_GENERATION).plausible());
        assert!(!Generation(MAX_GENERATION + 1).plausible());
    }

    #[test]
    fn round_trips() {
        let d = desired(3);
        let bytes = encode(&d).unwrap();
        assert_eq!(decode::<Desired>("pi-1", &bytes).unwrap(), d);
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let bytes = encode(&desired(2)).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["body"]["pods"][1]["spec"]["containers"][0]["seccompNotify"] = true.into();
        let e = decode::<Desired>("pi-1", v.to_string().as_bytes()).unwrap_err();
        let ProtocolError::Body { path, reason, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(path, "body.pods[1].spec.containers[0].seccompNotify");
        assert!(reason.contains("unknown field `seccompNotify`"), "{e}");

        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["body"]["routes"] = serde_json::json!([]);
        let e = decode::<Desired>("pi-1", v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown field `routes`"), "{e}");
    }

    #[test]
    fn volumes_in_use_are_never_reclaimed_and_names_are_checked() {
        use crate::protocol::ClaimVolume;
        let mut d = desired(1);
        d.volumes = vec![
            ClaimVolume {
                namespace: "db".into(),
                claim: "data".into(),
                volume: "pvc-1".into(),
                path: None,
            };
            2
        ];
        d.reclaim = vec!["pvc-1".into(), "../etc".into()];
        let msg = decode::<Desired>("pi-1", &encode(&d).unwrap())
            .unwrap_err()
            .to_string();
        for want in [
            "volumes[1]: Duplicate value",
            "reclaim[0]: Invalid value: \"pvc-1\": in use by a claim of this set",
            "reclaim[1]: Invalid value: \"../etc\"",
        ] {
            assert!(msg.contains(want), "missing {want:?} in {msg}");
        }
    }

    #[test]
    fn pods_of_other_nodes_and_duplicates_are_refused() {
        let mut d = desired(2);
        d.pods[1].spec.node_name = Some("pi-2".into());
        d.pods.push(d.pods[0].clone());
        d.pods[0].metadata.uid = None;
        d.config_maps.push(d.config_maps[0].clone());
        d.generation = Generation(0);
        let e = decode::<Desired>("pi-1", &encode(&d).unwrap()).unwrap_err();
        let mut huge = desired(1);
        huge.generation = Generation(u64::MAX);
        let e2 = decode::<Desired>("pi-1", &encode(&huge).unwrap()).unwrap_err();
        assert!(
            e2.to_string().contains("above the largest generation"),
            "{e2}"
        );
        let msg = e.to_string();
        for want in [
            "generation: Invalid value: 0",
            "pods[0].metadata.uid: Required value",
            "pods[1].spec.nodeName: Invalid value: \"pi-2\"",
            "pods[2]: Duplicate value",
            "configMaps[1]: Duplicate value",
        ] {
            assert!(msg.contains(want), "missing {want:?} in {msg}");
        }
    }
}
