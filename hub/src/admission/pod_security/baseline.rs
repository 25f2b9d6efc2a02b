//! The Baseline checks of the Pod Security Standards that apply to the
//! fields Bramble has (`hostPID`, `hostIPC`, `procMount`, `sysctls`,
//! SELinux, AppArmor and the others are refused by strict decoding before
//! admission), with Kubernetes' reasons and details word for word. Init
//! containers are visited before containers, as Kubernetes does.

use std::collections::BTreeSet;

use bramble_api::objects::PodSpec;
use bramble_api::objects::seccomp::SeccompProfile;

use super::host_paths::AllowedHostPath;
use super::violation::{Violation, containers, join_quote, pluralize};

/// Capabilities Baseline lets a container add (Docker's defaults).
pub const ALLOWED_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// `capabilities_baseline`: nothing beyond [`ALLOWED_CAPABILITIES`] added.
pub fn capabilities(spec: &PodSpec) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in spec.all_containers() {
        let added = c
            .security_context
            .as_ref()
            .and_then(|s| s.capabilities.as_ref())
            .map_or(&[][..], |k| k.add.as_slice());
        let mut valid = true;
        for cap in added {
            if !ALLOWED_CAPABILITIES.contains(&cap.as_str()) {
                valid = false;
                caps.insert(cap.as_str());
            }
        }
        if !valid {
            bad.push(c.name.as_str());
        }
    }
    (!bad.is_empty()).then(|| Violation {
        reason: "non-default capabilities",
        detail: format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers(&bad),
            join_quote(&caps.into_iter().collect::<Vec<_>>())
        ),
    })
}

/// `hostNamespaces`: no `hostNetwork` (the only host namespace Bramble has).
pub fn host_namespaces(spec: &PodSpec) -> Option<Violation> {
    spec.host_network.then(|| Violation {
        reason: "host namespaces",
        detail: "hostNetwork=true".into(),
    })
}

/// `hostPathVolumes`: no `hostPath` volume, except (Bramble) those under a
/// path the hub allows with `--allowed-host-paths`.
pub fn host_path_volumes(spec: &PodSpec, allowed: &[AllowedHostPath]) -> Option<Violation> {
    let bad: Vec<&str> = spec
        .volumes
        .iter()
        .filter(|v| {
            v.host_path
                .as_ref()
                .is_some_and(|h| !allowed.iter().any(|a| a.allows(&h.path)))
        })
        .map(|v| v.name.as_str())
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "hostPath volumes",
        detail: format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
    })
}

/// `hostPorts`: no container port with a `hostPort` (ports listed as
/// Kubernetes sorts them: as strings).
pub fn host_ports(spec: &PodSpec) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in spec.all_containers() {
        let mut valid = true;
        for p in &c.ports {
            if let Some(hp) = p.host_port.filter(|h| *h != 0) {
                valid = false;
                ports.insert(hp.to_string());
            }
        }
        if !valid {
            bad.push(c.name.as_str());
        }
    }
    (!bad.is_empty()).then(|| Violation {
        reason: "hostPort",
        detail: format!(
            "{} {} {} {}",
            containers(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.into_iter().collect::<Vec<_>>().join(", ")
        ),
    })
}

/// `privileged`: no privileged container.
pub fn privileged(spec: &PodSpec) -> Option<Violation> {
    let bad: Vec<&str> = spec
        .all_containers()
        .filter(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false)
        })
        .map(|c| c.name.as_str())
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "privileged",
        detail: format!(
            "{} must not set securityContext.privileged=true",
            containers(&bad)
        ),
    })
}

/// Whether a seccomp type confines the container.
pub fn valid_seccomp(p: &SeccompProfile) -> bool {
    matches!(p.type_.as_str(), "RuntimeDefault" | "Localhost")
}

/// `seccompProfile_baseline`: no explicit `Unconfined`, on the pod or a
/// container.
pub fn seccomp(spec: &PodSpec) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    if let Some(p) = spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
        .filter(|p| !valid_seccomp(p))
    {
        setters.push("pod".to_string());
        values.insert(p.type_.as_str());
    }
    let mut bad = Vec::new();
    for c in spec.all_containers() {
        if let Some(p) = c
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
            .filter(|p| !valid_seccomp(p))
        {
            bad.push(c.name.as_str());
            values.insert(p.type_.as_str());
        }
    }
    if !bad.is_empty() {
        setters.push(containers(&bad));
    }
    (!setters.is_empty()).then(|| seccomp_setters(&setters, values))
}

/// `... must not set securityContext.seccompProfile.type to "Unconfined"`.
pub fn seccomp_setters(setters: &[String], values: BTreeSet<&str>) -> Violation {
    Violation {
        reason: "seccompProfile",
        detail: format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&values.into_iter().collect::<Vec<_>>())
        ),
    }
}
