//! One write's evaluation, as Kubernetes' `EvaluatePod`: the namespace's
//! policy applied to a pod (or a workload's pod template) in the three
//! modes. `enforce` refuses, `audit` is logged, `warn` goes back to the
//! client, and only when the write is not refused.

use bramble_api::FieldErrors;
use bramble_api::meta::ObjectMeta;
use bramble_api::objects::PodSpec;

use super::config::PodSecurityConfig;
use super::devices::allowed_devices;
use super::level::LevelVersion;
use super::policy::policy_for;
use super::violation::Violations;
use super::{Allowances, check};

/// The pod (or pod template) a write carries.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub meta: &'a ObjectMeta,
    pub spec: &'a PodSpec,
}

/// The violations of one mode's level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub policy: LevelVersion,
    pub violations: Violations,
}

impl Finding {
    /// `violates PodSecurity "baseline:latest": privileged (...)`.
    pub fn violates(&self) -> String {
        format!(
            "violates PodSecurity \"{}\": {}",
            self.policy, self.violations
        )
    }

    /// Kubernetes' 403 message: `pods "web" is forbidden: violates ...`,
    /// `resource` being the plural with its group (`deployments.apps`).
    pub fn forbidden(&self, resource: &str, name: &str) -> String {
        forbidden_message(resource, name, &self.violates())
    }

    /// The `warn` (and `audit`) text: `would violate PodSecurity "...": ...`.
    pub fn would_violate(&self) -> String {
        format!(
            "would violate PodSecurity \"{}\": {}",
            self.policy, self.violations
        )
    }
}

/// `{resource} "{name}" is forbidden: {why}` (Kubernetes' `NewForbidden`).
pub fn forbidden_message(resource: &str, name: &str, why: &str) -> String {
    format!("{resource} \"{name}\" is forbidden: {why}")
}

/// What the three modes found; all `None` when the write passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// The write is refused.
    pub enforce: Option<Finding>,
    /// To log.
    pub audit: Option<Finding>,
    /// To return as a warning (never with `enforce`).
    pub warn: Option<Finding>,
    /// The namespace's labels that did not parse (their fallbacks applied).
    pub label_errors: FieldErrors,
}

/// The namespace a write lands in: its name and, when it exists, its
/// metadata (labels and annotations).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub name: &'a str,
    pub meta: Option<&'a ObjectMeta>,
}

/// Evaluates `subject` in `namespace`. With `enforce` false only audit and
/// warn run (a workload update that leaves its template alone).
pub fn evaluate(
    config: &PodSecurityConfig,
    namespace: Target<'_>,
    subject: Subject<'_>,
    enforce: bool,
) -> Evaluation {
    if config.is_exempt(namespace.name) {
        return Evaluation::default();
    }
    let empty = ObjectMeta::default();
    let ns = namespace.meta.unwrap_or(&empty);
    let (policy, label_errors) = policy_for(&ns.labels, config.default_policy());
    if label_errors.is_empty() && policy.fully_privileged() {
        return Evaluation::default();
    }
    let allow = Allowances {
        host_paths: &config.allowed_host_paths,
        devices: allowed_devices(&ns.annotations),
    };
    let find = |lv: LevelVersion| {
        let violations = check(lv.level, subject, &allow);
        (!violations.is_empty()).then_some(Finding {
            policy: lv,
            violations,
        })
    };
    let enforce = if enforce { find(policy.enforce) } else { None };
    let audit = find(policy.audit);
    let warn = if enforce.is_none() {
        find(policy.warn)
    } else {
        None
    };
    Evaluation {
        enforce,
        audit,
        warn,
        label_errors,
    }
}
