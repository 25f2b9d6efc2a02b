//! Revision history without ReplicaSets.
//!
//! Each distinct pod template a Deployment has run is a [`Revision`] record
//! (owner uid, number, `pod-template-hash`, the template, its change cause),
//! which the hub stores beside the Deployment. The current template's record
//! carries the highest number, mirrored in the Deployment's
//! `deployment.kubernetes.io/revision` annotation; going back to an old
//! template (undo) renumbers its record to the next number, as Kubernetes
//! renumbers the old ReplicaSet. Old records are kept up to
//! `revisionHistoryLimit`; the oldest ones with no live pods are dropped first.

use std::collections::BTreeSet;

use bramble_api::objects::{Deployment, PodTemplateSpec};
use serde::{Deserialize, Serialize};

use super::naming::POD_TEMPLATE_HASH;

/// Annotation on a Deployment: the revision of its current template.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Annotation copied into a revision record for `rollout history`.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";

/// One template a Deployment has run.
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

/// What the revision bookkeeping of one plan decides.
#[derive(Debug, Default, PartialEq)]
pub struct RevisionPlan {
    /// The current template's revision number.
    pub current: i64,
    /// A record to insert or renumber.
    pub save: Option<Revision>,
    /// Hashes of records to drop.
    pub prune: Vec<String>,
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

/// Revision bookkeeping for `d` whose template hashes to `hash`; `live` holds
/// the hashes that still have pods.
pub fn plan_revisions(
    d: &Deployment,
    hash: &str,
    history: &[Revision],
    live: &BTreeSet<&str>,
) -> RevisionPlan {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let recs = records(history, &uid);
    let max = recs.last().map_or(0, |r| r.revision);
    let change_cause = d.metadata.annotations.get(CHANGE_CAUSE_ANNOTATION).cloned();
    let mut plan = RevisionPlan::default();
    match recs.iter().find(|r| r.hash == hash) {
        Some(r) if r.revision == max && r.change_cause == change_cause => plan.current = max,
        Some(r) if r.revision == max => {
            plan.current = max;
            plan.save = Some(Revision {
                change_cause,
                ..(*r).clone()
            });
        }
        found => {
            plan.current = max + 1;
            let mut template =
                found.map_or_else(|| d.spec.template.clone(), |r| r.template.clone());
            template.metadata.labels.remove(POD_TEMPLATE_HASH);
            plan.save = Some(Revision {
                owner_uid: uid,
                revision: max + 1,
                hash: hash.to_string(),
                template,
                change_cause,
            });
        }
    }
    let limit = usize::try_from(d.spec.revision_history_limit.unwrap_or(10)).unwrap_or(0);
    let old: Vec<&&Revision> = recs.iter().filter(|r| r.hash != hash).collect();
    let mut excess = old.len().saturating_sub(limit);
    for r in old {
        if excess == 0 {
            break;
        }
        if !live.contains(r.hash.as_str()) {
            plan.prune.push(r.hash.clone());
            excess -= 1;
        }
    }
    plan
}

/// `rollout history` rows of `d`: `(revision, change cause)`, oldest first.
pub fn history<'a>(d: &Deployment, all: &'a [Revision]) -> Vec<(i64, Option<&'a str>)> {
    records(all, d.metadata.uid.as_deref().unwrap_or(""))
        .into_iter()
        .map(|r| (r.revision, r.change_cause.as_deref()))
        .collect()
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

/// `rollout undo [--to-revision N]`: the template `d` should get. Revision 0
/// means the one before the current revision. The caller writes it to
/// `spec.template`; the next plan renumbers the record.
pub fn undo(
    d: &Deployment,
    history: &[Revision],
    to_revision: i64,
) -> Result<PodTemplateSpec, UndoError> {
    let name = d.name().to_string();
    let recs = records(history, d.metadata.uid.as_deref().unwrap_or(""));
    let current_hash = super::naming::template_hash(&d.spec.template);
    let current = recs
        .iter()
        .find(|r| r.hash == current_hash)
        .map_or(i64::MAX, |r| r.revision);
    let target = if to_revision == 0 {
        recs.iter()
            .rev()
            .find(|r| r.revision < current && r.hash != current_hash)
            .ok_or(UndoError::NoHistory { name: name.clone() })?
    } else {
        recs.iter()
            .find(|r| r.revision == to_revision)
            .ok_or(UndoError::NotFound {
                name: name.clone(),
                revision: to_revision,
            })?
    };
    if target.hash == current_hash {
        return Err(UndoError::AlreadyCurrent {
            name,
            revision: target.revision,
        });
    }
    Ok(target.template.clone())
}
