//! The hub's Pod Security settings: the default level of namespaces
//! without labels (`--default-pod-security`), exempt namespaces
//! (`kube-system` always, more with `--pod-security-exempt-namespaces`)
//! and the host directories Baseline admits (`--allowed-host-paths`).

use std::collections::BTreeSet;

use super::host_paths::AllowedHostPath;
use super::level::Level;
use super::policy::Policy;

/// The system namespace, always exempt.
pub const SYSTEM_NAMESPACE: &str = "kube-system";

/// Pod Security settings, parsed and checked from the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSecurityConfig {
    /// Enforce, audit and warn level of a namespace without labels.
    pub default_level: Level,
    /// Namespaces (besides [`SYSTEM_NAMESPACE`]) whose pods are not checked.
    pub exempt_namespaces: BTreeSet<String>,
    /// `hostPath` directories Baseline admits (Restricted admits none).
    pub allowed_host_paths: Vec<AllowedHostPath>,
}

impl Default for PodSecurityConfig {
    /// `baseline`, nothing exempt but `kube-system`, no host path allowed.
    fn default() -> Self {
        PodSecurityConfig {
            default_level: Level::Baseline,
            exempt_namespaces: BTreeSet::new(),
            allowed_host_paths: Vec::new(),
        }
    }
}

/// A `--pod-security-exempt-namespaces` entry that is not a namespace name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a namespace name: {why}")]
pub struct ExemptNamespaceError {
    pub name: String,
    pub why: String,
}

/// Checks one `--pod-security-exempt-namespaces` entry.
pub fn parse_exempt_namespace(name: &str) -> Result<String, ExemptNamespaceError> {
    bramble_api::names::dns1123_label(name)
        .map(|()| name.to_string())
        .map_err(|why| ExemptNamespaceError {
            name: name.into(),
            why,
        })
}

impl PodSecurityConfig {
    /// The policy of a namespace without labels.
    pub fn default_policy(&self) -> Policy {
        Policy::uniform(self.default_level)
    }

    /// Whether pods in `namespace` skip Pod Security.
    pub fn is_exempt(&self, namespace: &str) -> bool {
        namespace == SYSTEM_NAMESPACE || self.exempt_namespaces.contains(namespace)
    }
}
