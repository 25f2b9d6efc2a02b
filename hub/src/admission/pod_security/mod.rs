//! Pod Security admission as Kubernetes' built-in `PodSecurity` admission
//! does it: the Pod Security Standards (`privileged`, `baseline`,
//! `restricted`) checked on pods and pod templates, per namespace from its
//! `pod-security.kubernetes.io/{enforce,audit,warn}` labels, with
//! Kubernetes' messages word for word.
//!
//! Pure: [`check`] takes a level and a pod, [`evaluate`] a namespace's
//! policy and a write, [`review_namespace`] a Namespace write; the API
//! (`crate::api::pod_security`) and the control loop read the store and act
//! on the answers.
//!
//! Bramble's additions: host devices (`bramble.dev/devices`) pass Baseline
//! and Restricted only when the namespace lists them in
//! `bramble.dev/allowed-devices` ([`devices`]), and `--allowed-host-paths`
//! lets Baseline admit `hostPath` volumes under chosen directories
//! ([`host_paths`]).

pub mod baseline;
pub mod config;
pub mod decision;
pub mod devices;
pub mod host_paths;
pub mod level;
pub mod namespace;
pub mod policy;
pub mod restricted;
pub mod violation;

#[cfg(test)]
mod tests;

pub use config::{PodSecurityConfig, SYSTEM_NAMESPACE};
pub use decision::{Evaluation, Finding, Subject, Target, evaluate, forbidden_message};
pub use host_paths::AllowedHostPath;
pub use level::{Level, LevelVersion, Version};
pub use namespace::{NamespaceReview, existing_pod_warnings, review_namespace};
pub use policy::{Policy, policy_for};
pub use violation::{Violation, Violations};

/// What a namespace and the hub allow beyond the standards.
#[derive(Debug, Clone, Default)]
pub struct Allowances<'a> {
    /// `--allowed-host-paths` (Baseline only).
    pub host_paths: &'a [AllowedHostPath],
    /// The namespace's `bramble.dev/allowed-devices`.
    pub devices: Vec<&'a str>,
}

/// The violations of `level` by `pod`, in Kubernetes' order: the Baseline
/// checks by their Kubernetes id (those Restricted replaces skipped at
/// `restricted`), Bramble's host devices, then the Restricted checks by id.
pub fn check(level: Level, pod: Subject<'_>, allow: &Allowances<'_>) -> Violations {
    let spec = pod.spec;
    let strict = level == Level::Restricted;
    let found = match level {
        Level::Privileged => Vec::new(),
        Level::Baseline | Level::Restricted => vec![
            (!strict).then(|| baseline::capabilities(spec)).flatten(),
            baseline::host_namespaces(spec),
            (!strict)
                .then(|| baseline::host_path_volumes(spec, allow.host_paths))
                .flatten(),
            baseline::host_ports(spec),
            baseline::privileged(spec),
            (!strict).then(|| baseline::seccomp(spec)).flatten(),
            devices::check(&pod.meta.annotations, &allow.devices),
            strict
                .then(|| restricted::allow_privilege_escalation(spec))
                .flatten(),
            strict.then(|| restricted::capabilities(spec)).flatten(),
            strict.then(|| restricted::volumes(spec)).flatten(),
            strict.then(|| restricted::run_as_non_root(spec)).flatten(),
            strict.then(|| restricted::run_as_user(spec)).flatten(),
            strict.then(|| restricted::seccomp(spec)).flatten(),
        ],
    };
    Violations(found.into_iter().flatten().collect())
}
