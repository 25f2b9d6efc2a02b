//! Container logs: CRI-format lines ([`format`](mod@format)) written by a [`LogWriter`]
//! to size-capped, rotated files, and read back by a [`LogFollower`] for
//! `bramble logs [-f]`.
//!
//! The writer runs in the small per-container process that owns the
//! container's pipes, so containers and their logs outlive an agent restart.

pub mod follow;
pub mod format;
pub mod writer;

pub use follow::{LogFollower, Start, read_history};
pub use format::{LogLine, Reassembler, Stream};
pub use writer::{LogConfig, LogWriter};
