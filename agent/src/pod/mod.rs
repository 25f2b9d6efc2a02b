//! Pods on this node: the pieces a pod needs besides its containers — the
//! network, IPC and UTS namespaces shared by its containers ([`netns`]),
//! its volumes ([`volumes`]) and ConfigMap/Secret-derived env ([`env`]) —
//! and running one pod on a runtime with them: the [`RunningPod`] type
//! ([`run`]), its containers' lifecycle ([`life`]), started ([`start`],
//! [`prepare`], [`launch`]), supervised: restarts, probes, status
//! ([`supervise`], [`probes`], [`status`]), torn down ([`teardown`]), and
//! recorded to be adopted after an agent restart ([`record`]). Why a pod,
//! a container or an image failed: `error` and `image_error`. Each file is
//! one concept.

pub mod atomic_dir;
pub mod env;
mod error;
mod image_error;
mod launch;
pub mod life;
pub mod netns;
mod options;
mod prepare;
mod probes;
pub mod record;
pub mod run;
pub mod seccomp_profile;
mod start;
mod status;
pub mod subpath;
pub mod supervise;
mod teardown;
mod volume_update;
pub mod volumes;

pub use env::{PodIps, resolve_env};
pub use error::{CleanupError, ContainerError, PodError};
pub use image_error::{ImageError, PullError};
pub use netns::{NetnsError, PodNetns};
pub use options::{ImageSource, PodAddress, PodDirs, PodDns, PodOptions, ResolvedImage};
pub use probes::probe_in_netns;
pub use record::{PodRecord, SavedContainer};
pub use run::{Life, PodContainer, RunningPod};
pub use status::RunPhase;
pub use supervise::PodEvent;
pub use volumes::{ClaimDir, DataMap, PodInputs, PodVolumes, VolumeError};

#[cfg(test)]
mod test_fixtures;
