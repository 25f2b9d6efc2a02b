//! A Namespace's own admission under Pod Security, as Kubernetes'
//! `ValidateNamespace`: invalid `pod-security.kubernetes.io/*` labels (and
//! an invalid `bramble.dev/allowed-devices`) refuse a create, and an update
//! that changes them; a stricter enforce level (or fewer allowed devices)
//! is admitted with warnings naming the existing pods that violate it; an
//! exempt namespace's labels are admitted with a warning that they are
//! ignored.

use std::collections::{BTreeMap, BTreeSet};

use bramble_api::FieldErrors;
use bramble_api::meta::ObjectMeta;
use bramble_api::objects::Pod;

use super::config::PodSecurityConfig;
use super::devices::{allowed_devices, validate_allowed_devices};
use super::level::{Level, LevelVersion};
use super::policy::{
    AUDIT_LABEL, AUDIT_VERSION_LABEL, ENFORCE_LABEL, ENFORCE_VERSION_LABEL, Policy, WARN_LABEL,
    WARN_VERSION_LABEL, policy_for,
};
use super::violation::Violations;
use super::{Allowances, Subject, check};

/// What a Namespace write passes with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceReview {
    /// Warnings for the client.
    pub warnings: Vec<String>,
    /// The existing pods are to be checked against this enforce level
    /// ([`existing_pod_warnings`]).
    pub recheck: Option<LevelVersion>,
}

fn errors_of(config: &PodSecurityConfig, meta: &ObjectMeta) -> (Policy, FieldErrors) {
    let (policy, mut errs) = policy_for(&meta.labels, config.default_policy());
    errs.extend(validate_allowed_devices(&meta.annotations));
    (policy, errs)
}

/// Each mode is privileged in both, or the same level and version.
fn equivalent(a: &Policy, b: &Policy) -> bool {
    let same = |x: LevelVersion, y: LevelVersion| {
        (x.level == Level::Privileged && y.level == Level::Privileged) || x == y
    };
    same(a.enforce, b.enforce) && same(a.audit, b.audit) && same(a.warn, b.warn)
}

/// `namespace "x" is exempt from Pod Security, and the policy (...) will
/// be ignored`, for the modes its labels set; `None` when they set nothing
/// that would matter.
fn exempt_warning(
    config: &PodSecurityConfig,
    meta: &ObjectMeta,
    policy: &Policy,
) -> Option<String> {
    if policy.fully_privileged() || equivalent(policy, &config.default_policy()) {
        return None;
    }
    let has = |label: &str| meta.labels.contains_key(label);
    let modes = [
        (
            "enforce",
            policy.enforce,
            ENFORCE_LABEL,
            ENFORCE_VERSION_LABEL,
        ),
        ("audit", policy.audit, AUDIT_LABEL, AUDIT_VERSION_LABEL),
        ("warn", policy.warn, WARN_LABEL, WARN_VERSION_LABEL),
    ];
    let set: Vec<String> = modes
        .iter()
        .filter(|(_, lv, level, version)| {
            lv.level != Level::Privileged && (has(level) || has(version))
        })
        .map(|(mode, lv, _, _)| format!("{mode}={lv}"))
        .collect();
    Some(format!(
        "namespace {:?} is exempt from Pod Security, and the policy ({}) will be ignored",
        meta.name,
        set.join(", ")
    ))
}

/// Reviews a Namespace create (`old` is `None`) or update; `Err` carries
/// the field errors that refuse it.
pub fn review_namespace(
    config: &PodSecurityConfig,
    new: &ObjectMeta,
    old: Option<&ObjectMeta>,
) -> Result<NamespaceReview, FieldErrors> {
    let (policy, errs) = errors_of(config, new);
    let exempt = config.is_exempt(&new.name);
    let exempt_review = || NamespaceReview {
        warnings: exempt_warning(config, new, &policy).into_iter().collect(),
        recheck: None,
    };
    let Some(old) = old else {
        errs.clone().into_result()?;
        return Ok(if exempt {
            exempt_review()
        } else {
            NamespaceReview::default()
        });
    };
    let (old_policy, old_errs) = errors_of(config, old);
    if !errs.is_empty() && (old_errs.is_empty() || errs != old_errs) {
        return Err(errs);
    }
    let (new_lv, old_lv) = (policy.enforce, old_policy.enforce);
    let tightened =
        new_lv != old_lv && !(new_lv.version == old_lv.version && new_lv.level <= old_lv.level);
    let new_devices = allowed_devices(&new.annotations);
    let narrowed = allowed_devices(&old.annotations)
        .iter()
        .any(|d| !new_devices.contains(d));
    if new_lv.level == Level::Privileged || !(tightened || narrowed) {
        return Ok(NamespaceReview::default());
    }
    if exempt {
        return Ok(exempt_review());
    }
    Ok(NamespaceReview {
        warnings: Vec::new(),
        recheck: Some(new_lv),
    })
}

/// Kubernetes' warnings about the pods of a namespace that `level`
/// refuses: one line saying so, then one per distinct set of reasons,
/// naming the first pod (by name) and how many others share it.
pub fn existing_pod_warnings(
    config: &PodSecurityConfig,
    namespace: &ObjectMeta,
    level: LevelVersion,
    pods: &[Pod],
) -> Vec<String> {
    let allow = Allowances {
        host_paths: &config.allowed_host_paths,
        devices: allowed_devices(&namespace.annotations),
    };
    // reasons -> (first pod by name, count), in the order first seen
    let mut order: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, (&str, usize)> = BTreeMap::new();
    for pod in pods {
        let v: Violations = check(
            level.level,
            Subject {
                meta: &pod.metadata,
                spec: &pod.spec,
            },
            &allow,
        );
        if v.is_empty() {
            continue;
        }
        let reasons = v.reasons();
        let entry = seen.entry(reasons.clone()).or_insert_with(|| {
            order.push(reasons);
            (pod.name(), 0)
        });
        entry.0 = entry.0.min(pod.name());
        entry.1 += 1;
    }
    if order.is_empty() {
        return Vec::new();
    }
    let decorated: BTreeSet<String> = order
        .iter()
        .map(|reasons| {
            let (first, count) = seen[reasons];
            match count {
                1 => format!("{first}: {reasons}"),
                2 => format!("{first} (and 1 other pod): {reasons}"),
                n => format!("{first} (and {} other pods): {reasons}", n - 1),
            }
        })
        .collect();
    std::iter::once(format!(
        "existing pods in namespace {:?} violate the new PodSecurity enforce level \"{level}\"",
        namespace.name
    ))
    .chain(decorated)
    .collect()
}
