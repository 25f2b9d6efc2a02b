//! Why a pod could not be started, supervised or stopped ([`PodError`]),
//! what was wrong with one of its containers ([`ContainerError`]), and what
//! a teardown left behind ([`CleanupError`]). Why one of its images could
//! not be had is an [`ImageError`].

use std::path::PathBuf;

use bramble_images::{DefaultsError, RootfsError};

use super::image_error::ImageError;
use super::life::Refused;
use super::netns::NetnsError;
use super::seccomp_profile::SeccompProfileError;
use super::volumes::VolumeError;
use crate::image_root::etc_files::UserError;
use crate::runtime::{MAX_ID_LEN, RuntimeError};

/// What is wrong with one container of a pod (the pod and the container
/// are named by [`PodError::Container`]).
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The image's config and the container spec do not make a process.
    #[error(transparent)]
    Defaults(#[from] DefaultsError),
    /// A device of the pod's is not usable.
    #[error(transparent)]
    Device(RuntimeError),
    #[error("container id {id:?} is longer than {MAX_ID_LEN} bytes")]
    IdTooLong { id: String },
    #[error("attaching the log FIFOs: {0}")]
    AttachLogs(#[source] std::io::Error),
    #[error("re-attaching the log FIFOs: {0}")]
    ReattachLogs(#[source] std::io::Error),
    #[error(transparent)]
    Seccomp(#[from] SeccompProfileError),
    #[error("removing the old rootfs: {0}")]
    RemoveRootfs(#[source] RootfsError),
    #[error("preparing the rootfs: {0}")]
    PrepareRootfs(#[source] RootfsError),
    #[error("making the working directory {cwd}: {source}")]
    Workdir {
        cwd: String,
        #[source]
        source: std::io::Error,
    },
    /// The image's user or group could not be resolved in its rootfs.
    #[error(transparent)]
    User(#[from] UserError),
    /// A recorded container the recorded pod spec does not have.
    #[error("in the record but not in the pod spec")]
    NotInSpec,
    #[error("no such container")]
    NoSuchContainer,
    #[error("not created yet")]
    NotCreated,
    /// Its lifecycle does not allow what was asked.
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// One thing a teardown could not undo (the teardown goes on with the
/// others; see [`PodError::Cleanup`]).
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("stopping {container}: {source}")]
    Stop {
        container: String,
        #[source]
        source: RuntimeError,
    },
    #[error("deleting {container}: {source}")]
    Delete {
        container: String,
        #[source]
        source: RuntimeError,
    },
    /// Deleted in the runtime, but its lifecycle did not allow it (a bug).
    #[error("deleting {container}: {source}")]
    Deleted {
        container: String,
        #[source]
        source: Refused,
    },
    #[error("removing the rootfs of {container}: {source}")]
    RemoveRootfs {
        container: String,
        #[source]
        source: RootfsError,
    },
    #[error(transparent)]
    Volumes(Box<VolumeError>),
    #[error("removing the pod's link {host_if}: {source}")]
    Link {
        host_if: String,
        #[source]
        source: bramble_net::NetError,
    },
    #[error(transparent)]
    Netns(NetnsError),
    #[error("removing {path}: {source}")]
    RemoveDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("listing log FIFOs: {0}")]
    ListFifos(#[source] std::io::Error),
    #[error("detaching the log FIFOs of {key}: {source}")]
    DetachFifos {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why a pod could not be started or stopped cleanly.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("pod {pod:?}: {source}")]
    Netns {
        pod: String,
        #[source]
        source: NetnsError,
    },
    #[error("pod {pod:?}: {source}")]
    Volume {
        pod: String,
        #[source]
        source: Box<VolumeError>,
    },
    #[error("pod {pod:?}: container {container:?}: image {image:?}: {reason}")]
    Image {
        pod: String,
        container: String,
        image: String,
        reason: Box<ImageError>,
    },
    #[error("pod {pod:?}: container {container:?}: {source}")]
    Container {
        pod: String,
        container: String,
        #[source]
        source: Box<ContainerError>,
    },
    #[error("pod {pod:?}: container {container:?}: {source}")]
    Runtime {
        pod: String,
        container: String,
        #[source]
        source: RuntimeError,
    },
    #[error("pod {pod:?}: {op} {path}: {source}")]
    Io {
        pod: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pod {pod:?}: network: {source}")]
    Network {
        pod: String,
        #[source]
        source: bramble_net::NetError,
    },
    #[error("pod {pod:?}: cleanup left things behind: {}", joined(.errors))]
    Cleanup {
        pod: String,
        /// Each thing left behind (at least one).
        errors: Vec<CleanupError>,
    },
}

/// `a; b; c`.
fn joined(errors: &[CleanupError]) -> String {
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    all.join("; ")
}

impl PodError {
    /// Whether an image could not be had (pulling, failed, unknown).
    pub fn is_image(&self) -> bool {
        matches!(self, PodError::Image { .. })
    }

    /// The image the start waits for, when it failed only because that
    /// image is being pulled.
    pub fn waits_for_pull(&self) -> Option<&str> {
        match self {
            PodError::Image { image, reason, .. } if matches!(**reason, ImageError::Pulling) => {
                Some(image)
            }
            _ => None,
        }
    }
}
