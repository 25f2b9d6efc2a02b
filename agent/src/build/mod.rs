//! Image builds on this board: the jobs the hub hands the node
//! ([`runner`], one thread each), a job start to end ([`job`]), running a
//! `RUN` step's process in a container over the layers before it
//! ([`step`]) and COPY/ADD/WORKDIR steps ([`copy`]). Turning what a step
//! changed into a layer is `bramble_images::layer_diff`'s.

pub mod copy;
pub mod job;
pub mod runner;
pub mod step;
