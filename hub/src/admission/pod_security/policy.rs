//! A namespace's policy from its `pod-security.kubernetes.io/*` labels:
//! the level (and version) each mode (`enforce`, `audit`, `warn`) applies,
//! with Kubernetes' fallbacks for what is unset or invalid.
//!
//! As Kubernetes' `PolicyToEvaluate`: an unset label keeps the hub's
//! default; an invalid `enforce` level fails closed (`restricted`), an
//! invalid `audit` or `warn` level fails open (`privileged`), an invalid
//! version is `latest`; `warn` follows an explicit `enforce` that is
//! stricter than it unless `warn` is set itself. Invalid values are also
//! returned as field errors, for the Namespace's own admission.

use std::collections::BTreeMap;

use bramble_api::{FieldError, FieldErrors};

use super::level::{Level, LevelVersion, Version};

pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
pub const AUDIT_LABEL: &str = "pod-security.kubernetes.io/audit";
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
pub const WARN_LABEL: &str = "pod-security.kubernetes.io/warn";
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

/// What each mode applies in one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Violations refuse the request.
    pub enforce: LevelVersion,
    /// Violations are logged by the hub.
    pub audit: LevelVersion,
    /// Violations are returned to the client as a `Warning` header.
    pub warn: LevelVersion,
}

impl Policy {
    /// `level:latest` for all three modes (the hub's default policy).
    pub fn uniform(level: Level) -> Policy {
        let lv = LevelVersion::latest(level);
        Policy {
            enforce: lv,
            audit: lv,
            warn: lv,
        }
    }

    /// Whether no mode checks anything.
    pub fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn]
            .iter()
            .all(|m| m.level == Level::Privileged)
    }
}

fn label_path(label: &str) -> String {
    format!("metadata.labels[{label}]")
}

/// Reads `labels[label]` as a level into `into`; an invalid value sets
/// `fallback` and adds an error. Returns whether the label was present
/// and valid.
fn read_level(
    labels: &BTreeMap<String, String>,
    label: &str,
    into: &mut Level,
    fallback: Level,
    errs: &mut FieldErrors,
) -> bool {
    let Some(v) = labels.get(label) else {
        return false;
    };
    match v.parse() {
        Ok(l) => {
            *into = l;
            true
        }
        Err(e) => {
            *into = fallback;
            errs.push(FieldError::invalid(
                label_path(label),
                format!("{v:?}: {e}"),
            ));
            false
        }
    }
}

/// Reads `labels[label]` as a version into `into` (`latest` when invalid).
fn read_version(
    labels: &BTreeMap<String, String>,
    label: &str,
    into: &mut Version,
    errs: &mut FieldErrors,
) {
    let Some(v) = labels.get(label) else {
        return;
    };
    *into = v.parse().unwrap_or_else(|e| {
        errs.push(FieldError::invalid(
            label_path(label),
            format!("{v:?}: {e}"),
        ));
        Version::Latest
    });
}

/// The policy of a namespace labelled `labels`, on top of `defaults`, and
/// the labels' errors. A usable policy comes back even with errors.
pub fn policy_for(labels: &BTreeMap<String, String>, defaults: Policy) -> (Policy, FieldErrors) {
    let mut p = defaults;
    let mut errs = FieldErrors::new();
    let enforce_set = read_level(
        labels,
        ENFORCE_LABEL,
        &mut p.enforce.level,
        Level::Restricted,
        &mut errs,
    );
    read_version(
        labels,
        ENFORCE_VERSION_LABEL,
        &mut p.enforce.version,
        &mut errs,
    );
    read_level(
        labels,
        AUDIT_LABEL,
        &mut p.audit.level,
        Level::Privileged,
        &mut errs,
    );
    read_version(labels, AUDIT_VERSION_LABEL, &mut p.audit.version, &mut errs);
    let warn_set = labels.contains_key(WARN_LABEL);
    read_level(
        labels,
        WARN_LABEL,
        &mut p.warn.level,
        Level::Privileged,
        &mut errs,
    );
    let warn_version_set = labels.contains_key(WARN_VERSION_LABEL);
    read_version(labels, WARN_VERSION_LABEL, &mut p.warn.version, &mut errs);
    if !warn_set && enforce_set && p.enforce.level > p.warn.level {
        p.warn.level = p.enforce.level;
        if !warn_version_set {
            p.warn.version = p.enforce.version;
        }
    }
    (p, errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn lv(level: Level, version: Version) -> LevelVersion {
        LevelVersion { level, version }
    }

    #[test]
    fn unset_labels_keep_the_defaults() {
        let d = Policy::uniform(Level::Baseline);
        assert_eq!(
            policy_for(&labels(&[("app", "x")]), d),
            (d, FieldErrors::new())
        );
    }

    #[test]
    fn labels_set_each_mode_and_warn_follows_a_stricter_enforce() {
        let d = Policy::uniform(Level::Baseline);
        let (p, errs) = policy_for(
            &labels(&[
                (ENFORCE_LABEL, "restricted"),
                (ENFORCE_VERSION_LABEL, "v1.30"),
            ]),
            d,
        );
        assert!(errs.is_empty());
        assert_eq!(p.enforce, lv(Level::Restricted, Version::V1(30)));
        assert_eq!(p.warn, lv(Level::Restricted, Version::V1(30)));
        assert_eq!(p.audit, d.audit);
        // A looser enforce leaves warn at the default.
        let (p, _) = policy_for(&labels(&[(ENFORCE_LABEL, "privileged")]), d);
        assert_eq!(p.enforce.level, Level::Privileged);
        assert_eq!(p.warn.level, Level::Baseline);
        assert!(!p.fully_privileged());
        // An explicit warn wins.
        let (p, _) = policy_for(
            &labels(&[(ENFORCE_LABEL, "restricted"), (WARN_LABEL, "privileged")]),
            d,
        );
        assert_eq!(p.warn.level, Level::Privileged);
    }

    #[test]
    fn invalid_values_fail_closed_for_enforce_and_open_for_the_others() {
        let d = Policy::uniform(Level::Baseline);
        let (p, errs) = policy_for(
            &labels(&[
                (ENFORCE_LABEL, "strict"),
                (AUDIT_LABEL, "loud"),
                (WARN_LABEL, "yes"),
                (WARN_VERSION_LABEL, "1.30"),
            ]),
            d,
        );
        assert_eq!(p.enforce.level, Level::Restricted);
        assert_eq!(p.audit.level, Level::Privileged);
        assert_eq!(p.warn, lv(Level::Privileged, Version::Latest));
        assert_eq!(
            errs.to_string(),
            "[metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": \
             must be one of privileged, baseline, restricted, \
             metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: \"loud\": \
             must be one of privileged, baseline, restricted, \
             metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: \"yes\": \
             must be one of privileged, baseline, restricted, \
             metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: \"1.30\": \
             must be \"latest\" or \"v1.x\"]"
        );
        // An invalid enforce does not drag warn along.
        let (p, _) = policy_for(&labels(&[(ENFORCE_LABEL, "strict")]), d);
        assert_eq!(p.warn.level, Level::Baseline);
    }
}
