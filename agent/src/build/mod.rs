//! Image builds on this board: the jobs the hub hands the node
//! ([`runner`], one thread each), a job start to end ([`job`]), running a
//! `RUN` step's process in a container over the layers before it
//! ([`step`]) on the pod network ([`network`]) with its `--mount`s
//! ([`mounts`], caches shared as [`cache_mount`] says); the COPY, ADD and WORKDIR steps ([`copy`]: its pure rules
//! in [`copy_plan`] and `crate::image_root::owner`, finding sources in `copy_sources`, the
//! copying in [`copy_tree`], ADD's archives in [`add_archive`]); paths
//! are resolved inside an image's root by `crate::image_root`; each job's
//! log, kept after it for `bramble logs build/NAME`, in [`log`]. Turning what a step
//! changed into a layer is `bramble_images::layer_diff`'s.

pub mod add_archive;
pub mod cache_mount;
pub mod copy;
pub mod copy_plan;
mod copy_sources;
pub mod copy_tree;
pub mod job;
pub mod log;
pub mod mounts;
pub mod network;
pub mod runner;
pub mod step;
