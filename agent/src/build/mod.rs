//! Image builds on this board: running a build step's process in a
//! container over the layers before it ([`step`]). Turning what a step
//! changed into a layer is `bramble_images::layer_diff`'s.

pub mod step;
