//! An image's root filesystem as the board reads and writes it, the image
//! being hostile: paths resolved inside the root ([`in_root`]), its
//! `/etc/passwd` and `/etc/group` read there ([`etc_files`]) and parsed
//! ([`passwd`]), and the ids they give a build step's `--chown`/`USER`
//! ([`owner`], BuildKit's rules) or a container's process ([`exec_user`],
//! runc's rules). Used by image builds (`crate::build`) and pods
//! (`crate::pod`).

pub mod etc_files;
pub mod exec_user;
pub mod in_root;
pub mod owner;
pub mod passwd;
