//! Seccomp for containers: which filter a container gets
//! ([`SeccompPolicy`], from the pod's `seccompProfile`), Docker's default
//! profile as the `RuntimeDefault` ([`docker_default`]), written into the
//! OCI spec's `linux.seccomp` for every runtime, and the in-process
//! runtime's compiler and installer of that section ([`bpf`], and the
//! libcontainer [`executor`] that installs it; 64-bit only).

pub mod docker_default;

#[cfg(target_pointer_width = "64")]
pub mod bpf;
#[cfg(target_pointer_width = "64")]
pub mod executor;

use oci_spec::runtime::LinuxSeccomp;

/// The filter a container runs under.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SeccompPolicy {
    /// Docker's default profile, for the container's capabilities.
    #[default]
    RuntimeDefault,
    /// No filter (`Unconfined`, and every privileged container).
    Unconfined,
    /// A profile of the node's (`Localhost`), already read and parsed.
    Custom(Box<LinuxSeccomp>),
}

impl SeccompPolicy {
    /// The OCI `linux.seccomp` section for a container with capabilities
    /// `caps` (`None`: no filter).
    pub fn section(
        &self,
        privileged: bool,
        caps: &std::collections::HashSet<oci_spec::runtime::Capability>,
    ) -> Option<LinuxSeccomp> {
        match self {
            _ if privileged => None,
            SeccompPolicy::Unconfined => None,
            SeccompPolicy::RuntimeDefault => Some(docker_default::profile(
                caps,
                docker_default::Machine::native(),
            )),
            SeccompPolicy::Custom(p) => Some((**p).clone()),
        }
    }
}
