//! Which seccomp filter a container of a pod runs under: the container's
//! `securityContext.seccompProfile`, else the pod's, else `RuntimeDefault`
//! (Docker's default profile); privileged containers are unconfined, as
//! containerd runs them. A `Localhost` profile is a file of the node's, an
//! OCI `linux.seccomp` object in JSON, under the agent's seccomp directory
//! (`DATA_DIR/seccomp`, as the kubelet's `/var/lib/kubelet/seccomp`). A
//! profile that cannot be had is a [`SeccompProfileError`].

use std::path::{Component, Path, PathBuf};

use bramble_api::objects::container::Container;
use bramble_api::objects::pod::Pod;
use bramble_api::objects::seccomp::{Seccomp, effective};
use oci_spec::runtime::LinuxSeccomp;

use crate::runtime::seccomp::SeccompPolicy;

/// Why a `Localhost` profile cannot be had; each names the profile (as the
/// pod spec gives it) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SeccompProfileError {
    #[error("seccompProfile Localhost {profile:?}: this agent has no seccomp profile directory")]
    NoDirectory { profile: String },
    #[error("seccompProfile Localhost {profile:?}: must be a relative path without '..'")]
    NotRelative { profile: String },
    #[error(
        "seccompProfile Localhost {profile:?}: reading {path}: {source} (put the profile on \
         this node under {dir})"
    )]
    Read {
        profile: String,
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `reason`: the decoder's message.
    #[error(
        "seccompProfile Localhost {profile:?}: {path} is not an OCI linux.seccomp object: \
         {reason}"
    )]
    Invalid {
        profile: String,
        path: PathBuf,
        reason: String,
    },
}

/// The policy for container `c` of `pod`; `dir` is where `Localhost`
/// profiles live (`None`: this agent has none, and such pods fail).
pub fn policy(
    pod: &Pod,
    c: &Container,
    dir: Option<&Path>,
) -> Result<SeccompPolicy, SeccompProfileError> {
    let sc = c.security_context.as_ref();
    if sc.and_then(|s| s.privileged) == Some(true) {
        return Ok(SeccompPolicy::Unconfined);
    }
    let pod_profile = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    match effective(sc.and_then(|s| s.seccomp_profile.as_ref()), pod_profile) {
        Seccomp::RuntimeDefault => Ok(SeccompPolicy::RuntimeDefault),
        Seccomp::Unconfined => Ok(SeccompPolicy::Unconfined),
        Seccomp::Localhost(rel) => {
            let dir = dir.ok_or_else(|| SeccompProfileError::NoDirectory {
                profile: rel.clone(),
            })?;
            load(dir, &rel).map(|p| SeccompPolicy::Custom(Box::new(p)))
        }
    }
}

/// Reads the profile `rel` (relative, no `..`) under `dir`.
fn load(dir: &Path, rel: &str) -> Result<LinuxSeccomp, SeccompProfileError> {
    let relative = Path::new(rel);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(SeccompProfileError::NotRelative {
            profile: rel.to_string(),
        });
    }
    let path = dir.join(relative);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(source) => {
            return Err(SeccompProfileError::Read {
                profile: rel.to_string(),
                path,
                dir: dir.to_path_buf(),
                source,
            });
        }
    };
    bramble_api::decode::decode_slice(&bytes).map_err(|reason| SeccompProfileError::Invalid {
        profile: rel.to_string(),
        path,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(pod_profile: Option<serde_json::Value>, c_sc: serde_json::Value) -> Pod {
        let mut spec =
            json!({"containers": [{"name": "c", "image": "x", "securityContext": c_sc}]});
        if let Some(p) = pod_profile {
            spec["securityContext"] = json!({"seccompProfile": p});
        }
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"}, "spec": spec}))
        .unwrap()
    }

    #[test]
    fn default_unconfined_privileged_and_container_over_pod() {
        let p = pod(None, json!({}));
        let c = &p.spec.containers[0];
        assert_eq!(policy(&p, c, None).unwrap(), SeccompPolicy::RuntimeDefault);
        let p = pod(Some(json!({"type": "Unconfined"})), json!({}));
        assert_eq!(
            policy(&p, &p.spec.containers[0], None).unwrap(),
            SeccompPolicy::Unconfined
        );
        let p = pod(
            Some(json!({"type": "Unconfined"})),
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
        );
        assert_eq!(
            policy(&p, &p.spec.containers[0], None).unwrap(),
            SeccompPolicy::RuntimeDefault
        );
        let p = pod(None, json!({"privileged": true}));
        assert_eq!(
            policy(&p, &p.spec.containers[0], None).unwrap(),
            SeccompPolicy::Unconfined
        );
    }

    #[test]
    fn localhost_profiles_are_read_from_the_directory_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("audit.json"),
            r#"{"defaultAction": "SCMP_ACT_LOG"}"#,
        )
        .unwrap();
        let p = pod(
            Some(json!({"type": "Localhost", "localhostProfile": "audit.json"})),
            json!({}),
        );
        match policy(&p, &p.spec.containers[0], Some(dir.path())).unwrap() {
            SeccompPolicy::Custom(s) => {
                assert_eq!(
                    s.default_action(),
                    oci_spec::runtime::LinuxSeccompAction::ScmpActLog
                )
            }
            other => panic!("{other:?}"),
        }
        let e = policy(&p, &p.spec.containers[0], None).unwrap_err();
        assert!(matches!(e, SeccompProfileError::NoDirectory { .. }), "{e}");
        assert!(
            e.to_string().contains("no seccomp profile directory"),
            "{e}"
        );
        let p = pod(
            Some(json!({"type": "Localhost", "localhostProfile": "missing.json"})),
            json!({}),
        );
        let e = policy(&p, &p.spec.containers[0], Some(dir.path())).unwrap_err();
        assert!(matches!(e, SeccompProfileError::Read { .. }), "{e}");
        let e = e.to_string();
        assert!(
            e.contains("missing.json") && e.contains("put the profile on this node"),
            "{e}"
        );
        let e = load(dir.path(), "../audit.json").unwrap_err();
        assert!(matches!(e, SeccompProfileError::NotRelative { .. }), "{e}");
        assert!(e.to_string().contains("without '..'"), "{e}");
    }
}
