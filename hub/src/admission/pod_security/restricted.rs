//! The Restricted checks of the Pod Security Standards, with Kubernetes'
//! reasons and details word for word. At `restricted` they replace the
//! Baseline checks of capabilities, hostPath volumes and seccomp.

use std::collections::BTreeSet;

use bramble_api::objects::PodSpec;
use bramble_api::objects::volume::Volume;

use super::baseline::{seccomp_setters, valid_seccomp};
use super::violation::{Violation, containers, join_quote, pluralize};

/// `allowPrivilegeEscalation`: every container sets it to `false`.
pub fn allow_privilege_escalation(spec: &PodSpec) -> Option<Violation> {
    let bad: Vec<&str> = spec
        .all_containers()
        .filter(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.allow_privilege_escalation)
                != Some(false)
        })
        .map(|c| c.name.as_str())
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "allowPrivilegeEscalation != false",
        detail: format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers(&bad)
        ),
    })
}

/// `capabilities_restricted`: every container drops `ALL` and adds at most
/// `NET_BIND_SERVICE`.
pub fn capabilities(spec: &PodSpec) -> Option<Violation> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in spec.all_containers() {
        let Some(caps) = c
            .security_context
            .as_ref()
            .and_then(|s| s.capabilities.as_ref())
        else {
            missing_drop.push(c.name.as_str());
            continue;
        };
        if !caps.drop.iter().any(|d| d == "ALL") {
            missing_drop.push(c.name.as_str());
        }
        let mut added_forbidden = false;
        for a in caps.add.iter().filter(|a| *a != "NET_BIND_SERVICE") {
            added_forbidden = true;
            forbidden.insert(a.as_str());
        }
        if added_forbidden {
            adding.push(c.name.as_str());
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers(&adding),
            join_quote(&forbidden.into_iter().collect::<Vec<_>>())
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "unrestricted capabilities",
        detail: details.join("; "),
    })
}

/// The Kubernetes name of a volume's source when Restricted refuses it.
fn restricted_type(v: &Volume) -> Option<&'static str> {
    if v.empty_dir.is_some()
        || v.config_map.is_some()
        || v.secret.is_some()
        || v.persistent_volume_claim.is_some()
    {
        None
    } else if v.host_path.is_some() {
        Some("hostPath")
    } else {
        Some("unknown")
    }
}

/// `restrictedVolumes`: only configMap, emptyDir, secret and
/// persistentVolumeClaim among Bramble's volume sources (Kubernetes also
/// allows sources Bramble does not have: projected, downwardAPI, csi,
/// ephemeral, image). A claim's volume is an administrator's object: a
/// PersistentVolume is cluster-scoped.
pub fn volumes(spec: &PodSpec) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in &spec.volumes {
        if let Some(t) = restricted_type(v) {
            bad.push(v.name.as_str());
            types.insert(t);
        }
    }
    (!bad.is_empty()).then(|| Violation {
        reason: "restricted volume types",
        detail: format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types.into_iter().collect::<Vec<_>>())
        ),
    })
}

/// `runAsNonRoot`: set to `true` on the pod or on every container, and
/// `false` nowhere.
pub fn run_as_non_root(spec: &PodSpec) -> Option<Violation> {
    let mut setters = Vec::new();
    let pod = spec
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root);
    if pod == Some(false) {
        setters.push("pod".to_string());
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in spec.all_containers() {
        match c.security_context.as_ref().and_then(|s| s.run_as_non_root) {
            Some(false) => explicit.push(c.name.as_str()),
            Some(true) => {}
            None if pod != Some(true) => implicit.push(c.name.as_str()),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers(&explicit));
    }
    if !setters.is_empty() {
        return Some(Violation {
            reason: "runAsNonRoot != true",
            detail: format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        });
    }
    (!implicit.is_empty()).then(|| Violation {
        reason: "runAsNonRoot != true",
        detail: format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers(&implicit)
        ),
    })
}

/// `runAsUser`: never `0`, on the pod or a container.
pub fn run_as_user(spec: &PodSpec) -> Option<Violation> {
    let mut setters = Vec::new();
    if spec.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
        setters.push("pod".to_string());
    }
    let bad: Vec<&str> = spec
        .all_containers()
        .filter(|c| c.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0))
        .map(|c| c.name.as_str())
        .collect();
    if !bad.is_empty() {
        setters.push(containers(&bad));
    }
    (!setters.is_empty()).then(|| Violation {
        reason: "runAsUser=0",
        detail: format!("{} must not set runAsUser=0", setters.join(" and ")),
    })
}

/// `seccompProfile_restricted`: `RuntimeDefault` or `Localhost`, set on
/// the pod or on every container. (Bramble's agents apply
/// `RuntimeDefault` when nothing is set, but the standard asks for it
/// explicitly, as Kubernetes does.)
pub fn seccomp(spec: &PodSpec) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let mut pod_set = false;
    if let Some(p) = spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
    {
        if valid_seccomp(p) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            values.insert(p.type_.as_str());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in spec.all_containers() {
        match c
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
        {
            Some(p) if !valid_seccomp(p) => {
                explicit.push(c.name.as_str());
                values.insert(p.type_.as_str());
            }
            Some(_) => {}
            None if !pod_set => implicit.push(c.name.as_str()),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers(&explicit));
    }
    if !setters.is_empty() {
        return Some(seccomp_setters(&setters, values));
    }
    (!implicit.is_empty()).then(|| Violation {
        reason: "seccompProfile",
        detail: format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers(&implicit)
        ),
    })
}
