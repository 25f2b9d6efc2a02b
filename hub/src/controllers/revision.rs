//! Revision numbers of a Deployment's ReplicaSets, `rollout history|undo`
//! over them, and the revision records hubs before ReplicaSets kept.
//!
//! Each ReplicaSet carries its number (`deployment.kubernetes.io/revision`);
//! the current one has the highest, mirrored on the Deployment. Going back
//! to an old template (undo) makes its ReplicaSet current again with the
//! next number, its old numbers kept in `revision-history`, as Kubernetes
//! renumbers.
//!
//! Older hubs kept a [`Revision`] record per template in a `kv_` table
//! instead; the Deployment controller turns each into the ReplicaSet it
//! stands for (same number, hash, template and change cause), then drops it.

use bramble_api::objects::{Deployment, PodTemplateSpec, ReplicaSet};
use serde::{Deserialize, Serialize};

use super::naming::POD_TEMPLATE_HASH;
use super::replicasets::{CHANGE_CAUSE_ANNOTATION, equal_ignoring_hash, revision};

/// Most characters of a `revision-history` annotation (Kubernetes' limit);
/// the oldest numbers go first.
const HISTORY_CHARS: usize = 2000;

/// A revision record of an older hub: one template a Deployment has run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub owner_uid: String,
    pub revision: i64,
    pub hash: String,
    pub template: PodTemplateSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_cause: Option<String>,
}

/// The records of `history` belonging to `owner_uid`, oldest first.
pub fn records<'a>(history: &'a [Revision], owner_uid: &str) -> Vec<&'a Revision> {
    let mut v: Vec<&Revision> = history
        .iter()
        .filter(|r| r.owner_uid == owner_uid)
        .collect();
    v.sort_by_key(|r| r.revision);
    v
}

/// When the current ReplicaSet's number `current` is not above every
/// other's (`others_max`), its new number and `revision-history`
/// annotation (the old `history` plus `current`).
pub fn renumber(current: i64, others_max: i64, history: Option<&str>) -> Option<(i64, String)> {
    if current > others_max {
        return None;
    }
    let mut old: Vec<String> = history
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if current > 0 {
        old.push(current.to_string());
    }
    while old.iter().map(|s| s.len() + 1).sum::<usize>() > HISTORY_CHARS + 1 {
        old.remove(0);
    }
    Some((others_max + 1, old.join(",")))
}

/// `rollout history` rows: `(revision, change cause)`, oldest first.
pub fn history<'a>(owned: &[&'a ReplicaSet]) -> Vec<(i64, Option<&'a str>)> {
    let mut rows: Vec<(i64, Option<&str>)> = owned
        .iter()
        .map(|rs| {
            let cause = rs.metadata.annotations.get(CHANGE_CAUSE_ANNOTATION);
            (revision(rs), cause.map(String::as_str))
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    rows
}

/// Why `rollout undo` cannot proceed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UndoError {
    #[error("no rollout history found for deployment {name:?}")]
    NoHistory { name: String },
    #[error("unable to find the specified revision {revision} of deployment {name:?}")]
    NotFound { name: String, revision: i64 },
    #[error(
        "skipped rollback of deployment {name:?}: current template already matches revision {revision}"
    )]
    AlreadyCurrent { name: String, revision: i64 },
}

/// `rollout undo [--to-revision N]` over `d`'s ReplicaSets: the template
/// `d` should get (without its hash label). Revision 0 means the newest one
/// before the current template's. The caller writes it to `spec.template`;
/// the next plan renumbers that ReplicaSet.
pub fn undo(
    d: &Deployment,
    owned: &[&ReplicaSet],
    to_revision: i64,
) -> Result<PodTemplateSpec, UndoError> {
    let name = d.name().to_string();
    let is_current = |rs: &ReplicaSet| equal_ignoring_hash(&rs.spec.template, &d.spec.template);
    let current = owned
        .iter()
        .find(|rs| is_current(rs))
        .map_or(i64::MAX, |rs| revision(rs));
    let mut by_number: Vec<&&ReplicaSet> = owned.iter().collect();
    by_number.sort_by_key(|rs| revision(rs));
    let target = if to_revision == 0 {
        by_number
            .iter()
            .rev()
            .find(|rs| revision(rs) < current && !is_current(rs))
            .ok_or(UndoError::NoHistory { name: name.clone() })?
    } else {
        by_number
            .iter()
            .find(|rs| revision(rs) == to_revision)
            .ok_or(UndoError::NotFound {
                name: name.clone(),
                revision: to_revision,
            })?
    };
    if is_current(target) {
        return Err(UndoError::AlreadyCurrent {
            name,
            revision: revision(target),
        });
    }
    let mut template = target.spec.template.clone();
    template.metadata.labels.remove(POD_TEMPLATE_HASH);
    Ok(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbering_keeps_the_old_numbers() {
        assert_eq!(renumber(3, 2, None), None, "already the newest");
        assert_eq!(renumber(1, 3, None), Some((4, "1".into())));
        assert_eq!(renumber(4, 6, Some("1")), Some((7, "1,4".into())));
        assert_eq!(renumber(0, 2, None), Some((3, String::new())));
        let long = vec!["9"; 1500].join(",");
        let (_, kept) = renumber(5, 9, Some(&long)).unwrap();
        assert!(
            kept.len() <= HISTORY_CHARS && kept.ends_with(",5"),
            "{}",
            kept.len()
        );
    }
}
