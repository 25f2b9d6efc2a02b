//! Pods on this node: the pieces a pod needs besides its containers — the
//! network, IPC and UTS namespaces shared by its containers ([`netns`]) and
//! its volumes plus ConfigMap/Secret-derived env ([`volumes`]) — and running one pod
//! on a runtime with them ([`run`]), supervised: restarts, probes, status
//! ([`supervise`]).

pub mod atomic_dir;
pub mod netns;
pub mod record;
pub mod run;
pub mod seccomp_profile;
pub mod subpath;
pub mod supervise;
mod volume_update;
pub mod volumes;

pub use netns::{NetnsError, PodNetns};
pub use record::{PodRecord, SavedContainer};
pub use run::{
    ImageError, ImageSource, PodAddress, PodContainer, PodDirs, PodDns, PodError, PodOptions,
    ResolvedImage, RunPhase, RunningPod,
};
pub use supervise::{PodEvent, probe_in_netns};
pub use volumes::{DataMap, PodInputs, PodIps, PodVolumes, VolumeError, resolve_env};
