//! `securityContext.seccompProfile` (pod and container): which seccomp filter
//! the runtime puts on a container. A container's own setting wins over the
//! pod's; with neither, Bramble applies `RuntimeDefault` (Docker's default
//! profile), as kubelets do with `--seccomp-default`.

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, join};

use super::common::check_enum;

/// `seccompProfile.type` values.
pub const SECCOMP_TYPES: &[&str] = &["Localhost", "RuntimeDefault", "Unconfined"];

/// `seccompProfile: {type, localhostProfile}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.SeccompProfile")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub type_: String,
    /// For `Localhost`: a path relative to the agent's seccomp directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,
}

/// The filter a container gets, once the pod's and the container's settings
/// are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seccomp {
    RuntimeDefault,
    Unconfined,
    /// A profile file relative to the agent's seccomp directory.
    Localhost(String),
}

impl SeccompProfile {
    /// The filter this setting names (validated objects only).
    pub fn to_seccomp(&self) -> Seccomp {
        match (self.type_.as_str(), &self.localhost_profile) {
            ("Unconfined", _) => Seccomp::Unconfined,
            ("Localhost", Some(p)) => Seccomp::Localhost(p.clone()),
            _ => Seccomp::RuntimeDefault,
        }
    }

    /// Validates the profile at `path` (`...securityContext.seccompProfile`),
    /// with Kubernetes' wording.
    pub fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let tp = join(path, "type");
        if self.type_.is_empty() {
            errs.push(FieldError::required(tp));
            return errs;
        }
        check_enum(&mut errs, &tp, &self.type_, SECCOMP_TYPES);
        let lp = join(path, "localhostProfile");
        match (self.type_.as_str(), self.localhost_profile.as_deref()) {
            ("Localhost", None | Some("")) => errs.push(FieldError::required(lp)),
            ("Localhost", Some(p)) => {
                if p.starts_with('/') || p.split('/').any(|c| c == "..") {
                    errs.push(FieldError::invalid(
                        lp,
                        format!(
                            "{p:?}: must be a relative path without '..' (under the agent's seccomp directory)"
                        ),
                    ));
                }
            }
            (_, Some(_)) => errs.push(FieldError::invalid(
                lp,
                "can only be set when seccomp type is Localhost",
            )),
            (_, None) => {}
        }
        errs
    }
}

/// The filter for a container: its own profile, else the pod's, else
/// `RuntimeDefault`.
pub fn effective(container: Option<&SeccompProfile>, pod: Option<&SeccompProfile>) -> Seccomp {
    container
        .or(pod)
        .map_or(Seccomp::RuntimeDefault, SeccompProfile::to_seccomp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str, l: Option<&str>) -> SeccompProfile {
        SeccompProfile {
            type_: t.into(),
            localhost_profile: l.map(Into::into),
        }
    }

    #[test]
    fn validation_speaks_kubernetes() {
        let path = "spec.securityContext.seccompProfile";
        assert!(p("RuntimeDefault", None).validate(path).is_empty());
        assert!(
            p("Localhost", Some("profiles/audit.json"))
                .validate(path)
                .is_empty()
        );
        let e = p("Strict", None).validate(path);
        assert_eq!(
            e.to_string(),
            format!(
                "{path}.type: Unsupported value: supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""
            )
        );
        assert!(!p("Localhost", None).validate(path).is_empty());
        assert!(
            !p("Localhost", Some("../etc/x.json"))
                .validate(path)
                .is_empty()
        );
        assert!(
            !p("Localhost", Some("/etc/x.json"))
                .validate(path)
                .is_empty()
        );
        assert!(!p("Unconfined", Some("x.json")).validate(path).is_empty());
        assert!(!p("", None).validate(path).is_empty());
    }

    #[test]
    fn the_container_wins_over_the_pod_and_the_default_is_runtime_default() {
        let pod = p("Unconfined", None);
        let c = p("Localhost", Some("a.json"));
        assert_eq!(effective(None, None), Seccomp::RuntimeDefault);
        assert_eq!(effective(None, Some(&pod)), Seccomp::Unconfined);
        assert_eq!(
            effective(Some(&c), Some(&pod)),
            Seccomp::Localhost("a.json".into())
        );
    }
}
