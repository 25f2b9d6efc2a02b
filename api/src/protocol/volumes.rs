//! Persistent volumes on the wire (feature [`FEATURE_VOLUMES`]): in
//! `desired`, which volume each claim of the node's pods is bound to
//! ([`ClaimVolume`]) and which volumes' directories the agent must delete
//! ([`Desired::reclaim`](super::Desired::reclaim)); in `status`, which of
//! those it has deleted.
//!
//! A `local-path` volume lives in the agent's own directory
//! (`DATA_DIR/volumes/<volume>`), named by the volume only: the hub never
//! sends a path for it. A volume an administrator made (`local` or
//! `hostPath` PersistentVolume) carries its path. The agent deletes a
//! directory only when it is named in `reclaim`, never because a volume is
//! absent from a set: an agent that restarts offline, or a set that lost a
//! pod, must not lose data.

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, join};
use crate::names;

/// The `hello` feature of agents that mount claims and reclaim volumes.
pub const FEATURE_VOLUMES: &str = "volumes";

/// The volume bound to one claim of a pod on the node.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimVolume {
    /// The claim's namespace.
    pub namespace: String,
    /// The claim's name (what pods write in `persistentVolumeClaim.claimName`).
    pub claim: String,
    /// The PersistentVolume's name.
    pub volume: String,
    /// Absent: a `local-path` volume in the agent's volume directory.
    /// Present: the absolute path of an administrator's volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl ClaimVolume {
    /// Checks names and the path at `path` (e.g. `volumes[0]`).
    pub fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if let Err(why) = names::dns1123_label(&self.namespace) {
            errs.push(FieldError::invalid(join(path, "namespace"), why));
        }
        if let Err(why) = names::dns1123_subdomain(&self.claim) {
            errs.push(FieldError::invalid(join(path, "claim"), why));
        }
        errs.extend(check_volume_name(&join(path, "volume"), &self.volume));
        if let Some(p) = &self.path
            && (!p.starts_with('/') || p.split('/').any(|c| c == ".."))
        {
            errs.push(FieldError::invalid(
                join(path, "path"),
                format!("{p:?}: must be an absolute path without '..'"),
            ));
        }
        errs
    }
}

/// A volume name is a DNS-1123 subdomain: never `/`, `.` or `..`, so it is
/// one directory entry.
pub fn check_volume_name(path: &str, name: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if let Err(why) = names::dns1123_subdomain(name) {
        errs.push(FieldError::invalid(path, format!("{name:?}: {why}")));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_directory_are_refused() {
        let ok = ClaimVolume {
            namespace: "db".into(),
            claim: "data-db-0".into(),
            volume: "pvc-1234".into(),
            path: None,
        };
        assert!(ok.validate("v").is_empty());
        for bad in ["..", ".", "a/b", "", "A"] {
            let v = ClaimVolume {
                volume: bad.into(),
                ..ok.clone()
            };
            assert!(
                v.validate("v")
                    .to_string()
                    .starts_with("v.volume: Invalid value"),
                "{bad:?}: {}",
                v.validate("v")
            );
        }
        let v = ClaimVolume {
            path: Some("/srv/../etc".into()),
            ..ok
        };
        assert_eq!(
            v.validate("v").to_string(),
            "v.path: Invalid value: \"/srv/../etc\": must be an absolute path without '..'"
        );
    }
}
